/**
 * echo: write back everything read, in order (a guest `cat < port > port`).
 * While the host is away the write waits, so nothing read is lost: the rest
 * goes to the next host that connects.
 */
import { isErrno } from '../serial/guest/errno.js';
import { GuestProgram, readLoop } from './program.js';
import type { PortStream } from './port-stream.js';

export class EchoProgram extends GuestProgram {
  protected async body(stream: PortStream): Promise<void> {
    await readLoop(stream, async (bytes) => {
      this.bytesIn += bytes.length;
      const n = await stream.write(bytes);
      if (isErrno(n)) return false;
      this.bytesOut += n;
      return true;
    });
  }
}
