/**
 * pcapng reader: vmchan captures, and any pcapng whose blocks it knows.
 *
 * Opening a file scans it once, block by block, through a fixed read window
 * (1 MiB), and keeps only a compact index in memory; payloads stay on disk
 * and `record(n)` reads one back on demand (through a small read-ahead
 * window, so walking records in order costs few system calls).
 *
 * Understood: section header (either byte order, several sections),
 * interface description (if_name, if_description, if_tsresol, if_tsoffset),
 * enhanced packet, simple packet and the obsolete packet block, with
 * epb_flags direction and opt_comment. Every other block is skipped.
 *
 * Errors are values: a file that is not pcapng at all is rejected with what
 * is wrong (`not a pcapng file: starts with 0x...`); a block cut short at
 * the end of the file (a writer killed mid-write) is a warning, and every
 * record before it is read. A damaged block in the middle ends the scan
 * with a warning the same way.
 *
 * INCOMPLETE IS NOT DAMAGED. A file still being written can end inside a
 * block: the writer writes whole blocks, but a read can land while only part
 * of one is there (and on some file systems the size is published before
 * the bytes can be read). So a block is judged only once all of it can be
 * read: a block whose end lies past what can be read now (by the size, or
 * because a read came back short) is pending. Its offset is kept, nothing
 * of it is indexed, and `refresh()` starts again from there; `warnings`
 * names it as a truncated block while the file still ends inside it (what
 * a one-off read of a killed writer's file reports). Only a block that is
 * whole on disk and malformed (trailing length, impossible length, bad
 * byte-order magic, ...) is damage, and damage ends the scan for good.
 *
 * MEMORY BOUND. The index costs 20 bytes per record, in chunks of 65,536
 * records (1.25 MiB per chunk, allocated as needed):
 *     time since the first record   Float64   8 B   (exact ns up to 104 days)
 *     file offset                   Uint32+Uint8 5 B   (files up to 1 TiB)
 *     original length               Uint32    4 B
 *     interface the record concerns Uint16    2 B   (up to 65,535 interfaces)
 *     direction and kind            Uint8     1 B
 * so 1 M records take 20 MB (+ at most one partly used chunk), 10 M records
 * 200 MB; on top come the two read windows (1 MiB + 256 KiB) and one small
 * object per interface. test/capture/reader-memory.test.ts measures it.
 *
 * The interface an index entry names is the one the record concerns: for a
 * data packet its own; for a control message the data interface of the
 * port its id names (else the device's control interface); for an event,
 * the interface its payload points to. So `port`, `device` and `kind` of
 * every record are known without touching the disk, and filters that do
 * not look inside the bytes run over the index alone.
 */
import * as fs from 'node:fs';
import { DEFAULT_CONTROL_CODEC } from '../serial/control.js';
import { CaptureError, describeIoFailure } from './error.js';
import { nonRegularFd } from './regular-file.js';
import type { FilterPredicate, FilterSubject } from './filter.js';
import {
  BLOCK_EPB,
  BLOCK_IDB,
  BLOCK_SHB,
  BYTE_ORDER_MAGIC,
  EPB_FLAGS,
  EVENTS_INTERFACE_NAME,
  EVENT_HEADER_BYTES,
  IF_DESCRIPTION,
  IF_NAME,
  IF_TSRESOL,
  LINKTYPE_USER0,
  NO_INTERFACE,
  NO_PORT,
  OPT_COMMENT,
  OPT_ENDOFOPT,
  SHB_HARDWARE,
  SHB_OS,
  SHB_USERAPPL,
} from './pcapng-writer.js';
import {
  BAD_PORT_ID,
  RING_EVENT_CODE,
  decodeControl,
  eventTypeOfCode,
  guestNodeName,
  parsePortDescription,
  type CaptureRecord,
  type ChardevInfo,
  type Direction,
  type PortKind,
  type RecordKind,
  type ResizeOrder,
} from './record.js';

const BLOCK_PB = 0x00000002;
const BLOCK_SPB = 0x00000003;
const IF_TSOFFSET = 14;

export const INDEX_BYTES_PER_RECORD = 20;
export const INDEX_CHUNK_RECORDS = 1 << 16;
const CHUNK_SHIFT = 16;
const CHUNK_MASK = INDEX_CHUNK_RECORDS - 1;
const MAX_OFFSET = 2 ** 40;
const MAX_INTERFACES = 0xffff;

export const KIND_CODE: Record<RecordKind, number> = { data: 0, control: 1, event: 2, ring: 3 };
export const KIND_OF_CODE: readonly RecordKind[] = ['data', 'control', 'event', 'ring'];

export type InterfaceRole = 'data' | 'control' | 'events' | 'foreign';

export interface InterfaceInfo {
  /** Index in `reader.interfaces` (interfaces of all sections, in file order). */
  id: number;
  /** Section (0-based) and the interface's id inside it. */
  section: number;
  idInSection: number;
  linkType: number;
  snaplen: number;
  name: string | undefined;
  description: string | undefined;
  role: InterfaceRole;
  /** Device (qdev id) for vmchan interfaces. */
  device: string | undefined;
  /** Port number for port (data) interfaces. */
  port: number | undefined;
  /** The port's name; undefined for an unnamed port (its label is then `vportDpN`). */
  portName: string | undefined;
  /** What to call the interface: the port name, `vport0p2`, `vser0:control`, or `if3`. */
  label: string;
  portKind: PortKind | undefined;
  chardev: ChardevInfo | undefined;
  /** Offset of the interface description block in the file. */
  offset: number;
}

