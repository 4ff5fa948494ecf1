/**
 * Capture files that never fill the disk: dumpcap's ring buffer and stop
 * conditions for vmchan's pcapng writer.
 *
 *   -b filesize:N   switch to the next file before a file passes N kB (1 kB = 1000 bytes)
 *   -b duration:S   switch to the next file every S seconds
 *   -b files:N      keep only the newest N files (needs filesize or duration)
 *   -a filesize:N   stop when the current file would pass N kB
 *   -a duration:S   stop S seconds after the start
 *   -a packets:N    stop after N records
 *
 * With a ring buffer the files are named as dumpcap names them:
 * `<name>_<5-digit number>_<YYYYmmddHHMMSS>.<ext>`. Each file is whole on
 * its own (section header, every interface again, then its records), so
 * each opens in Wireshark alone. A file never passes the set size: a record
 * that would cross it opens the next file first (a single record larger than
 * the whole size still goes into a file of its own).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CaptureError } from './error.js';
import { PcapngWriter, type PcapngWriterOptions } from './pcapng-writer.js';
import type { CaptureInterface, CaptureRecord, CaptureSink } from './record.js';

export interface RingOptions {
  /** -b filesize, in bytes. */
  fileSize?: number;
  /** -b duration, in seconds. */
  fileDuration?: number;
  /** -b files. */
  files?: number;
  /** -a filesize, in bytes. */
  stopFileSize?: number;
  /** -a duration, in seconds. */
  stopDuration?: number;
  /** -a packets. */
  stopPackets?: number;
}

/** Parse dumpcap's `-b KEY:VALUE` and `-a KEY:VALUE` words; a one-line problem on bad input. */
export function parseRingOptions(
  ring: readonly string[],
  stop: readonly string[],
): RingOptions | string {
  const out: RingOptions = {};
  const num = (flag: string, word: string): number | string => {
    const m = /^([a-z]+):(\d+(?:\.\d+)?)$/.exec(word);
    if (!m) return `${flag} expects KEY:NUMBER (e.g. filesize:1000), got '${word}'`;
    const n = Number(m[2]);
    if (!(n > 0)) return `${flag} ${m[1]} must be above 0, got '${word}'`;
    return n;
  };
  for (const word of ring) {
    const n = num('-b', word);
    if (typeof n === 'string') return n;
    const key = word.split(':')[0];
    if (key === 'filesize') out.fileSize = Math.floor(n * 1000);
    else if (key === 'duration') out.fileDuration = n;
    else if (key === 'files') out.files = Math.floor(n);
    else return `-b knows filesize, duration and files, not '${key}'`;
  }
  for (const word of stop) {
    const n = num('-a', word);
    if (typeof n === 'string') return n;
    const key = word.split(':')[0];
    if (key === 'filesize') out.stopFileSize = Math.floor(n * 1000);
    else if (key === 'duration') out.stopDuration = n;
    else if (key === 'packets') out.stopPackets = Math.floor(n);
    else return `-a knows filesize, duration and packets, not '${key}'`;
  }
  if (out.files !== undefined && out.fileSize === undefined && out.fileDuration === undefined)
    return '-b files:N needs -b filesize:N or -b duration:S (when to switch files)';
  return out;
}

export function isRing(o: RingOptions): boolean {
  return o.fileSize !== undefined || o.fileDuration !== undefined;
}

const pad4 = (n: number): number => (n + 3) & ~3;

/** An upper bound of the bytes a record takes in a file (its block, plus a first interface block). */
export function blockBound(record: CaptureRecord): number {
  const text = record.kind === 'event' || record.kind === 'ring' ? record.text : '';
  const extra = record.kind === 'event' || record.kind === 'ring' ? 64 + 3 * text.length : 0;
  return 48 + pad4(record.bytes.length) + extra + 512;
}

