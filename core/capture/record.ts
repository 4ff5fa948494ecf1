/**
 * The capture record model: what the device feeds to capture, what a pcapng
 * file holds and what `vmchan read`, the filter language and the app show.
 *
 * One record per buffer that crosses the device:
 *   - `data`:    the bytes of one port buffer, host-to-guest or guest-to-host;
 *   - `control`: one control message (C0) on the control queues, decoded;
 *   - `event`:   a port or device state change, with a line of text (port
 *                added/removed, opened/closed by the guest or the host,
 *                throttled on/off, bytes dropped, NEEDS_RESET with its rule);
 *   - `ring`:    optionally, one ring operation from the vring tracer.
 *
 * Direction is always named from the two ends of the channel, never from the
 * virtio driver/device pair: a control message the driver sends to the
 * device travels guest-to-host (`toDirection('driver-to-device')`).
 *
 * The device calls into a {@link Capture}: it checks `capture.wants(device,
 * port)` (one Set lookup) before it builds a record, so capture that nobody
 * switched on costs nothing but that check. Sinks ({@link CaptureSink}) get
 * records synchronously and must not keep `record.bytes` after `write`
 * returns: the device may hand out a view of guest memory that changes next.
 */
import {
  BAD_PORT_ID,
  ControlEvent,
  controlIdText,
  DEFAULT_CONTROL_CODEC,
  encodeControl as encodeSerialControl,
  parseControl,
  type ControlFields,
  type ControlMessage,
  type ResizeOrder,
} from '../serial/control.js';
import type { RingTraceEvent } from '../virtio/trace.js';
import { CaptureError } from './error.js';

// ---------------------------------------------------------------------------
// Vocabulary

export type Direction = 'host-to-guest' | 'guest-to-host';
export type RecordKind = 'data' | 'control' | 'event' | 'ring';
export type PortKind = 'virtserialport' | 'virtconsole';

/**
 * Directions as the virtio side names them, mapped onto the channel's two
 * ends: the driver is the guest, the device stands for the host.
 */
export function toDirection(
  d: Direction | 'driver-to-device' | 'device-to-driver' | 'rx' | 'tx',
): Direction {
  switch (d) {
    case 'driver-to-device':
    case 'tx': // a transmit queue is the guest's
      return 'guest-to-host';
    case 'device-to-driver':
    case 'rx':
      return 'host-to-guest';
    default:
      return d;
  }
}

/** `h2g` / `g2h`, the short forms the filter language and the CLI use. */
export function shortDirection(d: Direction): 'h2g' | 'g2h' {
  return d === 'host-to-guest' ? 'h2g' : 'g2h';
}

// ---------------------------------------------------------------------------
// Interfaces: one per port, as the guest and the host see it

export interface ChardevInfo {
  /** The chardev id, e.g. `c1`. */
  id: string;
  /** The backend in QEMU's option syntax, e.g. `unix:/tmp/c1.sock,server=on`. */
  backend: string;
}

/** A port as capture describes it (one pcapng interface per port). */
export interface CaptureInterface {
  /** qdev id of the virtio-serial device, e.g. `vser0`. */
  device: string;
  /** The guest's number for the device: D in `vportDpN`. */
  deviceIndex: number;
  /** Port number (`nr`). */
  port: number;
  kind: PortKind;
  /** The port's `name` property; undefined for an unnamed port. */
  name?: string | undefined;
  /** The chardev behind the port; undefined when none is attached. */
  chardev?: ChardevInfo | undefined;
}

/** The guest's node name for a port: `vport0p2` (docs/CONFORMANCE.md L2). */
export function guestNodeName(deviceIndex: number, port: number): string {
  return `vport${deviceIndex}p${port}`;
}

/** What a port is called in captures: its name, else its guest node name. */
export function portLabel(iface: CaptureInterface): string {
  return iface.name ?? guestNodeName(iface.deviceIndex, iface.port);
}