interface TimeScale {
  /** Timestamp units per second, as bigint for exact conversion. */
  unitsPerSecond: bigint;
  nsPerUnit: number;
  /** if_tsoffset in ns. */
  offsetNs: bigint;
  /** First timestamp of this interface (hi, lo) and its time relative to the capture's first record. */
  baseHi: number;
  baseLo: number;
  baseRelNs: number;
  hasBase: boolean;
}

export interface SectionInfo {
  offset: number;
  littleEndian: boolean;
  userAppl: string | undefined;
  os: string | undefined;
  hardware: string | undefined;
  comment: string | undefined;
}

export interface ReaderOptions {
  /** Bytes read per scan step; default 1 MiB. */
  windowBytes?: number;
  /** RESIZE field order for decoding control messages. */
  resizeOrder?: ResizeOrder;
  /** Called after each scan window (async open only). */
  onProgress?: (bytesScanned: number, fileBytes: number) => void;
}

/** The compact per-record index (see the file comment for the layout). */
class RecordIndex {
  count = 0;
  private readonly time: Float64Array[] = [];
  private readonly offLo: Uint32Array[] = [];
  private readonly offHi: Uint8Array[] = [];
  private readonly len: Uint32Array[] = [];
  private readonly iface: Uint16Array[] = [];
  private readonly flags: Uint8Array[] = [];

  push(offset: number, relNs: number, length: number, iface: number, flags: number): void {
    const c = this.count >>> CHUNK_SHIFT;
    const i = this.count & CHUNK_MASK;
    if (i === 0) {
      this.time.push(new Float64Array(INDEX_CHUNK_RECORDS));
      this.offLo.push(new Uint32Array(INDEX_CHUNK_RECORDS));
      this.offHi.push(new Uint8Array(INDEX_CHUNK_RECORDS));
      this.len.push(new Uint32Array(INDEX_CHUNK_RECORDS));
      this.iface.push(new Uint16Array(INDEX_CHUNK_RECORDS));
      this.flags.push(new Uint8Array(INDEX_CHUNK_RECORDS));
    }
    this.time[c]![i] = relNs;
    this.offLo[c]![i] = offset >>> 0;
    this.offHi[c]![i] = Math.floor(offset / 4294967296);
    this.len[c]![i] = length;
    this.iface[c]![i] = iface;
    this.flags[c]![i] = flags;
    this.count++;
  }

  offset(n: number): number {
    const c = n >>> CHUNK_SHIFT;
    const i = n & CHUNK_MASK;
    return this.offHi[c]![i]! * 4294967296 + this.offLo[c]![i]!;
  }
  relNs(n: number): number {
    return this.time[n >>> CHUNK_SHIFT]![n & CHUNK_MASK]!;
  }
  length(n: number): number {
    return this.len[n >>> CHUNK_SHIFT]![n & CHUNK_MASK]!;
  }
  interface(n: number): number {
    return this.iface[n >>> CHUNK_SHIFT]![n & CHUNK_MASK]!;
  }
  flagsOf(n: number): number {
    return this.flags[n >>> CHUNK_SHIFT]![n & CHUNK_MASK]!;
  }
}

/** scanBlock's answer for a block not yet whole on disk (see the file comment). */
const PENDING = 'pending';

/** Index flags: bits 0-1 the epb_flags direction, bits 2-3 the kind code. */
function dirOfFlags(f: number): Direction | undefined {
  const d = f & 3;
  return d === 1 ? 'host-to-guest' : d === 2 ? 'guest-to-host' : undefined;
}

const utf8 = new TextDecoder('utf-8');

/** A parsed packet block (read back for `record(n)`). */
interface PacketBlock {
  ifaceInSection: number;
  tsHi: number;
  tsLo: number;
  capLen: number;
  origLen: number;
  data: Uint8Array;
  flags: number;
  comment: string | undefined;
}

export class CaptureReader {
  readonly path: string;
  readonly interfaces: InterfaceInfo[] = [];
  readonly sections: SectionInfo[] = [];
  /** Time of the first record, ns since the epoch (undefined for a capture without records). */
  firstTime: bigint | undefined;

  private fd: number | undefined;
  private fileSize = 0;
  private readonly index = new RecordIndex();
  private readonly problems: CaptureError[] = [];
  /**
   * The block the file currently ends inside: its offset (= `pos`) and the
   * length its header gives (undefined: not even the 12 bytes of a header).
   */
  private pending: { offset: number; total: number | undefined } | undefined;
  private readonly resizeOrder: ResizeOrder;

  // scan state
  private pos = 0;
  private readonly win: Buffer;
  private winStart = 0;
  private winLen = 0;
  private little = true;
  private sectionBase = 0;
  /** Per section: in-section interface id -> global id. */
  private readonly sectionIfaces: number[][] = [];
  private stopped = false;
  private readonly scales: TimeScale[] = [];
  /** `${section}/${device}/${port}` -> global interface id of the port's latest data interface. */
  private readonly portIfaces = new Map<string, number>();
  private readonly controlIfaces = new Map<string, number>();
  private firstHi = 0;
  private firstLo = 0;

  // fetch cache
  private readonly fetchWin = Buffer.allocUnsafe(256 * 1024);
  private fetchStart = 0;
  private fetchLen = 0;

  private constructor(path: string, fd: number, options: ReaderOptions) {
    this.path = path;
    this.fd = fd;
    this.win = Buffer.allocUnsafe(Math.max(64 * 1024, options.windowBytes ?? 1024 * 1024));
    this.resizeOrder = options.resizeOrder ?? DEFAULT_CONTROL_CODEC.resizeOrder;
  }

