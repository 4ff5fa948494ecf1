/**
 * What an attached (real) QEMU looks like to the rest of vmchan: plain,
 * JSON-safe data in the shapes the emulated lab offers (core/api/contract/contract.ts
 * PortSnapshot, DeviceSnapshot, ChardevSnapshot, ApiEvent), so the app's
 * API can serve an attached machine beside an emulated one. Fields the
 * real QEMU cannot tell are null, never invented.
 *
 * Also the pure helpers the discovery, the poller and the tap share:
 * reading query-chardev filenames into socket addresses, port labels,
 * queue roles.
 */
import type { PortKind } from '../capture/record.js';
import { queueRole } from '../serial/layout.js';
import { parseChardevFilename } from './qmp-types.js';

export type { PortKind } from '../capture/record.js';

export interface AttachedDevice {
  /** What ports name it by: the qdev id of the virtio-serial device, else its bus. */
  name: string;
  /** qdev id (`vser0`), null for a device created without one. */
  id: string | null;
  /** The bus ports are plugged into: `vser0.0`, `virtio-serial-bus.0`. */
  bus: string;
  /** QOM path of the virtio backend (what x-query-virtio-* take). */
  path: string;
  /** QOM path of the bus. */
  busPath: string;
  maxPorts: number | null;
  /** Virtqueues (x-query-virtio-status num-vqs); null when that query failed. */
  queues: number | null;
  /** VIRTIO_CONFIG_S_* names the device status has set. */
  status: string[];
  /** The guest accepted VIRTIO_CONSOLE_F_MULTIPORT. */
  multiport: boolean | null;
  /** The guest accepted VIRTIO_RING_F_EVENT_IDX. */
  eventIdx: boolean | null;
  /** VIRTIO_F_RING_PACKED was negotiated. */
  packed: boolean | null;
}

export interface AttachedPort {
  /** `device:nr`, stable while the port is plugged (as the lab's PortSnapshot.key). */
  key: string;
  device: string;
  nr: number;
  kind: PortKind;
  /** qdev id: what VSERPORT_CHANGE and device_del name. Null for a port without one. */
  id: string | null;
  /** The port name the guest sees in /dev/virtio-ports/ (null: unnamed). */
  name: string | null;
  /** What a person calls it: the name, else the id, else `port N`. */
  label: string;
  /** QOM path of the port. */
  path: string;
  chardev: string | null;
  /** The guest has the port open (query-chardev frontend-open); null without a chardev. */
  guestOpen: boolean | null;
  /** A host peer is connected to the chardev; null for backends without a peer (ringbuf, file, pty...). */
  hostConnected: boolean | null;
  /** Virtqueues of the port: the guest's receive queue (host-to-guest) and transmit queue. */
  queues: { rx: number; tx: number };
}

/** A socket endpoint as QEMU's chardev filename gives it. */
export type SocketSpec =
  | { transport: 'unix'; path: string; server: boolean }
  | { transport: 'tcp'; host: string; port: number; server: boolean };

export interface AttachedChardev {
  id: string;
  /** The backend word of the filename: unix, tcp, ringbuf, pty, file, null, ... */
  kind: string;
  /** query-chardev's filename, verbatim (`disconnected:` prefix while nobody is there). */
  filename: string;
  /** The socket, for socket chardevs. */
  socket: SocketSpec | null;
  /** The socket path a host application connects to (unix server sockets). */
  path: string | null;
  /** A host peer is connected; null for backends that have no peer. */
  connected: boolean | null;
  frontendOpen: boolean;
  /** The port using it, when one does. */
  usedBy: { device: string; nr: number } | null;
}

export interface AttachedTopology {
  /** The QMP address attached to. */
  qmp: string;
  qemu: { version: string; package: string };
  devices: AttachedDevice[];
  ports: AttachedPort[];
  chardevs: AttachedChardev[];
  /** Date.now() when it was read. */
  time: number;
}

/** Event kinds: the subset of the lab's EventKind an attached QEMU can report. */
export type AttachEventKind =
  | 'port-added'
  | 'port-removed'
  | 'guest-open'
  | 'guest-close'
  | 'host-open'
  | 'host-close'
  | 'device-deleted'
  | 'note'
  | 'error';

