/**
 * Linux abstract unix socket names in both of QEMU's forms
 * (util/qemu-sockets.c unix_listen_saddr / unix_connect_saddr):
 * - tight=on (QEMU's default): the address length is the name's own,
 *   offsetof(sun_path) + 1 + strlen(name), so /proc/net/unix shows `@name`;
 * - tight=off: the whole sockaddr_un, the name padded with NULs to 108
 *   bytes (`@name@@@...`).
 * The kernel compares the whole address, so a tight client cannot reach a
 * padded server and a padded client cannot reach a tight one.
 *
 * Node 20 (libuv 1.46, uv_pipe_bind / uv_pipe_connect) always passes the
 * full sockaddr_un: a path starting with NUL binds and connects the padded
 * form, which is tight=off. For tight=on a small python3 process binds (or
 * connects) the socket with the exact length and hands the descriptor to us
 * over Node's own child-process IPC channel: Node receives descriptors sent
 * with SCM_RIGHTS on that channel (a `NODE_HANDLE` message, as Node sends a
 * server to a worker), which its net module cannot do on other sockets. The
 * helper exits as soon as the descriptor is sent; no bytes ever pass through
 * it, so the socket is exactly the one QEMU would have.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';

/** The helper: bind+listen or connect one abstract name of exact length, send the descriptor. */
const HELPER = `
import errno, json, os, socket, sys
mode, name = sys.argv[1], os.fsencode(sys.argv[2])
ipc = socket.socket(fileno=int(os.environ['NODE_CHANNEL_FD']))
def say(obj, fds=()):
    socket.send_fds(ipc, [(json.dumps(obj) + '\\n').encode()], list(fds))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    if mode == 'listen':
        s.bind(b'\\0' + name)
        s.listen(1)
    else:
        s.settimeout(10)
        s.connect(b'\\0' + name)
except OSError as e:
    code = errno.errorcode.get(e.errno or 0, 'EINVAL')
    say({'vmchanError': e.strerror or str(e), 'code': code})
    sys.exit(0)
say({'cmd': 'NODE_HANDLE', 'type': 'net.Native', 'msg': {'vmchanFd': mode}}, [s.fileno()])
`;

/** The interpreter that runs the helper. */
export const TIGHT_HELPER = 'python3';

/** Why a tight abstract socket could not be made; `code` is the errno name when the kernel said no. */
export class TightAbstractFailed extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'TightAbstractFailed';
  }
}

/** A native pipe handle as Node hands it over IPC (`net.Native`). */
type NativeHandle = object & { fd: number };

function runHelper(
  mode: 'listen' | 'connect',
  name: string,
): Promise<NativeHandle | TightAbstractFailed> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (v: NativeHandle | TightAbstractFailed): void => {
      if (settled) return;
      settled = true;
      resolve(v);
    };
    const child = spawn(TIGHT_HELPER, ['-c', HELPER, mode, name], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'json',
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 2000) stderr += chunk.toString();
    });
    child.on('message', (message: unknown, handle: unknown) => {
      const m = message as { vmchanFd?: string; vmchanError?: string; code?: string };
      if (typeof m.vmchanError === 'string') {
        settle(new TightAbstractFailed(m.vmchanError, m.code));
      } else if (m.vmchanFd === mode && handle !== undefined && handle !== null) {
        settle(handle as NativeHandle);
      }
      if (child.connected) child.disconnect();
    });
    child.on('error', (error) => {
      settle(
        new TightAbstractFailed(
          `tight abstract names need ${TIGHT_HELPER} (Node binds only the padded form, tight=off): ${error.message}`,
          undefined,
        ),
      );
    });
    child.on('exit', (code, signal) => {
      const why = stderr.trim().split('\n').pop() ?? '';
      settle(
        new TightAbstractFailed(
          `the ${TIGHT_HELPER} helper for the tight abstract name ended (${signal ?? `exit ${code}`}) without a socket${why ? `: ${why}` : ''}`,
          undefined,
        ),
      );
    });
  });
}

/** A server listening on the tight abstract name `name` (no leading NUL in `name`). */
export async function listenTightAbstract(
  server: net.Server,
  name: string,
): Promise<TightAbstractFailed | null> {
  const handle = await runHelper('listen', name);
  if (handle instanceof TightAbstractFailed) return handle;
  return new Promise((resolve) => {
    const onError = (error: Error): void =>
      resolve(new TightAbstractFailed(error.message, (error as NodeJS.ErrnoException).code));
    server.once('error', onError);
    // As Node's own child_process does for a received net.Server.
    server.listen(handle, () => {
      server.off('error', onError);
      resolve(null);
    });
  });
}

/** A socket connected to the tight abstract name `name`. */
export async function connectTightAbstract(
  name: string,
): Promise<net.Socket | TightAbstractFailed> {
  const handle = await runHelper('connect', name);
  if (handle instanceof TightAbstractFailed) return handle;
  return new net.Socket({
    handle,
    allowHalfOpen: true,
    readable: true,
    writable: true,
  } as net.SocketConstructorOpts);
}
