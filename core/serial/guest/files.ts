/**
 * The guest's system calls on files: a file descriptor table over the
 * namespace, with Linux's semantics and errno values.
 *
 * Every call is a 'guest' task on the engine's queue (in free-run it runs at
 * once, when the program makes it: post.mayRunNow; in step mode it waits for
 * its step) and returns a Promise that settles when the call returns in the
 * guest: a blocking read settles when the driver wakes the reader (data,
 * host disconnect, unplug), not before. Errors are values (Errno), never
 * exceptions.
 *
 * Flags are Linux's: O_NONBLOCK makes waits EAGAIN; O_ASYNC, set with
 * fcntl(F_SETFL) (as in Linux, O_ASYNC given to open() has no effect),
 * makes the driver send SIGIO to the owner set with setOwner (L7).
 */
import { runOrPost, type PostTask } from '../../virtio/device.js';
import { errno, isErrno, type Errno } from './errno.js';
import type { FileOps, GuestNamespace } from './namespace.js';

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_ASYNC = 0o20000;

export const POLLIN = 0x001;
export const POLLPRI = 0x002;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLRDNORM = 0x040;

export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;

/** `IN|OUT`, `HUP`, `IN|HUP`: the poll bits people care about, by name. */
export function pollNames(mask: number): string {
  const names: string[] = [];
  if (mask & POLLIN) names.push('IN');
  if (mask & POLLPRI) names.push('PRI');
  if (mask & POLLOUT) names.push('OUT');
  if (mask & POLLERR) names.push('ERR');
  if (mask & POLLHUP) names.push('HUP');
  return names.join('|');
}

/** A SIGIO delivered to an owner (the `si_fd` of the siginfo). */
export interface SigioInfo {
  fd: number;
  path: string;
}

interface OpenFile {
  fd: number;
  path: string;
  flags: number;
  ops: FileOps;
  owner: ((info: SigioInfo) => void) | null;
  closed: boolean;
  /** `read fd N`, made once: a program reading a buffer per call would make it per call. */
  readLabel: string;
  /** `SIGIO fd N` and what its handler is told, made once (a transfer signals every few buffers). */
  sigioLabel: string;
  sigioInfo: Readonly<SigioInfo>;
}

/** A plain text file (sysfs attributes): read from a position, seekable. */
function textFileOps(content: string): FileOps {
  const bytes = new TextEncoder().encode(content);
  let pos = 0;
  return {
    read: async (count, _nonblock, into) => {
      const out = bytes.subarray(pos, pos + count);
      pos += out.length;
      if (into === undefined) return out.slice();
      into.set(out);
      return into.subarray(0, out.length);
    },
    write: async () => errno('EINVAL', 'write to a read-only attribute'),
    poll: () => POLLIN | POLLRDNORM,
    pollWait: () => () => {},
    lseek: (offset, whence) => {
      const base = whence === SEEK_SET ? 0 : whence === SEEK_CUR ? pos : bytes.length;
      if (whence !== SEEK_SET && whence !== SEEK_CUR && whence !== SEEK_END) return errno('EINVAL');
      if (base + offset < 0) return errno('EINVAL');
      pos = base + offset;
      return pos;
    },
    fasync: () => {},
    release: async () => {},
  };
}

/** A call that threw (an engine bug, never a guest error): reported, and the call fails with EIO. */
function callFailed(label: string, error: unknown): Errno {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`vmchan: guest ${label} failed: ${text}\n`);
  return errno('EIO', label);
}

export class GuestFiles {
  private readonly table = new Map<number, OpenFile>();

  constructor(
    private readonly namespace: GuestNamespace,
    private readonly post: PostTask,
  ) {}

  /**
   * Run `body` as a guest task; the promise settles with its result. An
   * exception (an engine bug, never a guest error) is reported and the call
   * fails with EIO instead of leaving the program hanging.
   */
  private syscall<T>(
    label: string,
    body: () => Promise<T | Errno> | T | Errno,
  ): Promise<T | Errno> {
    return new Promise<T | Errno>((resolve) => {
      const failed = (error: unknown): void => resolve(callFailed(label, error));
      runOrPost(this.post, 'guest', label, () => {
        try {
          Promise.resolve(body()).then(resolve, failed);
        } catch (error) {
          failed(error);
        }
      });
    });
  }

  private file(fd: number, what: string): OpenFile | Errno {
    const f = this.table.get(fd);
    return f === undefined || f.closed ? errno('EBADF', `${what} fd ${fd}`) : f;
  }

