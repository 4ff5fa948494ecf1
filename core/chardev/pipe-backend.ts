/**
 * pipe: FIFOs. `path.in` carries host -> guest (we read it), `path.out`
 * guest -> host (we write it); when either cannot be opened, `path` alone is
 * used for both directions, as QEMU's char-pipe.c falls back. With one FIFO
 * for both, the guest's own output comes back to it as input, exactly as
 * under QEMU: that is what a single FIFO does.
 *
 * Every FIFO is opened O_RDWR | O_NONBLOCK: on Linux opening a FIFO for
 * read+write never blocks (QEMU opens them O_RDWR too, so it never sees
 * end-of-file either), and the fd is wrapped in a net.Socket, which libuv
 * drives as a pipe: event-driven reads, and writes that report a full FIFO
 * as backpressure ('drain' when the reader made room). The host side is
 * always connected, as QEMU treats an open pipe.
 *
 * Only FIFOs are taken: a regular file or a device at the path is refused
 * with a hint (file= for output to a file, serial= for a device).
 */
import fs from 'node:fs';
import net from 'node:net';
import type { PipeBackend } from './kinds/pipe.js';
import type { BackendOptions } from './backend-endpoint.js';
import { chardevError, describeSystemError, type ChardevError } from './chardev-error.js';
import { StreamEndpoint } from './stream-endpoint.js';

export type PipeSpec = PipeBackend;

const FIFO_FLAGS = fs.constants.O_RDWR | fs.constants.O_NONBLOCK;

function tryOpen(path: string): number | NodeJS.ErrnoException {
  try {
    return fs.openSync(path, FIFO_FLAGS);
  } catch (error) {
    return error as NodeJS.ErrnoException;
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // nothing to release
  }
}

export class PipeChardev extends StreamEndpoint {
  readonly kind = 'pipe' as const;
  /** The FIFOs in use: [in, out], or [path] for the bidirectional fallback. */
  readonly paths: readonly string[];

  private constructor(
    options: BackendOptions,
    paths: string[],
    input: net.Socket,
    output: net.Socket,
  ) {
    super(options);
    this.paths = paths;
    this.connectStreams(input, output, true);
  }

  static open(spec: PipeSpec, options: BackendOptions): PipeChardev | ChardevError {
    const id = options.id;
    let fds: number[];
    let paths: string[];
    const fdIn = tryOpen(`${spec.path}.in`);
    const fdOut = tryOpen(`${spec.path}.out`);
    if (typeof fdIn === 'number' && typeof fdOut === 'number') {
      fds = [fdIn, fdOut];
      paths = [`${spec.path}.in`, `${spec.path}.out`];
    } else {
      if (typeof fdIn === 'number') closeQuietly(fdIn);
      if (typeof fdOut === 'number') closeQuietly(fdOut);
      const fd = tryOpen(spec.path);
      if (typeof fd !== 'number') {
        return chardevError(
          'OpenFailed',
          `Could not open '${spec.path}': ${describeSystemError(fd)}`,
          id,
        );
      }
      fds = [fd];
      paths = [spec.path];
    }
    for (let i = 0; i < fds.length; i++) {
      if (!fs.fstatSync(fds[i]!).isFIFO()) {
        for (const fd of fds) closeQuietly(fd);
        return chardevError(
          'WrongFileType',
          `pipe: '${paths[i]}' is not a FIFO (create it with mkfifo; use file= to write a file, serial= for a device)`,
          id,
        );
      }
    }
    if (fds.length === 1) {
      const both = new net.Socket({ fd: fds[0]!, readable: true, writable: true });
      return new PipeChardev(options, paths, both, both);
    }
    const input = new net.Socket({ fd: fds[0]!, readable: true, writable: false });
    const output = new net.Socket({ fd: fds[1]!, readable: false, writable: true });
    return new PipeChardev(options, paths, input, output);
  }

  describe(): string {
    return 'pipe';
  }
}
