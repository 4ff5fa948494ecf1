/**
 * Follow stream: the conversation on one port, both directions in time
 * order, as tshark's `-z follow` and Wireshark's Follow Stream show a TCP
 * connection.
 *
 * A stream is a list of segments (one per data record, in capture order)
 * with their direction. It renders as:
 *   - raw bytes of one direction (`followRaw`), to save or diff;
 *   - a hex dump with direction markers (`followHex`): `H>` lines are what
 *     the host sent to the guest, `G>` lines what the guest sent; offsets
 *     count each direction on its own, as tshark does;
 *   - text (`followText`), non-printable bytes as '.', each line marked.
 * Consecutive segments in the same direction are shown as one run.
 */
import { CaptureError } from './error.js';
import { printable } from './format.js';
import type { CaptureReader } from './pcapng-reader.js';
import type { CaptureRecord, Direction } from './record.js';

export interface PortSelector {
  /** Device (qdev id); needed only when port numbers repeat across devices. */
  device?: string;
  /** Port number, or name (`test1`), or guest node name (`vport0p2`). */
  port: number | string;
}

export interface FollowSegment {
  /** Record number (0-based) the bytes came from. */
  record: number;
  /** ns since the epoch. */
  time: bigint;
  direction: Direction;
  bytes: Uint8Array;
}

export interface FollowStream {
  device: string;
  port: number | undefined;
  /** The port's name or label. */
  label: string;
  segments: FollowSegment[];
  /** Bytes per direction. */
  hostToGuest: number;
  guestToHost: number;
  /** True when `maxBytes` stopped the collection early. */
  truncated: boolean;
}

export interface FollowOptions {
  /** Stop collecting after this many bytes (default 256 MiB). */
  maxBytes?: number;
}

const DEFAULT_MAX = 256 * 1024 * 1024;

function matches(
  sel: PortSelector,
  device: string | undefined,
  port: number | undefined,
  names: (string | undefined)[],
): boolean {
  if (sel.device !== undefined && sel.device !== device) return false;
  if (typeof sel.port === 'number') return port === sel.port;
  return names.includes(sel.port);
}

function describeSelector(sel: PortSelector): string {
  return sel.device === undefined ? `port ${sel.port}` : `port ${sel.port} on ${sel.device}`;
}

/** Follow a port through records held in memory. */
export function followRecords(
  records: Iterable<CaptureRecord>,
  sel: PortSelector,
  options: FollowOptions = {},
): FollowStream | CaptureError {
  const max = options.maxBytes ?? DEFAULT_MAX;
  let stream: FollowStream | undefined;
  let n = -1;
  for (const r of records) {
    n++;
    if (r.kind !== 'data' || r.direction === undefined) continue;
    if (!matches(sel, r.device, r.port, [r.portName])) continue;
    stream ??= {
      device: r.device,
      port: r.port,
      label: r.portName ?? `${r.device}/p${r.port}`,
      segments: [],
      hostToGuest: 0,
      guestToHost: 0,
      truncated: false,
    };
    if (!add(stream, n, r.time, r.direction, new Uint8Array(r.bytes), max)) break;
  }
  return (
    stream ?? new CaptureError('NoSuchPort', `no data for ${describeSelector(sel)} in this capture`)
  );
}

/** Follow a port through a capture file (reads only that port's records). */
export function followCapture(
  reader: CaptureReader,
  sel: PortSelector,
  options: FollowOptions = {},
): FollowStream | CaptureError {
  const max = options.maxBytes ?? DEFAULT_MAX;
  const wanted = new Set<number>();
  for (const info of reader.interfaces) {
    if (info.role !== 'data' || info.port === undefined) continue;
    if (matches(sel, info.device, info.port, [info.portName, info.label])) wanted.add(info.id);
  }
  if (wanted.size === 0) {
    return new CaptureError('NoSuchPort', `no ${describeSelector(sel)} in this capture`, {
      path: reader.path,
    });
  }
  const first = reader.interfaces[[...wanted][0]!]!;
  const stream: FollowStream = {
    device: first.device ?? '',
    port: first.port,
    label: first.label,
    segments: [],
    hostToGuest: 0,
    guestToHost: 0,
    truncated: false,
  };
  for (let n = 0; n < reader.count; n++) {
    if (reader.kind(n) !== 'data') continue;
    if (!wanted.has(reader.interfaceOf(n).id)) continue;
    const direction = reader.direction(n);
    if (direction === undefined) continue;
    const bytes = reader.payload(n);
    if (bytes instanceof CaptureError) return bytes;
    const time = reader.time(n);
    if (time instanceof CaptureError) return time;
    if (!add(stream, n, time, direction, new Uint8Array(bytes), max)) break;
  }
  return stream;
}