  /** The lowest free descriptor, from 3 (0-2 are the program's stdio). */
  private allocFd(): number {
    let fd = 3;
    while (this.table.has(fd)) fd++;
    return fd;
  }

  open(path: string, flags = O_RDWR): Promise<number | Errno> {
    return this.syscall(`open ${path}`, async () => {
      const node = this.namespace.lookup(path);
      if (isErrno(node)) return errno(node.code, `open ${path}`);
      let ops: FileOps | Errno;
      if (node.kind === 'file') ops = textFileOps(node.read());
      else if (node.kind === 'chardev') ops = await node.device.open(flags);
      else return errno('EINVAL', `open ${path}`);
      if (isErrno(ops)) return errno(ops.code, `open ${path}`);
      const fd = this.allocFd();
      this.table.set(fd, {
        fd,
        path,
        flags,
        ops,
        owner: null,
        closed: false,
        readLabel: `read fd ${fd}`,
        sigioLabel: `SIGIO fd ${fd}`,
        sigioInfo: Object.freeze({ fd, path }),
      });
      return fd;
    });
  }

  /**
   * read(2). With `into` the bytes land in the caller's buffer (the result
   * is a view of it), as read(2) fills the buffer it is given; a buffer
   * shorter than `count` is EFAULT, as Linux's copy_to_user past the end.
   */
  read(fd: number, count: number, into?: Uint8Array): Promise<Uint8Array | Errno> {
    return this.syscall(`read fd ${fd}`, () => {
      const f = this.file(fd, 'read');
      if (isErrno(f)) return f;
      if (!Number.isInteger(count) || count < 0) return errno('EINVAL', `read fd ${fd}`);
      if (into !== undefined && into.length < count) return errno('EFAULT', `read fd ${fd}`);
      return f.ops.read(count, (f.flags & O_NONBLOCK) !== 0, into);
    });
  }

  /**
   * read(2) on a non-blocking descriptor into `into` at offset `at` (room
   * for `count` bytes there), run now without a promise when the engine lets
   * a guest call skip the queue (free-run, nothing waiting) and the file can
   * answer at once: how many bytes came (0: end of file), or an errno
   * (EAGAIN when it would wait). Null when the call cannot run now (step
   * mode, queued work, another kind of file): make it with read() into a
   * view of `into` instead. A program reading buffer after buffer into one
   * array at a moving offset pays for the system calls, not for a promise,
   * view, label or closure each.
   */
  readNowAt(fd: number, count: number, into: Uint8Array, at: number): number | Errno | null {
    const f = this.table.get(fd);
    if (f === undefined || f.closed || f.ops.readNowAt === undefined) return null;
    if ((f.flags & O_NONBLOCK) === 0 || !Number.isInteger(count) || count < 0) return null;
    if (!Number.isInteger(at) || at < 0 || at + count > into.length) return null;
    if (this.post.mayRunNow?.('guest', f.readLabel) !== true) return null;
    try {
      return f.ops.readNowAt(count, into, at) ?? errno('EAGAIN');
    } catch (error) {
      return callFailed(f.readLabel, error);
    }
  }

  /** write(2) on a non-blocking descriptor, run now when it can (as readNowAt); null: use write(). */
  writeNow(fd: number, data: Uint8Array): number | Errno | null {
    const f = this.table.get(fd);
    if (f === undefined || f.closed || f.ops.writeNow === undefined) return null;
    if ((f.flags & O_NONBLOCK) === 0) return null;
    const label = `write fd ${fd} (${data.length} bytes)`;
    if (this.post.mayRunNow?.('guest', label) !== true) return null;
    return this.runNow(label, () => f.ops.writeNow!(data) ?? errno('EAGAIN'));
  }

  /** A call's body run now; an exception (an engine bug) fails it with EIO, as syscall() does. */
  private runNow<T>(label: string, body: () => T | Errno): T | Errno {
    try {
      return body();
    } catch (error) {
      return callFailed(label, error);
    }
  }

