/**
 * Text renderings of records, in the manner of tshark: one summary line per
 * record, and the `-x` hex dump.
 *
 *     1 0.000000000 vser0        G→H      8 DEVICE_READY id=0xffffffff value=1
 *     3 0.000002000 test1        H→G     12 hello guest.
 *     4 0.000003000 vport0p2      ·       0 vport0p2: port added
 *
 * Pure functions without node:*, usable from the CLI and the app.
 */
import { decodePayload } from './protocols.js';
import { controlSummary, type CaptureRecord, type Direction } from './record.js';

export interface FormatOptions {
  /** ASCII arrows (`H->G`) instead of `H→G`. */
  ascii?: boolean;
  /** Characters of data shown as text in a summary (default 48). */
  textWidth?: number;
}

/** `H→G` for host-to-guest, `G→H` for guest-to-host, ` · ` when the record has no direction. */
export function directionArrow(d: Direction | undefined, ascii = false): string {
  if (d === undefined) return ascii ? ' .  ' : ' · ';
  if (ascii) return d === 'host-to-guest' ? 'H->G' : 'G->H';
  return d === 'host-to-guest' ? 'H→G' : 'G→H';
}

/** The port column: the port's name, `vser0/p3` for an unnamed port, the device for device-wide records. */
export function portColumn(record: CaptureRecord): string {
  if (record.portName !== undefined) return record.portName;
  if (record.port !== undefined)
    return record.device ? `${record.device}/p${record.port}` : `p${record.port}`;
  return record.device || '-';
}

/** Bytes as text: printable ASCII kept, everything else '.', cut with '…' after `width` characters. */
export function printable(bytes: Uint8Array, width = Infinity): string {
  const n = Math.min(bytes.length, width);
  let s = '';
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
  }
  return bytes.length > n ? `${s}…` : s;
}

/** The summary column: control message fields, event text, or the first bytes of data as text. */
export function recordSummary(record: CaptureRecord, options: FormatOptions = {}): string {
  switch (record.kind) {
    case 'control':
      return controlSummary(record.control);
    case 'event':
    case 'ring':
      return record.text;
    case 'data': {
      if (record.bytes.length === 0) return '(empty)';
      const text = printable(record.bytes, options.textWidth ?? 48);
      return record.bytes.length < record.length
        ? `${text} [${record.length - record.bytes.length} bytes not captured]`
        : text;
    }
  }
}

/** The Protocol column: the decoded protocol of a data record, else the record kind. */
export function protocolColumn(record: CaptureRecord): string {
  if (record.kind !== 'data') return record.kind;
  return decodePayload(record.portName, record.bytes)?.protocol ?? 'data';
}

/**
 * One line per record, tshark style: number (1-based, as tshark's
 * frame.number), seconds since the first record, port, direction, length,
 * summary.
 */
export function summaryLine(
  number: number,
  relativeSeconds: number,
  record: CaptureRecord,
  options: FormatOptions = {},
): string {
  return [
    String(number).padStart(5),
    relativeSeconds.toFixed(9).padStart(12),
    portColumn(record).padEnd(12),
    directionArrow(record.direction, options.ascii),
    String(record.length).padStart(6),
    recordSummary(record, options),
  ].join(' ');
}

/**
 * The hex dump of tshark -x: offset, 16 bytes, their text.
 *     0000  68 65 6c 6c 6f 20 67 75 65 73 74 0a               hello guest.
 */
export function hexDump(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let off = 0; off < bytes.length; off += 16) {
    const row = bytes.subarray(off, off + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const offset = off.toString(16).padStart(off >= 0x10000 ? 8 : 4, '0');
    lines.push(`${offset}  ${hex.padEnd(47)}   ${printable(row)}`);
  }
  return lines.join('\n');
}

/** A decoded field's value as tshark -V prints it (booleans as True/False). */
export function fieldText(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

/**
 * `vmchan read -V`: the record's detail tree, shaped like `tshark -V` with
 * the dissector (a line per subtree, four spaces per level), so the decoded
 * protocol's lines read the same in both.
 */
export function detailTree(
  number: number,
  relativeSeconds: number,
  record: CaptureRecord,
  options: FormatOptions = {},
): string {
  const lines = [
    `Frame ${number}: ${record.length} bytes, ${portColumn(record)} ${directionArrow(record.direction, options.ascii).trim()} at ${relativeSeconds.toFixed(9)} s`,
    `vmchan ${record.kind}`,
    `    Kind: ${record.kind}`,
  ];
  if (record.device) lines.push(`    Device: ${record.device}`);
  if (record.direction !== undefined)
    lines.push(
      `    Direction: ${record.direction === 'host-to-guest' ? 'h2g (host-to-guest)' : 'g2h (guest-to-host)'}`,
    );
  if (record.port !== undefined) lines.push(`    Port number: ${record.port}`);
  if (record.portName !== undefined) lines.push(`    Port: ${record.portName}`);
  lines.push(`    Summary: ${recordSummary(record, options)}`);
  if (record.kind === 'data') {
    const decoded = decodePayload(record.portName, record.bytes);
    if (decoded !== undefined) {
      lines.push(decoded.title);
      for (const f of decoded.fields) lines.push(`    ${f.label}: ${fieldText(f.value)}`);
    }
  }
  return lines.join('\n');
}