/**
 * `device vser0, port 2, virtserialport, chardev c1 (unix:/path,server=on)`:
 * the pcapng if_description of a port's interface. The reader parses it
 * back with {@link parsePortDescription}, so keep the two in step.
 */
export function portDescription(iface: CaptureInterface): string {
  const chardev = iface.chardev
    ? `chardev ${iface.chardev.id} (${iface.chardev.backend})`
    : 'no chardev';
  return `device ${iface.device}, port ${iface.port}, ${iface.kind}, ${chardev}`;
}

export interface ParsedPortDescription {
  device: string;
  port: number;
  kind: PortKind;
  chardev: ChardevInfo | undefined;
}

const PORT_DESCRIPTION =
  /^device (\S+), port (\d+), (virtserialport|virtconsole), (?:no chardev|chardev (\S+) \((.*)\))$/;

export function parsePortDescription(text: string): ParsedPortDescription | undefined {
  const m = PORT_DESCRIPTION.exec(text);
  if (!m) return undefined;
  return {
    device: m[1]!,
    port: Number(m[2]),
    kind: m[3] as PortKind,
    chardev: m[4] === undefined ? undefined : { id: m[4], backend: m[5] ?? '' },
  };
}

// ---------------------------------------------------------------------------
// Control messages (docs/CONFORMANCE.md C0)
//
// The codec is core/serial/control.ts, the one the device and the guest
// use. Captures wrap it: every problem it reports (a short header, a RESIZE
// without its payload) becomes a named error value to show, and RESIZE is
// read in the spec's order (cols, rows) unless told otherwise.

export {
  BAD_PORT_ID,
  CONTROL_EVENT_NAMES,
  ControlEvent as CONTROL_EVENT,
  controlEventName,
  type ControlEventName,
  type ControlMessage,
  type ResizeOrder,
} from '../serial/control.js';

/**
 * The RESIZE order captures read and write unless told otherwise: the
 * engine's own default (rows, cols, as the Linux guest reads it), so a
 * capture of a lab reads back the way the lab sent it.
 */
const CAPTURE_RESIZE_ORDER: ResizeOrder = DEFAULT_CONTROL_CODEC.resizeOrder;

/** Decode a control message; a short one is a named error value, never an exception. */
export function decodeControl(
  bytes: Uint8Array,
  resizeOrder: ResizeOrder = CAPTURE_RESIZE_ORDER,
): ControlMessage | CaptureError {
  const parsed = parseControl(bytes, { resizeOrder, portNameNul: true });
  // Where the device and the guest go on (a RESIZE without its payload),
  // a capture shows what is wrong.
  if (parsed.message === undefined)
    return new CaptureError('MalformedControlMessage', parsed.problem);
  if (parsed.problem !== undefined)
    return new CaptureError('MalformedControlMessage', parsed.problem);
  return parsed.message;
}

/** Encode a control message (tests, and devices that build them from fields); NUL unless `nul: false`. */
export function encodeControl(
  msg: ControlFields,
  resizeOrder: ResizeOrder = CAPTURE_RESIZE_ORDER,
): Uint8Array {
  return encodeSerialControl(msg, { resizeOrder, portNameNul: true });
}

/** `PORT_OPEN id=2 value=1`, `PORT_NAME id=1 name="test1"`, `RESIZE id=0 cols=80 rows=25`. */
export function controlSummary(msg: ControlMessage | CaptureError): string {
  if (msg instanceof CaptureError) return `malformed control message: ${msg.message}`;
  const id = controlIdText(msg.id);
  if (msg.event === ControlEvent.RESIZE)
    return `${msg.eventName} id=${id} cols=${msg.cols} rows=${msg.rows}`;
  if (msg.event === ControlEvent.PORT_NAME)
    return `${msg.eventName} id=${id} name=${JSON.stringify(msg.name)}`;
  return `${msg.eventName} id=${id} value=${msg.value}`;
}

// ---------------------------------------------------------------------------
// Port and device events

export type PortEventType =
  | 'port-added'
  | 'port-removed'
  | 'guest-open'
  | 'guest-close'
  | 'host-open'
  | 'host-close'
  | 'throttle-on'
  | 'throttle-off'
  | 'drop'
  | 'needs-reset'
  | 'note';