  write(fd: number, data: Uint8Array | string): Promise<number | Errno> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    return this.syscall(`write fd ${fd} (${bytes.length} bytes)`, () => {
      const f = this.file(fd, 'write');
      if (isErrno(f)) return f;
      return f.ops.write(bytes, (f.flags & O_NONBLOCK) !== 0);
    });
  }

  /** write(2) in a loop until everything went (what `cat file > /dev/vport0p1` does). */
  async writeAll(fd: number, data: Uint8Array | string): Promise<number | Errno> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    let done = 0;
    while (done < bytes.length) {
      const n = await this.write(fd, bytes.subarray(done));
      if (isErrno(n)) return n;
      done += n;
    }
    return done;
  }

  /**
   * Would a non-blocking read(2) on `fd` say EAGAIN now? A program's
   * poll(2) with timeout 0 before it reads, so it can wait (poll) without
   * first making a read that finds nothing. False whenever it cannot tell
   * without a task (step mode, a hold: the read is made and says so itself),
   * and for anything but plain "no data yet" (EOF, hang-up, errors: the read
   * reports those).
   */
  readWouldWait(fd: number): boolean {
    if (this.post.freeRunning?.() !== true) return false;
    const f = this.table.get(fd);
    if (f === undefined || f.closed || (f.flags & O_NONBLOCK) === 0) return false;
    const mask = f.ops.pollRead !== undefined ? f.ops.pollRead() : f.ops.poll();
    return (mask & (POLLIN | POLLHUP | POLLERR)) === 0;
  }

  /** The poll mask now, without waiting (poll with timeout 0). */
  pollNow(fd: number): number | Errno {
    const f = this.file(fd, 'poll');
    if (isErrno(f)) return f;
    return f.ops.poll();
  }

  /**
   * poll(2) on one descriptor without a timeout: settles with the mask as
   * soon as one of `events` (or POLLHUP/POLLERR, which are always reported)
   * is there.
   */
  poll(fd: number, events = POLLIN | POLLOUT): Promise<number | Errno> {
    return this.syscall(`poll fd ${fd}`, () => {
      const f = this.file(fd, 'poll');
      if (isErrno(f)) return f;
      return new Promise<number | Errno>((resolve) => {
        // Made once per poll: a poll may be woken by every interrupt of its port.
        const wokenLabel = `poll fd ${fd}: woken`;
        const check = (): void => {
          if (f.closed) {
            resolve(errno('EBADF', `poll fd ${fd}`));
            return;
          }
          const mask = f.ops.poll();
          if (mask & (events | POLLHUP | POLLERR)) {
            resolve(mask);
            return;
          }
          f.ops.pollWait(() => this.post('guest', wokenLabel, check));
        };
        check();
      });
    });
  }

  lseek(fd: number, offset: number, whence = SEEK_SET): Promise<number | Errno> {
    return this.syscall(`lseek fd ${fd}`, () => {
      const f = this.file(fd, 'lseek');
      if (isErrno(f)) return f;
      return f.ops.lseek(offset, whence);
    });
  }

  /** fcntl(F_GETFL). */
  getFlags(fd: number): number | Errno {
    const f = this.file(fd, 'fcntl');
    return isErrno(f) ? f : f.flags;
  }

  /** fcntl(F_SETFL): O_NONBLOCK and O_ASYNC may change; O_ASYNC calls the driver's fasync. */
  setFlags(fd: number, flags: number): Promise<0 | Errno> {
    return this.syscall(`fcntl fd ${fd} F_SETFL`, () => {
      const f = this.file(fd, 'fcntl');
      if (isErrno(f)) return f;
      const changeable = O_NONBLOCK | O_ASYNC;
      const next = (f.flags & ~changeable) | (flags & changeable);
      const asyncWas = (f.flags & O_ASYNC) !== 0;
      const asyncNow = (next & O_ASYNC) !== 0;
      f.flags = next;
      if (asyncWas !== asyncNow) f.ops.fasync(asyncNow, () => this.signal(f));
      return 0 as const;
    });
  }

  /**
   * fcntl(F_SETOWN) plus a SIGIO handler: `handler` is called (as a guest
   * task) for every SIGIO the driver sends for this file while O_ASYNC is set.
   */
  setOwner(fd: number, handler: ((info: SigioInfo) => void) | null): 0 | Errno {
    const f = this.file(fd, 'fcntl');
    if (isErrno(f)) return f;
    f.owner = handler;
    return 0;
  }

  close(fd: number): Promise<0 | Errno> {
    return this.syscall(`close fd ${fd}`, async () => {
      const f = this.file(fd, 'close');
      if (isErrno(f)) return f;
      f.closed = true;
      this.table.delete(fd);
      if (f.flags & O_ASYNC) f.ops.fasync(false, () => {});
      await f.ops.release();
      return 0 as const;
    });
  }

  /** Descriptors open now, for the UI (`ls -l /proc/self/fd`). */
  openFiles(): { fd: number; path: string; flags: number }[] {
    return [...this.table.values()].map((f) => ({ fd: f.fd, path: f.path, flags: f.flags }));
  }

  private signal(f: OpenFile): void {
    const owner = f.owner;
    if (owner === null || f.closed) return;
    const info = f.sigioInfo;
    this.post('guest', f.sigioLabel, () => owner(info));
  }
}
