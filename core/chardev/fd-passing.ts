/**
 * Descriptors passed with SCM_RIGHTS on a unix socket chardev (QEMU's
 * QIO_CHANNEL_FEATURE_FD_PASS: char-socket.c tcp_chr_recv keeps the latest
 * batch, tcp_get_msgfds hands it to the frontend, QMP getfd and add-fd take
 * it).
 *
 * Node reads sockets with read(): whatever came as ancillary data is closed
 * by the kernel. So a chardev whose frontend wants descriptors (a QMP
 * monitor) reads its connection through vmchan's one native piece,
 * native/fdpass.c (recvmsg; readiness from a private epoll set watched by
 * libuv), built into build/fdpass.node by `npm run build` when a C compiler
 * is there. Without it the chardev reads as before and the monitor refuses
 * getfd and add-fd, saying how to build it.
 *
 * The net.Socket keeps the descriptor and does the writing and the close;
 * it is never asked to read (the link's input is the DescriptorReader).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** What native/fdpass.c exports. */
interface FdPassAddon {
  recv(fd: number, buffer: Buffer, fds: number[]): number;
  watch(fd: number, callback: () => void): object;
  start(watch: object): void;
  stop(watch: object): void;
  close(watch: object): void;
}

/** The built addon's place, from the sources (core/chardev) or the build (dist/core/chardev). */
function addonCandidates(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return [
    path.resolve(here, '../../build/fdpass.node'),
    path.resolve(here, '../../../build/fdpass.node'),
  ];
}

let loaded: FdPassAddon | string | undefined;

/** The addon, or one line saying why descriptors cannot be received. */
export function fdPassAddon(): FdPassAddon | string {
  if (loaded !== undefined) return loaded;
  const file = addonCandidates().find((f) => fs.existsSync(f));
  if (file === undefined) {
    return (loaded =
      'its native part build/fdpass.node is not built (it needs a C compiler: apt-get install build-essential, then npm run build)');
  }
  try {
    loaded = createRequire(import.meta.url)(file) as FdPassAddon;
  } catch (error) {
    loaded = `its native part ${file} does not load: ${error instanceof Error ? error.message : String(error)}`;
  }
  return loaded;
}

/** QEMU's SOCKET_MAX_FDS: one message carries at most 16 (the kernel closes the rest). */
export const MAX_PASSED_FDS = 16;

const READ_SIZE = 64 * 1024;
const EAGAIN = 11;

/** Linux errno names for the read errors a connected unix socket can give. */
const ERRNO_NAMES: Record<number, string> = {
  104: 'ECONNRESET',
  110: 'ETIMEDOUT',
  32: 'EPIPE',
  9: 'EBADF',
  107: 'ENOTCONN',
};

/**
 * The read side of a connected socket `fd`, through recvmsg: a Readable of
 * its bytes; `onDescriptors` gets each batch of passed descriptors just
 * before the bytes they came with (they are the caller's to close).
 */
export class DescriptorReader extends Readable {
  private watch: object | null;
  private readonly buffer = Buffer.alloc(READ_SIZE);

  constructor(
    private readonly addon: FdPassAddon,
    private readonly fd: number,
    private readonly onDescriptors: (fds: number[]) => void,
  ) {
    super({ highWaterMark: READ_SIZE });
    this.watch = addon.watch(fd, () => this.onReadable());
  }

  override _read(): void {
    if (this.watch !== null) this.addon.start(this.watch);
  }

  /** The socket is readable: take what it has until it has no more or we are full. */
  private onReadable(): void {
    while (this.watch !== null) {
      const fds: number[] = [];
      const n = this.addon.recv(this.fd, this.buffer, fds);
      if (fds.length > 0) this.onDescriptors(fds);
      if (n === -EAGAIN) return;
      if (n < 0) {
        const code = ERRNO_NAMES[-n] ?? `errno ${-n}`;
        const error: NodeJS.ErrnoException = new Error(`read ${code}`);
        error.code = code;
        error.errno = n;
        error.syscall = 'read';
        this.stopWatching();
        this.destroy(error);
        return;
      }
      if (n === 0) {
        this.stopWatching();
        this.push(null);
        return;
      }
      if (!this.push(Buffer.from(this.buffer.subarray(0, n)))) {
        if (this.watch !== null) this.addon.stop(this.watch);
        return;
      }
    }
  }

  private stopWatching(): void {
    const w = this.watch;
    this.watch = null;
    if (w !== null) this.addon.close(w);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.stopWatching();
    callback(error);
  }
}

/** Close passed descriptors nobody took (QEMU closes them as tcp_chr_recv replaces a batch). */
export function closeDescriptors(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      fs.closeSync(fd);
    } catch {
      // Already closed: nothing is held.
    }
  }
}
