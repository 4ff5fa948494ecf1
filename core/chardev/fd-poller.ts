/**
 * Non-blocking reads and writes on a terminal fd (a pty master, a serial
 * device) without a Node stream.
 *
 * A stream would be event-driven, but on a terminal libuv treats EIO as a
 * fatal read error and closes the fd, and EIO is what a pty master reads
 * while nobody has its slave open; QEMU polls through that state (once a
 * second) and so must we. So reads go through fs.read on the non-blocking
 * fd: straight again after data, after a short growing delay (1 ms up to
 * 20 ms) when there is none (EAGAIN), every 250 ms while hung up (EIO).
 * Writes are fs.writeSync on the non-blocking fd: they never block and
 * never queue; EAGAIN is backpressure, retried after a few milliseconds.
 */
import fs from 'node:fs';

export interface FdPollerEvents {
  data(chunk: Uint8Array): void;
  /** A read found nothing to read (EAGAIN): the other side is there but quiet. */
  quiet(): void;
  /** A read failed with EIO: a pty's slave is closed, a serial line hung up. */
  hangup(): void;
  /** A read returned 0 (end of file). Reading stops. */
  eof(): void;
  /** Any other read error. Reading stops. */
  failed(error: NodeJS.ErrnoException): void;
}

const READ_SIZE = 64 * 1024;
const IDLE_MIN_MS = 1;
const IDLE_MAX_MS = 20;
const HANGUP_POLL_MS = 250;

export type WriteResult = number | { error: NodeJS.ErrnoException };

export class FdPoller {
  private readonly buffer = Buffer.alloc(READ_SIZE);
  private running = false;
  private reading = false;
  private paused = false;
  private closed = false;
  private idleMs = IDLE_MIN_MS;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly fd: number,
    private readonly events: FdPollerEvents,
  ) {}

  start(): void {
    this.running = true;
    this.readSoon(0);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.readSoon(0);
  }

  /** Write what the fd takes now: a count (0 when full), or the error. */
  write(bytes: Uint8Array): WriteResult {
    if (this.closed) return 0;
    try {
      return fs.writeSync(this.fd, bytes);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      if (e.code === 'EAGAIN') return 0;
      return { error: e };
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    // A read may be in flight on the thread pool: close once it has returned.
    if (!this.reading) this.closeFd();
  }

  private closeFd(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
  }

  private readSoon(delay: number): void {
    if (this.closed || this.paused || !this.running || this.reading || this.timer !== null) return;
    if (delay === 0) {
      this.readOnce();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.readOnce();
    }, delay);
  }

  private readOnce(): void {
    if (this.closed || this.paused || this.reading) return;
    this.reading = true;
    fs.read(this.fd, this.buffer, 0, READ_SIZE, null, (error, n) => {
      this.reading = false;
      if (this.closed) {
        this.closeFd();
        return;
      }
      if (error !== null) {
        const e = error as NodeJS.ErrnoException;
        if (e.code === 'EAGAIN') {
          this.events.quiet();
          const delay = this.idleMs;
          this.idleMs = Math.min(IDLE_MAX_MS, this.idleMs * 2);
          this.readSoon(delay);
        } else if (e.code === 'EIO') {
          this.events.hangup();
          this.readSoon(HANGUP_POLL_MS);
        } else {
          this.running = false;
          this.events.failed(e);
        }
        return;
      }
      if (n === 0) {
        this.running = false;
        this.events.eof();
        return;
      }
      this.idleMs = IDLE_MIN_MS;
      // Copy: the read buffer is reused for the next read.
      this.events.data(Uint8Array.prototype.slice.call(this.buffer, 0, n));
      this.readSoon(0);
    });
  }
}