/** Numbers for the event payload in pcapng files (pcapng-writer.ts); never renumber. */
export const EVENT_CODE: Record<PortEventType, number> = {
  'port-added': 1,
  'port-removed': 2,
  'guest-open': 3,
  'guest-close': 4,
  'host-open': 5,
  'host-close': 6,
  'throttle-on': 7,
  'throttle-off': 8,
  drop: 9,
  'needs-reset': 10,
  note: 11,
};
/** Event code of ring records in the same payload format. */
export const RING_EVENT_CODE = 64;

const EVENT_BY_CODE = new Map<number, PortEventType>(
  Object.entries(EVENT_CODE).map(([k, v]) => [v, k as PortEventType]),
);
export function eventTypeOfCode(code: number): PortEventType | undefined {
  return EVENT_BY_CODE.get(code);
}

/** The line a person reads for an event when the device gave none. */
export function eventText(
  type: PortEventType,
  label: string,
  extra: {
    count?: number | undefined;
    rule?: string | undefined;
    reason?: string | undefined;
  } = {},
): string {
  const why = extra.reason ? ` (${extra.reason})` : '';
  switch (type) {
    case 'port-added':
      return `${label}: port added${why}`;
    case 'port-removed':
      return `${label}: port removed${why}`;
    case 'guest-open':
      return `${label}: guest opened the port${why}`;
    case 'guest-close':
      return `${label}: guest closed the port${why}`;
    case 'host-open':
      return `${label}: host connected${why}`;
    case 'host-close':
      return `${label}: host disconnected${why}`;
    case 'throttle-on':
      return `${label}: throttled${why}`;
    case 'throttle-off':
      return `${label}: unthrottled${why}`;
    case 'drop':
      return `${label}: dropped ${extra.count ?? 0} bytes${why}`;
    case 'needs-reset':
      return `${label}: NEEDS_RESET${extra.rule ? ` (${extra.rule})` : ''}${why}`;
    case 'note':
      return `${label}: ${extra.reason ?? ''}`;
  }
}

// ---------------------------------------------------------------------------
// Records

interface RecordBase {
  /** Nanoseconds since the Unix epoch. */
  time: bigint;
  /** qdev id of the virtio-serial device. */
  device: string;
  /** Port number; undefined for device-wide records (DEVICE_READY, NEEDS_RESET). */
  port: number | undefined;
  /** Port name when the port has one (records from files: the interface name). */
  portName: string | undefined;
  /** Original length in bytes (`bytes` may be shorter when a snap length cut it). */
  length: number;
  /** The bytes that crossed (data), the control message, or an event's small payload. */
  bytes: Uint8Array;
  /** A packet comment read from a file (events keep theirs in `text`). */
  comment?: string | undefined;
}

export interface DataRecord extends RecordBase {
  kind: 'data';
  /** Always set by the device; undefined only for packets of foreign files that carry no direction. */
  direction: Direction | undefined;
}

export interface ControlRecord extends RecordBase {
  kind: 'control';
  /** Always set by the device; undefined only for control packets read without a direction flag. */
  direction: Direction | undefined;
  /** The message decoded from `bytes`, or why it could not be. */
  control: ControlMessage | CaptureError;
}

export interface EventRecord extends RecordBase {
  kind: 'event';
  /** Drops have a direction (the data that was lost); state changes do not. */
  direction: Direction | undefined;
  event: PortEventType;
  /** Bytes dropped (drop) or undefined. */
  count: number | undefined;
  /** Conformance rule id (needs-reset), e.g. `M2`. */
  rule: string | undefined;
  text: string;
}

export interface RingRecord extends RecordBase {
  kind: 'ring';
  direction: Direction | undefined;
  /** Virtqueue index. */
  queue: number;
  /** The ring operation (`device-pop`, `device-push`, ...). */
  op: string;
  text: string;
}

export type CaptureRecord = DataRecord | ControlRecord | EventRecord | RingRecord;

