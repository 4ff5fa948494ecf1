/**
 * virtio-console control messages (C0): `le32 id, le16 event, le16 value`,
 * 8 bytes, followed by a payload for RESIZE (two le16) and PORT_NAME (the
 * name in UTF-8). Shared by the device and the guest driver.
 *
 * The two points where real implementations disagree are options, not
 * guesses:
 * - RESIZE payload order: the spec says cols then rows; Linux (and v86) read
 *   rows then cols. QEMU never sends RESIZE at all, so the default follows
 *   the Linux guest vmchan emulates: 'rows-cols'.
 * - PORT_NAME trailing NUL: QEMU (and v86) send one, crosvm does not. The
 *   default is QEMU's: true. Decoding accepts both (as Linux does: the name
 *   ends at the first NUL or at the end of the buffer).
 */
import { fault, type VirtioFault } from '../virtio/fault.js';

export const ControlEvent = {
  DEVICE_READY: 0,
  PORT_ADD: 1,
  PORT_REMOVE: 2,
  PORT_READY: 3,
  CONSOLE_PORT: 4,
  RESIZE: 5,
  PORT_OPEN: 6,
  PORT_NAME: 7,
} as const;

export type ControlEventName = keyof typeof ControlEvent;

const EVENT_NAMES: readonly ControlEventName[] = [
  'DEVICE_READY',
  'PORT_ADD',
  'PORT_REMOVE',
  'PORT_READY',
  'CONSOLE_PORT',
  'RESIZE',
  'PORT_OPEN',
  'PORT_NAME',
];

/** The id DEVICE_READY carries, and QEMU's "no port" (C0). */
export const BAD_PORT_ID = 0xffffffff;

export const CONTROL_HEADER_SIZE = 8;

export type ResizeOrder = 'rows-cols' | 'cols-rows';

export interface ControlCodecOptions {
  resizeOrder: ResizeOrder;
  portNameNul: boolean;
}

export const DEFAULT_CONTROL_CODEC: ControlCodecOptions = {
  resizeOrder: 'rows-cols',
  portNameNul: true,
};

export interface ControlMessage {
  id: number;
  event: number;
  /** The event's name, or `EVENT_<n>` for a number outside 0..7. */
  eventName: string;
  value: number;
  /** PORT_NAME only. */
  name?: string;
  /** RESIZE only (when the payload is there). */
  cols?: number;
  rows?: number;
}

export function controlEventName(event: number): string {
  return EVENT_NAMES[event] ?? `EVENT_${event}`;
}

export function controlMessage(
  id: number,
  event: number,
  value: number,
  extra: Pick<ControlMessage, 'name' | 'cols' | 'rows'> = {},
): ControlMessage {
  return { id, event, eventName: controlEventName(event), value, ...extra };
}

export function encodeControl(
  msg: ControlMessage,
  options: ControlCodecOptions = DEFAULT_CONTROL_CODEC,
): Uint8Array {
  let payload: Uint8Array = new Uint8Array(0);
  if (msg.event === ControlEvent.PORT_NAME && msg.name !== undefined) {
    const name = new TextEncoder().encode(msg.name);
    payload = new Uint8Array(name.length + (options.portNameNul ? 1 : 0));
    payload.set(name);
  } else if (msg.event === ControlEvent.RESIZE) {
    payload = new Uint8Array(4);
    const v = new DataView(payload.buffer);
    const [first, second] =
      options.resizeOrder === 'rows-cols'
        ? [msg.rows ?? 0, msg.cols ?? 0]
        : [msg.cols ?? 0, msg.rows ?? 0];
    v.setUint16(0, first, true);
    v.setUint16(2, second, true);
  }
  const out = new Uint8Array(CONTROL_HEADER_SIZE + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, msg.id >>> 0, true);
  view.setUint16(4, msg.event & 0xffff, true);
  view.setUint16(6, msg.value & 0xffff, true);
  out.set(payload, CONTROL_HEADER_SIZE);
  return out;
}

/**
 * Decode a control buffer. Only a buffer shorter than the header is
 * malformed at this level (M11); whether the event and id make sense is the
 * receiver's business.
 */
export function decodeControl(
  bytes: Uint8Array,
  options: ControlCodecOptions = DEFAULT_CONTROL_CODEC,
): ControlMessage | VirtioFault {
  if (bytes.length < CONTROL_HEADER_SIZE) {
    return fault(
      'MalformedControlMessage',
      'M11',
      `control message of ${bytes.length} bytes is shorter than the 8-byte header`,
      { length: bytes.length },
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const id = view.getUint32(0, true);
  const event = view.getUint16(4, true);
  const value = view.getUint16(6, true);
  const msg = controlMessage(id, event, value);
  if (event === ControlEvent.PORT_NAME) {
    const raw = bytes.subarray(CONTROL_HEADER_SIZE);
    const nul = raw.indexOf(0);
    msg.name = new TextDecoder().decode(nul >= 0 ? raw.subarray(0, nul) : raw);
  } else if (event === ControlEvent.RESIZE && bytes.length >= CONTROL_HEADER_SIZE + 4) {
    const first = view.getUint16(8, true);
    const second = view.getUint16(10, true);
    if (options.resizeOrder === 'rows-cols') {
      msg.rows = first;
      msg.cols = second;
    } else {
      msg.cols = first;
      msg.rows = second;
    }
  }
  return msg;
}

/** One line for logs and the UI: `PORT_OPEN id=1 value=1`, `PORT_NAME id=2 "test1"`. */
export function describeControl(msg: ControlMessage): string {
  const id = msg.id === BAD_PORT_ID ? '0xffffffff' : String(msg.id);
  if (msg.name !== undefined) return `${msg.eventName} id=${id} "${msg.name}"`;
  if (msg.rows !== undefined) return `${msg.eventName} id=${id} rows=${msg.rows} cols=${msg.cols}`;
  return `${msg.eventName} id=${id} value=${msg.value}`;
}
