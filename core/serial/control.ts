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
 *
 * This is the one codec: core/capture/record.ts wraps it for captures
 * (lenient, for display) and must not decode or encode on its own.
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

/** The event names, index = event number (derived from {@link ControlEvent}). */
export const CONTROL_EVENT_NAMES: readonly ControlEventName[] = (
  Object.keys(ControlEvent) as ControlEventName[]
).sort((x, y) => ControlEvent[x] - ControlEvent[y]);

/** The id DEVICE_READY carries, and QEMU's "no port" (C0). */
export const BAD_PORT_ID = 0xffffffff;

export const CONTROL_HEADER_SIZE = 8;

/** RESIZE's payload: header, then two le16. */
const RESIZE_SIZE = CONTROL_HEADER_SIZE + 4;

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
  /** PORT_NAME only: the name, up to the first NUL. */
  name?: string;
  /**
   * PORT_NAME only: whether the name ended with a NUL. Set by decoding;
   * when set on a message to encode it wins over `portNameNul` (so a
   * capture re-encodes what it saw).
   */
  nul?: boolean;
  /** RESIZE only (when the payload is there). */
  cols?: number;
  rows?: number;
}

/** What {@link encodeControl} needs: the header fields, and the payload fields of its event. */
export type ControlFields = Pick<ControlMessage, 'id' | 'event' | 'value'> &
  Partial<Pick<ControlMessage, 'name' | 'nul' | 'cols' | 'rows'>>;

export function controlEventName(event: number): string {
  return CONTROL_EVENT_NAMES[event] ?? `EVENT_${event}`;
}

/** `0xffffffff` for {@link BAD_PORT_ID}, else the decimal id: how one-line texts show ids. */
export function controlIdText(id: number): string {
  return id === BAD_PORT_ID ? '0xffffffff' : String(id);
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
  msg: ControlFields,
  options: ControlCodecOptions = DEFAULT_CONTROL_CODEC,
): Uint8Array {
  let payload: Uint8Array = new Uint8Array(0);
  if (msg.event === ControlEvent.PORT_NAME && msg.name !== undefined) {
    const name = new TextEncoder().encode(msg.name);
    payload = new Uint8Array(name.length + ((msg.nul ?? options.portNameNul) ? 1 : 0));
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
 * What {@link parseControl} makes of a buffer. `message` is there unless
 * the buffer is shorter than the header; `problem` says, in one line, what
 * is wrong with the buffer when anything is (a short header, or a RESIZE
 * without its two le16, whose message then has no cols/rows).
 */
export type ParsedControl =
  | { message: ControlMessage; problem: string | undefined }
  | { message: undefined; problem: string };

/**
 * The one decoder of control messages: it never fails, it reports. The
 * device and the guest ({@link decodeControl}) refuse only a short header
 * (M11); captures (core/capture/record.ts) show every problem.
 *
 * A PORT_NAME's name ends at the first NUL or at the end of the buffer,
 * as Linux reads it; `nul` says whether a NUL ended it.
 */
export function parseControl(
  bytes: Uint8Array,
  options: ControlCodecOptions = DEFAULT_CONTROL_CODEC,
): ParsedControl {
  if (bytes.length < CONTROL_HEADER_SIZE) {
    return {
      message: undefined,
      problem: `control message of ${bytes.length} bytes, shorter than its 8-byte header`,
    };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const id = view.getUint32(0, true);
  const event = view.getUint16(4, true);
  const value = view.getUint16(6, true);
  const msg = controlMessage(id, event, value);
  let problem: string | undefined;
  if (event === ControlEvent.PORT_NAME) {
    const raw = bytes.subarray(CONTROL_HEADER_SIZE);
    const nul = raw.indexOf(0);
    msg.name = new TextDecoder().decode(nul >= 0 ? raw.subarray(0, nul) : raw);
    msg.nul = nul >= 0;
  } else if (event === ControlEvent.RESIZE) {
    if (bytes.length >= RESIZE_SIZE) {
      const first = view.getUint16(8, true);
      const second = view.getUint16(10, true);
      if (options.resizeOrder === 'rows-cols') {
        msg.rows = first;
        msg.cols = second;
      } else {
        msg.cols = first;
        msg.rows = second;
      }
    } else {
      problem = `RESIZE control message of ${bytes.length} bytes, needs ${RESIZE_SIZE} (header, cols, rows)`;
    }
  }
  return { message: msg, problem };
}

/**
 * Decode a control buffer. Only a buffer shorter than the header is
 * malformed at this level (M11); whether the event and id make sense is the
 * receiver's business (a RESIZE without its payload decodes without
 * cols/rows).
 */
export function decodeControl(
  bytes: Uint8Array,
  options: ControlCodecOptions = DEFAULT_CONTROL_CODEC,
): ControlMessage | VirtioFault {
  const parsed = parseControl(bytes, options);
  if (parsed.message === undefined) {
    return fault('MalformedControlMessage', 'M11', parsed.problem, { length: bytes.length });
  }
  return parsed.message;
}

/** One line for logs and the UI: `PORT_OPEN id=1 value=1`, `PORT_NAME id=2 "test1"`. */
export function describeControl(msg: ControlMessage): string {
  const id = controlIdText(msg.id);
  if (msg.name !== undefined) return `${msg.eventName} id=${id} "${msg.name}"`;
  if (msg.rows !== undefined) return `${msg.eventName} id=${id} rows=${msg.rows} cols=${msg.cols}`;
  return `${msg.eventName} id=${id} value=${msg.value}`;
}