const EMPTY = new Uint8Array(0);

export function dataRecord(r: {
  time: bigint;
  device: string;
  port: number;
  portName?: string | undefined;
  direction: Direction;
  bytes: Uint8Array;
}): DataRecord {
  return {
    kind: 'data',
    time: r.time,
    device: r.device,
    port: r.port,
    portName: r.portName,
    direction: r.direction,
    length: r.bytes.length,
    bytes: r.bytes,
  };
}

/** A control record; the message is decoded here (control messages are rare). */
export function controlRecord(r: {
  time: bigint;
  device: string;
  direction: Direction | 'driver-to-device' | 'device-to-driver';
  bytes: Uint8Array;
  /** Name of the port the message's id refers to, when it has one. */
  portName?: string | undefined;
  resizeOrder?: ResizeOrder;
}): ControlRecord {
  const control = decodeControl(r.bytes, r.resizeOrder);
  const port =
    control instanceof CaptureError || control.id === BAD_PORT_ID ? undefined : control.id;
  return {
    kind: 'control',
    time: r.time,
    device: r.device,
    port,
    portName: r.portName,
    direction: toDirection(r.direction),
    length: r.bytes.length,
    bytes: r.bytes,
    control,
  };
}

export function eventRecord(r: {
  time: bigint;
  device: string;
  port?: number | undefined;
  portName?: string | undefined;
  event: PortEventType;
  direction?: Direction | undefined;
  count?: number | undefined;
  rule?: string | undefined;
  /** The line shown; built from the fields when absent. */
  text?: string | undefined;
  /** Free text appended to the generated line: `(host not connected)`. */
  reason?: string | undefined;
}): EventRecord {
  const label = r.portName ?? (r.port === undefined ? r.device : `${r.device} port ${r.port}`);
  return {
    kind: 'event',
    time: r.time,
    device: r.device,
    port: r.port,
    portName: r.portName,
    direction: r.direction,
    length: 0,
    bytes: EMPTY,
    event: r.event,
    count: r.count,
    rule: r.rule,
    text: r.text ?? eventText(r.event, label, r),
  };
}

export function ringRecord(r: {
  time: bigint;
  device: string;
  port?: number | undefined;
  portName?: string | undefined;
  queue: number;
  op: string;
  text: string;
  direction?: Direction | undefined;
}): RingRecord {
  return {
    kind: 'ring',
    time: r.time,
    device: r.device,
    port: r.port,
    portName: r.portName,
    direction: r.direction,
    length: 0,
    bytes: EMPTY,
    queue: r.queue,
    op: r.op,
    text: r.text,
  };
}

/** A ring record from a vring tracer event (core/virtio/trace.ts). */
export function ringRecordFromTrace(
  time: bigint,
  device: string,
  port: number | undefined,
  ev: RingTraceEvent,
  portName?: string,
): RingRecord {
  return ringRecord({
    time,
    device,
    port,
    portName,
    queue: ev.queue,
    op: ev.op,
    text: `q${ev.queue} ${ev.op}: ${ev.text}${ev.rule ? ` [${ev.rule}]` : ''}`,
  });
}

/** Wall-clock nanoseconds since the Unix epoch (ms resolution plus a monotonic fraction). */
export function nowNs(): bigint {
  const ms = performance.timeOrigin + performance.now();
  return BigInt(Math.floor(ms)) * 1_000_000n + BigInt(Math.floor((ms % 1) * 1e6));
}

// ---------------------------------------------------------------------------
// Sinks and the capture switchboard

/**
 * Where records go: a pcapng file, the app's live list, a test's array.
 * Every method returns undefined or a named error; none throws. `write`
 * must copy what it keeps of `record.bytes` before it returns.
 */
export interface CaptureSink {
  /** A port exists (at start, or hot-plugged). Called again when a port is re-plugged. */
  addInterface(iface: CaptureInterface): CaptureError | undefined;
  write(record: CaptureRecord): CaptureError | undefined;
  /** Push buffered records to their destination. */
  flush(): CaptureError | undefined;
  /** Flush and release; later writes return a SinkClosed error. */
  close(): CaptureError | undefined;
}

