/**
 * The host side of the QEMU guest agent protocol: vmchan as the client of a
 * qemu-ga (the real one in a guest, or core/qga's in the simulated guest)
 * over the agent channel's host end, a byte stream (the chardev's socket).
 *
 * The protocol (qemu-ga 7.2, docs/interop/qemu-ga.rst): one JSON object per
 * request; one compact JSON object and LF per reply, in request order; no
 * greeting. A connection may start in the middle of an earlier client's
 * stream, so the client first sends 0xFF (which resets the agent's parser)
 * and `guest-sync-delimited` with a fresh id, then drops everything up to
 * the 0xFF the agent puts before that reply and any reply whose id is not
 * the one sent. Only then are requests matched to replies by order.
 *
 * Bounded: at most MAX_PENDING requests in flight, a reply line of at most
 * MAX_LINE bytes (a longer one ends the client: the stream cannot be
 * trusted after it), and every request has a deadline. Errors are values
 * (QgaError); nothing here throws.
 */
import { randomInt } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { VmchanError } from '../base/error.js';

/** Requests waiting for their reply, at most. */
export const MAX_PENDING = 256;
/** One reply line, at most (guest-info of qemu-ga 7.2 is about 4 KiB; guest-file-read 48 KiB at its 4096 default... bounded by the callers' counts). */
export const MAX_LINE = 1024 * 1024;
/** QGA_SENTINEL_BYTE. */
const SENTINEL = 0xff;
const LF = 0x0a;

export type QgaErrorKind =
  /** The agent did not answer in time (no qemu-ga on the guest side, or it is stuck). */
  | 'NoAnswer'
  /** The stream closed (the chardev went, QEMU went, the client was closed). */
  | 'Closed'
  /** The agent answered with an error (its class and text are the message). */
  | 'CommandFailed'
  /** A reply that is not the protocol's (not JSON, too long). */
  | 'BadReply'
  /** More requests in flight than MAX_PENDING. */
  | 'Busy';

export class QgaError extends VmchanError<QgaErrorKind> {
  readonly domain = 'qga';
  constructor(
    kind: QgaErrorKind,
    message: string,
    /** For CommandFailed: QEMU's error class (`GenericError`, `CommandNotFound`). */
    readonly errorClass: string | null = null,
  ) {
    super(kind, message);
  }

  protected override details(): Record<string, unknown> {
    return this.errorClass === null ? {} : { errorClass: this.errorClass };
  }
}

export function isQgaError(x: unknown): x is QgaError {
  return x instanceof QgaError;
}

export type QgaReply = { return: unknown } | { error: { class: string; desc: string } };

interface Waiter {
  resolve(reply: unknown): void;
  timer: NodeJS.Timeout;
}

export interface QgaClientOptions {
  /** Time allowed for the sync handshake (default 3 s). */
  syncTimeoutMs?: number;
  /** Default time allowed per request (default 5 s). */
  timeoutMs?: number;
}

export class QgaClient {
  private buffer: Buffer[] = [];
  private buffered = 0;
  /** Before the handshake's 0xFF: bytes are an earlier session's, dropped. */
  private synced = false;
  private syncId = -1;
  private syncWaiter: ((ok: true | QgaError) => void) | null = null;
  private readonly waiters: Waiter[] = [];
  private closedWith: QgaError | null = null;
  private readonly closeListeners = new Set<(why: QgaError) => void>();

  private constructor(
    private readonly stream: Duplex,
    private readonly options: QgaClientOptions,
  ) {
    stream.on('data', (b: Buffer) => this.onData(b));
    stream.on('close', () => this.fail(new QgaError('Closed', 'the agent channel closed')));
    stream.on('end', () => this.fail(new QgaError('Closed', 'the agent channel closed')));
    stream.on('error', (e: Error) =>
      this.fail(new QgaError('Closed', `the agent channel failed: ${e.message}`)),
    );
  }