function stamp(d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export interface RingWriterHooks {
  /** A stop condition was met (the writer is closed); reason as one line. */
  onStop?: (reason: string) => void;
  /** Clock in ms (tests); default Date.now. */
  clock?: () => number;
}

/** Where a ring of files stands before its next record: times in ms, the current file's size and records. */
export interface RingPosition {
  now: number;
  started: number;
  fileStarted: number;
  size: number;
  recordsInFile: number;
}

/**
 * What the next record needs first, as dumpcap decides it: a stop (its
 * `-a` word), a new file, or nothing. One rule for every ring writer, so a
 * file written from the shared encoding (shared-file.ts) rotates and stops
 * at exactly the records this writer does.
 */
export function beforeRecord(
  o: RingOptions,
  at: RingPosition,
  record: CaptureRecord,
): { stop: string } | 'rotate' | 'write' {
  if (o.stopDuration !== undefined && at.now - at.started >= o.stopDuration * 1000)
    return { stop: `-a duration:${o.stopDuration}` };
  const bound = blockBound(record);
  if (o.stopFileSize !== undefined && at.size + bound > o.stopFileSize)
    return { stop: `-a filesize:${o.stopFileSize / 1000}` };
  const bySize = o.fileSize !== undefined && at.recordsInFile > 0 && at.size + bound > o.fileSize;
  const byTime = o.fileDuration !== undefined && at.now - at.fileStarted >= o.fileDuration * 1000;
  return bySize || byTime ? 'rotate' : 'write';
}

/** The `-a duration` stop and the `-b duration` switch as timers (unref'd: they never keep the process up). */
export function ringTimers(
  o: RingOptions,
  stop: (reason: string) => void,
  rotate: () => void,
): NodeJS.Timeout[] {
  const timers: NodeJS.Timeout[] = [];
  if (o.stopDuration !== undefined) {
    const t = setTimeout(() => stop(`-a duration:${o.stopDuration}`), o.stopDuration * 1000);
    t.unref();
    timers.push(t);
  }
  if (o.fileDuration !== undefined) {
    const t = setInterval(rotate, o.fileDuration * 1000);
    t.unref();
    timers.push(t);
  }
  return timers;
}

/** `-b files:N`: delete the oldest files past N (kept is oldest first). */
export function pruneRing(kept: string[], files: number | undefined): void {
  while (files !== undefined && kept.length > files) fs.rmSync(kept.shift()!, { force: true });
}

export class RingCaptureWriter implements CaptureSink {
  private writer: PcapngWriter;
  private readonly interfaces = new Map<string, CaptureInterface>();
  private number = 1;
  private readonly kept: string[] = [];
  private readonly started: number;
  private fileStarted: number;
  private stopped = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly clock: () => number;
  /** Records written across all files. */
  records = 0;

  private constructor(
    private readonly base: string,
    private readonly options: RingOptions,
    private readonly writerOptions: PcapngWriterOptions,
    private readonly hooks: RingWriterHooks,
    first: PcapngWriter,
    firstPath: string,
  ) {
    this.clock = hooks.clock ?? Date.now;
    this.writer = first;
    this.kept.push(firstPath);
    this.started = this.fileStarted = this.clock();
    this.timers.push(
      ...ringTimers(
        options,
        (reason) => this.stop(reason),
        () => this.rotate(),
      ),
    );
  }

  static create(
    file: string,
    options: RingOptions,
    writerOptions: PcapngWriterOptions = {},
    hooks: RingWriterHooks = {},
  ): RingCaptureWriter | CaptureError {
    const clock = hooks.clock ?? Date.now;
    const first = isRing(options) ? ringName(file, 1, new Date(clock())) : file;
    const w = PcapngWriter.create(first, writerOptions);
    if (w instanceof CaptureError) return w;
    return new RingCaptureWriter(file, options, writerOptions, hooks, w, first);
  }

  /** The files written and still kept, oldest first. */
  get files(): readonly string[] {
    return this.kept;
  }

  /** Bytes of the current file (flushed or not). */
  get currentSize(): number {
    return this.writer.size;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  addInterface(iface: CaptureInterface): CaptureError | undefined {
    this.interfaces.set(`${iface.device}\u0000${iface.port}`, iface);
    if (this.stopped) return undefined;
    return this.writer.addInterface(iface);
  }

  write(record: CaptureRecord): CaptureError | undefined {
    if (this.stopped) return undefined;
    const next = beforeRecord(
      this.options,
      {
        now: this.clock(),
        started: this.started,
        fileStarted: this.fileStarted,
        size: this.writer.size,
        recordsInFile: this.writer.records,
      },
      record,
    );
    if (next !== 'write' && next !== 'rotate') {
      this.stop(next.stop);
      return undefined;
    }
    if (next === 'rotate') {
      const err = this.rotate();
      if (err) return err;
    }
    const err = this.writer.write(record);
    if (err) return err;
    this.records++;
    if (this.options.stopPackets !== undefined && this.records >= this.options.stopPackets)
      this.stop(`-a packets:${this.options.stopPackets}`);
    return undefined;
  }

  flush(): CaptureError | undefined {
    return this.stopped ? undefined : this.writer.flush();
  }

  close(): CaptureError | undefined {
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
    this.stopped = true;
    return this.writer.close();
  }

  private stop(reason: string): void {
    if (this.stopped) return;
    this.close();
    this.hooks.onStop?.(reason);
  }

  /** Close this file and open the next, with every interface again; drop files past -b files. */
  private rotate(): CaptureError | undefined {
    if (this.stopped || !isRing(this.options)) return undefined;
    if (this.writer.records === 0) return undefined;
    const closeErr = this.writer.close();
    if (closeErr) return closeErr;
    this.number++;
    const next = ringName(this.base, this.number, new Date(this.clock()));
    const w = PcapngWriter.create(next, this.writerOptions);
    if (w instanceof CaptureError) {
      this.stopped = true;
      return w;
    }
    this.writer = w;
    this.fileStarted = this.clock();
    for (const iface of this.interfaces.values()) w.addInterface(iface);
    this.kept.push(next);
    pruneRing(this.kept, this.options.files);
    return undefined;
  }
}

/** `dir/name_00001_20261207043100.pcapng`, dumpcap's ring file names. */
export function ringName(file: string, n: number, when: Date): string {
  const ext = path.extname(file);
  const stem = ext === '' ? file : file.slice(0, -ext.length);
  return `${stem}_${String(n).padStart(5, '0')}_${stamp(when)}${ext || '.pcapng'}`;
}