function portKey(device: string, port: number): string {
  return `${device}\u0000${port}`;
}

/**
 * The switchboard between the device and the sinks. Capture is on for a
 * port when the port's own switch says so, or, when the port has no switch
 * of its own, when the global switch is on. Switches can be flipped at any
 * time; records already written stay. Device-wide records (DEVICE_READY,
 * NEEDS_RESET) are captured when the global switch is on or any port of
 * that device is captured. With no sink attached nothing is captured.
 */
export class Capture {
  private readonly sinks: CaptureSink[] = [];
  private readonly interfaces = new Map<string, CaptureInterface>();
  private all = false;
  private readonly portSwitch = new Map<string, boolean>();
  /** Ports captured right now, recomputed when a switch, a sink or a port changes. */
  private readonly captured = new Set<string>();
  private readonly devicesCaptured = new Map<string, number>();
  private errorListeners: ((err: CaptureError, sink: CaptureSink) => void)[] = [];
  /** True when at least one port (or everything) is captured and a sink listens. */
  active = false;
  /** Records handed to sinks since creation. */
  written = 0;

  /** Capture every port (and device-wide records), unless a port's own switch says otherwise. */
  setAll(on: boolean): void {
    this.all = on;
    this.recompute();
  }

  get allEnabled(): boolean {
    return this.all;
  }

  /** A port's own switch: true/false, or undefined to follow the global switch. */
  setPort(device: string, port: number, on: boolean | undefined): void {
    const key = portKey(device, port);
    if (on === undefined) this.portSwitch.delete(key);
    else this.portSwitch.set(key, on);
    this.recompute();
  }

  /** Whether records of this port (or, with port undefined, of this device) are wanted now. */
  wants(device: string, port: number | undefined): boolean {
    if (!this.active) return false;
    if (port === undefined) return this.all || (this.devicesCaptured.get(device) ?? 0) > 0;
    const key = portKey(device, port);
    if (this.interfaces.has(key)) return this.captured.has(key);
    // a port capture was not told about: follow the switches
    return this.portSwitch.get(key) ?? this.all;
  }

  /** Attach a sink; it learns every port that exists. Returns the detach function. */
  attach(sink: CaptureSink): () => void {
    this.sinks.push(sink);
    for (const iface of this.interfaces.values()) this.report(sink, sink.addInterface(iface));
    this.recompute();
    return () => this.detach(sink);
  }

  detach(sink: CaptureSink): void {
    const i = this.sinks.indexOf(sink);
    if (i >= 0) this.sinks.splice(i, 1);
    this.recompute();
  }

  /** Called with each error a sink returns; the sink is detached after its first error. */
  onError(listener: (err: CaptureError, sink: CaptureSink) => void): () => void {
    this.errorListeners.push(listener);
    return () => {
      this.errorListeners = this.errorListeners.filter((l) => l !== listener);
    };
  }

  /** A port exists (start or hot-plug); call again after a re-plug with the new description. */
  addInterface(iface: CaptureInterface): void {
    this.interfaces.set(portKey(iface.device, iface.port), iface);
    for (const sink of [...this.sinks]) this.report(sink, sink.addInterface(iface));
    this.recompute();
  }

  /** A port is gone (hot-unplug). Its interface stays in files; its switch is kept for a re-plug. */
  removeInterface(device: string, port: number): void {
    this.interfaces.delete(portKey(device, port));
    this.recompute();
  }

  /** The port's description, when the device announced it. */
  interfaceOf(device: string, port: number): CaptureInterface | undefined {
    return this.interfaces.get(portKey(device, port));
  }

  /** The ports of `device` that exist now. */
  portsOf(device: string): number[] {
    const out: number[] = [];
    for (const iface of this.interfaces.values()) if (iface.device === device) out.push(iface.port);
    return out;
  }

