/**
 * The C stdio stream qemu-ga wraps every guest-file-open handle in (a FILE
 * from fopen, then switched to O_NONBLOCK), modelled closely enough that the
 * agent answers as qemu-ga 7.2 does on a port:
 *
 * - fully buffered (a port is not a tty), 4096-byte buffer: a
 *   guest-file-write stays in the buffer until it fills, guest-file-flush
 *   or guest-file-close, which is why qemu-ga has guest-file-flush;
 * - fread loops read(2) until it has `count` bytes, end of file (read
 *   returns 0: on a port, the host is not connected) or an error (EAGAIN:
 *   nothing queued). An error fails the whole call ("failed to read file:
 *   Resource temporarily unavailable") and the bytes it had read are lost,
 *   as with qemu-ga; ask for no more than is there (x-guest-file-poll tells
 *   whether anything is);
 * - reads fill the buffer 4096 bytes at a time, so bytes beyond `count`
 *   wait in the stream for the next guest-file-read;
 * - fseek(SEEK_CUR) before a write that follows a read calls lseek, which a
 *   port refuses (ESPIPE): qemu-ga's "failed to seek file: Illegal seek";
 * - fflush of a read stream on a port succeeds (glibc ignores ESPIPE there).
 * One simplification: after a failed write the unwritten bytes stay in the
 * buffer for the next flush (glibc's behaviour there varies by version).
 */
import { isErrno, type Errno } from '../serial/guest/errno.js';
import { SEEK_CUR, type GuestFiles } from '../serial/guest/files.js';

/** BUFSIZ / st_blksize of a character device. */
export const STDIO_BUFFER = 4096;

export interface FreadResult {
  bytes: Uint8Array;
  eof: boolean;
  error: Errno | null;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export class StdioFile {
  private readBuffer: Uint8Array = new Uint8Array(0);
  private writeBuffer: Uint8Array[] = [];
  private writeBuffered = 0;

  constructor(
    private readonly files: GuestFiles,
    readonly fd: number,
  ) {}

  /** fread(buf, 1, count, fh). */
  async read(count: number): Promise<FreadResult> {
    const parts: Uint8Array[] = [];
    let got = 0;
    const take = (n: number): void => {
      parts.push(this.readBuffer.subarray(0, n));
      this.readBuffer = this.readBuffer.subarray(n);
      got += n;
    };
    take(Math.min(count, this.readBuffer.length));
    while (got < count) {
      const want = count - got;
      // A request of a whole buffer or more bypasses the buffer, as glibc does.
      const r = await this.files.read(this.fd, want >= STDIO_BUFFER ? want : STDIO_BUFFER);
      if (isErrno(r)) return { bytes: concat(parts), eof: false, error: r };
      if (r.length === 0) return { bytes: concat(parts), eof: true, error: null };
      if (want >= STDIO_BUFFER) {
        parts.push(r);
        got += r.length;
      } else {
        this.readBuffer = r;
        take(Math.min(want, r.length));
      }
    }
    return { bytes: concat(parts), eof: false, error: null };
  }

  /** fwrite(buf, 1, n, fh): returns how many bytes the stream took, and the error if one stopped it. */
  async write(data: Uint8Array): Promise<{ count: number; error: Errno | null }> {
    const space = STDIO_BUFFER - this.writeBuffered;
    if (data.length <= space) {
      this.buffer(data);
      return { count: data.length, error: null };
    }
    this.buffer(data.subarray(0, space));
    const flushed = await this.flush();
    if (flushed !== null) return { count: space, error: flushed };
    const rest = data.subarray(space);
    const direct = rest.length - (rest.length % STDIO_BUFFER);
    if (direct > 0) {
      const written = await this.writeAll(rest.subarray(0, direct));
      if (isErrno(written)) return { count: space, error: written };
    }
    this.buffer(rest.subarray(direct));
    return { count: data.length, error: null };
  }

  /** fflush: the write buffer goes out. Null on success. */
  async flush(): Promise<Errno | null> {
    if (this.writeBuffered === 0) return null;
    const all = concat(this.writeBuffer);
    let done = 0;
    while (done < all.length) {
      const n = await this.files.write(this.fd, all.subarray(done));
      if (isErrno(n)) {
        this.writeBuffer = [all.subarray(done)];
        this.writeBuffered = all.length - done;
        return n;
      }
      done += n;
    }
    this.writeBuffer = [];
    this.writeBuffered = 0;
    return null;
  }

  /** fseek(fh, 0, SEEK_CUR): the stream asks the kernel where it is. */
  async seekCurrent(): Promise<Errno | null> {
    const r = await this.files.lseek(this.fd, 0, SEEK_CUR);
    if (isErrno(r)) return r;
    this.readBuffer = new Uint8Array(0);
    return null;
  }

  /** fclose: flush, then close the descriptor; the first error is returned. */
  async close(): Promise<Errno | null> {
    const flushed = await this.flush();
    const closed = await this.files.close(this.fd);
    return flushed ?? (isErrno(closed) ? closed : null);
  }

  private buffer(data: Uint8Array): void {
    if (data.length === 0) return;
    this.writeBuffer.push(data.slice());
    this.writeBuffered += data.length;
  }

  private async writeAll(data: Uint8Array): Promise<number | Errno> {
    let done = 0;
    while (done < data.length) {
      const n = await this.files.write(this.fd, data.subarray(done));
      if (isErrno(n)) return n;
      done += n;
    }
    return done;
  }
}
