/**
 * A host channel made of Node streams: a socket (one duplex), a FIFO pair
 * (one readable, one writable), or stdin/stdout. It turns stream events into
 * the calls a BackendEndpoint expects and keeps the write side bounded.
 *
 * Writes are bounded by the stream's own writableHighWaterMark (16 KiB for
 * a socket in Node 20): while the bytes not yet handed to the OS are under
 * it, write() takes a whole buffer (up to MAX_WHOLE_WRITE), as QEMU hands
 * the guest's whole buffer to the chardev, so one guest buffer stays one
 * write (and one capture record); once over it, write() takes nothing until
 * 'drain'. What waits is at most the high-water mark plus one buffer: a slow
 * host reader cannot grow the process. A write the OS took at once leaves
 * nothing queued, so the next buffer goes at once too (Node still emits
 * 'drain' after a write larger than the mark, but nothing waits for it).
 */
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { readIntoPool } from './pooled-reads.js';
import { bytesNotInKernel } from './unsent.js';

export interface StreamLinkEvents {
  /**
   * Bytes read. With `release` the chunk is a view of a buffer the socket
   * reads into again once release() ran (pooledReads): whoever holds the
   * bytes calls it when done with them.
   */
  data(chunk: Uint8Array, release?: () => void): void;
  /** The write side can take more. */
  drain(): void;
  /** The read side reached end-of-file. */
  end(): void;
  /** The link is gone (closed or failed); no more events follow. */
  gone(error: Error | null): void;
  /**
   * The OS refused a write (EPIPE: the peer closed). Given this handler, the
   * link does not let the error destroy the streams: what the peer sent
   * before it left is still in the kernel, and only reading it can deliver
   * or count it (QEMU: tcp_chr_write leaves the end to the read handler).
   * From then on write() takes nothing and `queued` is every byte the link
   * took that never reached the kernel, the failed write whole (Node does
   * not say how much of it the kernel took before the peer left).
   */
  writeFailed?(error: Error): void;
}

type WriteCallback = (error?: Error | null) => void;

interface WritableImpl {
  _write?: (chunk: unknown, encoding: unknown, cb: WriteCallback) => void;
  _writev?: (chunks: unknown, cb: WriteCallback) => void;
}

export interface StreamLinkOptions {
  input: Readable | null;
  output: Writable | null;
  events: StreamLinkEvents;
  /**
   * Destroy the streams on close (sockets, our FIFO fds). False for
   * process.stdin/stdout, which outlive the chardev.
   */
  owned: boolean;
  /**
   * When the input is a socket: read into reused buffers (pooled-reads.ts)
   * and pass each chunk with its release, where this Node allows it.
   */
  pooledReads?: boolean;
}

/** The largest buffer taken whole (a Linux guest writes at most 32 KiB at once). */
export const MAX_WHOLE_WRITE = 1024 * 1024;

export class StreamLink {
  private readonly input: Readable | null;
  private readonly output: Writable | null;
  private readonly events: StreamLinkEvents;
  private readonly owned: boolean;
  private isGone = false;
  /** Bytes lost to a refused write and everything queued behind it; null while writes work. */
  private failedUnsent: number | null = null;
  /**
   * Bytes handed to output.write() whose callback has not said they reached
   * the OS. Node empties writableLength before it reports a failed write, so
   * only our own count still knows, at the 'error', what the failure took.
   */
  private unconfirmed = 0;
  private readonly detachers: (() => void)[] = [];

  constructor(options: StreamLinkOptions) {
    this.input = options.input;
    this.output = options.output;
    this.events = options.events;
    this.owned = options.owned;
    const streams = new Set<Readable | Writable>();
    if (this.input !== null) {
      const input = this.input;
      // Kept in pooled mode too: bytes Node read before the switch come this way.
      this.listen(input, 'data', (chunk: Buffer) => this.events.data(chunk));
      this.listen(input, 'end', () => this.events.end());
      streams.add(input);
    }
    if (this.output !== null) {
      this.listen(this.output, 'drain', () => this.events.drain());
      streams.add(this.output);
    }
    const writeFailed = this.events.writeFailed;
    if (this.output !== null && writeFailed !== undefined) this.catchWriteErrors(writeFailed);
    for (const s of streams) {
      this.listen(s, 'error', (error: Error) => this.finish(error));
      this.listen(s, 'close', () => this.finish(null));
    }
    // Where this Node cannot, the 'data' listener above carries every read.
    if (options.pooledReads === true && this.input instanceof Socket) {
      readIntoPool(this.input, (chunk, release) => this.events.data(chunk, release));
    }
  }

  get gone(): boolean {
    return this.isGone;
  }

