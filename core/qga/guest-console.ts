/**
 * A console on the guest side of a port, through the guest's own agent:
 * qemu-ga opens /dev/virtio-ports/NAME (guest-file-open), vmchan reads with
 * guest-file-read and writes with guest-file-write + guest-file-flush, and
 * closes with guest-file-close. The guest sees an ordinary program holding
 * the port open (PORT_OPEN 1 to the host, VSERPORT_CHANGE on QEMU's side).
 *
 * What qemu-ga 7.2 makes of a port, and how this reads without losing bytes
 * (the same rules core/qga's simulated agent follows):
 * - the handle is a stdio FILE switched to O_NONBLOCK: fread() loops read(2)
 *   until it has `count` bytes, and a read that finds nothing fails with
 *   EAGAIN; qemu-ga then answers an error and the bytes fread had gathered
 *   are lost. So every read asks for ONE byte: fread then issues at most one
 *   read(2), which fills the stdio buffer (up to 4096 bytes) and hands back
 *   one, or finds nothing and fails having taken nothing. The next reads
 *   come out of the stdio buffer. To make up for one byte a request, reads
 *   go out in batches (written at once, answered in order) that double while
 *   every read brings a byte, up to `maxBatch`;
 * - switching the FILE from reading to writing discards what is left in the
 *   stdio buffer, and a write straight after a read fails ("failed to seek
 *   file: Illegal seek", a port cannot seek): before a write the console
 *   reads until a read finds nothing (the buffer is empty), flushes (qemu-ga
 *   forgets it was reading), then writes and flushes (the FILE is fully
 *   buffered: without the flush the bytes would wait in qemu-ga);
 * - a read that finds the host side disconnected answers eof (count 0).
 *
 * Bounded: typed bytes wait in a queue of at most INPUT_QUEUE bytes (more is
 * refused, never dropped silently); at most `maxBatch` reads are in flight;
 * polls are `pollMs` apart while the port is quiet. Everything that goes
 * wrong ends the console with a one-line reason (onEnd); nothing throws.
 */
import { isQgaError, QgaError, type QgaClient } from './client.js';

/** Bytes typed into the console and not yet written into the guest, at most. */
export const INPUT_QUEUE = 64 * 1024;
/** One guest-file-write, at most: the stdio buffer's size, so fwrite never writes around it. */
const WRITE_CHUNK = 4096;
const POLL_MIN_MS = 10;
const POLL_MAX_MS = 5000;
const BATCH_MAX = 256;

export type GuestConsoleMode = 'r+' | 'r' | 'w';

export interface GuestConsoleOptions {
  /** fopen mode: r+ (read and write, default), r (read only), w (write only). */
  mode?: GuestConsoleMode;
  /** Time between polls while the port is quiet (default 100 ms; 10..5000). */
  pollMs?: number;
  /** Reads in flight at most (default 64; 1..256). */
  maxBatch?: number;
  /** Time allowed for each agent round trip (default 5 s). */
  timeoutMs?: number;
}

/** qemu-ga's words for a read that found nothing (it reports errno only as strerror). */
const NOTHING_QUEUED = /Resource temporarily unavailable$/;

interface ReadReply {
  count: number;
  'buf-b64'?: string;
  eof: boolean;
}

function isReadReply(x: unknown): x is ReadReply {
  return typeof x === 'object' && x !== null && typeof (x as ReadReply).count === 'number';
}

export class GuestConsole {
  private readonly dataListeners = new Set<(bytes: Uint8Array) => void>();
  private readonly endListeners = new Set<(reason: string) => void>();
  private queue: Uint8Array[] = [];
  private queued = 0;
  /** Why the console stops (set at once: the loop ends on it). */
  private ended: string | null = null;
  /** Why it ended, once the listeners were told (after guest-file-close, on close()). */
  private endedWith: string | null = null;
  private wake: (() => void) | null = null;
  /** The stdio buffer holds nothing unread (a read found nothing since the last byte). */
  private drained = true;
  /** qemu-ga's handle is in its reading state (a flush clears it). */
  private reading = false;
  private batch = 1;
  private readonly loop: Promise<void>;
  /** Bytes read from the guest and written into it, for the screens. */
  readonly stats = { read: 0, written: 0, polls: 0 };

  private constructor(
    private readonly client: QgaClient,
    readonly path: string,
    readonly handle: number,
    readonly mode: GuestConsoleMode,
    private readonly pollMs: number,
    private readonly maxBatch: number,
    private readonly timeoutMs: number,
  ) {
    client.onClose((why) => this.end(why.message));
    this.loop = this.run();
  }

  /** guest-file-open `path`; the console, or the agent's error. */
  static async open(
    client: QgaClient,
    path: string,
    options: GuestConsoleOptions = {},
  ): Promise<GuestConsole | QgaError> {
    const mode = options.mode ?? 'r+';
    const timeoutMs = options.timeoutMs ?? 5000;
    const handle = await client.execute('guest-file-open', { path, mode }, timeoutMs);
    if (isQgaError(handle)) return handle;
    if (typeof handle !== 'number')
      return new QgaError('BadReply', `guest-file-open answered ${JSON.stringify(handle)}`);
    const clamp = (v: number, lo: number, hi: number): number =>
      Math.min(hi, Math.max(lo, Math.floor(v)));
    return new GuestConsole(
      client,
      path,
      handle,
      mode,
      clamp(options.pollMs ?? 100, POLL_MIN_MS, POLL_MAX_MS),
      clamp(options.maxBatch ?? 64, 1, BATCH_MAX),
      timeoutMs,
    );
  }

  get open(): boolean {
    return this.ended === null;
  }

  /** Bytes typed and not yet in the guest. */
  get pending(): number {
    return this.queued;
  }

