/** sink: read everything and count it (a guest `cat port > /dev/null`). */
import { GuestProgram, readLoop } from './program.js';
import type { PortStream } from './port-stream.js';

export class SinkProgram extends GuestProgram {
  private reads = 0;

  protected async body(stream: PortStream): Promise<void> {
    await readLoop(stream, (bytes) => {
      this.bytesIn += bytes.length;
      this.reads++;
      return true;
    });
  }

  protected override detail(): string {
    return `${this.reads} reads`;
  }
}
