/**
 * pcapng writer: capture records as a file Wireshark, tshark and
 * `vmchan read` open (draft-ietf-opsawg-pcapng).
 *
 * File layout (little-endian, one section):
 *   - Section Header Block, shb_userappl `vmchan 0.1.0`, shb_os (optional),
 *     shb_hardware (optional).
 *   - Interface 0, `vmchan:events`: port and device events and ring
 *     operations. Each packet carries a 12-byte payload (below) and the
 *     event's text as opt_comment.
 *   - Per device, `<device>:control` (e.g. `vser0:control`), description
 *     `device vser0, control messages`: one packet per control message, the
 *     raw message bytes (le32 id, le16 event, le16 value, extra).
 *   - Per port, the port name (or the guest node name `vport0p2` for an
 *     unnamed port), description `device vser0, port 2, virtserialport,
 *     chardev c1 (unix:/path,server=on)`: the raw bytes of each buffer, so
 *     `tshark -x` shows exactly what crossed the channel. A hot-plugged port
 *     gets its interface block in the middle of the file, before its first
 *     packet; a re-plugged port with a new description gets a new one.
 *   All interfaces: link type 147 (LINKTYPE_USER0), snaplen 0 (no limit)
 *   unless a snap length is set, if_tsresol 9 (timestamps in nanoseconds
 *   since the Unix epoch).
 *
 * Direction convention (epb_flags bits 0-1): the guest is the capturing
 * side, as if the channel were a NIC inside the guest. host-to-guest is
 * INBOUND (01: the guest receives), guest-to-host is OUTBOUND (10: the guest
 * sends). Control messages follow the same rule: device-to-driver is
 * inbound, driver-to-device outbound. Events without a direction carry no
 * epb_flags (00, not available).
 *
 * Event payload (interface `vmchan:events`), little-endian:
 *   u8 version (1) · u8 code (EVENT_CODE in record.ts, 64 = ring operation)
 *   · le16 port number (0xffff: device-wide) · le32 interface id of the
 *   port's data interface, or of the device's control interface for
 *   device-wide events (0xffffffff: none) · le32 value (bytes dropped; ring:
 *   queue index) · UTF-8 detail (needs-reset: the rule id; ring: the op).
 *
 * Durability: blocks are assembled whole in a small buffer (1 MiB by
 * default: large enough that the page cache sees big writes, which matters
 * more than block-aligned sizes; see bench/capture.ts) and written through to the file descriptor with synchronous
 * writes when the buffer is full, when a record arrives more than 250 ms
 * after the oldest unwritten one, and from an unref'd 250 ms timer when the
 * engine is idle. A block never straddles two write calls (bigger blocks
 * are written alone), so a writer killed with SIGKILL leaves a file that
 * ends on a block boundary holding every record older than about 250 ms.
 * (That survives a process crash, not a power cut: the writer never fsyncs.)
 * Memory is the buffer plus, for a block larger than it, that one block.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { APP_NAME, VERSION } from '../version.js';
import { CaptureError, describeIoFailure } from './error.js';
import { nonRegularAt } from './regular-file.js';
import {
  EVENT_CODE,
  RING_EVENT_CODE,
  portDescription,
  portLabel,
  type CaptureInterface,
  type CaptureRecord,
  type CaptureSink,
  type Direction,
} from './record.js';

export const LINKTYPE_USER0 = 147;
export const BLOCK_SHB = 0x0a0d0d0a;
export const BLOCK_IDB = 0x00000001;
export const BLOCK_EPB = 0x00000006;
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

export const OPT_ENDOFOPT = 0;
export const OPT_COMMENT = 1;
export const SHB_HARDWARE = 2;
export const SHB_OS = 3;
export const SHB_USERAPPL = 4;
export const IF_NAME = 2;
export const IF_DESCRIPTION = 3;
export const IF_TSRESOL = 9;
export const EPB_FLAGS = 2;

/** epb_flags direction bits: the guest's view (see the file comment). */
export const FLAG_INBOUND = 1;
export const FLAG_OUTBOUND = 2;