  /**
   * Take up to bytes.length bytes; returns how many (0 when the stream's
   * buffer is full). With `handover` the caller gave the array away and it
   * is written as it is; otherwise it is copied, since the caller's view
   * (guest memory) may change after we return. `release` hears of a
   * handed-over array once the stream has let go of it (its write callback:
   * the OS took it, or the write failed or was dropped).
   */
  write(bytes: Uint8Array, handover = false, release?: (bytes: Uint8Array) => void): number {
    const out = this.output;
    if (out === null || this.isGone || out.writableEnded || out.destroyed) return 0;
    if (this.failedUnsent !== null) return 0;
    if (this.room() <= 0) return 0;
    const n = Math.min(MAX_WHOLE_WRITE, bytes.length);
    this.unconfirmed += n;
    const whole = handover && n === bytes.length;
    const done = whole ? release : undefined;
    out.write(whole ? bytes : Buffer.from(bytes.subarray(0, n)), (error) => {
      if (error === null || error === undefined) this.unconfirmed -= n;
      done?.(bytes);
    });
    return n;
  }

  /**
   * Bytes write() took that the OS never confirmed, once the output itself
   * failed (EPIPE on a closed stdout): the failed write whole and every write
   * behind it. 0 while the output works: a failure of the input side or a
   * plain close loses nothing the output still flushes. Without wrapping the
   * stream (process.stdout is shared, so writeFailed is not used there) this
   * is the only way to count them.
   */
  get lostToOutputFailure(): number {
    const out = this.output;
    return out !== null && out.errored !== null ? this.unconfirmed : 0;
  }

  /** Bytes written and not yet handed to the OS (what closing the link now would lose). */
  get queued(): number {
    if (this.failedUnsent !== null) return this.failedUnsent;
    return this.output === null ? 0 : bytesNotInKernel(this.output);
  }

  /**
   * Bytes of writes not finished yet, the write in flight whole: what a
   * refused write now would count as lost (`queued` leaves out the part of
   * the write in flight the kernel already took).
   */
  get unfinished(): number {
    if (this.failedUnsent !== null) return this.failedUnsent;
    return this.output?.writableLength ?? 0;
  }

  /**
   * Wrap the output's write implementation so a refused write is reported
   * (once) instead of destroying the streams. At that callback Node's
   * writableLength still holds the failed write and every write behind it:
   * all of it is lost. The writes behind it fail too and are passed as done
   * (they are in the count already), so Node never destroys on them.
   */
  private catchWriteErrors(writeFailed: (error: Error) => void): void {
    const out = this.output as (Writable & WritableImpl) | null;
    if (out === null) return;
    const wrap =
      (cb: WriteCallback): WriteCallback =>
      (error) => {
        if (error === null || error === undefined || this.isGone) {
          cb(error);
          return;
        }
        if (this.failedUnsent === null) {
          this.failedUnsent = out.writableLength;
          writeFailed(error);
        }
        cb();
      };
    // Node passes the same callback to every write of a stream (its
    // state's onwrite): wrap it once, not once per write.
    let lastCb: WriteCallback | null = null;
    let lastWrapped: WriteCallback = () => {};
    const wrapped = (cb: WriteCallback): WriteCallback => {
      if (cb !== lastCb) {
        lastCb = cb;
        lastWrapped = wrap(cb);
      }
      return lastWrapped;
    };
    const write = out._write;
    if (typeof write === 'function') {
      out._write = (chunk, encoding, cb) => write.call(out, chunk, encoding, wrapped(cb));
    }
    const writev = out._writev;
    if (typeof writev === 'function') {
      out._writev = (chunks, cb) => writev.call(out, chunks, wrapped(cb));
    }
  }

  hasRoom(): boolean {
    return this.room() > 0;
  }

  pause(): void {
    this.input?.pause();
  }

  resume(): void {
    this.input?.resume();
  }

  /** Start the flow of 'data' events (a stream in paused mode starts here). */
  start(): void {
    this.input?.resume();
  }

  /** Close our side; 'gone' follows for owned streams. */
  close(): void {
    if (this.owned) {
      this.input?.destroy();
      this.output?.destroy();
    } else {
      this.input?.pause();
      this.finish(null);
    }
  }

  private room(): number {
    const out = this.output;
    if (out === null) return 0;
    return out.writableHighWaterMark - out.writableLength;
  }

  private finish(error: Error | null): void {
    if (this.isGone) return;
    this.isGone = true;
    if (!this.owned) for (const d of this.detachers) d();
    this.events.gone(error);
  }

  private listen<T extends unknown[]>(
    stream: Readable | Writable,
    event: string,
    listener: (...args: T) => void,
  ): void {
    const l = listener as (...args: unknown[]) => void;
    stream.on(event, l);
    this.detachers.push(() => stream.off(event, l));
  }
}
