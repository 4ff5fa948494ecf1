/**
 * source:RATE: numbered text lines (pattern.ts LineStream) at RATE bytes per
 * second, paced with a timer: every tick the program may write what the
 * elapsed time allows. Time spent waiting (the host away, a full queue)
 * earns at most one second of catching up, so a host that returns after a
 * minute gets a short burst, not a minute's worth. Whatever the host sends
 * to the port is read and counted (a guest program that never reads would
 * leave the host's bytes queued).
 */
import { isErrno } from '../serial/guest/errno.js';
import { LineStream } from './pattern.js';
import { GuestProgram, readLoop } from './program.js';
import type { PortStream } from './port-stream.js';

const TICK_MS = 50;
/** Largest single write: keeps one tick's work small at high rates. */
const CHUNK = 64 * 1024;

export class SourceProgram extends GuestProgram {
  private get rate(): number {
    return this.spec.kind === 'source' ? this.spec.rate : 0;
  }

  protected async body(stream: PortStream): Promise<void> {
    const lines = new LineStream(this.spec.port);
    const reader = readLoop(stream, (bytes) => {
      this.bytesIn += bytes.length;
      return true;
    });
    let budget = 0;
    let last = performance.now();
    while (!this.stopping) {
      const now = performance.now();
      budget = Math.min(budget + ((now - last) / 1000) * this.rate, Math.max(this.rate, 1));
      last = now;
      while (budget >= 1 && !this.stopping) {
        const n = Math.min(Math.floor(budget), CHUNK);
        const written = await stream.write(lines.next(n));
        if (isErrno(written)) {
          await reader;
          return;
        }
        this.bytesOut += written;
        budget -= written;
      }
      if (!(await this.sleep(TICK_MS))) break;
    }
    await reader;
  }

  protected override detail(): string {
    return `${this.rate} B/s`;
  }
}