export function directionFlags(d: Direction | undefined): number {
  if (d === undefined) return 0;
  return d === 'host-to-guest' ? FLAG_INBOUND : FLAG_OUTBOUND;
}

/** Default size of the writer's block buffer. */
export const DEFAULT_BUFFER_BYTES = 1024 * 1024;

export const EVENTS_INTERFACE_NAME = `${APP_NAME}:events`;
export const EVENTS_INTERFACE_DESCRIPTION = `${APP_NAME} events: port and device state changes, drops, resets and ring operations (text in the packet comment)`;
export const EVENT_PAYLOAD_VERSION = 1;
export const EVENT_HEADER_BYTES = 12;
export const NO_PORT = 0xffff;
export const NO_INTERFACE = 0xffffffff;

export function controlInterfaceName(device: string): string {
  return `${device}:control`;
}
export function controlInterfaceDescription(device: string): string {
  return `device ${device}, control messages`;
}

export interface PcapngWriterOptions {
  /** shb_os; default `${os.type()} ${os.release()}`; false to leave it out. */
  os?: string | false;
  /** shb_hardware; left out by default. */
  hardware?: string;
  /** A comment on the section header (opt_comment). */
  comment?: string;
  /** Size of the block buffer; default 1 MiB (DEFAULT_BUFFER_BYTES). */
  bufferBytes?: number;
  /** Longest time a record waits in the buffer; default 250 ms. */
  flushIntervalMs?: number;
  /** Keep at most this many bytes of each packet (0: all; the default). */
  snaplen?: number;
  /** Clock for the flush deadline (tests); default Date.now. */
  clock?: () => number;
}

/** Where the writer's bytes go: a file descriptor, or memory for tests and exports. */
export interface ByteOutput {
  write(chunk: Uint8Array): CaptureError | undefined;
  close(): CaptureError | undefined;
}

/** Writes through to a file descriptor, whole chunks, retrying short writes. */
export class FdOutput implements ByteOutput {
  private fd: number | undefined;
  constructor(
    fd: number,
    private readonly path: string | undefined,
    private readonly ownsFd = true,
  ) {
    this.fd = fd;
  }

  write(chunk: Uint8Array): CaptureError | undefined {
    if (this.fd === undefined) return new CaptureError('SinkClosed', 'capture file is closed');
    try {
      let off = 0;
      while (off < chunk.length) off += fs.writeSync(this.fd, chunk, off, chunk.length - off);
      return undefined;
    } catch (err) {
      return new CaptureError('IoError', `cannot write capture: ${describeIoFailure(err)}`, {
        path: this.path,
      });
    }
  }

  close(): CaptureError | undefined {
    const fd = this.fd;
    this.fd = undefined;
    if (fd === undefined || !this.ownsFd) return undefined;
    try {
      fs.closeSync(fd);
      return undefined;
    } catch (err) {
      return new CaptureError('IoError', `cannot close capture: ${describeIoFailure(err)}`, {
        path: this.path,
      });
    }
  }
}

/** Create (truncate) a regular capture file for writing; refuses FIFOs, devices and directories. */
export function createCaptureOutput(path: string): FdOutput | CaptureError {
  const what = nonRegularAt(path);
  if (what !== null) {
    return new CaptureError(
      'NotRegularFile',
      `cannot create capture file: it is ${what}; a capture is written to a regular file`,
      { path },
    );
  }
  try {
    const c = fs.constants;
    // O_NONBLOCK: should a FIFO appear there meanwhile, the open fails instead of waiting.
    const fd = fs.openSync(path, c.O_WRONLY | c.O_CREAT | c.O_TRUNC | c.O_NONBLOCK, 0o666);
    return new FdOutput(fd, path);
  } catch (err) {
    return new CaptureError('IoError', `cannot create capture file: ${describeIoFailure(err)}`, {
      path,
    });
  }
}

