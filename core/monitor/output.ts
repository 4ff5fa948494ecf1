/**
 * A monitor's output to its chardev, as QEMU's monitor_puts and
 * monitor_flush do: every '\n' goes out as "\r\n" (QMP and HMP alike),
 * bytes the backend cannot take now wait in the output buffer and go when
 * the backend's write watch fires (backpressure, never a busy loop), and
 * output with nobody connected is dropped, as qemu_chr_fe_write drops it.
 */
import type { ChardevEndpoint } from '../serial/endpoint.js';

const encoder = new TextEncoder();

export class MonitorOutput {
  private queue: Uint8Array[] = [];
  private offset = 0;
  private cancelWatch: (() => void) | null = null;

  constructor(private readonly endpoint: ChardevEndpoint) {}

  /** monitor_puts: text, newlines as CRLF. */
  puts(text: string): void {
    this.write(encoder.encode(text.replaceAll('\n', '\r\n')));
  }

  /** Raw bytes (HMP's ringbuf_read prints bytes as they are). */
  write(bytes: Uint8Array): void {
    if (bytes.length === 0 || !this.endpoint.connected) return;
    this.queue.push(bytes);
    if (this.cancelWatch === null) this.flush();
  }

  /** Bytes still waiting for the backend. */
  get pending(): number {
    return this.queue.reduce((n, b) => n + b.length, 0) - this.offset;
  }

  /** The client went away: what was not sent is dropped. */
  discard(): void {
    this.cancelWatch?.();
    this.cancelWatch = null;
    this.queue = [];
    this.offset = 0;
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
      if (taken < rest.length) {
        this.offset += taken;
        this.cancelWatch = this.endpoint.addWriteWatch(() => {
          this.cancelWatch = null;
          this.flush();
        });
        return;
      }
      this.queue.shift();
      this.offset = 0;
    }
  }
}
