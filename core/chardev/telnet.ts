/**
 * QEMU's telnet server side (telnet=on), as chardev/char-socket.c does it:
 * on every new connection it first sends IAC WILL ECHO, IAC WILL
 * SUPPRESS-GO-AHEAD, IAC WILL BINARY, IAC DO BINARY (tcp_chr_telnet_init),
 * then strips the client's commands from what it reads
 * (tcp_chr_process_IAC_bytes): IAC IAC is one 0xff byte, IAC BREAK is two
 * bytes (a break event), and any other IAC command is taken as three bytes
 * (IAC, command, option), two-byte commands such as IAC NOP included.
 * What the guest writes goes out as it is (QEMU does not double 0xff).
 */

const IAC = 0xff;
const BREAK = 0xf3;

/** QEMU's 12-byte initial negotiation. */
export const TELNET_INIT = Uint8Array.of(
  IAC, 0xfb, 0x01, // WILL ECHO
  IAC, 0xfb, 0x03, // WILL SUPPRESS-GO-AHEAD
  IAC, 0xfb, 0x00, // WILL BINARY
  IAC, 0xfd, 0x00, // DO BINARY
); // prettier-ignore

/** The client's byte stream with telnet commands removed, across chunk boundaries. */
export class TelnetFilter {
  /** QEMU's do_telnetopt: 1 = data, 2 = after IAC, 3 = after a command byte. */
  private state = 1;
  /** Bytes of commands removed so far (not data for the guest). */
  removed = 0;

  filter(chunk: Uint8Array): Uint8Array {
    const out = new Uint8Array(chunk.length);
    let j = 0;
    for (const b of chunk) {
      if (this.state > 1) {
        if (b === IAC && this.state === 2) {
          out[j++] = IAC; // IAC IAC: a literal 0xff
          this.state = 1;
          continue;
        }
        // IAC BREAK ends at two bytes; any other command at three.
        if (b === BREAK && this.state === 2) this.state++;
        this.state++;
        if (this.state >= 4) this.state = 1;
      } else if (b === IAC) {
        this.state = 2;
      } else {
        out[j++] = b;
      }
    }
    this.removed += chunk.length - j;
    return out.subarray(0, j);
  }
}