  /** Open and index a capture without blocking the event loop for long (yields between windows). */
  static async open(
    path: string,
    options: ReaderOptions = {},
  ): Promise<CaptureReader | CaptureError> {
    const r = CaptureReader.start(path, options);
    if (r instanceof CaptureError) return r;
    for (;;) {
      const done = r.scanSome(16 * 1024 * 1024);
      if (done instanceof CaptureError) {
        r.close();
        return done;
      }
      options.onProgress?.(r.pos, r.fileSize);
      if (done) return r;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Open and index a capture synchronously (CLI, tests). */
  static openSync(path: string, options: ReaderOptions = {}): CaptureReader | CaptureError {
    const r = CaptureReader.start(path, options);
    if (r instanceof CaptureError) return r;
    const done = r.scanSome(Infinity);
    if (done instanceof CaptureError) {
      r.close();
      return done;
    }
    return r;
  }

  private static start(path: string, options: ReaderOptions): CaptureReader | CaptureError {
    let fd: number;
    try {
      // O_NONBLOCK: opening a FIFO would otherwise wait for a writer, and block
      // the whole event loop with it (issue 13 item 7); what it is comes next.
      fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (err) {
      return new CaptureError('IoError', `cannot open capture: ${describeIoFailure(err)}`, {
        path,
      });
    }
    const notFile = nonRegularFd(fd);
    if (notFile !== null) {
      fs.closeSync(fd);
      return new CaptureError(
        'NotRegularFile',
        `not a capture file: it is ${notFile}; vmchan reads captures from regular files`,
        { path },
      );
    }
    const r = new CaptureReader(path, fd, options);
    const err = r.stat() ?? r.checkStart();
    if (err) {
      r.close();
      return err;
    }
    return r;
  }

  /** Number of records (packets) indexed. */
  get count(): number {
    return this.index.count;
  }

  /**
   * Problems that did not stop the file from opening: a damaged block (the
   * scan stopped there for good), and, while the file ends inside a block, a
   * truncated block at its offset (gone once `refresh()` finds it whole).
   */
  get warnings(): readonly CaptureError[] {
    const tail = this.tailWarning();
    return tail ? [...this.problems, tail] : this.problems;
  }

  /**
   * Offset of the block the file currently ends inside (where the next
   * `refresh()` starts again), or undefined when the scan ended on a block
   * boundary or at damage.
   */
  get pendingOffset(): number | undefined {
    return this.pending?.offset;
  }

  /**
   * Index blocks appended since the last scan (a capture still being
   * written). A block that was not whole last time is read again from its
   * start; it is never a warning here, and never stops later refreshes.
   * Returns the number of new records (0 for good after damage), or an error.
   */
  refresh(): number | CaptureError {
    if (this.stopped) return 0;
    const before = this.index.count;
    const err = this.stat();
    if (err) return err;
    const done = this.scanSome(Infinity);
    if (done instanceof CaptureError) return done;
    return this.index.count - before;
  }

  close(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // nothing useful to do: the file was only read
      }
    }
  }

  // -- index accessors (no disk access) ---------------------------------------------------

  /** Nanoseconds since the first record (exact below 2^53 ns, about 104 days). */
  relativeNs(n: number): number {
    return this.index.relNs(n);
  }
  /** Seconds since the first record. */
  relativeSeconds(n: number): number {
    return this.index.relNs(n) / 1e9;
  }
  length(n: number): number {
    return this.index.length(n);
  }
  direction(n: number): Direction | undefined {
    return dirOfFlags(this.index.flagsOf(n));
  }
  kind(n: number): RecordKind {
    return KIND_OF_CODE[(this.index.flagsOf(n) >> 2) & 3]!;
  }
  /** The interface record n concerns (see the file comment). */
  interfaceOf(n: number): InterfaceInfo {
    return this.interfaces[this.index.interface(n)]!;
  }
  /** File offset of record n's block. */
  offsetOf(n: number): number {
    return this.index.offset(n);
  }

  /**
   * Numbers of the records in [from, to) a filter matches, in order. Runs on
   * the index; only `contains` reads payloads (through the read-ahead window).
   */
  select(test: FilterPredicate, from = 0, to = this.index.count): Uint32Array {
    let out = new Uint32Array(1024);
    let found = 0;
    const subject = new IndexSubject(this);
    const end = Math.min(to, this.index.count);
    for (let n = Math.max(0, from); n < end; n++) {
      subject.load(n);
      if (!test(subject)) continue;
      if (found === out.length) {
        const bigger = new Uint32Array(out.length * 2);
        bigger.set(out);
        out = bigger;
      }
      out[found++] = n;
    }
    return out.slice(0, found);
  }

  /** A filter subject for record n (a fresh object; `select` reuses one). */
  subject(n: number): FilterSubject {
    const s = new IndexSubject(this);
    s.load(n);
    return s;
  }

  // -- records (read on demand) -----------------------------------------------------------

  /**
   * The captured bytes of record n: a view into the read window, valid until
   * the next read from this reader (copy it to keep it; `record(n)` copies).
   */
  payload(n: number): Uint8Array | CaptureError {
    const b = this.packet(n);
    return b instanceof CaptureError ? b : b.data;
  }

  /** Record n (0-based; tshark's frame.number is n + 1). */
  record(n: number): CaptureRecord | CaptureError {
    const b = this.packet(n);
    if (b instanceof CaptureError) return b;
    const about = this.interfaceOf(n);
    const kind = this.kind(n);
    const direction = this.direction(n);
    const time = this.exactTime(n, b);
    const bytes = new Uint8Array(b.data); // a copy: b.data views the read window
    const base = {
      time,
      device: about.device ?? '',
      port: about.role === 'data' ? about.port : undefined,
      portName: about.role === 'data' ? (about.portName ?? about.label) : undefined,
      length: b.origLen,
      bytes,
      comment: b.comment,
    };
    switch (kind) {
      case 'data':
        if (about.role !== 'data' || about.device === undefined) {
          base.portName = about.label;
        }
        return { ...base, kind: 'data', direction };
      case 'control': {
        const control = decodeControl(bytes, this.resizeOrder);
        const port =
          control instanceof CaptureError || control.id === BAD_PORT_ID ? undefined : control.id;
        return { ...base, port, kind: 'control', direction, control };
      }
      case 'event':
      case 'ring': {
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const ok = bytes.length >= EVENT_HEADER_BYTES;
        const code = ok ? bytes[1]! : 0;
        const rawPort = ok ? dv.getUint16(2, true) : NO_PORT;
        const value = ok ? dv.getUint32(8, true) : 0;
        const detail = ok ? utf8.decode(bytes.subarray(EVENT_HEADER_BYTES)) : '';
        const port = rawPort === NO_PORT ? undefined : rawPort;
        const text = b.comment ?? '';
        if (kind === 'ring') {
          return { ...base, port, kind: 'ring', direction, queue: value, op: detail, text };
        }
        const event = eventTypeOfCode(code) ?? 'note';
        return {
          ...base,
          port,
          kind: 'event',
          direction,
          event,
          count: event === 'drop' ? value : undefined,
          rule: detail === '' ? undefined : detail,
          text,
        };
      }
    }
  }

  /** Exact time of record n in ns since the epoch. */
  time(n: number): bigint | CaptureError {
    const b = this.packet(n);
    return b instanceof CaptureError ? b : this.exactTime(n, b);
  }

  /** The comment of record n's packet, if any (events: their text). */
  comment(n: number): string | undefined | CaptureError {
    const b = this.packet(n);
    return b instanceof CaptureError ? b : b.comment;
  }

  private exactTime(n: number, b: PacketBlock): bigint {
    const off = this.index.offset(n);
    const iface = this.interfaceAt(off, b.ifaceInSection);
    const scale = this.scales[iface];
    const units = (BigInt(b.tsHi) << 32n) | BigInt(b.tsLo);
    if (!scale) return units * 1000n;
    return (units * 1_000_000_000n) / scale.unitsPerSecond + scale.offsetNs;
  }

  /** Global interface id of an in-section id, for the section holding `offset` (-1: none). */
  private interfaceAt(offset: number, idInSection: number): number {
    return this.sectionIfaces[this.sectionOf(offset)]?.[idInSection] ?? -1;
  }

  private packet(n: number): PacketBlock | CaptureError {
    if (!Number.isInteger(n) || n < 0 || n >= this.index.count) {
      return new CaptureError(
        'RecordOutOfRange',
        `no record ${n + 1}: the capture has ${this.index.count} records`,
        { path: this.path, record: n },
      );
    }
    const off = this.index.offset(n);
    const section = this.sectionOf(off);
    const little = this.sections[section]?.littleEndian ?? true;
    const head = this.fetch(off, 8);
    if (head instanceof CaptureError) return head;
    const total = little ? head.readUInt32LE(4) : head.readUInt32BE(4);
    const block = this.fetch(off, total);
    if (block instanceof CaptureError) return block;
    const parsed = parsePacket(block, little, off, (id) => this.snaplenOf(section, id));
    if (parsed instanceof CaptureError) return parsed;
    return parsed;
  }

  private sectionOf(offset: number): number {
    let section = this.sections.length - 1;
    while (section > 0 && this.sections[section]!.offset > offset) section--;
    return section;
  }

  private snaplenOf(section: number, idInSection: number): number {
    const id = this.sectionIfaces[section]?.[idInSection];
    return id === undefined ? 0 : this.interfaces[id]!.snaplen;
  }

  /** `n` bytes at `offset`, through the fetch window (a one-off buffer for big blocks). */
  private fetch(offset: number, n: number): Buffer | CaptureError {
    if (offset >= this.fetchStart && offset + n <= this.fetchStart + this.fetchLen) {
      return this.fetchWin.subarray(offset - this.fetchStart, offset - this.fetchStart + n);
    }
    if (n > this.fetchWin.length) {
      const buf = Buffer.allocUnsafe(n);
      const got = this.readAt(buf, n, offset);
      if (got instanceof CaptureError) return got;
      if (got < n) return this.truncatedAt(offset);
      return buf;
    }
    const got = this.readAt(this.fetchWin, this.fetchWin.length, offset);
    if (got instanceof CaptureError) return got;
    this.fetchStart = offset;
    this.fetchLen = got;
    if (got < n) return this.truncatedAt(offset);
    return this.fetchWin.subarray(0, n);
  }

  private truncatedAt(offset: number): CaptureError {
    return new CaptureError('TruncatedBlock', `truncated block at offset ${offset}`, {
      path: this.path,
      offset,
    });
  }

  /** The warning for a pending block, in the words of the last scan. */
  private tailWarning(): CaptureError | undefined {
    const p = this.pending;
    if (p === undefined) return undefined;
    const left = Math.max(0, this.fileSize - p.offset);
    const why =
      p.total === undefined
        ? `${left} bytes left, a block needs at least 12`
        : `the block says ${p.total} bytes, the file has ${left} left`;
    return new CaptureError('TruncatedBlock', `truncated block at offset ${p.offset}: ${why}`, {
      path: this.path,
      offset: p.offset,
    });
  }

  private readAt(buf: Buffer, n: number, position: number): number | CaptureError {
    if (this.fd === undefined) {
      return new CaptureError('SinkClosed', 'capture file is closed', { path: this.path });
    }
    try {
      let got = 0;
      while (got < n) {
        const r = fs.readSync(this.fd, buf, got, n - got, position + got);
        if (r === 0) break;
        got += r;
      }
      return got;
    } catch (err) {
      return new CaptureError('IoError', `cannot read capture: ${describeIoFailure(err)}`, {
        path: this.path,
        offset: position,
      });
    }
  }

  private stat(): CaptureError | undefined {
    if (this.fd === undefined) return new CaptureError('SinkClosed', 'capture file is closed');
    try {
      this.fileSize = fs.fstatSync(this.fd).size;
      this.fetchLen = 0; // the file may have grown under the cached window
      return undefined;
    } catch (err) {
      return new CaptureError('IoError', `cannot read capture: ${describeIoFailure(err)}`, {
        path: this.path,
      });
    }
  }

  // -- scanning ---------------------------------------------------------------------------

  /**
   * Make [pos, pos+n) readable in the scan window; false if the file ends
   * first or n is too big. A read that comes back short (the size was
   * published before the bytes, or the file shrank) moves the end of the
   * file to what could be read, so what lies past it is pending, not damage.
   */
  private ensure(pos: number, n: number): boolean | CaptureError {
    if (pos >= this.winStart && pos + n <= this.winStart + this.winLen) return true;
    if (pos + n > this.fileSize) return false;
    if (n > this.win.length) return false;
    const want = Math.min(this.win.length, this.fileSize - pos);
    const got = this.readAt(this.win, want, pos);
    if (got instanceof CaptureError) return got;
    this.winStart = pos;
    this.winLen = got;
    if (got < want) this.fileSize = pos + got;
    return got >= n;
  }

  private u32(at: number): number {
    const o = at - this.winStart;
    return this.little ? this.win.readUInt32LE(o) : this.win.readUInt32BE(o);
  }
  private u16(at: number): number {
    const o = at - this.winStart;
    return this.little ? this.win.readUInt16LE(o) : this.win.readUInt16BE(o);
  }

  /**
   * Scan up to `budget` bytes of blocks. true when the end of the file (or
   * of what can be read) is reached, false when there is more, an error
   * when the file cannot be a capture at all.
   */
  private scanSome(budget: number): boolean | CaptureError {
    const stopAt = this.pos + budget;
    this.pending = undefined;
    while (this.pos < this.fileSize && this.pos < stopAt) {
      const r = this.scanBlock();
      if (r === undefined) continue;
      if (r === PENDING) {
        // not a warning by itself: the next refresh reads the block again from its start
        if (this.sections.length === 0) return this.tailWarning()!; // not even a section header
        return true;
      }
      if (this.sections.length === 0) return r; // nothing readable: not a capture
      this.problems.push(r);
      this.stopped = true;
      return true;
    }
    return this.pos >= this.fileSize;
  }

  /**
   * Index the block at `pos` and step over it; PENDING (with `pending` set)
   * when it is not whole on disk yet, an error when it is whole and damaged.
   * Nothing is recorded about a pending block.
   */
  private scanBlock(): CaptureError | typeof PENDING | undefined {
    const pos = this.pos;
    const notYet = (total: number | undefined): typeof PENDING => {
      this.pending = { offset: pos, total };
      return PENDING;
    };
    if (this.fileSize - pos < 12) return notYet(undefined);
    const ok = this.ensure(pos, 12);
    if (ok instanceof CaptureError) return ok;
    if (!ok) return notYet(undefined);
    let type = this.win.readUInt32LE(pos - this.winStart);
    if (type === BLOCK_SHB) {
      const magic = this.win.readUInt32LE(pos + 8 - this.winStart);
      if (magic === BYTE_ORDER_MAGIC) this.little = true;
      else if (magic === 0x4d3c2b1a) this.little = false;
      else
        return new CaptureError(
          'MalformedBlock',
          `section header at offset ${pos} has a bad byte-order magic 0x${hex8(magic)}`,
          { path: this.path, offset: pos },
        );
    } else {
      type = this.u32(pos);
    }
    const total = this.u32(pos + 4);
    if (total < 12 || total % 4 !== 0) {
      return new CaptureError(
        'MalformedBlock',
        `block at offset ${pos} has an impossible length ${total}`,
        { path: this.path, offset: pos },
      );
    }
    if (total > this.fileSize - pos) return notYet(total);
    // Judge the block only when all of it can be read: the whole block when it fits the
    // window, else its trailing length (the last bytes written) and then its head.
    const inWindow = total <= this.win.length;
    const whole = this.ensure(inWindow ? pos : pos + total - 4, inWindow ? total : 4);
    if (whole instanceof CaptureError) return whole;
    if (!whole) return notYet(total);
    const trailer = this.u32(pos + total - 4);
    if (trailer !== total) {
      return new CaptureError(
        'MalformedBlock',
        `block at offset ${pos}: trailing length ${trailer} does not match leading length ${total}`,
        { path: this.path, offset: pos },
      );
    }
    if (!inWindow) {
      const head = this.ensure(pos, 28);
      if (head instanceof CaptureError) return head;
      if (!head) return notYet(total);
    }
    let err: CaptureError | undefined;
    switch (type) {
      case BLOCK_SHB:
        err = this.onSection(pos, total, inWindow);
        break;
      case BLOCK_IDB:
        err = this.onInterface(pos, total, inWindow);
        break;
      case BLOCK_EPB:
      case BLOCK_PB:
      case BLOCK_SPB:
        if (this.sections.length === 0) break;
        err = this.onPacket(type, pos, total, inWindow);
        break;
      default:
        break; // unknown and uninteresting blocks are skipped
    }
    if (err) return err;
    this.pos = pos + total;
    return undefined;
  }

  /** The first bytes of the file must be a section header block. */
  private checkStart(): CaptureError | undefined {
    const size = this.fileSize;
    const ok = this.ensure(0, Math.min(size, 12));
    if (ok instanceof CaptureError) return ok;
    if (size === 0) return this.notPcapng('the file is empty');
    const first = this.win.subarray(0, Math.min(size, 4));
    const hex = [...first].map((b) => b.toString(16).padStart(2, '0')).join('');
    const magic = size >= 4 ? this.win.readUInt32LE(0) : -1;
    if (magic === BLOCK_SHB) {
      if (size < 28) return this.notPcapng(`only ${size} bytes, a section header needs 28`);
      return undefined;
    }
    const classic = [0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1];
    if (classic.includes(magic)) {
      return this.notPcapng(
        `starts with 0x${hex} (a classic pcap file; convert it with \`editcap -F pcapng IN OUT\`)`,
      );
    }
    return this.notPcapng(`starts with 0x${hex}, a pcapng file starts with 0x0a0d0d0a`);
  }

  private notPcapng(why: string): CaptureError {
    return new CaptureError('NotPcapng', `not a pcapng file: ${why}`, {
      path: this.path,
      offset: 0,
    });
  }

  private onSection(pos: number, total: number, inWindow: boolean): CaptureError | undefined {
    if (!inWindow) {
      return new CaptureError(
        'MalformedBlock',
        `section header at offset ${pos} is too large (${total} bytes)`,
        {
          path: this.path,
          offset: pos,
        },
      );
    }
    const major = this.u16(pos + 12);
    const minor = this.u16(pos + 14);
    // Wireshark reads 1.0 and the 1.2 some old writers put, and calls any other 1.x corrupt.
    if (major !== 1 || (minor !== 0 && minor !== 2)) {
      return new CaptureError(
        'UnsupportedVersion',
        `section at offset ${pos} is pcapng version ${major}.${minor}; only 1.0 (and 1.2) is understood`,
        { path: this.path, offset: pos },
      );
    }
    const section: SectionInfo = {
      offset: pos,
      littleEndian: this.little,
      userAppl: undefined,
      os: undefined,
      hardware: undefined,
      comment: undefined,
    };
    this.readOptions(
      pos + 24,
      pos + total - 4,
      `section header at offset ${pos}`,
      (code, start, len) => {
        const text = () =>
          utf8.decode(this.win.subarray(start - this.winStart, start - this.winStart + len));
        if (code === SHB_USERAPPL) section.userAppl = text();
        else if (code === SHB_OS) section.os = text();
        else if (code === SHB_HARDWARE) section.hardware = text();
        else if (code === OPT_COMMENT) section.comment = text();
      },
    );
    this.sections.push(section);
    this.sectionBase = this.interfaces.length;
    this.sectionIfaces.push([]);
    return undefined;
  }

  private onInterface(pos: number, total: number, inWindow: boolean): CaptureError | undefined {
    if (this.sections.length === 0) return undefined;
    if (!inWindow || total < 20) {
      return new CaptureError(
        'MalformedBlock',
        `interface block at offset ${pos} has a bad length ${total}`,
        {
          path: this.path,
          offset: pos,
        },
      );
    }
    if (this.interfaces.length >= MAX_INTERFACES) {
      return new CaptureError('TooLarge', `more than ${MAX_INTERFACES} interfaces`, {
        path: this.path,
        offset: pos,
      });
    }
    const linkType = this.u16(pos + 8);
    const snaplen = this.u32(pos + 12);
    let name: string | undefined;
    let description: string | undefined;
    let tsresol = 6;
    let offsetSeconds = 0n;
    this.readOptions(
      pos + 16,
      pos + total - 4,
      `interface block at offset ${pos}`,
      (code, start, len) => {
        const s = start - this.winStart;
        if (code === IF_NAME) name = utf8.decode(this.win.subarray(s, s + len));
        else if (code === IF_DESCRIPTION) description = utf8.decode(this.win.subarray(s, s + len));
        else if (code === IF_TSRESOL && len >= 1) tsresol = this.win[s]!;
        else if (code === IF_TSOFFSET && len >= 8) {
          offsetSeconds = this.little ? this.win.readBigInt64LE(s) : this.win.readBigInt64BE(s);
        }
      },
    );
    const id = this.interfaces.length;
    const section = this.sections.length - 1;
    const info = describeInterface(
      id,
      section,
      id - this.sectionBase,
      linkType,
      snaplen,
      name,
      description,
      pos,
    );
    this.interfaces.push(info);
    this.sectionIfaces[section]!.push(id);
    const unitsPerSecond = tsresol & 0x80 ? 2n ** BigInt(tsresol & 0x7f) : 10n ** BigInt(tsresol);
    this.scales.push({
      unitsPerSecond,
      nsPerUnit: 1e9 / Number(unitsPerSecond),
      offsetNs: offsetSeconds * 1_000_000_000n,
      baseHi: 0,
      baseLo: 0,
      baseRelNs: 0,
      hasBase: false,
    });
    if (info.role === 'data' && info.device !== undefined && info.port !== undefined) {
      this.portIfaces.set(`${section}/${info.device}/${info.port}`, id);
    } else if (info.role === 'control' && info.device !== undefined) {
      this.controlIfaces.set(`${section}/${info.device}`, id);
    }
    return undefined;
  }

  private onPacket(
    type: number,
    pos: number,
    total: number,
    inWindow: boolean,
  ): CaptureError | undefined {
    if (pos >= MAX_OFFSET) {
      return new CaptureError(
        'TooLarge',
        'capture larger than 1 TiB: the index holds 40-bit offsets',
        {
          path: this.path,
          offset: pos,
        },
      );
    }
    let ifInSection = 0;
    let tsHi = 0;
    let tsLo = 0;
    let capLen: number;
    let origLen: number;
    let dataStart: number;
    let flags = 0;
    // scanBlock made the block's first 28 bytes (the whole block when it fits) readable
    if (type === BLOCK_SPB) {
      origLen = this.u32(pos + 8);
      capLen = Math.min(origLen, total - 16);
      dataStart = pos + 12;
    } else {
      if (total < 32) {
        return new CaptureError(
          'MalformedBlock',
          `packet block at offset ${pos} is too short (${total} bytes)`,
          {
            path: this.path,
            offset: pos,
          },
        );
      }
      ifInSection = type === BLOCK_PB ? this.u16(pos + 8) : this.u32(pos + 8);
      tsHi = this.u32(pos + 12);
      tsLo = this.u32(pos + 16);
      capLen = this.u32(pos + 20);
      origLen = this.u32(pos + 24);
      dataStart = pos + 28;
      if (28 + capLen + 4 > total) {
        return new CaptureError(
          'MalformedBlock',
          `packet block at offset ${pos}: ${capLen} captured bytes do not fit in a ${total}-byte block`,
          { path: this.path, offset: pos },
        );
      }
      // options follow the padded packet data
      const optStart = dataStart + ((capLen + 3) & ~3);
      const optEnd = pos + total - 4;
      if (optEnd > optStart && (inWindow || this.ensure(optStart, optEnd - optStart) === true)) {
        this.readOptions(optStart, optEnd, null, (code, start, len) => {
          if (code === EPB_FLAGS && len >= 4) flags = this.u32(start);
        });
      }
    }
    const iface = this.sectionBase + ifInSection;
    if (ifInSection >= this.interfaces.length - this.sectionBase) {
      return new CaptureError(
        'UnknownInterface',
        `packet at offset ${pos} names interface ${ifInSection}, which no interface block described`,
        { path: this.path, offset: pos },
      );
    }
    const info = this.interfaces[iface]!;
    let kind = 0;
    let about = iface;
    if (info.role === 'control') {
      kind = KIND_CODE.control;
      if (capLen >= 8 && this.ensure(dataStart, 4) === true) {
        const id = this.u32LE(dataStart);
        const portIface = this.portIfaces.get(`${info.section}/${info.device}/${id}`);
        if (portIface !== undefined) about = portIface;
      }
    } else if (info.role === 'events') {
      kind = KIND_CODE.event;
      if (capLen >= EVENT_HEADER_BYTES && this.ensure(dataStart, EVENT_HEADER_BYTES) === true) {
        if (this.win[dataStart + 1 - this.winStart] === RING_EVENT_CODE) kind = KIND_CODE.ring;
        const ref = this.u32LE(dataStart + 4);
        if (ref !== NO_INTERFACE && ref < this.interfaces.length - this.sectionBase) {
          about = this.sectionBase + ref;
        }
      }
    }
    // time relative to the first record, exact while the difference stays below 2^53 ns
    const scale = this.scales[iface]!;
    if (type === BLOCK_SPB) {
      // no timestamp: keep the previous record's time
    } else if (this.index.count === 0) {
      this.firstHi = tsHi;
      this.firstLo = tsLo;
      this.firstTime =
        (((BigInt(tsHi) << 32n) | BigInt(tsLo)) * 1_000_000_000n) / scale.unitsPerSecond +
        scale.offsetNs;
    }
    let relNs = this.index.count > 0 ? this.index.relNs(this.index.count - 1) : 0;
    if (type !== BLOCK_SPB) {
      if (!scale.hasBase) {
        scale.baseHi = tsHi;
        scale.baseLo = tsLo;
        const t =
          (((BigInt(tsHi) << 32n) | BigInt(tsLo)) * 1_000_000_000n) / scale.unitsPerSecond +
          scale.offsetNs;
        scale.baseRelNs = Number(t - (this.firstTime ?? t));
        scale.hasBase = true;
      }
      relNs =
        ((tsHi - scale.baseHi) * 4294967296 + (tsLo - scale.baseLo)) * scale.nsPerUnit +
        scale.baseRelNs;
    }
    this.index.push(pos, relNs, origLen, about, (flags & 3) | (kind << 2));
    return undefined;
  }

  private u32LE(at: number): number {
    return this.win.readUInt32LE(at - this.winStart);
  }

  /**
   * Walk an option list. `where` names the block while scanning: a damaged
   * list (an option running past the block, which tshark calls corrupt)
   * is then a warning, never a silent stop.
   */
  private readOptions(
    start: number,
    end: number,
    where: string | null,
    each: (code: number, valueStart: number, len: number) => void,
  ): void {
    let o = start;
    while (o + 4 <= end) {
      const code = this.u16(o);
      const len = this.u16(o + 2);
      if (code === OPT_ENDOFOPT) break;
      if (o + 4 + len > end) {
        // A damaged option list: keep what was read, and say so.
        if (where !== null) {
          this.problems.push(
            new CaptureError(
              'MalformedBlock',
              `${where}: option ${code} of length ${len} runs past the end of the block`,
              { path: this.path, offset: o },
            ),
          );
        }
        break;
      }
      each(code, o + 4, len);
      o += 4 + ((len + 3) & ~3);
    }
  }
}

/** Role, device and port of an interface from its name and description. */
function describeInterface(
  id: number,
  section: number,
  idInSection: number,
  linkType: number,
  snaplen: number,
  name: string | undefined,
  description: string | undefined,
  offset: number,
): InterfaceInfo {
  const info: InterfaceInfo = {
    id,
    section,
    idInSection,
    linkType,
    snaplen,
    name,
    description,
    role: 'foreign',
    device: undefined,
    port: undefined,
    portName: undefined,
    label: name ?? `if${idInSection}`,
    portKind: undefined,
    chardev: undefined,
    offset,
  };
  if (linkType !== LINKTYPE_USER0) return info;
  const port = description === undefined ? undefined : parsePortDescription(description);
  const control =
    description === undefined ? null : /^device (\S+), control messages$/.exec(description);
  if (port) {
    info.role = 'data';
    info.device = port.device;
    info.port = port.port;
    info.portKind = port.kind;
    info.chardev = port.chardev;
    info.portName = name === undefined || /^vport\d+p\d+$/.test(name) ? undefined : name;
    if (name === undefined) info.label = guestNodeName(0, port.port);
  } else if (control) {
    info.role = 'control';
    info.device = control[1];
  } else if (name === EVENTS_INTERFACE_NAME) {
    info.role = 'events';
  } else {
    info.role = 'data';
  }
  return info;
}

/** Parse a whole packet block (EPB, SPB or PB) held in `b`. */
function parsePacket(
  b: Buffer,
  little: boolean,
  offset: number,
  snaplenOf: (idInSection: number) => number,
): PacketBlock | CaptureError {
  const u32 = (o: number) => (little ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u16 = (o: number) => (little ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const type = u32(0);
  const total = b.length;
  if (type === BLOCK_SPB) {
    const origLen = u32(8);
    const snap = snaplenOf(0);
    let capLen = Math.min(origLen, total - 16);
    if (snap > 0) capLen = Math.min(capLen, snap);
    return {
      ifaceInSection: 0,
      tsHi: 0,
      tsLo: 0,
      capLen,
      origLen,
      data: b.subarray(12, 12 + capLen),
      flags: 0,
      comment: undefined,
    };
  }
  if (type !== BLOCK_EPB && type !== BLOCK_PB) {
    return new CaptureError('MalformedBlock', `block at offset ${offset} is not a packet block`, {
      offset,
    });
  }
  const capLen = u32(20);
  const block: PacketBlock = {
    ifaceInSection: type === BLOCK_PB ? u16(8) : u32(8),
    tsHi: u32(12),
    tsLo: u32(16),
    capLen,
    origLen: u32(24),
    data: b.subarray(28, 28 + capLen),
    flags: 0,
    comment: undefined,
  };
  let o = 28 + ((capLen + 3) & ~3);
  const end = total - 4;
  while (o + 4 <= end) {
    const code = u16(o);
    const len = u16(o + 2);
    if (code === OPT_ENDOFOPT || o + 4 + len > end) break;
    if (code === EPB_FLAGS && len >= 4) block.flags = u32(o + 4);
    else if (code === OPT_COMMENT) {
      const text = utf8.decode(b.subarray(o + 4, o + 4 + len));
      block.comment = block.comment === undefined ? text : `${block.comment}\n${text}`;
    }
    o += 4 + ((len + 3) & ~3);
  }
  return block;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

const EMPTY = new Uint8Array(0);

/** The reader's filter subject: fields from the index, bytes and text from disk on demand. */
class IndexSubject implements FilterSubject {
  kind: RecordKind = 'data';
  direction: Direction | undefined = undefined;
  length = 0;
  device: string | undefined = undefined;
  port: number | undefined = undefined;
  portName: string | undefined = undefined;
  portLabel: string | undefined = undefined;
  relTime = 0;
  private n = 0;

  constructor(private readonly reader: CaptureReader) {}

  load(n: number): void {
    const r = this.reader;
    this.n = n;
    const about = r.interfaceOf(n);
    this.kind = r.kind(n);
    this.direction = r.direction(n);
    this.length = r.length(n);
    this.device = about.device;
    const isPort = about.role === 'data';
    this.port = isPort ? about.port : undefined;
    this.portName = isPort ? about.portName : undefined;
    this.portLabel = isPort ? about.label : undefined;
    this.relTime = r.relativeNs(n) / 1e9;
  }

  payload(): Uint8Array {
    const p = this.reader.payload(this.n);
    return p instanceof CaptureError ? EMPTY : p;
  }

  text(): string | undefined {
    const c = this.reader.comment(this.n);
    return typeof c === 'string' ? c : undefined;
  }
}

/** Open and index a capture file (async, yields to the event loop while scanning). */
export function openCapture(
  path: string,
  options?: ReaderOptions,
): Promise<CaptureReader | CaptureError> {
  return CaptureReader.open(path, options);
}

/** Open and index a capture file synchronously. */
export function openCaptureSync(
  path: string,
  options?: ReaderOptions,
): CaptureReader | CaptureError {
  return CaptureReader.openSync(path, options);
}
