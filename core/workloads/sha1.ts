/**
 * sha1: the file exchange of seed 002's case study (virtserial-host.c and
 * virtserial-guest.c: test_host_file_send, test_guest_file_send) as a guest
 * service. It listens for requests on its own port (the command port, test1
 * in the case study); each transfer names the data port (test2).
 *
 * The protocol, one ASCII line per message ("\n"; "\r\n" accepted):
 *
 *   host -> guest                    guest -> host
 *   PING                             PONG
 *   HELP                             OK commands: PING | HELP | RECV ... | SEND ...
 *   RECV <port> <bytes> [<sha1>]     READY RECV <port> <bytes>
 *     the host now writes <bytes> bytes to <port>; the guest reads exactly
 *     that many, then:               DONE RECV <bytes> <sha1> [PASS|FAIL]
 *     (PASS/FAIL when the host gave the sha1 it expects, as the guest
 *     compares with host-csumfile in the case study)
 *   SEND <port> <bytes> [<seed>]     READY SEND <port> <bytes>
 *     the guest writes <bytes> bytes of the pattern with <seed> (default 1;
 *     pattern.ts: xorshift32, one byte per step) to <port>, then:
 *                                    DONE SEND <bytes> <sha1>
 *   a bad request, or a failure      ERR <message>
 *
 * The host sends a RECV's data only after READY: until then the guest does
 * not have the data port open (bytes would wait in the host's backend; D6).
 * For SEND the host may connect to the data port before or after READY:
 * the guest's writes wait while no host is there (L5). Requests are served
 * one at a time, in order; the data port is opened for a transfer and
 * closed after it, so the data port is free for other uses in between.
 *
 * Example with socat, the data port on a unix socket chardev:
 *   printf 'SEND test2 1048576\n' | socat - UNIX-CONNECT:$RUN/test1 &
 *   socat -u UNIX-CONNECT:$RUN/test2 - | sha1sum
 */
import { createHash } from 'node:crypto';
import { isErrno } from '../serial/guest/errno.js';
import type { GuestPortEntry } from './port-names.js';
import { PatternStream } from './pattern.js';
import { GuestProgram, type ProgramContext } from './program.js';
import type { PortStream } from './port-stream.js';
import type { WorkloadSpec } from './spec.js';

export const SHA1_HELP =
  'OK commands: PING | HELP | RECV <port> <bytes> [<sha1>] | SEND <port> <bytes> [<seed>]';

/** A request line longer than this is refused (and the rest of it skipped). */
const MAX_LINE = 1024;
const CHUNK = 64 * 1024;

export interface Sha1Context extends ProgramContext {
  /** A data port by any of its names. */
  resolve: (ref: string) => GuestPortEntry | undefined;
}

/** Lines from a port; partial lines are dropped when the host hangs up. */
class LineReader {
  private buffered = '';
  private readonly decoder = new TextDecoder();
  private tooLong = false;

  constructor(private readonly stream: PortStream) {}

  /** The next line, or null when the port is gone or closed. */
  async next(): Promise<string | null | 'too-long'> {
    for (;;) {
      const nl = this.buffered.indexOf('\n');
      if (nl >= 0) {
        const line = this.buffered.slice(0, nl).replace(/\r$/, '');
        this.buffered = this.buffered.slice(nl + 1);
        if (this.tooLong) {
          this.tooLong = false;
          return 'too-long';
        }
        return line;
      }
      if (this.buffered.length > MAX_LINE) {
        this.tooLong = true;
        this.buffered = '';
      }
      const r = await this.stream.readSome(4096);
      if (r === 'eof') {
        this.buffered = '';
        if ((await this.stream.waitForHost()) !== 'retry') return null;
        continue;
      }
      if (isErrno(r)) return null;
      this.buffered += this.decoder.decode(r, { stream: true });
    }
  }
}

