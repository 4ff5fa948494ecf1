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
 */
import fs from 'node:fs';
import type { FileBackend as ChardevBackendOfKind } from './kinds/file.js';
import { BackendEndpoint, type BackendOptions } from './backend-endpoint.js';
import { chardevError, describeSystemError, type ChardevError } from './chardev-error.js';

export type FileSpec = ChardevBackendOfKind;

/** How long to wait before telling a throttled writer to retry a full FIFO. */
const RETRY_MS = 5;

export class FileChardev extends BackendEndpoint {
  readonly kind = 'file' as const;
  readonly path: string;
  private fd: number | null;
  private blocked = false;
  private retryTimer: NodeJS.Timeout | null = null;

  private constructor(options: BackendOptions, path: string, fd: number) {
    super(options);
    this.path = path;
    this.fd = fd;
    this.peerConnected();
  }

  static open(spec: FileSpec, options: BackendOptions): FileChardev | ChardevError {
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

  protected override canTransmit(): boolean {
    return !this.blocked;
  }

  protected async teardown(): Promise<void> {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}
