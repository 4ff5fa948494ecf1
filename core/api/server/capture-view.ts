/**
 * The service side of the capture view: one capture file open at a time
 * through CaptureReader (an index of 20 bytes per record in memory, payloads
 * on disk), answering the list's windows of rows, one record's decoded
 * fields and bytes, follow stream, and saves.
 *
 * A filter runs once over the index (`reader.select`) into a Uint32Array of
 * matching record numbers, cached per filter text (a few, least recently
 * used first out); a window of a filtered list is a slice of that array.
 * When the file grows (a live capture followed with `tick`), cached
 * selections are extended over the new records only.
 *
 * The scan runs in slices of SCAN_CHUNK records with a turn of the event
 * loop between them, so a filter over ten million records never holds up
 * the service: the first slice is tested at once, the rest in the
 * background, and `rows` answers with what is matched so far and how far
 * the scan got (`scanning`). One scan runs at a time: asking for another
 * filter (or none) stops it where it is, and its selection, cached with
 * what it tested, goes on from there when its filter is asked for again.
 */
import * as fs from 'node:fs';
import { CaptureError } from '../../capture/error.js';
import { parseFilter, type Filter } from '../../capture/filter.js';
import {
  followCapture,
  followHex,
  followRaw,
  followRuns,
  type FollowStream,
  type PortSelector,
} from '../../capture/follow.js';
import {
  directionArrow,
  hexDump,
  portColumn,
  printable,
  recordSummary,
  protocolColumn,
  fieldText,
} from '../../capture/format.js';
import { findInStream } from '../../capture/follow-find.js';
import { openCapture, type CaptureReader } from '../../capture/pcapng-reader.js';
import { nonRegularAt } from '../../capture/regular-file.js';
import { BLOCK_EPB } from '../../capture/pcapng-writer.js';
import { decodePayload } from '../../capture/protocols.js';
import type { CaptureRecord } from '../../capture/record.js';
import {
  MAX_DETAIL_BYTES,
  MAX_FIND_MATCHES,
  MAX_FOLLOW_BYTES,
  MAX_IO_BUCKETS,
  MAX_SORTED_ROWS,
  type SortColumn,
  type FollowFindResult,
  type IoGraph,
  type CaptureField,
  type CaptureListRow,
  type CaptureRecordDetail,
  type CaptureRows,
  type CaptureViewState,
  type FollowResult,
  type FollowRun,
} from '../contract/capture-contract.js';
import { fail, ok, type Command, type Result } from '../contract/contract.js';

const BLOCK_PB = 0x00000002;
const BLOCK_SPB = 0x00000003;
/** Selections kept (per filter text). */
const CACHED_FILTERS = 8;
/** Records a filter tests before it yields to the event loop. */
export const SCAN_CHUNK = 256 * 1024;

/** An error for the face: the kind of the contract and one line. */
export interface ViewError {
  kind: 'NotFound' | 'InvalidRequest' | 'IoError' | 'Refused';
  message: string;
}

export function isViewError(v: unknown): v is ViewError {
  return typeof v === 'object' && v !== null && 'kind' in v && 'message' in v && !('ok' in v);
}

interface Selection {
  filter: Filter;
  /** Matching record numbers in [0, length); room to grow after. */
  buffer: Uint32Array;
  length: number;
  /** Records [0, scanned) have been tested. */
  scanned: number;
}

