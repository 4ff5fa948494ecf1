/**
 * A monitor's output to its chardev, as QEMU's monitor_puts and
 * monitor_flush do: every '\n' goes out as "\r\n" (QMP and HMP alike),
 * bytes the backend cannot take now wait in the output buffer and go when
 * the backend's write watch fires (backpressure, never a busy loop), and
 * output with nobody connected is dropped, as qemu_chr_fe_write drops it.
 *
 * A client that does not read must not grow the buffer without end: past
 * OUTPUT_HIGH_WATER bytes the output is `backlogged` and the monitor stops
 * reading that client (as QEMU suspends a monitor) until `whenDrained()`
 * settles, so what waits is bounded by one reply or one input chunk's echo.
 */
import type { ChardevEndpoint } from '../serial/endpoint.js';

const encoder = new TextEncoder();

/** Bytes of output held for a client past which its monitor stops reading it. */
export const OUTPUT_HIGH_WATER = 64 * 1024;

export class MonitorOutput {
  private queue: Uint8Array[] = [];
  private offset = 0;
  private cancelWatch: (() => void) | null = null;
  private bytes = 0;
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly endpoint: ChardevEndpoint) {}

  /** monitor_puts: text, newlines as CRLF. */
  puts(text: string): void {
    this.write(encoder.encode(text.replaceAll('\n', '\r\n')));
  }

  /** Raw bytes (HMP's ringbuf_read prints bytes as they are). */
  write(bytes: Uint8Array): void {
    if (bytes.length === 0 || !this.endpoint.connected) return;
    this.queue.push(bytes);
    this.bytes += bytes.length;
    if (this.cancelWatch === null) this.flush();
  }

  /** Bytes still waiting for the backend. */
  get pending(): number {
    return this.bytes;
  }

  /** More output waits than a client that reads would leave: stop reading its input. */
  get backlogged(): boolean {
    return this.bytes > OUTPUT_HIGH_WATER;
  }

  /** Settles when the output is no longer backlogged (or the client went away). */
  whenDrained(): Promise<void> {
    if (!this.backlogged) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** The client went away: what was not sent is dropped. */
  discard(): void {
    this.cancelWatch?.();
    this.cancelWatch = null;
    this.queue = [];
    this.offset = 0;
    this.bytes = 0;
    this.wakeDrainWaiters();
  }

  private wakeDrainWaiters(): void {
    if (this.backlogged || this.drainWaiters.length === 0) return;
    for (const wake of this.drainWaiters.splice(0)) wake();
  }

  private flush(): void {
    while (this.queue.length > 0) {
      if (!this.endpoint.connected) {
        this.discard();
        return;
      }
      const head = this.queue[0]!;
      const rest = head.subarray(this.offset);
      const taken = this.endpoint.write(rest);
      this.bytes -= taken;
      if (taken < rest.length) {
        this.offset += taken;
        this.wakeDrainWaiters();
        this.cancelWatch = this.endpoint.addWriteWatch(() => {
          this.cancelWatch = null;
          this.flush();
        });
        return;
      }
      this.queue.shift();
      this.offset = 0;
    }
    this.wakeDrainWaiters();
  }
}
