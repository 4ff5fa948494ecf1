/**
 * What travels over a channel, decoded: the payload of a data record handed
 * to a protocol chosen by the port's name, as the Wireshark dissector
 * (assets/wireshark/vmchan.lua) does, field for field:
 *
 *   org.qemu.guest_agent.0    qga: the guest agent's JSON (commands, answers,
 *                             errors, the 0xFF sync delimiter)
 *   com.redhat.spice.0        vdagent: SPICE's chunk header and agent message header
 *   org.libguestfs.channel.0  guestfs: the XDR length word and message header
 *   anything else             json (a JSON object or array) or text (printable lines)
 *
 * The table is the user's to extend ({@link setPortProtocol}); the Lua side
 * has the same table (`vmchan.port_protocols`). Field names are the filter
 * names: `qga.command` here, `vmchan.qga.command` in Wireshark. Pure
 * TypeScript without node:*, so the renderer can use it.
 */

export type ProtocolId = 'qga' | 'vdagent' | 'guestfs' | 'json' | 'text';

export interface DecodedField {
  /** Filter name without the `vmchan.` prefix: `qga.command`. */
  name: string;
  /** What tshark -V and `vmchan read -V` print before the value. */
  label: string;
  value: string | number | boolean;
}

export interface DecodedPayload {
  protocol: ProtocolId;
  /** The protocol's title in a detail tree (`QEMU Guest Agent`). */
  title: string;
  /** One line for the Info / summary column. */
  summary: string;
  fields: DecodedField[];
}

export const PROTOCOL_TITLES: Record<ProtocolId, string> = {
  qga: 'QEMU Guest Agent',
  vdagent: 'SPICE vdagent',
  guestfs: 'libguestfs channel',
  json: 'JSON lines',
  text: 'Text lines',
};

const DEFAULT_PORT_PROTOCOLS: [string, ProtocolId][] = [
  ['org.qemu.guest_agent.0', 'qga'],
  ['com.redhat.spice.0', 'vdagent'],
  ['org.libguestfs.channel.0', 'guestfs'],
];
const portProtocols = new Map<string, ProtocolId>(DEFAULT_PORT_PROTOCOLS);

/** Decode a port's traffic as `protocol` (undefined: back to guessing json/text). */
export function setPortProtocol(portName: string, protocol: ProtocolId | undefined): void {
  if (protocol === undefined) portProtocols.delete(portName);
  else portProtocols.set(portName, protocol);
}