function add(
  stream: FollowStream,
  record: number,
  time: bigint,
  direction: Direction,
  bytes: Uint8Array,
  max: number,
): boolean {
  const total = stream.hostToGuest + stream.guestToHost;
  if (total + bytes.length > max) {
    stream.truncated = true;
    return false;
  }
  stream.segments.push({ record, time, direction, bytes });
  if (direction === 'host-to-guest') stream.hostToGuest += bytes.length;
  else stream.guestToHost += bytes.length;
  return true;
}

/** All bytes one direction carried, in order. */
export function followRaw(stream: FollowStream, direction: Direction): Uint8Array {
  const size = direction === 'host-to-guest' ? stream.hostToGuest : stream.guestToHost;
  const out = new Uint8Array(size);
  let o = 0;
  for (const s of stream.segments) {
    if (s.direction !== direction) continue;
    out.set(s.bytes, o);
    o += s.bytes.length;
  }
  return out;
}

/** Consecutive same-direction segments joined into runs. */
export function followRuns(stream: FollowStream): { direction: Direction; bytes: Uint8Array }[] {
  const runs: { direction: Direction; parts: Uint8Array[]; size: number }[] = [];
  for (const s of stream.segments) {
    const last = runs[runs.length - 1];
    if (last && last.direction === s.direction) {
      last.parts.push(s.bytes);
      last.size += s.bytes.length;
    } else runs.push({ direction: s.direction, parts: [s.bytes], size: s.bytes.length });
  }
  return runs.map((r) => {
    const bytes = new Uint8Array(r.size);
    let o = 0;
    for (const p of r.parts) {
      bytes.set(p, o);
      o += p.length;
    }
    return { direction: r.direction, bytes };
  });
}

/** `H>` marks host-to-guest, `G>` guest-to-host (who is talking). */
export function followMarker(d: Direction): string {
  return d === 'host-to-guest' ? 'H>' : 'G>';
}

function header(stream: FollowStream, mode: string): string {
  const where = stream.port === undefined ? stream.device : `${stream.device} port ${stream.port}`;
  return [
    '='.repeat(67),
    `Follow: vmchan,${mode}`,
    `Port: ${stream.label} (${where})`,
    `H> host-to-guest: ${stream.hostToGuest} bytes`,
    `G> guest-to-host: ${stream.guestToHost} bytes${stream.truncated ? ' (stopped early: size limit)' : ''}`,
  ].join('\n');
}

/**
 * Hex dump with direction markers, offsets counted per direction:
 *     H> 00000000  68 65 6c 6c 6f 0a                                   hello.
 *     G> 00000000  6f 6b 0a                                            ok.
 */
export function followHex(stream: FollowStream): string {
  const lines = [header(stream, 'hex')];
  const offsets = { 'host-to-guest': 0, 'guest-to-host': 0 };
  for (const run of followRuns(stream)) {
    const mark = followMarker(run.direction);
    const b = run.bytes;
    for (let i = 0; i < b.length; i += 16) {
      const row = b.subarray(i, i + 16);
      const hex = [...row].map((x) => x.toString(16).padStart(2, '0'));
      const left = hex.slice(0, 8).join(' ');
      const right = hex.slice(8).join(' ');
      const cols = `${left}${right ? `  ${right}` : ''}`.padEnd(48);
      const off = (offsets[run.direction] + i).toString(16).padStart(8, '0');
      lines.push(`${mark} ${off}  ${cols}  ${printable(row)}`);
    }
    offsets[run.direction] += b.length;
  }
  lines.push('='.repeat(67));
  return lines.join('\n');
}

/**
 * The conversation as text: newlines end lines, other non-printable bytes
 * show as '.', and every line starts with its direction's marker.
 */
export function followText(stream: FollowStream): string {
  const lines = [header(stream, 'text')];
  for (const run of followRuns(stream)) {
    const mark = followMarker(run.direction);
    let line = '';
    const b = run.bytes;
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      if (c === 0x0a) {
        lines.push(`${mark} ${line}`);
        line = '';
      } else line += (c >= 0x20 && c < 0x7f) || c === 0x09 ? String.fromCharCode(c) : '.';
    }
    if (line !== '') lines.push(`${mark} ${line}`);
  }
  lines.push('='.repeat(67));
  return lines.join('\n');
}
