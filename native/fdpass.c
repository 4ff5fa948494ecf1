/*
 * vmchan's one native piece: receiving descriptors passed with SCM_RIGHTS on
 * a unix socket (QMP getfd, add-fd), which Node cannot do (its sockets read
 * with read(), and the kernel closes what came as ancillary data).
 *
 * It never owns the socket: Node's net.Socket keeps it (writes, close), but
 * is never asked to read. Readiness comes from a private epoll instance that
 * holds only this socket, watched with a libuv poll handle: the socket
 * itself is never registered with libuv's own epoll twice, so Node may
 * still poll it for writing.
 *
 * Exports (N-API, so the same file loads in Node and Electron):
 *   recv(fd, buffer, fds[]) -> bytes read (0 at end of file) or -errno;
 *     the descriptors that came with them are pushed onto fds (close-on-exec).
 *   watch(fd, callback) -> handle; callback() runs while fd is readable.
 *   start(handle), stop(handle), close(handle).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

/* QEMU's SOCKET_MAX_FDS (io/channel-socket.c): at most 16 per message. */
#define MAX_FDS 16

#define CHECK(call)                                                                  \
  do {                                                                               \
    if ((call) != napi_ok) {                                                         \
      napi_throw_error(env, NULL, "fdpass: " #call " failed");                     \
      return NULL;                                                                   \
    }                                                                                \
  } while (0)

/* The call's first `count` arguments, the first one a descriptor number. */
static napi_status fd_args(napi_env env, napi_callback_info info, size_t count, napi_value *argv,
                           int32_t *fd) {
  size_t argc = count;
  napi_status status = napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (status != napi_ok) return status;
  return napi_get_value_int32(env, argv[0], fd);
}

static napi_value js_recv(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  CHECK(fd_args(env, info, 3, argv, &fd));
  void *data;
  size_t length;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &length));

  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct cmsghdr align;
  } control;
  struct iovec iov = {.iov_base = data, .iov_len = length};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;

  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  napi_value result;
  if (n < 0) {
    CHECK(napi_create_int32(env, -errno, &result));
    return result;
  }
  uint32_t pushed;
  CHECK(napi_get_array_length(env, argv[2], &pushed));
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int fds[MAX_FDS];
    memcpy(fds, CMSG_DATA(c), count * sizeof(int));
    for (size_t i = 0; i < count; i++) {
      napi_value v;
      CHECK(napi_create_int32(env, fds[i], &v));
      CHECK(napi_set_element(env, argv[2], pushed++, v));
    }
  }
  CHECK(napi_create_int32(env, (int32_t)n, &result));
  return result;
}

typedef struct {
  uv_poll_t poll;
  int epfd;
  int active;
  int closed;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
} Watch;

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)status;
  (void)events;
  Watch *w = handle->data;
  if (w->closed) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv;
  if (napi_get_reference_value(env, w->callback, &cb) == napi_ok &&
      napi_get_global(env, &recv) == napi_ok) {
    napi_value ignored;
    /* make_callback: promises the callback settles run before we return. */
    if (napi_make_callback(env, w->context, recv, cb, 0, NULL, &ignored) ==
        napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_closed(uv_handle_t *handle) {
  Watch *w = handle->data;
  close(w->epfd);
  free(w);
}

static void finalize_watch(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  (void)hint;
}

static Watch *watch_of(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *w = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_external(env, argv[0], &w) != napi_ok) {
    napi_throw_type_error(env, NULL, "fdpass: not a watch");
    return NULL;
  }
  return w;
}

static napi_value js_watch(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  CHECK(fd_args(env, info, 2, argv, &fd));
  struct uv_loop_s *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    napi_throw_error(env, strerror(errno), "fdpass: epoll_create1 failed");
    return NULL;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data = {.fd = fd}};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int e = errno;
    close(epfd);
    napi_throw_error(env, strerror(e), "fdpass: epoll_ctl failed");
    return NULL;
  }
  Watch *w = calloc(1, sizeof *w);
  if (w == NULL) {
    close(epfd);
    napi_throw_error(env, NULL, "fdpass: out of memory");
    return NULL;
  }
  w->epfd = epfd;
  w->env = env;
  if (uv_poll_init(loop, &w->poll, epfd) != 0) {
    close(epfd);
    free(w);
    napi_throw_error(env, NULL, "fdpass: uv_poll_init failed");
    return NULL;
  }
  w->poll.data = w;
  napi_value name;
  CHECK(napi_create_string_utf8(env, "vmchan:fdpass", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &w->context));
  CHECK(napi_create_reference(env, argv[1], 1, &w->callback));
  napi_value external;
  CHECK(napi_create_external(env, w, finalize_watch, NULL, &external));
  return external;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  Watch *w = watch_of(env, info);
  if (w == NULL || w->closed || w->active) return NULL;
  if (uv_poll_start(&w->poll, UV_READABLE, on_readable) == 0) w->active = 1;
  return NULL;
}

static napi_value js_stop(napi_env env, napi_callback_info info) {
  Watch *w = watch_of(env, info);
  if (w == NULL || w->closed || !w->active) return NULL;
  uv_poll_stop(&w->poll);
  w->active = 0;
  return NULL;
}

/* The JS side drops its handle after close(), so the Watch is freed here, not by the GC. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  Watch *w = watch_of(env, info);
  if (w == NULL || w->closed) return NULL;
  w->closed = 1;
  w->active = 0;
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->context);
  uv_close((uv_handle_t *)&w->poll, on_closed);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"recv", NULL, js_recv, NULL, NULL, NULL, napi_default, NULL},
      {"watch", NULL, js_watch, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, js_stop, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