export function portProtocol(portName: string | undefined): ProtocolId | undefined {
  return portName === undefined ? undefined : portProtocols.get(portName);
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/** Decode one buffer of a port's data; undefined when nothing fits. */
export function decodePayload(
  portName: string | undefined,
  bytes: Uint8Array,
): DecodedPayload | undefined {
  if (bytes.length === 0) return undefined;
  switch (portProtocol(portName)) {
    case 'qga':
      return decodeQga(bytes);
    case 'vdagent':
      return decodeVdagent(bytes);
    case 'guestfs':
      return decodeGuestfs(bytes);
    case 'json':
      return decodeJson(bytes) ?? decodeText(bytes);
    case 'text':
      return decodeText(bytes);
    default:
      return decodeJson(bytes) ?? decodeText(bytes);
  }
}

const field = (name: string, label: string, value: string | number | boolean): DecodedField => ({
  name,
  label,
  value,
});

// ---------------------------------------------------------------------------
// qemu-ga: JSON objects, and a 0xFF byte before the answer to guest-sync-delimited
// (and sent by a client to flush the agent's parser).

/** The first JSON object in text that holds several or a partial one. */
function firstJsonObject(text: string): Record<string, unknown> | undefined {
  const trimmed = text.trim();
  const candidates = [trimmed, ...trimmed.split('\n').map((l) => l.trim())];
  for (const c of candidates) {
    if (!c.startsWith('{')) continue;
    try {
      const v: unknown = JSON.parse(c);
      if (typeof v === 'object' && v !== null && !Array.isArray(v))
        return v as Record<string, unknown>;
    } catch {
      // not whole: try the next line
    }
  }
  return undefined;
}

function decodeQga(bytes: Uint8Array): DecodedPayload {
  const fields: DecodedField[] = [];
  const sync = bytes.includes(0xff);
  if (sync) fields.push(field('qga.sync_delimiter', 'Sync delimiter (0xFF)', true));
  const text = decoder.decode(bytes.filter((b) => b !== 0xff));
  const msg = firstJsonObject(text);
  let summary = sync ? '0xFF sync delimiter' : 'qemu-ga (partial message)';
  if (msg !== undefined) {
    const execute = msg['execute'] ?? msg['exec'];
    const args = msg['arguments'] as Record<string, unknown> | undefined;
    if (typeof execute === 'string') {
      fields.push(field('qga.type', 'Message', 'command'));
      fields.push(field('qga.command', 'Command', execute));
      if (args && typeof args === 'object' && typeof args['id'] === 'number')
        fields.push(field('qga.id', 'Sync id', args['id']));
      summary = `command ${execute}`;
    } else if ('return' in msg) {
      fields.push(field('qga.type', 'Message', 'return'));
      const ret = msg['return'];
      if (typeof ret === 'number') fields.push(field('qga.return', 'Return value', ret));
      summary = `return ${JSON.stringify(ret)}`;
      if (summary.length > 60) summary = `${summary.slice(0, 59)}…`;
    } else if (typeof msg['error'] === 'object' && msg['error'] !== null) {
      const err = msg['error'] as Record<string, unknown>;
      fields.push(field('qga.type', 'Message', 'error'));
      if (typeof err['class'] === 'string')
        fields.push(field('qga.error.class', 'Error class', err['class']));
      if (typeof err['desc'] === 'string')
        fields.push(field('qga.error.desc', 'Error description', err['desc']));
      summary = `error ${String(err['class'] ?? '')}: ${String(err['desc'] ?? '')}`;
    }
    if (sync) summary = `0xFF ${summary}`;
  }
  return { protocol: 'qga', title: PROTOCOL_TITLES.qga, summary, fields };
}

// ---------------------------------------------------------------------------
// SPICE vdagent: VDIChunkHeader (le32 port, le32 size) then VDAgentMessage
// (le32 protocol, le32 type, le64 opaque, le32 size, data).

export const VDAGENT_TYPES: Record<number, string> = {
  1: 'MOUSE_STATE',
  2: 'MONITORS_CONFIG',
  3: 'REPLY',
  4: 'CLIPBOARD',
  5: 'DISPLAY_CONFIG',
  6: 'ANNOUNCE_CAPABILITIES',
  7: 'CLIPBOARD_GRAB',
  8: 'CLIPBOARD_REQUEST',
  9: 'CLIPBOARD_RELEASE',
  10: 'FILE_XFER_START',
  11: 'FILE_XFER_STATUS',
  12: 'FILE_XFER_DATA',
  13: 'CLIENT_DISCONNECTED',
  14: 'MAX_CLIPBOARD',
  15: 'AUDIO_VOLUME_SYNC',
  16: 'GRAPHICS_DEVICE_INFO',
};

function decodeVdagent(bytes: Uint8Array): DecodedPayload {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: DecodedField[] = [];
  let summary = 'vdagent (short chunk)';
  if (bytes.length >= 8) {
    fields.push(field('vdagent.chunk.port', 'Chunk port', v.getUint32(0, true)));
    fields.push(field('vdagent.chunk.size', 'Chunk size', v.getUint32(4, true)));
    summary = 'vdagent chunk (continued message)';
  }
  if (bytes.length >= 28) {
    const type = v.getUint32(12, true);
    const name = VDAGENT_TYPES[type] ?? `TYPE_${type}`;
    fields.push(field('vdagent.protocol', 'Protocol', v.getUint32(8, true)));
    fields.push(field('vdagent.type', 'Message type', name));
    fields.push(field('vdagent.size', 'Message size', v.getUint32(24, true)));
    summary = `${name} (${v.getUint32(24, true)} bytes)`;
  }
  return { protocol: 'vdagent', title: PROTOCOL_TITLES.vdagent, summary, fields };
}

// ---------------------------------------------------------------------------
// libguestfs: a be32 length (or a flag word), then the XDR message header
// (program, version, procedure, direction, serial, status).

const GUESTFS_LAUNCH_FLAG = 0xf5f55ff5;
const GUESTFS_CANCEL_FLAG = 0xffffeeee;

function decodeGuestfs(bytes: Uint8Array): DecodedPayload {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: DecodedField[] = [];
  let summary = 'guestfs (continued message)';
  if (bytes.length >= 4) {
    const word = v.getUint32(0, false);
    if (word === GUESTFS_LAUNCH_FLAG || word === GUESTFS_CANCEL_FLAG) {
      const flag = word === GUESTFS_LAUNCH_FLAG ? 'LAUNCH' : 'CANCEL';
      fields.push(field('guestfs.flag', 'Flag', flag));
      summary = `${flag} flag`;
    } else {
      fields.push(field('guestfs.length', 'Message length', word));
      if (bytes.length >= 28) {
        const direction = v.getUint32(16, false) === 0 ? 'call' : 'reply';
        fields.push(field('guestfs.program', 'Program', v.getUint32(4, false)));
        fields.push(field('guestfs.version', 'Version', v.getUint32(8, false)));
        fields.push(field('guestfs.proc', 'Procedure', v.getUint32(12, false)));
        fields.push(field('guestfs.direction', 'Direction', direction));
        fields.push(field('guestfs.serial', 'Serial', v.getUint32(20, false)));
        fields.push(field('guestfs.status', 'Status', v.getUint32(24, false)));
        summary = `${direction} proc ${v.getUint32(12, false)} serial ${v.getUint32(20, false)}`;
      }
    }
  }
  return { protocol: 'guestfs', title: PROTOCOL_TITLES.guestfs, summary, fields };
}

// ---------------------------------------------------------------------------
// Guesses for other ports

function looksLikeText(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b < 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return false;
  return bytes.length > 0;
}

function decodeJson(bytes: Uint8Array): DecodedPayload | undefined {
  const first = bytes.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  if (first !== 0x7b && first !== 0x5b) return undefined; // { or [
  if (!looksLikeText(bytes)) return undefined;
  const line = decoder.decode(bytes).trim().split('\n')[0]!.trim();
  try {
    const v: unknown = JSON.parse(line);
    const kind = Array.isArray(v) ? 'array' : 'object';
    return {
      protocol: 'json',
      title: PROTOCOL_TITLES.json,
      summary: line.length > 60 ? `${line.slice(0, 59)}…` : line,
      fields: [field('json.type', 'JSON value', kind)],
    };
  } catch {
    return undefined;
  }
}

function decodeText(bytes: Uint8Array): DecodedPayload | undefined {
  if (!looksLikeText(bytes)) return undefined;
  const text = decoder.decode(bytes);
  const lines = text.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);
  const first = (lines[0] ?? '').replace(/\r$/, '');
  return {
    protocol: 'text',
    title: PROTOCOL_TITLES.text,
    summary: first.length > 60 ? `${first.slice(0, 59)}…` : first,
    fields: [field('text.line', 'First line', first), field('text.lines', 'Lines', lines.length)],
  };
}