  /** Hand a record to every sink if its port is captured; returns whether it was. */
  write(record: CaptureRecord): boolean {
    if (!this.wants(record.device, record.port)) return false;
    this.written++;
    for (const sink of this.sinks.length === 1 ? this.sinks : [...this.sinks]) {
      const err = sink.write(record);
      if (err) this.report(sink, err);
    }
    return true;
  }

  flush(): void {
    for (const sink of [...this.sinks]) this.report(sink, sink.flush());
  }

  /** Close and detach every sink. */
  close(): void {
    for (const sink of [...this.sinks]) {
      this.report(sink, sink.close());
      this.detach(sink);
    }
  }

  private report(sink: CaptureSink, err: CaptureError | undefined): void {
    if (!err) return;
    this.detach(sink);
    for (const l of this.errorListeners) l(err, sink);
  }

  private recompute(): void {
    this.captured.clear();
    this.devicesCaptured.clear();
    for (const [key, iface] of this.interfaces) {
      if (this.portSwitch.get(key) ?? this.all) {
        this.captured.add(key);
        this.devicesCaptured.set(iface.device, (this.devicesCaptured.get(iface.device) ?? 0) + 1);
      }
    }
    let anyPort = this.all;
    for (const on of this.portSwitch.values()) anyPort ||= on;
    this.active = this.sinks.length > 0 && anyPort;
  }
}

/**
 * Which of a Capture's records one consumer keeps, by switches of its own
 * (the app's capture file keeps what its switches say while live clients
 * take every port): the same rule as {@link Capture.wants}, over the ports
 * the Capture knows. Device-wide records are kept when the global switch is
 * on or some port of the device is; with nothing switched on, nothing.
 */
export class PortSelection {
  private readonly own = new Map<string, boolean>();

  constructor(
    private readonly capture: Capture,
    private all = true,
  ) {}

  setAll(on: boolean): void {
    this.all = on;
  }

  /** A port's own switch; undefined makes it follow setAll again. */
  setPort(device: string, port: number, on: boolean | undefined): void {
    if (on === undefined) this.own.delete(portKey(device, port));
    else this.own.set(portKey(device, port), on);
  }

  wants(device: string, port: number | undefined): boolean {
    if (port !== undefined) return this.own.get(portKey(device, port)) ?? this.all;
    if (this.all) return true;
    // Rare (control messages of no port, NEEDS_RESET): a look at the device's ports.
    return this.capture.portsOf(device).some((p) => this.own.get(portKey(device, p)) === true);
  }
}

/**
 * A sink that keeps records in memory (copies of their bytes): tests, and
 * small captures the app shows before they are saved.
 */
export class MemorySink implements CaptureSink {
  readonly records: CaptureRecord[] = [];
  readonly interfaces: CaptureInterface[] = [];
  closed = false;

  addInterface(iface: CaptureInterface): CaptureError | undefined {
    this.interfaces.push({ ...iface });
    return undefined;
  }

  write(record: CaptureRecord): CaptureError | undefined {
    if (this.closed) return new CaptureError('SinkClosed', 'capture sink is closed');
    this.records.push({ ...record, bytes: new Uint8Array(record.bytes) });
    return undefined;
  }

  flush(): CaptureError | undefined {
    return undefined;
  }

  close(): CaptureError | undefined {
    this.closed = true;
    return undefined;
  }
}

/**
 * A Capture seen as one sink: whoever produces records for a single sink
 * (a QEMU chardev tap) feeds every sink attached to the capture, the file,
 * the app and live clients alike, with the same record object.
 */
export class CaptureFeed implements CaptureSink {
  constructor(readonly capture: Capture) {}
  addInterface(iface: CaptureInterface): CaptureError | undefined {
    this.capture.addInterface(iface);
    return undefined;
  }
  write(record: CaptureRecord): CaptureError | undefined {
    this.capture.write(record);
    return undefined;
  }
  flush(): CaptureError | undefined {
    this.capture.flush();
    return undefined;
  }
  close(): CaptureError | undefined {
    this.capture.close();
    return undefined;
  }
}
