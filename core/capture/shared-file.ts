/**
 * A capture file fed from the {@link LiveHub}'s encoding: the same pcapng
 * bytes the live clients get, written as the encoder hands them out, so a
 * record is encoded once whether it goes to a file, to Wireshark, or both.
 *
 * It keeps everything {@link RingCaptureWriter} does (ring-writer.ts):
 * dumpcap's ring of files (`-b filesize`, `-b duration`, `-b files`) and
 * stop conditions (`-a filesize`, `-a duration`, `-a packets`), decided per
 * record before its block is encoded, with the same size bound. Rotation
 * flushes the hub (the pending blocks belong to the old file), then starts
 * the next file with the hub's section header and interface blocks so far.
 * A stop detaches the file the same way. The bytes of a plain file are the
 * bytes a PcapngWriter with the same options writes for the same records.
 *
 * A file may keep only some of the records (`keeps`: the app's port
 * switches, while Wireshark takes every port): the hub then hands it the
 * blocks of those records (and every interface block), and the records it
 * refuses are neither counted nor weighed against its limits.
 */
import { CaptureError } from './error.js';
import type { EncodedConsumer, LiveHub } from './live-server.js';
import { createCaptureOutput, type FdOutput } from './pcapng-writer.js';
import type { CaptureRecord } from './record.js';
import {
  beforeRecord,
  isRing,
  pruneRing,
  ringName,
  ringTimers,
  type RingOptions,
} from './ring-writer.js';

export interface SharedFileHooks {
  /** A stop condition was met (the file is closed); reason as one line. */
  onStop?: (reason: string) => void;
  /** The file could not be written (a full disk); it is closed and detached. */
  onError?: (err: CaptureError) => void;
  /** Clock in ms (tests); default Date.now. */
  clock?: () => number;
  /** Which records go into the file (default: every one); asked once per record. */
  keeps?: (record: CaptureRecord) => boolean;
}

export class SharedCaptureFile implements EncodedConsumer {
  private out: FdOutput;
  private detach: () => void = () => {};
  private number = 1;
  private readonly kept: string[] = [];
  private readonly started: number;
  private fileStarted: number;
  private stopped = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly clock: () => number;
  /** Bytes handed to the current file. */
  private written = 0;
  /** Records in the current file. */
  private inFile = 0;
  /** Records written across all files. */
  records = 0;
  /** The first write error, if any. */
  failure: CaptureError | undefined;
  /** Set only with `keeps`: the hub then asks it per record (a file without one takes whole chunks). */
  readonly wants?: (record: CaptureRecord) => boolean;

  private constructor(
    private readonly hub: LiveHub,
    private readonly base: string,
    private readonly options: RingOptions,
    private readonly hooks: SharedFileHooks,
    first: FdOutput,
    firstPath: string,
  ) {
    this.clock = hooks.clock ?? Date.now;
    if (hooks.keeps !== undefined) this.wants = hooks.keeps;
    this.out = first;
    this.kept.push(firstPath);
    this.started = this.fileStarted = this.clock();
  }

  /** Create `file` (or the first file of a ring) and feed it from `hub` from now on. */
  static open(
    hub: LiveHub,
    file: string,
    options: RingOptions = {},
    hooks: SharedFileHooks = {},
  ): SharedCaptureFile | CaptureError {
    const clock = hooks.clock ?? Date.now;
    const first = isRing(options) ? ringName(file, 1, new Date(clock())) : file;
    const out = createCaptureOutput(first);
    if (out instanceof CaptureError) return out;
    const f = new SharedCaptureFile(hub, file, options, hooks, out, first);
    f.detach = hub.attachFile(f);
    if (f.failure) return f.failure;
    f.startTimers();
    return f;
  }

  /** The files written and still kept, oldest first. */
  get files(): readonly string[] {
    return this.kept;
  }

  /** Bytes of the current file, flushed or pending in the hub. */
  get currentSize(): number {
    return this.stopped ? this.written : this.written + this.hub.pendingFor(this);
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  before(record: CaptureRecord): void {
    if (this.stopped) return;
    const next = beforeRecord(
      this.options,
      {
        now: this.clock(),
        started: this.started,
        fileStarted: this.fileStarted,
        size: this.currentSize,
        recordsInFile: this.inFile,
      },
      record,
    );
    if (next === 'rotate') this.rotate();
    else if (next !== 'write') this.stop(next.stop);
  }

  after(): void {
    if (this.stopped) return;
    this.inFile++;
    this.records++;
    const max = this.options.stopPackets;
    if (max !== undefined && this.records >= max) this.stop(`-a packets:${max}`);
  }

  take(chunk: Uint8Array): void {
    if (this.stopped || this.failure) return;
    const err = this.out.write(chunk);
    this.written += chunk.length;
    if (err) this.fail(err);
  }

  /** Flush what the hub holds for this file, detach, and close the file. */
  close(): CaptureError | undefined {
    if (this.stopped) return this.failure;
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
    this.detach();
    this.stopped = true;
    const err = this.out.close();
    return this.failure ?? err;
  }

  private fail(err: CaptureError): void {
    this.failure = err;
    // Detached later in this turn: the hub may be handing out a chunk right now.
    queueMicrotask(() => {
      this.close();
      this.hooks.onError?.(err);
    });
  }

  private stop(reason: string): void {
    if (this.stopped) return;
    this.close();
    this.hooks.onStop?.(reason);
  }

  private startTimers(): void {
    this.timers.push(
      ...ringTimers(
        this.options,
        (reason) => this.stop(reason),
        () => this.rotate(),
      ),
    );
  }

  /** Hand the old file its pending blocks, open the next with the header and interfaces; drop files past -b files. */
  private rotate(): void {
    if (this.stopped || !isRing(this.options) || this.inFile === 0) return;
    this.hub.flush();
    if (this.failure) return;
    const closeErr = this.out.close();
    if (closeErr) return this.fail(closeErr);
    this.number++;
    const next = ringName(this.base, this.number, new Date(this.clock()));
    const out = createCaptureOutput(next);
    if (out instanceof CaptureError) return this.fail(out);
    this.out = out;
    this.written = 0;
    this.inFile = 0;
    this.fileStarted = this.clock();
    this.take(this.hub.preambleBytes);
    this.kept.push(next);
    pruneRing(this.kept, this.options.files);
  }
}