/** Keeps every chunk (copied); `bytes()` joins them. */
export class MemoryOutput implements ByteOutput {
  private chunks: Uint8Array[] = [];
  write(chunk: Uint8Array): CaptureError | undefined {
    this.chunks.push(new Uint8Array(chunk));
    return undefined;
  }
  close(): CaptureError | undefined {
    return undefined;
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

interface PortInterface {
  id: number;
  name: string;
  description: string;
}

const pad4 = (n: number): number => (n + 3) & ~3;
const ZERO = new Uint8Array(8);
const TIME64 = new BigUint64Array(1);
const TIME32 = new Uint32Array(TIME64.buffer);
const LITTLE_HOST = os.endianness() === 'LE';
const HI = LITTLE_HOST ? 1 : 0;
const LO = LITTLE_HOST ? 0 : 1;

export class PcapngWriter implements CaptureSink {
  private readonly out: ByteOutput;
  private readonly buf: Buffer;
  private readonly view: DataView;
  private used = 0;
  private readonly flushMs: number;
  private readonly clock: () => number;
  private readonly snaplen: number;
  /** Clock reading when the oldest unwritten block entered the buffer. */
  private pendingSince = 0;
  private timer: NodeJS.Timeout | undefined;
  private failed: CaptureError | undefined;
  /** A one-off buffer for a block larger than `buf` (see reserve). */
  private oversize: Buffer | undefined;
  private closed = false;

  private nextInterface = 0;
  /** Per device, the current interface of each port number. */
  private readonly ports = new Map<string, (PortInterface | undefined)[]>();
  private readonly controls = new Map<string, number>();
  private readonly eventsInterface: number;

  /** Packets written (records). */
  records = 0;
  /** Bytes handed to the output (the file size once flushed). */
  bytesWritten = 0;

  /** The file's size once everything written so far is flushed. */
  get size(): number {
    return this.bytesWritten + this.used;
  }

  /** Create (truncate) a capture file and write its section header. */
  static create(path: string, options: PcapngWriterOptions = {}): PcapngWriter | CaptureError {
    const out = createCaptureOutput(path);
    if (out instanceof CaptureError) return out;
    const w = new PcapngWriter(out, options);
    // The section header is on disk at once: a reader that opens the file
    // before the first timed flush (the app's "Show live") finds a capture
    // with no records yet, never an empty file.
    return w.failed ?? w.flush() ?? w;
  }

  /** Write to any output (an already open fd via FdOutput, or MemoryOutput). */
  static to(out: ByteOutput, options: PcapngWriterOptions = {}): PcapngWriter | CaptureError {
    const w = new PcapngWriter(out, options);
    return w.failed ?? w;
  }

  private constructor(out: ByteOutput, options: PcapngWriterOptions) {
    this.out = out;
    const size = Math.max(4096, options.bufferBytes ?? DEFAULT_BUFFER_BYTES) & ~3;
    const ab = new ArrayBuffer(size);
    this.buf = Buffer.from(ab);
    this.view = new DataView(ab);
    this.flushMs = options.flushIntervalMs ?? 250;
    this.clock = options.clock ?? Date.now;
    this.snaplen = options.snaplen ?? 0;
    this.writeSectionHeader(options);
    this.eventsInterface = this.writeInterface(EVENTS_INTERFACE_NAME, EVENTS_INTERFACE_DESCRIPTION);
  }

  // -- CaptureSink -------------------------------------------------------------------------

  addInterface(iface: CaptureInterface): CaptureError | undefined {
    if (this.failed) return this.failed;
    this.controlInterface(iface.device);
    const name = portLabel(iface);
    const description = portDescription(iface);
    let ports = this.ports.get(iface.device);
    if (!ports) this.ports.set(iface.device, (ports = []));
    const known = ports[iface.port];
    if (known && known.name === name && known.description === description) return undefined;
    const id = this.writeInterface(name, description);
    ports[iface.port] = { id, name, description };
    return this.failed;
  }

  write(record: CaptureRecord): CaptureError | undefined {
    if (this.failed) return this.failed;
    switch (record.kind) {
      case 'data': {
        // A record without a port (read from a foreign file) gets an interface of its own.
        const iface = this.portInterface(record.device, record.port ?? -1, record.portName);
        this.writeFrame(iface, record.time, record.bytes, record.length, record.direction);
        break;
      }
      case 'control':
        this.writeFrame(
          this.controlInterface(record.device),
          record.time,
          record.bytes,
          record.length,
          record.direction,
        );
        break;
      case 'event':
      case 'ring': {
        const code = record.kind === 'ring' ? RING_EVENT_CODE : EVENT_CODE[record.event];
        const value = record.kind === 'ring' ? record.queue : (record.count ?? 0);
        const detail = record.kind === 'ring' ? record.op : (record.rule ?? '');
        const ref =
          record.port === undefined
            ? this.controlInterface(record.device)
            : this.portInterface(record.device, record.port, record.portName);
        this.writePacket(
          this.eventsInterface,
          record.time,
          undefined,
          0,
          directionFlags(record.direction),
          record.text,
          {
            code,
            port: record.port ?? NO_PORT,
            ref,
            value,
            detail,
          },
        );
        break;
      }
    }
    return this.failed;
  }

  flush(): CaptureError | undefined {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.failed) {
      this.used = 0; // nothing more reaches the output after a failure
      return this.failed;
    }
    if (this.used === 0) return undefined;
    const err = this.out.write(this.buf.subarray(0, this.used));
    this.bytesWritten += this.used;
    this.used = 0;
    if (err) this.failed = err;
    return this.failed;
  }

  close(): CaptureError | undefined {
    if (this.closed) return undefined;
    const err = this.flush();
    this.closed = true;
    const closeErr = this.out.close();
    this.failed ??= new CaptureError('SinkClosed', 'capture file is closed');
    return err ?? closeErr;
  }

  /** The interface id packets of this port go to (tests, and tools that index by port). */
  interfaceOf(device: string, port: number): number | undefined {
    return this.ports.get(device)?.[port]?.id;
  }

  // -- interfaces --------------------------------------------------------------------------

  private controlInterface(device: string): number {
    let id = this.controls.get(device);
    if (id === undefined) {
      id = this.writeInterface(controlInterfaceName(device), controlInterfaceDescription(device));
      this.controls.set(device, id);
    }
    return id;
  }

  private portInterface(device: string, port: number, portName: string | undefined): number {
    const known = this.ports.get(device)?.[port];
    if (known) return known.id;
    // The device did not announce this port: describe it from what the record says.
    this.addInterface({
      device,
      deviceIndex: 0,
      port,
      kind: port === 0 ? 'virtconsole' : 'virtserialport',
      name: portName ?? `${device}-port${port}`,
    });
    return this.ports.get(device)![port]!.id;
  }

  // -- blocks ------------------------------------------------------------------------------

  private writeSectionHeader(options: PcapngWriterOptions): void {
    const opts: [number, string][] = [];
    if (options.comment) opts.push([OPT_COMMENT, options.comment]);
    if (options.hardware) opts.push([SHB_HARDWARE, options.hardware]);
    const osText = options.os === undefined ? `${os.type()} ${os.release()}` : options.os;
    if (osText) opts.push([SHB_OS, osText]);
    opts.push([SHB_USERAPPL, `${APP_NAME} ${VERSION}`]);
    const encoded = opts.map(([code, text]) => [code, Buffer.from(text, 'utf8')] as const);
    const optLen = encoded.reduce((n, [, b]) => n + 4 + pad4(b.length), 0) + 4;
    const total = 28 + optLen;
    const b = this.reserve(total);
    let o = this.used;
    o = b.writeUInt32LE(BLOCK_SHB, o);
    o = b.writeUInt32LE(total, o);
    o = b.writeUInt32LE(BYTE_ORDER_MAGIC, o);
    o = b.writeUInt16LE(1, o);
    o = b.writeUInt16LE(0, o);
    o = b.writeInt32LE(-1, o); // section length unknown (-1 as a 64-bit value)
    o = b.writeInt32LE(-1, o);
    for (const [code, bytes] of encoded) o = writeOption(b, o, code, bytes);
    o = b.writeUInt32LE(0, o); // opt_endofopt
    o = b.writeUInt32LE(total, o);
    this.commit(o);
  }

  private writeInterface(name: string, description: string): number {
    const id = this.nextInterface++;
    const nameBytes = Buffer.from(name, 'utf8');
    const descBytes = Buffer.from(description, 'utf8');
    const optLen = 4 + pad4(nameBytes.length) + 4 + pad4(descBytes.length) + 8 + 4;
    const total = 20 + optLen;
    const b = this.reserve(total);
    let o = this.used;
    o = b.writeUInt32LE(BLOCK_IDB, o);
    o = b.writeUInt32LE(total, o);
    o = b.writeUInt16LE(LINKTYPE_USER0, o);
    o = b.writeUInt16LE(0, o);
    o = b.writeUInt32LE(this.snaplen, o);
    o = writeOption(b, o, IF_NAME, nameBytes);
    o = writeOption(b, o, IF_DESCRIPTION, descBytes);
    o = writeOption(b, o, IF_TSRESOL, Uint8Array.of(9));
    o = b.writeUInt32LE(0, o);
    o = b.writeUInt32LE(total, o);
    this.commit(o);
    return id;
  }

  /**
   * The hot path: one enhanced packet block with raw bytes and a direction,
   * written with aligned DataView stores (every block starts 4-aligned).
   */
  private writeFrame(
    iface: number,
    time: bigint,
    bytes: Uint8Array,
    length: number,
    direction: Direction | undefined,
  ): void {
    let capLen = bytes.length;
    if (this.snaplen > 0 && capLen > this.snaplen) capLen = this.snaplen;
    const flags =
      direction === undefined ? 0 : direction === 'host-to-guest' ? FLAG_INBOUND : FLAG_OUTBOUND;
    const total = 32 + ((capLen + 3) & ~3) + (flags ? 12 : 0);
    const b = this.reserve(total);
    const v = b === this.buf ? this.view : new DataView(b.buffer, b.byteOffset, b.byteLength);
    let o = this.used;
    TIME64[0] = time; // split the 64-bit timestamp without allocating BigInts
    v.setUint32(o, BLOCK_EPB, true);
    v.setUint32(o + 4, total, true);
    v.setUint32(o + 8, iface, true);
    v.setUint32(o + 12, TIME32[HI]!, true);
    v.setUint32(o + 16, TIME32[LO]!, true);
    v.setUint32(o + 20, capLen, true);
    v.setUint32(o + 24, length, true);
    b.set(capLen === bytes.length ? bytes : bytes.subarray(0, capLen), o + 28);
    o += 28 + capLen;
    while (o & 3) b[o++] = 0;
    if (flags) {
      v.setUint32(o, EPB_FLAGS | (4 << 16), true); // option code, length 4
      v.setUint32(o + 4, flags, true);
      v.setUint32(o + 8, OPT_ENDOFOPT, true);
      o += 12;
    }
    v.setUint32(o, total, true);
    this.commit(o + 4);
    this.records++;
  }

  private writePacket(
    iface: number,
    time: bigint,
    bytes: Uint8Array | undefined,
    length: number,
    flags: number,
    comment: string | undefined,
    event: { code: number; port: number; ref: number; value: number; detail: string } | undefined,
  ): void {
    let detail: Buffer | undefined;
    let capLen: number;
    if (event) {
      detail = Buffer.from(event.detail, 'utf8');
      capLen = EVENT_HEADER_BYTES + detail.length;
      length = capLen;
    } else {
      capLen = bytes!.length;
      if (this.snaplen > 0 && capLen > this.snaplen) capLen = this.snaplen;
    }
    const commentLen = comment ? Buffer.byteLength(comment, 'utf8') : 0;
    const optLen =
      (flags ? 8 : 0) + (comment ? 4 + pad4(commentLen) : 0) + (flags || comment ? 4 : 0);
    const total = 32 + pad4(capLen) + optLen;
    const b = this.reserve(total);
    let o = this.used;
    o = b.writeUInt32LE(BLOCK_EPB, o);
    o = b.writeUInt32LE(total, o);
    o = b.writeUInt32LE(iface, o);
    // split the 64-bit timestamp without allocating BigInts: store it, read two halves
    TIME64[0] = time;
    o = b.writeUInt32LE(TIME32[HI]!, o);
    o = b.writeUInt32LE(TIME32[LO]!, o);
    o = b.writeUInt32LE(capLen, o);
    o = b.writeUInt32LE(length, o);
    if (event) {
      b[o] = EVENT_PAYLOAD_VERSION;
      b[o + 1] = event.code;
      b.writeUInt16LE(event.port & 0xffff, o + 2);
      b.writeUInt32LE(event.ref >>> 0, o + 4);
      b.writeUInt32LE(Math.min(event.value, 0xffffffff) >>> 0, o + 8);
      b.set(detail!, o + EVENT_HEADER_BYTES);
    } else if (capLen === bytes!.length) {
      b.set(bytes!, o);
    } else {
      b.set(bytes!.subarray(0, capLen), o);
    }
    o += capLen;
    const padded = pad4(capLen) - capLen;
    if (padded) {
      b.set(ZERO.subarray(0, padded), o);
      o += padded;
    }
    if (flags) {
      o = b.writeUInt16LE(EPB_FLAGS, o);
      o = b.writeUInt16LE(4, o);
      o = b.writeUInt32LE(flags, o);
    }
    if (comment) {
      o = b.writeUInt16LE(OPT_COMMENT, o);
      o = b.writeUInt16LE(commentLen, o);
      o += b.write(comment, o, 'utf8');
      const p = pad4(commentLen) - commentLen;
      if (p) {
        b.set(ZERO.subarray(0, p), o);
        o += p;
      }
    }
    if (flags || comment) o = b.writeUInt32LE(0, o);
    o = b.writeUInt32LE(total, o);
    this.commit(o);
    this.records++;
  }

  /**
   * A buffer with room for a whole block of `total` bytes at `this.used`:
   * the shared buffer (flushed first if the block does not fit), or, for a
   * block larger than the buffer, a one-off buffer written alone by commit.
   */
  private reserve(total: number): Buffer {
    if (this.used + total <= this.buf.length) return this.buf;
    this.flush();
    if (total <= this.buf.length) return this.buf;
    this.oversize = Buffer.allocUnsafe(total);
    return this.oversize;
  }

  private commit(end: number): void {
    if (this.oversize) {
      const block = this.oversize;
      this.oversize = undefined;
      const err = this.out.write(block.subarray(0, end));
      this.bytesWritten += end;
      if (err) this.failed ??= err;
      return;
    }
    const wasEmpty = this.used === 0;
    this.used = end;
    const now = this.clock();
    if (wasEmpty) {
      this.pendingSince = now;
      if (this.flushMs > 0 && !this.timer) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.flush();
        }, this.flushMs);
        this.timer.unref();
      }
    } else if (now - this.pendingSince >= this.flushMs) {
      this.flush();
    }
  }
}

function writeOption(b: Buffer, o: number, code: number, value: Uint8Array): number {
  o = b.writeUInt16LE(code, o);
  o = b.writeUInt16LE(value.length, o);
  b.set(value, o);
  o += value.length;
  const p = pad4(value.length) - value.length;
  if (p) {
    b.set(ZERO.subarray(0, p), o);
    o += p;
  }
  return o;
}
