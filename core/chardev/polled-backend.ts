/**
 * The part pty and serial share: a terminal fd driven by an FdPoller, with
 * writes that take what the terminal takes (EAGAIN is backpressure, retried
 * after RETRY_MS) and reads that stop while the frontend's queue is full.
 * Subclasses decide what quiet / hangup / end-of-file mean for `connected`.
 */
import { EventEmitter } from 'node:events';
import { BackendEndpoint, type BackendOptions } from './backend-endpoint.js';
import { FdPoller } from './fd-poller.js';

const RETRY_MS = 5;

export abstract class PolledChardev extends BackendEndpoint {
  protected readonly poller: FdPoller;
  private blocked = false;
  private retryTimer: NodeJS.Timeout | null = null;

  protected constructor(options: BackendOptions, fd: number) {
    super(options);
    // The poller's read failures take the one error path (failed()) through an emitter.
    const readErrors = new EventEmitter();
    this.watchErrors(readErrors, 'read failed');
    readErrors.on('error', () => this.onEnd());
    this.poller = new FdPoller(fd, {
      data: (chunk) => this.onData(chunk),
      quiet: () => this.onQuiet(),
      hangup: () => this.onHangup(),
      eof: () => this.onEnd(),
      failed: (error) => readErrors.emit('error', error),
    });
  }

  protected onData(chunk: Uint8Array): void {
    this.hostBytes(chunk);
  }

  protected abstract onQuiet(): void;
  protected abstract onHangup(): void;
  protected abstract onEnd(): void;

  protected transmit(bytes: Uint8Array): number {
    if (this.blocked) return 0;
    const r = this.poller.write(bytes);
    if (typeof r !== 'number') {
      // EIO and friends: the terminal refused; the bytes are gone, and counted.
      this.sendFailed(bytes.length);
      return bytes.length;
    }
    if (r < bytes.length) {
      this.blocked = true;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.blocked = false;
        this.writable();
      }, RETRY_MS);
    }
    return r;
  }

  protected override canTransmit(): boolean {
    return !this.blocked;
  }

  protected override pauseSource(): void {
    this.poller.pause();
  }

  protected override resumeSource(): void {
    this.poller.resume();
  }

  protected async teardown(): Promise<void> {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.poller.close();
  }
}
