/**
 * logfile= / logappend=: a copy of the guest's output on a backend.
 *
 * As QEMU's qemu_chr_write_log (chardev/char.c): only the output direction
 * (guest -> host) is logged, and exactly the bytes the backend's write
 * accounted for, including bytes it discarded because no peer was there
 * (QEMU logs those too: the write "succeeded"). The file is opened before the
 * backend, O_WRONLY|O_CREAT with O_APPEND or O_TRUNC, mode 0666 less umask.
 * Writes are synchronous and best effort (QEMU reports no log errors either):
 * nothing is queued in memory, so a log cannot grow the process.
 */
import fs from 'node:fs';
import { chardevError, describeSystemError, type ChardevError } from './chardev-error.js';

export class LogTee {
  private fd: number | null;
  /** Bytes that could not be written to the log (disk full, ...). */
  failedBytes = 0;

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  static open(path: string, append: boolean, id?: string): LogTee | ChardevError {
    const c = fs.constants;
    const flags = c.O_WRONLY | c.O_CREAT | (append ? c.O_APPEND : c.O_TRUNC) | c.O_NONBLOCK;
    try {
      return new LogTee(path, fs.openSync(path, flags, 0o666));
    } catch (error) {
      return chardevError(
        'OpenFailed',
        `Could not create '${path}': ${describeSystemError(error)}`,
        id,
      );
    }
  }

  write(bytes: Uint8Array): void {
    if (this.fd === null || bytes.length === 0) return;
    let done = 0;
    try {
      while (done < bytes.length) done += fs.writeSync(this.fd, bytes, done, bytes.length - done);
    } catch {
      this.failedBytes += bytes.length - done;
    }
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      fs.closeSync(fd);
    } catch {
      // already gone: nothing left to release
    }
  }
}