/** The scan running in the background (at most one). */
interface Scan {
  selection: Selection;
  stopped: boolean;
  /** Settles when the scan reached the end of the capture or was stopped. */
  done: Promise<void>;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class CaptureView {
  private readonly selections = new Map<string, Selection>();
  private scan: Scan | null = null;
  private closed = false;

  private constructor(
    readonly reader: CaptureReader,
    private readonly chunk: number,
  ) {}

  /** Open a capture; `chunk`: records a filter tests between turns of the event loop. */
  static async open(path: string, chunk = SCAN_CHUNK): Promise<CaptureView | ViewError> {
    const reader = await openCapture(path);
    if (reader instanceof CaptureError) return { kind: 'IoError', message: reader.message };
    return new CaptureView(reader, Math.max(1, Math.floor(chunk)));
  }

  get path(): string {
    return this.reader.path;
  }

  get count(): number {
    return this.reader.count;
  }

  state(livePath: string | null): CaptureViewState {
    return { path: this.path, records: this.count, live: livePath === this.path };
  }

  close(): void {
    this.closed = true;
    this.stopScan();
    this.reader.close();
    this.selections.clear();
  }

  /** The filter scanning in the background now, if any (tests). */
  get scanningFilter(): string | null {
    if (this.scan === null) return null;
    for (const [key, sel] of this.selections) if (sel === this.scan.selection) return key;
    return null;
  }

  /**
   * Index what was appended to the file since; returns whether the record
   * count moved. A block the writer has not finished yet is left for a later
   * call (the reader starts again at it), so the count follows the file.
   */
  refresh(): boolean {
    const r = this.reader.refresh();
    return typeof r === 'number' && r > 0;
  }

  /**
   * The cached selection of a filter (made, untested, the first time), or
   * null for no filter (every record). It becomes the most recently used.
   */
  private selection(text: string | undefined): Selection | null | ViewError {
    const key = (text ?? '').trim();
    if (key === '') return null;
    let sel = this.selections.get(key);
    if (sel === undefined) {
      const filter = parseFilter(key);
      if (!('test' in filter)) return { kind: 'InvalidRequest', message: filter.toString() };
      sel = { filter, buffer: new Uint32Array(1024), length: 0, scanned: 0 };
    } else {
      this.selections.delete(key); // re-inserted below: most recently used last
    }
    this.selections.set(key, sel);
    while (this.selections.size > CACHED_FILTERS) {
      const oldest = this.selections.keys().next().value as string;
      if (this.scan?.selection === this.selections.get(oldest)) this.stopScan();
      this.selections.delete(oldest);
    }
    return sel;
  }

  /** Test records [scanned, upTo) of a selection (one slice: synchronous). */
  private extend(sel: Selection, upTo: number): void {
    const to = Math.min(upTo, this.reader.count);
    if (sel.scanned >= to) return;
    const more = this.reader.select(sel.filter.test, sel.scanned, to);
    if (sel.length + more.length > sel.buffer.length) {
      let size = sel.buffer.length * 2;
      while (size < sel.length + more.length) size *= 2;
      const bigger = new Uint32Array(size);
      bigger.set(sel.buffer.subarray(0, sel.length));
      sel.buffer = bigger;
    }
    sel.buffer.set(more, sel.length);
    sel.length += more.length;
    sel.scanned = to;
  }

  private stopScan(): void {
    if (this.scan !== null) this.scan.stopped = true;
    this.scan = null;
  }

  /** Scan the rest of a selection in the background, a slice per turn (stopping any other scan). */
  private scanOn(sel: Selection): Scan {
    if (this.scan?.selection === sel) return this.scan;
    this.stopScan();
    const scan: Scan = { selection: sel, stopped: false, done: Promise.resolve() };
    scan.done = (async () => {
      while (!scan.stopped && !this.closed && sel.scanned < this.reader.count) {
        await nextTurn();
        if (scan.stopped || this.closed) break;
        this.extend(sel, sel.scanned + this.chunk);
      }
      if (this.scan === scan) this.scan = null;
    })();
    this.scan = scan;
    return scan;
  }

  /**
   * The records a filter matched so far, starting its scan when needed:
   * the first slice at once, the rest in the background. Null: no filter.
   */
  private known(text: string | undefined): Selection | null | ViewError {
    const sel = this.selection(text);
    if (sel === null || isViewError(sel)) {
      this.stopScan(); // the filter changed
      return sel;
    }
    if (this.scan?.selection !== sel) {
      this.stopScan(); // the filter changed
      // The first slice now (a small filter or a grown file is done with it); the rest later.
      this.extend(sel, sel.scanned + this.chunk);
      if (sel.scanned < this.reader.count) this.scanOn(sel);
    }
    return sel;
  }

  /**
   * Every record number (0-based) a filter matches, null for no filter, the
   * scan run to the end at once (it holds the event loop: `selectAll` and
   * `rows` do not).
   */
  select(text: string | undefined): Uint32Array | null | ViewError {
    const sel = this.selection(text);
    if (sel === null || isViewError(sel)) return sel;
    this.extend(sel, this.reader.count);
    return sel.buffer.subarray(0, sel.length);
  }

  /** Every record number (0-based) a filter matches, the scan run to the end in slices; null: no filter. */
  async selectAll(text: string | undefined): Promise<Uint32Array | null | ViewError> {
    const sel = this.selection(text);
    if (sel === null || isViewError(sel)) return sel;
    while (sel.scanned < this.reader.count) {
      if (this.closed) return { kind: 'Refused', message: 'the capture was closed' };
      this.extend(sel, sel.scanned + this.chunk);
      if (sel.scanned < this.reader.count) await nextTurn();
    }
    return sel.buffer.subarray(0, sel.length);
  }

  /**
   * The order of a column sort: positions of the matched list, sorted by the
   * column (ties by number), cached until the list grows or the sort changes.
   */
  private sorted: { key: string; matched: number; order: Uint32Array } | null = null;

  private orderBy(
    matches: Uint32Array | null,
    matched: number,
    filter: string,
    column: SortColumn,
  ): Uint32Array | ViewError {
    const key = `${filter}\u0000${column}`;
    if (this.sorted?.key === key && this.sorted.matched === matched) return this.sorted.order;
    if (matched > MAX_SORTED_ROWS)
      return {
        kind: 'Refused',
        message: `sorting by ${column} orders at most ${MAX_SORTED_ROWS.toLocaleString('en')} records; this list has ${matched.toLocaleString('en')}: filter it first (number and time sort any size)`,
      };
    const at = (i: number): number => (matches === null ? i : matches[i]!);
    const keyOf = (i: number): string | number => {
      const n = at(i);
      switch (column) {
        case 'port':
          return this.reader.interfaceOf(n).label;
        case 'dir':
          return this.reader.direction(n) ?? '';
        case 'kind':
          return this.reader.kind(n);
        case 'length':
          return this.reader.length(n);
        default:
          return n;
      }
    };
    const keys = Array.from({ length: matched }, (_, i) => keyOf(i));
    const order = Uint32Array.from({ length: matched }, (_, i) => i).sort((a, b) => {
      const ka = keys[a]!;
      const kb = keys[b]!;
      return ka < kb ? -1 : ka > kb ? 1 : a - b;
    });
    this.sorted = { key, matched, order };
    return order;
  }

  /** Positions [from, from+count) of the list a filter makes, in the order asked. */
  rows(
    from: number,
    count: number,
    filter: string | undefined,
    sort?: { column: SortColumn; descending: boolean },
  ): CaptureRows | ViewError {
    const sel = this.known(filter);
    if (isViewError(sel)) return sel;
    const matches = sel === null ? null : sel.buffer.subarray(0, sel.length);
    const matched = matches === null ? this.reader.count : matches.length;
    const end = Math.min(matched, from + count);
    const byColumn = sort !== undefined && sort.column !== 'number' && sort.column !== 'time';
    const order = byColumn
      ? this.orderBy(matches, matched, (filter ?? '').trim(), sort.column)
      : null;
    if (isViewError(order)) return order;
    const rows: CaptureListRow[] = [];
    for (let k = from; k < end; k++) {
      const j = sort?.descending ? matched - 1 - k : k;
      const i = order === null ? j : order[j]!;
      const n = matches === null ? i : matches[i]!;
      const rec = this.reader.record(n);
      if (rec instanceof CaptureError) return { kind: 'IoError', message: rec.message };
      rows.push({
        number: n + 1,
        rel: this.reader.relativeSeconds(n),
        kind: rec.kind,
        port: portColumn(rec),
        direction: rec.direction ?? null,
        length: rec.length,
        summary: recordSummary(rec),
        protocol: protocolColumn(rec),
      });
    }
    return {
      path: this.path,
      total: this.reader.count,
      matched,
      filter: (filter ?? '').trim(),
      from,
      rows,
      scanning:
        sel !== null && sel.scanned < this.reader.count
          ? { scanned: sel.scanned, records: this.reader.count }
          : null,
    };
  }

  /** Record `number` (1-based) with its decoded fields and bytes. */
  detail(number: number): CaptureRecordDetail | ViewError {
    const n = number - 1;
    if (n >= this.reader.count) {
      return {
        kind: 'NotFound',
        message: `no record ${number}: the capture has ${this.reader.count}`,
      };
    }
    const rec = this.reader.record(n);
    if (rec instanceof CaptureError) return { kind: 'IoError', message: rec.message };
    const about = this.reader.interfaceOf(n);
    const rel = this.reader.relativeSeconds(n);
    const shown = rec.bytes.subarray(0, MAX_DETAIL_BYTES);
    return {
      number,
      kind: rec.kind,
      device: rec.device,
      port: rec.port ?? null,
      portLabel: rec.port === undefined && rec.portName === undefined ? null : portColumn(rec),
      direction: rec.direction ?? null,
      rel,
      timeNs: rec.time.toString(),
      length: rec.length,
      summary: recordSummary(rec),
      fields: fieldsOf(number, rec, rel, about.label),
      hex: hexDump(shown),
      bytes: Buffer.from(shown.buffer, shown.byteOffset, shown.byteLength).toString('base64'),
      captured: rec.bytes.length,
      hexTruncated: rec.bytes.length > shown.length,
      decoded: decodedTree(rec),
    };
  }

  private stream(device: string | undefined, port: number | string): FollowStream | ViewError {
    const sel: PortSelector = device === undefined ? { port } : { device, port };
    const s = followCapture(this.reader, sel);
    if (s instanceof CaptureError)
      return { kind: s.kind === 'NoSuchPort' ? 'NotFound' : 'IoError', message: s.message };
    return s;
  }

  /** A port's conversation for display (cut at MAX_FOLLOW_BYTES). */
  follow(device: string | undefined, port: number | string): FollowResult | ViewError {
    const s = this.stream(device, port);
    if (isViewError(s)) return s;
    let budget = MAX_FOLLOW_BYTES;
    let cut = false;
    const kept: FollowStream = { ...s, segments: [], hostToGuest: 0, guestToHost: 0 };
    for (const seg of s.segments) {
      if (seg.bytes.length > budget) {
        cut = true;
        break;
      }
      budget -= seg.bytes.length;
      kept.segments.push(seg);
      if (seg.direction === 'host-to-guest') kept.hostToGuest += seg.bytes.length;
      else kept.guestToHost += seg.bytes.length;
    }
    const runs: FollowRun[] = followRuns(kept).map((r) => ({
      direction: r.direction,
      text: followTextOf(r.bytes),
      bytes: r.bytes.length,
    }));
    return {
      label: s.label,
      device: s.device,
      port: s.port ?? null,
      hostToGuest: s.hostToGuest,
      guestToHost: s.guestToHost,
      segments: s.segments.length,
      runs,
      hex: followHex(kept),
      truncated: cut || s.truncated,
    };
  }

  /** Find in Follow stream (core/capture/follow-find.ts), record numbers 1-based. */
  findInFollow(
    device: string | undefined,
    port: number | string,
    text: string,
    direction: 'host-to-guest' | 'guest-to-host' | undefined,
  ): FollowFindResult | ViewError {
    const s = this.stream(device, port);
    if (isViewError(s)) return s;
    const found = findInStream(s, new TextEncoder().encode(text), MAX_FIND_MATCHES, direction);
    return {
      matches: found.matches.map((m) => ({ ...m, records: m.records.map((r) => r + 1) })),
      more: found.more,
    };
  }

  /**
   * Wireshark's IO Graph over the file: per interval from the first record,
   * the bytes (record lengths) or the records each filter matches. The
   * filters run in slices (selectAll), so a big capture never holds the
   * service.
   */
  async ioGraph(
    interval: number,
    metric: 'bytes' | 'records',
    filters: readonly string[],
  ): Promise<IoGraph | ViewError> {
    const n = this.reader.count;
    const span = n === 0 ? 0 : this.reader.relativeSeconds(n - 1);
    let step = interval;
    if (span / step >= MAX_IO_BUCKETS) step = span / (MAX_IO_BUCKETS - 1);
    const buckets = n === 0 ? 0 : Math.floor(span / step) + 1;
    const series: IoGraph['series'] = [];
    for (const filter of filters) {
      const matches = await this.selectAll(filter);
      if (isViewError(matches)) return matches;
      const values = new Array<number>(buckets).fill(0);
      const count = matches === null ? n : matches.length;
      let total = 0;
      for (let i = 0; i < count; i++) {
        const r = matches === null ? i : matches[i]!;
        const b = Math.min(buckets - 1, Math.floor(this.reader.relativeSeconds(r) / step));
        const v = metric === 'records' ? 1 : this.reader.length(r);
        values[b]! += v;
        total += v;
      }
      series.push({ filter: filter.trim(), values, total });
    }
    return { interval: step, metric, buckets, series };
  }

  /** Every byte one direction of a port carried, written to `to`. */
  saveRaw(
    device: string | undefined,
    port: number | string,
    direction: 'host-to-guest' | 'guest-to-host',
    to: string,
  ): { path: string; bytes: number } | ViewError {
    const s = this.stream(device, port);
    if (isViewError(s)) return s;
    const raw = followRaw(s, direction);
    const what = nonRegularAt(to);
    if (what !== null) return { kind: 'Refused', message: `cannot write ${to}: it is ${what}` };
    try {
      fs.writeFileSync(to, raw);
    } catch (error) {
      return { kind: 'IoError', message: `cannot write ${to}: ${(error as Error).message}` };
    }
    return { path: to, bytes: raw.length };
  }

  /**
   * Save the capture (or the records a filter matches) as pcapng: the
   * file's own blocks copied as they are (section headers, interfaces,
   * every other block), packet blocks only when selected.
   */
  async save(
    to: string,
    filter: string | undefined,
  ): Promise<{ path: string; bytes: number; records: number } | ViewError> {
    const what = nonRegularAt(to);
    if (what !== null) {
      return { kind: 'Refused', message: `cannot save the capture to ${to}: it is ${what}` };
    }
    const matches = await this.selectAll(filter);
    if (isViewError(matches)) return matches;
    if (matches === null && (filter ?? '').trim() === '' && to !== this.path) {
      try {
        fs.copyFileSync(this.path, to);
      } catch (error) {
        return {
          kind: 'IoError',
          message: `cannot save the capture to ${to}: ${(error as Error).message}`,
        };
      }
      return { path: to, bytes: fs.statSync(to).size, records: this.reader.count };
    }
    if (to === this.path) return { kind: 'Refused', message: 'cannot save a capture over itself' };
    return copyBlocks(this.reader, matches ?? new Uint32Array(0), to);
  }

  /** Save the records numbered `numbers` (1-based, any order, repeats once), in file order. */
  saveRecords(
    to: string,
    numbers: readonly number[],
  ): { path: string; bytes: number; records: number } | ViewError {
    const count = this.reader.count;
    const bad = numbers.find((n) => n < 1 || n > count);
    if (bad !== undefined)
      return {
        kind: 'Refused',
        message: `record ${bad} is not in the capture (it has ${count.toLocaleString('en')} records)`,
      };
    if (to === this.path) return { kind: 'Refused', message: 'cannot save a capture over itself' };
    const keep = Uint32Array.from(new Set(numbers), (n) => n - 1).sort();
    return copyBlocks(this.reader, keep, to);
  }
}

/** Text of a follow run: newlines kept, tabs kept, other non-printable bytes as '.'. */
function followTextOf(b: Uint8Array): string {
  let out = '';
  const CHUNK = 4096;
  for (let i = 0; i < b.length; i += CHUNK) {
    const part = b.subarray(i, i + CHUNK);
    let s = '';
    for (const c of part)
      s += (c >= 0x20 && c < 0x7f) || c === 0x0a || c === 0x09 ? String.fromCharCode(c) : '.';
    out += s;
  }
  return out;
}

function fieldsOf(number: number, rec: CaptureRecord, rel: number, iface: string): CaptureField[] {
  const f: CaptureField[] = [
    { name: 'number', value: String(number) },
    { name: 'kind', value: rec.kind },
    { name: 'device', value: rec.device || '-' },
    {
      name: 'port',
      value:
        rec.port === undefined
          ? (rec.portName ?? '-')
          : `${rec.port}${rec.portName !== undefined ? ` (${rec.portName})` : ''}`,
    },
    { name: 'interface', value: iface },
    {
      name: 'direction',
      value:
        rec.direction === undefined ? '-' : `${rec.direction} ${directionArrow(rec.direction)}`,
    },
    { name: 'time', value: isoNs(rec.time) },
    { name: 'relative time', value: `${rel.toFixed(9)} s` },
    { name: 'length', value: `${rec.length} bytes` },
    { name: 'captured', value: `${rec.bytes.length} bytes` },
  ];
  switch (rec.kind) {
    case 'data':
      f.push({ name: 'text', value: printable(rec.bytes, 256) });
      break;
    case 'control': {
      const c = rec.control;
      if (c instanceof CaptureError) {
        f.push({ name: 'control', value: `malformed: ${c.message}` });
        break;
      }
      f.push(
        { name: 'control.id', value: c.id === 0xffffffff ? '0xffffffff (device)' : String(c.id) },
        { name: 'control.event', value: `${c.eventName} (${c.event})` },
        { name: 'control.value', value: String(c.value) },
      );
      if (c.name !== undefined) {
        f.push({ name: 'control.name', value: JSON.stringify(c.name) });
        f.push({ name: 'control.nul', value: c.nul ? 'yes' : 'no' });
      }
      if (c.cols !== undefined) f.push({ name: 'control.cols', value: String(c.cols) });
      if (c.rows !== undefined) f.push({ name: 'control.rows', value: String(c.rows) });
      break;
    }
    case 'event':
      f.push({ name: 'event', value: rec.event });
      if (rec.count !== undefined) f.push({ name: 'event.count', value: `${rec.count} bytes` });
      if (rec.rule !== undefined) f.push({ name: 'event.rule', value: rec.rule });
      f.push({ name: 'event.text', value: rec.text });
      break;
    case 'ring':
      f.push(
        { name: 'ring.queue', value: String(rec.queue) },
        { name: 'ring.op', value: rec.op },
        { name: 'ring.text', value: rec.text },
      );
      break;
  }
  if (rec.comment !== undefined && rec.kind !== 'event' && rec.kind !== 'ring')
    f.push({ name: 'comment', value: rec.comment });
  return f;
}

/** `2024-05-01T10:02:01.123456789Z` from ns since the epoch. */
function isoNs(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString();
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return `${iso.slice(0, 19)}.${frac}Z`;
}

/** Copy a pcapng block by block, keeping packet blocks only at the offsets of `keep`. */
function copyBlocks(
  reader: CaptureReader,
  keep: Uint32Array,
  to: string,
): { path: string; bytes: number; records: number } | ViewError {
  let inFd: number | undefined;
  let outFd: number | undefined;
  try {
    inFd = fs.openSync(reader.path, 'r');
    outFd = fs.openSync(to, 'w');
    const fd = inFd;
    const size = fs.fstatSync(fd).size;
    // A read window over the input: blocks are read from it, written out in runs.
    let win = Buffer.alloc(1 << 20);
    let winStart = 0;
    let winLen = 0;
    const ensure = (pos: number, n: number): void => {
      if (pos >= winStart && pos + n <= winStart + winLen) return;
      if (win.length < n) win = Buffer.alloc(n);
      winStart = pos;
      winLen = fs.readSync(fd, win, 0, Math.min(win.length, size - pos), pos);
    };
    let written = 0;
    let next = 0; // index into keep
    let nextOffset = keep.length > 0 ? reader.offsetOf(keep[0]!) : -1;
    let little = true;
    let pos = 0;
    while (pos + 12 <= size) {
      ensure(pos, 12);
      let at = pos - winStart;
      if (win.readUInt32LE(at) === 0x0a0d0d0a) little = win.readUInt32LE(at + 8) === 0x1a2b3c4d;
      const type = little ? win.readUInt32LE(at) : win.readUInt32BE(at);
      const total = little ? win.readUInt32LE(at + 4) : win.readUInt32BE(at + 4);
      if (total < 12 || pos + total > size) break; // a block cut short: the reader ignored it too
      const isPacket = type === BLOCK_EPB || type === BLOCK_SPB || type === BLOCK_PB;
      let take = !isPacket;
      if (isPacket && pos === nextOffset) {
        take = true;
        next++;
        nextOffset = next < keep.length ? reader.offsetOf(keep[next]!) : -1;
      }
      if (take) {
        ensure(pos, total);
        at = pos - winStart;
        fs.writeSync(outFd, win, at, total);
        written += total;
      }
      pos += total;
    }
    return { path: to, bytes: written, records: next };
  } catch (error) {
    return {
      kind: 'IoError',
      message: `cannot save the capture to ${to}: ${(error as Error).message}`,
    };
  } finally {
    if (inFd !== undefined) fs.closeSync(inFd);
    if (outFd !== undefined) fs.closeSync(outFd);
  }
}

type ViewCommand = Extract<
  Command,
  {
    cmd: 'getCaptureRows' | 'getCaptureRecord' | 'followCapture' | 'saveFollowRaw' | 'findInFollow';
  }
>;

/** The answer to one of the view's commands (ApiService hands them here). */
export function viewAnswer(view: CaptureView | null, c: ViewCommand): Result<unknown> {
  if (view === null) return fail('Refused', 'no capture is open: open a .pcapng file first');
  let r: unknown;
  switch (c.cmd) {
    case 'getCaptureRows':
      r = view.rows(c.from, c.count, c.filter, c.sort);
      break;
    case 'getCaptureRecord':
      r = view.detail(c.number);
      break;
    case 'followCapture':
      r = view.follow(c.device, c.port);
      break;
    case 'saveFollowRaw':
      r = view.saveRaw(c.device, c.port, c.direction, c.path);
      break;
    case 'findInFollow':
      r = view.findInFollow(c.device, c.port, c.text, c.direction);
      break;
  }
  return isViewError(r) ? fail(r.kind, r.message) : ok(r);
}

/** The channel protocol subtree of a data record's detail, or null. */
function decodedTree(rec: CaptureRecord): CaptureRecordDetail['decoded'] {
  if (rec.kind !== 'data') return null;
  const d = decodePayload(rec.portName, rec.bytes);
  if (d === undefined) return null;
  return {
    protocol: d.protocol,
    title: d.title,
    summary: d.summary,
    fields: d.fields.map((f) => ({ name: f.name, label: f.label, value: fieldText(f.value) })),
  };
}