  onData(listener: (bytes: Uint8Array) => void): () => void {
    this.dataListeners.add(listener);
    return () => this.dataListeners.delete(listener);
  }

  /** Told once, with why, when the console ends (close() included). */
  onEnd(listener: (reason: string) => void): () => void {
    if (this.endedWith !== null) {
      listener(this.endedWith);
      return () => {};
    }
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }

  /** Queue bytes for the guest side; the bytes now queued, or why not. */
  write(bytes: Uint8Array): number | string {
    if (this.ended !== null) return `the guest console on ${this.path} has ended: ${this.ended}`;
    if (this.mode === 'r') return `${this.path} is open read-only (mode r)`;
    if (this.queued + bytes.length > INPUT_QUEUE)
      return `the guest is not taking bytes yet (${this.queued} queued, at most ${INPUT_QUEUE})`;
    if (bytes.length === 0) return this.queued;
    this.queue.push(bytes.slice());
    this.queued += bytes.length;
    this.wake?.();
    return this.queued;
  }

  /**
   * guest-file-close (the guest closes the port), then onEnd; the client
   * stays the caller's.
   */
  async close(): Promise<void> {
    if (this.ended !== null) {
      await this.loop;
      return;
    }
    this.ended = 'closed';
    this.wake?.();
    await this.loop;
    let reason = 'closed';
    if (!this.client.closed) {
      const r = await this.client.execute(
        'guest-file-close',
        { handle: this.handle },
        this.timeoutMs,
      );
      if (isQgaError(r)) reason = `closed; guest-file-close: ${r.message}`;
    }
    this.notifyEnd(reason);
  }

  // --------------------------------------------------------------- loop

  private end(reason: string): void {
    if (this.ended !== null) return;
    this.ended = reason;
    this.wake?.();
    this.notifyEnd(reason);
  }

  private notifyEnd(reason: string): void {
    if (this.endedWith !== null) return;
    this.endedWith = reason;
    for (const l of this.endListeners) l(reason);
    this.endListeners.clear();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }

  private async run(): Promise<void> {
    while (this.ended === null) {
      const readable = this.mode !== 'w';
      if (this.queued > 0 && (!readable || this.drained)) {
        const e = await this.writeQueued();
        if (e !== null) return this.end(e);
        continue;
      }
      if (!readable) {
        await this.sleep(POLL_MAX_MS);
        continue;
      }
      const full = await this.readBatch();
      if (typeof full === 'string') return this.end(full);
      // A quiet port is polled every pollMs; a busy one (or one owing a write) at once.
      if (!full && this.queued === 0) await this.sleep(this.pollMs);
    }
  }

  /** One batch of one-byte reads; true when every read brought a byte, or why it failed. */
  private async readBatch(): Promise<boolean | string> {
    const n = this.batch;
    this.stats.polls++;
    const replies = await this.client.executeAll(
      Array.from({ length: n }, () => ({
        command: 'guest-file-read',
        args: { handle: this.handle, count: 1 },
      })),
      this.timeoutMs,
    );
    this.reading = true;
    const got: number[] = [];
    let last: 'byte' | 'none' = 'none';
    for (const r of replies) {
      if (isQgaError(r)) {
        if (r.kind === 'CommandFailed' && NOTHING_QUEUED.test(r.message)) {
          last = 'none';
          continue;
        }
        this.emit(got);
        return `guest-file-read ${this.path}: ${r.message}`;
      }
      if (!isReadReply(r)) {
        this.emit(got);
        return `guest-file-read ${this.path}: an unexpected reply ${JSON.stringify(r).slice(0, 80)}`;
      }
      if (r.count > 0 && r['buf-b64'] !== undefined) {
        for (const b of Buffer.from(r['buf-b64'], 'base64')) got.push(b);
        last = 'byte';
      } else last = 'none'; // eof: the host side is not connected; nothing is buffered
    }
    this.emit(got);
    this.drained = last === 'none';
    const full = got.length === n;
    this.batch = full ? Math.min(this.maxBatch, n * 2) : Math.max(1, Math.min(n, got.length * 2));
    return full;
  }

  private emit(bytes: number[]): void {
    if (bytes.length === 0) return;
    const chunk = Uint8Array.from(bytes);
    this.stats.read += chunk.length;
    for (const l of this.dataListeners) l(chunk);
  }

  /** Write the head of the queue: [flush if reading], write, flush. Null, or why it failed. */
  private async writeQueued(): Promise<string | null> {
    const chunk = this.takeChunk();
    const requests: { command: string; args: Record<string, unknown> }[] = [];
    if (this.reading) requests.push({ command: 'guest-file-flush', args: { handle: this.handle } });
    requests.push(
      {
        command: 'guest-file-write',
        args: { handle: this.handle, 'buf-b64': Buffer.from(chunk).toString('base64') },
      },
      { command: 'guest-file-flush', args: { handle: this.handle } },
    );
    const replies = await this.client.executeAll(requests, this.timeoutMs);
    this.reading = false;
    for (const [i, r] of replies.entries()) {
      if (isQgaError(r))
        return `${requests[i]!.command} ${this.path}: ${r.message} (${chunk.length} bytes not written)`;
    }
    this.stats.written += chunk.length;
    return null;
  }

  private takeChunk(): Uint8Array {
    const parts: Uint8Array[] = [];
    let n = 0;
    while (this.queue.length > 0 && n < WRITE_CHUNK) {
      const head = this.queue[0]!;
      const want = WRITE_CHUNK - n;
      if (head.length <= want) {
        parts.push(head);
        n += head.length;
        this.queue.shift();
      } else {
        parts.push(head.subarray(0, want));
        this.queue[0] = head.subarray(want);
        n += want;
      }
    }
    this.queued -= n;
    return Buffer.concat(parts);
  }
}
