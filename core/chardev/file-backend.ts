/**
 * file: the guest's output written to a file (path, append=on|off).
 *
 * As QEMU's char-file.c: O_WRONLY | O_CREAT and O_APPEND or O_TRUNC, mode
 * 0666 less umask; the backend is open (connected) from the start; nothing
 * flows host -> guest. QEMU's optional input file (`input-path`) is not
 * supported. Writes are synchronous (a regular file is always writable, so
 * nothing is ever queued); O_NONBLOCK is set so that a FIFO without a reader
 * fails at open (ENXIO) instead of freezing the process, and a full FIFO is
 * reported as backpressure.
 *
 * A path `/dev/fdset/N` opens a descriptor of fd set N (fdsets.ts), as
 * QEMU's qemu_open does: the set's member with write-only access, truncated
 * unless append=on. A member that is not a regular file (a pipe, a FIFO)
 * was not opened by us with O_NONBLOCK and cannot be made so, so it is
 * written on the thread pool, one chunk at a time: the event loop never
 * waits for its reader.
 */
import fs from 'node:fs';
import type { FileBackend as ChardevBackendOfKind } from './kinds/file.js';
import { BackendEndpoint, type BackendOptions } from './backend-endpoint.js';
import { chardevError, describeSystemError, type ChardevError } from './chardev-error.js';
import { fdsetIdOf, fileChardevFlags, type FdsetOpen } from './fdsets.js';

export type FileSpec = ChardevBackendOfKind;

/** How long to wait before telling a throttled writer to retry a full FIFO. */
const RETRY_MS = 5;

export class FileChardev extends BackendEndpoint {
  readonly kind = 'file' as const;
  readonly path: string;
  private fd: number | null;
  private blocked = false;
  private retryTimer: NodeJS.Timeout | null = null;
  /** The fd set member this chardev writes to (path /dev/fdset/N); it is the set's to close. */
  private readonly fdset: FdsetOpen | null;
  /** Writes to a non-regular fdset member go through the thread pool, one at a time. */
  private readonly asyncWrites: boolean;

  private constructor(
    options: BackendOptions,
    path: string,
    fd: number,
    fdset: FdsetOpen | null = null,
  ) {
    super(options);
    this.path = path;
    this.fd = fd;
    this.fdset = fdset;
    this.asyncWrites = fdset !== null && !fdset.regularFile;
    this.peerConnected();
  }

  static open(spec: FileSpec, options: BackendOptions): FileChardev | ChardevError {
    const setId = fdsetIdOf(spec.path);
    if (setId !== undefined) {
      // qemu_open on /dev/fdset/N: error_setg_file_open's words with the errno.
      const opened =
        setId === null
          ? 'EINVAL'
          : options.fdSets === undefined
            ? 'ENOENT'
            : options.fdSets.open(setId, fileChardevFlags(spec.append));
      if (typeof opened === 'string') {
        return chardevError(
          'OpenFailed',
          `Could not open '${spec.path}': ${describeSystemError({ code: opened })}`,
          options.id,
        );
      }
      return new FileChardev(options, spec.path, opened.fd, opened);
    }
    const c = fs.constants;
    const flags = c.O_WRONLY | c.O_CREAT | c.O_NONBLOCK | (spec.append ? c.O_APPEND : c.O_TRUNC);
    try {
      return new FileChardev(options, spec.path, fs.openSync(spec.path, flags, 0o666));
    } catch (error) {
      return chardevError(
        'OpenFailed',
        `Could not open '${spec.path}': ${describeSystemError(error)}`,
        options.id,
      );
    }
  }

  describe(): string {
    return 'file';
  }

  protected transmit(bytes: Uint8Array): number {
    if (this.fd === null || this.blocked) return 0;
    if (this.asyncWrites) {
      this.writeInBackground(this.fd, Uint8Array.from(bytes));
      return bytes.length;
    }
    try {
      return fs.writeSync(this.fd, bytes);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
        this.blocked = true;
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.blocked = false;
          this.writable();
        }, RETRY_MS);
        return 0;
      }
      // Disk full, I/O error: QEMU's write fails too; the bytes are gone, say so.
      this.sendFailed(bytes.length);
      this.failed(`write to ${this.path} failed`, error);
      return bytes.length;
    }
  }

  /** Write `bytes` in full on the thread pool; the chardev takes no more until it is done. */
  private writeInBackground(fd: number, bytes: Uint8Array): void {
    this.blocked = true;
    fs.write(fd, bytes, 0, bytes.length, null, (error, written) => {
      if (this.fd === null) return;
      if (error !== null) {
        this.sendFailed(bytes.length);
        this.failed(`write to ${this.path} failed`, error);
        this.blocked = false;
        return;
      }
      if (written < bytes.length) {
        this.writeInBackground(fd, bytes.subarray(written));
        return;
      }
      this.blocked = false;
      this.writable();
    });
  }

  protected override canTransmit(): boolean {
    return !this.blocked;
  }

  protected async teardown(): Promise<void> {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.fdset !== null) this.fdset.release();
    else if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}