/**
 * How vmchan learned of a change: a QMP event, polling query-chardev (QEMU
 * sends no event for it, or the event was rate-limited away or the port has
 * no id), or a command vmchan itself gave.
 */
export type AttachEventSource = 'event' | 'poll' | 'command';

export interface AttachEvent {
  seq: number;
  /** Milliseconds since the Unix epoch: QEMU's timestamp for QMP events, ours otherwise. */
  time: number;
  kind: AttachEventKind;
  source: AttachEventSource;
  device: string | null;
  nr: number | null;
  /** The port's label when the event is about a port. */
  port: string | null;
  /** The port's qdev id (or the deleted device's id). */
  id: string | null;
  chardev: string | null;
  /** The QMP event behind it (VSERPORT_CHANGE, DEVICE_DELETED), for source 'event'. */
  qmpEvent: string | null;
  /**
   * True for a QMP event that reports a state polling had already shown:
   * QEMU holds back VSERPORT_CHANGE for up to a second per port.
   */
  late: boolean;
  /** One line for people. */
  text: string;
}

// ---- helpers ----------------------------------------------------------------------------

export function portKey(device: string, nr: number): string {
  return `${device}:${nr}`;
}

export function portLabelOf(p: { name: string | null; id: string | null; nr: number }): string {
  return p.name ?? p.id ?? `port ${p.nr}`;
}

/** The guest's receive (host-to-guest) and transmit queue of port `nr` (C0). */
export function portQueues(nr: number): { rx: number; tx: number } {
  return nr === 0 ? { rx: 0, tx: 1 } : { rx: 2 * nr + 2, tx: 2 * nr + 3 };
}

/** `rx port 1`, `control tx`: as the emulated vring view names queues. */
export function queueRoleText(queue: number): string {
  const role = queueRole(queue);
  return 'port' in role ? `${role.role} port ${role.port}` : role.role.replace('-', ' ');
}

/** The port a queue belongs to, or null for the control queues. */
export function queuePort(queue: number): number | null {
  const role = queueRole(queue);
  return 'port' in role ? role.port : null;
}

/**
 * A socket chardev's endpoint from query-chardev's filename:
 *   unix:/tmp/p1,server=on                    (QEMU listens)
 *   disconnected:unix:/tmp/p1,server=on
 *   unix:/tmp/p1                              (QEMU connects)
 *   disconnected:tcp:127.0.0.1:4444,server=on
 *   tcp:127.0.0.1:4444,server=on <-> 127.0.0.1:51234   (a peer is connected)
 *   tcp:[::1]:4444,server=on <-> [::1]:51234
 * Undefined for other backends (and telnet/websocket, which add framing).
 */
export function socketSpecOf(filename: string): SocketSpec | undefined {
  const { spec, kind } = parseChardevFilename(filename);
  const body = spec.slice(kind.length + 1);
  if (kind === 'unix') {
    const server = body.endsWith(',server=on');
    const path = server ? body.slice(0, -',server=on'.length) : body;
    return path === '' ? undefined : { transport: 'unix', path, server };
  }
  if (kind === 'tcp') {
    const local = body.split(' <-> ')[0] ?? '';
    const server = local.endsWith(',server=on');
    const hostPort = server ? local.slice(0, -',server=on'.length) : local;
    const m = /^\[([^\]]*)\]:(\d+)$/.exec(hostPort) ?? /^([^:]*):(\d+)$/.exec(hostPort);
    if (!m) return undefined;
    const port = Number(m[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
    // QEMU listening on all addresses shows an empty host or 0.0.0.0.
    const host = m[1] === '' || m[1] === '0.0.0.0' ? '127.0.0.1' : m[1] === '::' ? '::1' : m[1]!;
    return { transport: 'tcp', host, port, server };
  }
  return undefined;
}

export function formatSocketSpec(s: SocketSpec): string {
  if (s.transport === 'unix') return s.path;
  return s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

/** A deep copy (topologies and events are handed out as plain data). */
export function clonePlain<T>(value: T): T {
  return structuredClone(value);
}