function parseCount(text: string | undefined): number | null {
  if (text === undefined || !/^\d+$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

export class Sha1Service extends GuestProgram {
  private transfers = 0;
  private failures = 0;
  private last = '';

  constructor(
    spec: WorkloadSpec,
    entry: GuestPortEntry,
    protected override readonly ctx: Sha1Context,
  ) {
    super(spec, entry, ctx);
  }

  protected async body(stream: PortStream): Promise<void> {
    const lines = new LineReader(stream);
    for (;;) {
      const line = await lines.next();
      if (line === null) return;
      const answer =
        line === 'too-long'
          ? `ERR request longer than ${MAX_LINE} bytes`
          : await this.serve(line, stream);
      if (answer === null) return;
      if (!(await this.say(stream, answer))) return;
    }
  }

  protected override detail(): string {
    const fails = this.failures > 0 ? `, ${this.failures} failed` : '';
    return `${this.transfers} transfers${fails}${this.last === '' ? '' : `; last: ${this.last}`}`;
  }

  private async say(stream: PortStream, line: string): Promise<boolean> {
    const n = await stream.write(new TextEncoder().encode(`${line}\n`));
    if (isErrno(n)) return false;
    this.bytesOut += n;
    return true;
  }

  /** One request; the final answer line, or null when the command port is gone. */
  private async serve(line: string, control: PortStream): Promise<string | null> {
    this.bytesIn += line.length + 1;
    const words = line.trim().split(/\s+/);
    const verb = (words[0] ?? '').toUpperCase();
    switch (verb) {
      case '':
        return 'ERR empty request (try HELP)';
      case 'PING':
        return 'PONG';
      case 'HELP':
        return SHA1_HELP;
      case 'RECV':
      case 'SEND':
        return this.transfer(verb, words.slice(1), control);
      default:
        return `ERR unknown request '${words[0]}' (try HELP)`;
    }
  }

  private async transfer(
    verb: 'RECV' | 'SEND',
    args: string[],
    control: PortStream,
  ): Promise<string | null> {
    const [portRef, countText, extra] = args;
    const usage = verb === 'RECV' ? 'RECV <port> <bytes> [<sha1>]' : 'SEND <port> <bytes> [<seed>]';
    const count = parseCount(countText);
    if (portRef === undefined || count === null || args.length > 3) return `ERR usage: ${usage}`;
    if (verb === 'RECV' && extra !== undefined && !/^[0-9a-fA-F]{40}$/.test(extra)) {
      return `ERR '${extra}' is not a sha1 (40 hex digits)`;
    }
    const seed = verb === 'SEND' && extra !== undefined ? parseCount(extra) : 1;
    if (seed === null || seed > 0xffffffff) return `ERR '${extra}' is not a seed (0..4294967295)`;
    const entry = this.ctx.resolve(portRef);
    if (entry === undefined) return `ERR no port '${portRef}' in the guest`;
    if (entry.guestPath === this.entry.guestPath) {
      return `ERR '${portRef}' is the command port; name another port for the data`;
    }
    const data = await this.openPort(entry.guestPath);
    if (typeof data === 'string') return `ERR cannot open ${entry.guestPath}: ${data}`;
    try {
      if (!(await this.say(control, `READY ${verb} ${portRef} ${count}`))) return null;
      const result =
        verb === 'RECV'
          ? await this.receive(data, count, extra?.toLowerCase())
          : await this.send(data, count, seed);
      this.transfers++;
      if (result.startsWith('ERR') || result.endsWith('FAIL')) this.failures++;
      this.last = result;
      this.ctx.report(`sha1: ${verb} ${portRef} ${count} bytes: ${result}`);
      return result;
    } finally {
      await data.close();
    }
  }

  /** test_host_file_send, the guest half: read exactly `count` bytes and hash them. */
  private async receive(data: PortStream, count: number, expected?: string): Promise<string> {
    const hash = createHash('sha1');
    let got = 0;
    while (got < count) {
      const r = await data.readSome(Math.min(CHUNK, count - got));
      if (r === 'eof') {
        // The host's data connection is not there (yet, or any more): wait for it.
        if ((await data.waitForHost()) === 'retry') continue;
        return `ERR data port gone after ${got} of ${count} bytes`;
      }
      if (isErrno(r)) return `ERR data port: ${r.toString()} after ${got} of ${count} bytes`;
      hash.update(r);
      got += r.length;
      this.bytesIn += r.length;
    }
    const sha1 = hash.digest('hex');
    const verdict = expected === undefined ? '' : expected === sha1 ? ' PASS' : ' FAIL';
    return `DONE RECV ${count} ${sha1}${verdict}`;
  }

  /** test_guest_file_send, the guest half: write `count` bytes of the pattern, then its sha1. */
  private async send(data: PortStream, count: number, seed: number): Promise<string> {
    const hash = createHash('sha1');
    const pattern = new PatternStream(seed);
    let sent = 0;
    while (sent < count) {
      const chunk = pattern.next(Math.min(CHUNK, count - sent));
      hash.update(chunk);
      const n = await data.write(chunk);
      if (isErrno(n)) return `ERR data port: ${n.toString()} after ${sent} of ${count} bytes`;
      sent += n;
      this.bytesOut += n;
    }
    return `DONE SEND ${count} ${hash.digest('hex')}`;
  }
}