  /**
   * Take `stream` (connected to the agent channel's host end) and sync with
   * the agent. The client owns the stream from here (close() destroys it).
   */
  static async over(stream: Duplex, options: QgaClientOptions = {}): Promise<QgaClient | QgaError> {
    const client = new QgaClient(stream, options);
    const synced = await client.sync(options.syncTimeoutMs ?? 3000);
    if (synced !== true) {
      client.close();
      return synced;
    }
    return client;
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Told once when the stream ends or the client is closed. */
  onClose(listener: (why: QgaError) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Run one command; its `return` value, or the agent's error as a value. */
  async execute(
    command: string,
    args?: Record<string, unknown>,
    timeoutMs = this.options.timeoutMs ?? 5000,
  ): Promise<unknown> {
    const reply = await this.send(command, args, timeoutMs);
    if (isQgaError(reply)) return reply;
    return toResult(command, reply);
  }

  /**
   * Several commands written at once (qemu-ga answers them in order), their
   * results in order: the way to many small reads in one round trip.
   */
  async executeAll(
    requests: readonly { command: string; args?: Record<string, unknown> }[],
    timeoutMs = this.options.timeoutMs ?? 5000,
  ): Promise<unknown[]> {
    if (this.closedWith) return requests.map(() => this.closedWith!);
    if (this.waiters.length + requests.length > MAX_PENDING)
      return requests.map(
        () => new QgaError('Busy', `more than ${MAX_PENDING} agent requests in flight`),
      );
    const replies = requests.map(({ command }) => this.expect(command, timeoutMs));
    this.stream.write(
      requests
        .map(({ command, args }) =>
          JSON.stringify(
            args === undefined ? { execute: command } : { execute: command, arguments: args },
          ),
        )
        .join('\n') + '\n',
    );
    const settled = await Promise.all(replies);
    return settled.map((r, i) => (isQgaError(r) ? r : toResult(requests[i]!.command, r)));
  }

  close(): void {
    this.fail(new QgaError('Closed', 'the agent client was closed'));
    this.stream.destroy();
  }

  // --------------------------------------------------------------- inside

  private send(
    command: string,
    args: Record<string, unknown> | undefined,
    timeoutMs: number,
  ): Promise<unknown> {
    if (this.closedWith) return Promise.resolve(this.closedWith);
    if (this.waiters.length >= MAX_PENDING)
      return Promise.resolve(
        new QgaError('Busy', `more than ${MAX_PENDING} agent requests in flight`),
      );
    const reply = this.expect(command, timeoutMs);
    this.stream.write(
      `${JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args })}\n`,
    );
    return reply;
  }

  /** A slot for the next reply in order. */
  private expect(command: string, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          // The stream's order is lost once a reply is missing: end the client.
          this.fail(
            new QgaError(
              'NoAnswer',
              `the guest agent did not answer ${command} within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  private sync(timeoutMs: number): Promise<true | QgaError> {
    this.syncId = randomInt(1, 2 ** 31);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.syncWaiter = null;
        resolve(
          new QgaError(
            'NoAnswer',
            `no guest agent answered guest-sync-delimited within ${timeoutMs} ms (is qemu-ga running in the guest?)`,
          ),
        );
      }, timeoutMs);
      this.syncWaiter = (r) => {
        clearTimeout(timer);
        this.syncWaiter = null;
        resolve(r);
      };
      // 0xFF first: it resets the agent's JSON parser whatever an earlier client left in it.
      this.stream.write(
        Buffer.concat([
          Buffer.from([SENTINEL]),
          Buffer.from(
            `${JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id: this.syncId } })}\n`,
          ),
        ]),
      );
    });
  }

  private onData(chunk: Buffer): void {
    let b = chunk;
    while (b.length > 0 && !this.closedWith) {
      if (!this.synced) {
        // Everything before the agent's 0xFF belongs to an earlier session.
        const at = b.indexOf(SENTINEL);
        if (at < 0) return;
        b = b.subarray(at + 1);
        this.synced = true;
        this.buffer = [];
        this.buffered = 0;
        continue;
      }
      const lf = b.indexOf(LF);
      if (lf < 0) {
        this.buffer.push(b);
        this.buffered += b.length;
        if (this.buffered > MAX_LINE)
          this.fail(new QgaError('BadReply', `an agent reply longer than ${MAX_LINE} bytes`));
        return;
      }
      this.buffer.push(b.subarray(0, lf));
      const line = Buffer.concat(this.buffer).toString('utf8').trim();
      this.buffer = [];
      this.buffered = 0;
      b = b.subarray(lf + 1);
      if (line !== '') this.onLine(line);
    }
  }

  private onLine(line: string): void {
    let reply: unknown;
    try {
      reply = JSON.parse(line);
    } catch {
      this.fail(
        new QgaError('BadReply', `the agent sent a line that is not JSON: ${line.slice(0, 80)}`),
      );
      return;
    }
    if (this.syncWaiter !== null) {
      // Until our guest-sync-delimited answers, replies are an earlier client's.
      const r = reply as { return?: unknown };
      if (r.return === this.syncId) this.syncWaiter(true);
      else this.synced = false; // a stale reply; the next 0xFF may still be ours
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter === undefined) return; // an unasked reply (a late answer after a restart): nobody waits
    clearTimeout(waiter.timer);
    waiter.resolve(reply);
  }

  private fail(why: QgaError): void {
    if (this.closedWith) return;
    this.closedWith = why;
    this.syncWaiter?.(why);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(why);
    }
    for (const l of this.closeListeners) l(why);
    this.closeListeners.clear();
  }
}

function toResult(command: string, reply: unknown): unknown {
  if (typeof reply !== 'object' || reply === null)
    return new QgaError('BadReply', `${command}: the agent answered ${JSON.stringify(reply)}`);
  if ('return' in reply) return (reply as { return: unknown }).return;
  const e = (reply as { error?: { class?: unknown; desc?: unknown } }).error;
  if (e !== undefined && typeof e.desc === 'string')
    return new QgaError('CommandFailed', e.desc, typeof e.class === 'string' ? e.class : null);
  return new QgaError(
    'BadReply',
    `${command}: the agent answered ${JSON.stringify(reply).slice(0, 80)}`,
  );
}
