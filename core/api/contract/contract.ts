/**
 * The one typed contract between the engine and every face (the Electron
 * window, a browser on `vmchan serve`, tests): commands with their results,
 * events, snapshots, throughput samples and the batches that carry them to
 * a screen, plus the envelopes of the two transports.
 *
 * Pure data and zod schemas, nothing else: the renderer imports this file
 * (and client.ts, view.ts), so it must never reach Node or the engine. Every
 * message is checked against these schemas where it crosses a boundary
 * (IPC in and out, WebSocket in and out); a message that fails is refused
 * with a one-line reason, never half-used.
 *
 * Errors are values: a command answers `{ok: true, value}` or
 * `{ok: false, error: {kind, message}}` where `message` is the engine's own
 * text (QEMU's words for a refused device_add, say), never a stack trace.
 */
import { z } from 'zod';
// The capture view's commands and answers (the packet list, detail, follow): capture-contract.ts.
import {
  CaptureSwitchCommands,
  CaptureSwitchResults,
  CaptureViewCommands,
  CaptureViewResults,
  CaptureViewStateSchema,
  PortCaptureSchema,
  SaveCaptureOptionsShape,
} from './capture-contract.js';
// The vring view's commands and answers (views, step mode, injected faults): vring-contract.ts.
import {
  GetVringViewResultSchema,
  InjectFaultResultSchema,
  RingOpSchema,
  VringCommandSchemas,
  VringViewSchema,
} from './vring-contract.js';
import { AutostopWordsSchema, RingWordsSchema } from './capture-options.js';
// Terminal sessions and the HMP monitor console (output in batches): terminal-contract.ts.
import {
  TerminalCommandSchemas,
  TerminalOutputSchema,
  TerminalResults,
  TerminalSessionSchema,
} from './terminal-contract.js';

// ------------------------------------------------------------------ basics

/** QEMU's identifier rule (util/id.c): a letter, then letters, digits, '-', '.', '_'. */
export const QEMU_ID = /^[A-Za-z][A-Za-z0-9\-._]*$/;

const Id = z.string().min(1).max(128);
const Nr = z.number().int().min(0).max(0xfffffffe);
/** A device is named as QEMU's monitor names it: qdev id (`vser0`) or bus (`vser0.0`). */
const DeviceName = z.string().min(1).max(128);

export const DirectionSchema = z.enum(['host-to-guest', 'guest-to-host']);
export type Direction = z.infer<typeof DirectionSchema>;

export const PortKindSchema = z.enum(['virtserialport', 'virtconsole']);
export type PortKind = z.infer<typeof PortKindSchema>;

/** A port is (device, nr), the pair `info qtree` shows. */
export const PortRefSchema = z.object({ device: DeviceName, nr: Nr });
export type PortRef = z.infer<typeof PortRefSchema>;

export function portKey(ref: PortRef): string {
  return `${ref.device}:${ref.nr}`;
}

export const ApiErrorKindSchema = z.enum([
  /** The engine refused (QEMU's message: a duplicate nr, a busy chardev...). */
  'Refused',
  /** The message did not match the contract. */
  'InvalidRequest',
  /** A command names something that is not there. */
  'NotFound',
  /** A configuration to import did not parse (QEMU's or libvirt's words). */
  'ParseError',
  /** A file or socket operation failed. */
  'IoError',
  /** The face cannot do this (no native dialog in a browser, say). */
  'Unsupported',
  /** A bug: the engine threw. The message is one line, never a stack. */
  'Internal',
]);
export type ApiErrorKind = z.infer<typeof ApiErrorKindSchema>;

export const ApiErrorSchema = z.object({
  kind: ApiErrorKindSchema,
  message: z.string(),
});
export type ApiError = z.infer<typeof ApiErrorSchema>;

export type Result<T> = { ok: true; value: T } | { ok: false; error: ApiError };

export function resultSchema<T extends z.ZodType>(value: T) {
  return z.discriminatedUnion('ok', [
    z.object({ ok: z.literal(true), value }),
    z.object({ ok: z.literal(false), error: ApiErrorSchema }),
  ]);
}

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail(kind: ApiErrorKind, message: string): { ok: false; error: ApiError } {
  // One line for people: the first line only, whatever the engine handed us.
  const line = message.split('\n', 1)[0] ?? '';
  return { ok: false, error: { kind, message: line } };
}

/** A zod failure as one line: `port.nr: Too big: expected number to be <=4294967294`. */
export function describeIssues(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid message';
  const path = issue.path.map(String).join('.');
  // zod says "expected string, received undefined" for a field left out: say it is missing.
  if (path === '') return issue.message;
  const message = issue.message.replace(
    /^Invalid input: expected (\w+), received undefined$/,
    'missing (expected $1)',
  );
  return `${path}: ${message}`;
}

// --------------------------------------------------------------- chardevs

/**
 * The backends the app can create (H1): `kind` is one of the form choices
 * the chardev kinds register (core/chardev/kinds/: unix, tcp, null,
 * ringbuf, file, ...), the other members are that choice's fields. The
 * engine checks the fields and the backend with the kind's own record, so
 * this schema only bounds the shape.
 */
export const ChardevBackendSpecSchema = z
  .object({ kind: z.string().min(1).max(32) })
  .catchall(z.union([z.string().max(4096), z.number(), z.boolean()]));
export type ChardevBackendSpec = z.infer<typeof ChardevBackendSpecSchema>;
export type ChardevBackendKind = string;

/** One field of the app's chardev form, as a kind record declares it (core/chardev/kind.ts FormField). */
export const ChardevFormFieldSchema = z.object({
  name: z.string(),
  label: z.string(),
  type: z.enum(['text', 'number', 'bool']),
  default: z.union([z.string(), z.number(), z.boolean()]),
  placeholder: z.string().optional(),
  title: z.string().optional(),
  enabledBy: z.string().optional(),
  min: z.number().optional(),
  max: z.number().optional(),
});
export type ChardevFormField = z.infer<typeof ChardevFormFieldSchema>;

/** One choice of the app's "type" list, from the registered chardev kinds. */
export const ChardevFormChoiceSchema = z.object({
  value: z.string(),
  label: z.string(),
  fields: z.array(ChardevFormFieldSchema),
});
export type ChardevFormChoice = z.infer<typeof ChardevFormChoiceSchema>;

export const ChardevSpecSchema = z.object({
  id: Id,
  backend: ChardevBackendSpecSchema,
});
export type ChardevSpec = z.infer<typeof ChardevSpecSchema>;
export type ChardevSpecInput = z.input<typeof ChardevSpecSchema>;

// --------------------------------------------------------------- commands

export const DeviceSpecSchema = z.object({
  id: Id.optional(),
  maxPorts: z.number().int().min(0).max(0xffffffff).optional(),
  emergencyWrite: z.boolean().optional(),
  /** Ring format: packed=on (VIRTIO_F_RING_PACKED), else split rings. */
  packed: z.boolean().optional(),
  /** event_idx=on|off: VIRTIO_RING_F_EVENT_IDX offered (QEMU's default on). */
  eventIdx: z.boolean().optional(),
  /** indirect_desc=on|off: VIRTIO_RING_F_INDIRECT_DESC offered (QEMU's default on). */
  indirectDesc: z.boolean().optional(),
});
export type DeviceSpec = z.infer<typeof DeviceSpecSchema>;

export const PortSpecSchema = z.object({
  driver: PortKindSchema,
  /** The device (qdev id or bus) to plug into; the newest device when absent, as QEMU. */
  device: DeviceName.optional(),
  id: Id.optional(),
  nr: z.number().int().min(0).max(0xffffffff).optional(),
  name: z.string().min(1).max(256).optional(),
  /** An existing chardev, or a new one created first (`newChardev`). */
  chardev: Id.optional(),
  newChardev: ChardevSpecSchema.optional(),
});
export type PortSpec = z.infer<typeof PortSpecSchema>;
export type PortSpecInput = z.input<typeof PortSpecSchema>;

export const ConfigFormatSchema = z.enum(['qemu', 'libvirt']);
export type ConfigFormat = z.infer<typeof ConfigFormatSchema>;

export const LabNameSchema = z.enum(['demo', 'empty']);
export type LabName = z.infer<typeof LabNameSchema>;

const Bytes = z.object({
  /** The bytes: UTF-8 text, or base64 when `base64` is set. */
  data: z.string().max(1 << 20),
  base64: z.boolean().optional(),
});

export const CommandSchema = z.discriminatedUnion('cmd', [
  z.object({ cmd: z.literal('hello') }),
  /** Attach to a real QEMU over QMP (socket path or HOST:PORT); the lab waits (attach-session.ts). */
  z.object({ cmd: z.literal('attach'), address: z.string().trim().min(1).max(4096) }),
  /** Let go of the attached QEMU and return to the lab. */
  z.object({ cmd: z.literal('detach') }),
  /**
   * Tap a socket chardev of the attached QEMU (every byte into capture):
   * in place at QEMU's own unix path (the default where QEMU listens on a
   * unix socket), or on a new socket (tcp: the port QEMU holds cannot be taken).
   */
  z.object({
    cmd: z.literal('tapChardev'),
    id: Id,
    mode: z.enum(['in-place', 'new-socket', 'reverse']).optional(),
    /** new-socket: where applications connect (default: a socket in the runtime directory). */
    listen: z.string().min(1).max(4096).optional(),
    /** reverse (QEMU is the client): yes, re-point QEMU's chardev with chardev-change until detach. */
    consent: z.boolean().optional(),
  }),
  /** Remove a tap; an in-place tap gives QEMU's path back. */
  z.object({ cmd: z.literal('untapChardev'), id: Id }),
  /** The running libvirt domains (the Attach dialog; attach with address `libvirt:NAME@URI`). */
  z.object({ cmd: z.literal('listDomains'), connect: z.string().min(1).max(1024).optional() }),
  z.object({ cmd: z.literal('getTopology') }),
  z.object({ cmd: z.literal('loadLab'), lab: LabNameSchema }),
  z.object({ cmd: z.literal('createDevice'), device: DeviceSpecSchema }),
  z.object({ cmd: z.literal('removeDevice'), device: DeviceName }),
  z.object({ cmd: z.literal('createChardev'), chardev: ChardevSpecSchema }),
  z.object({ cmd: z.literal('removeChardev'), id: Id }),
  /** The chardev kinds the app can create, with their form fields (one record per kind). */
  z.object({ cmd: z.literal('chardevForms') }),
  /** device_add of a port: before boot a cold plug, afterwards a hot-plug (D8). */
  z.object({ cmd: z.literal('hotplugPort'), port: PortSpecSchema }),
  /** device_del (D8): the port leaves the guest. */
  z.object({ cmd: z.literal('unplugPort'), port: PortRefSchema }),
  /**
   * Re-point a port at another chardev (an existing one, or `newChardev`).
   * QEMU cannot re-point a live port, so this is what a person does there:
   * device_del and device_add again with the same id, nr and name.
   * (Connecting a host application to the chardev a port has is
   * `openTerminal` with side `host`.)
   */
  z.object({
    cmd: z.literal('repointPort'),
    port: PortRefSchema,
    chardev: Id.optional(),
    newChardev: ChardevSpecSchema.optional(),
  }),
  /** The former name of `repointPort` (kept for scripts that use it): the same operation. */
  z.object({
    cmd: z.literal('connectHost'),
    port: PortRefSchema,
    chardev: Id.optional(),
    newChardev: ChardevSpecSchema.optional(),
  }),
  /**
   * Reset a device as its guest driver recovers from NEEDS_RESET: the
   * driver lets go (status 0 resets the device) and binds again
   * (negotiation, rings, DEVICE_READY, the ports announced again).
   */
  z.object({ cmd: z.literal('resetDevice'), device: DeviceName }),
  /** Take the host application away: the socket client (or in-app peer) hangs up. */
  z.object({ cmd: z.literal('disconnectHost'), port: PortRefSchema }),
  z.object({
    cmd: z.literal('startCapture'),
    path: z.string().max(4096).optional(),
    /** dumpcap's -b words: filesize:KB, duration:S, files:N (capture-options.ts). */
    ring: RingWordsSchema.optional(),
    /** dumpcap's -a words: filesize:KB, duration:S, packets:N (capture-options.ts). */
    autostop: AutostopWordsSchema.optional(),
    /** Warn once the file passes this many bytes (default 1 GiB). */
    warnBytes: z.number().int().positive().optional(),
  }),
  z.object({ cmd: z.literal('stopCapture') }),
  /** Copy the last capture file to `path`. */
  z.object({
    cmd: z.literal('saveCapture'),
    path: z.string().min(1).max(4096),
    ...SaveCaptureOptionsShape,
  }),
  z.object({ cmd: z.literal('openCapture'), path: z.string().min(1).max(4096) }),
  ...CaptureViewCommands,
  ...CaptureSwitchCommands,
  z.object({ cmd: z.literal('pause') }),
  z.object({ cmd: z.literal('run') }),
  z.object({ cmd: z.literal('step'), count: z.number().int().min(1).max(100_000).optional() }),
  ...VringCommandSchemas,
  z.object({
    cmd: z.literal('importConfig'),
    format: ConfigFormatSchema,
    text: z.string().max(1 << 20),
  }),
  z.object({ cmd: z.literal('exportConfig'), format: ConfigFormatSchema }),
  z.object({
    cmd: z.literal('getVring'),
    device: DeviceName,
    queue: z.number().int().min(0).max(1024),
  }),
  z.object({ cmd: z.literal('writeHost'), port: PortRefSchema, ...Bytes.shape }),
  z.object({ cmd: z.literal('writeGuest'), port: PortRefSchema, ...Bytes.shape }),
  /** Switch the demo workloads of one port (or all) on or off, paced or at full speed. */
  z.object({
    cmd: z.literal('setWorkload'),
    port: PortRefSchema.optional(),
    on: z.boolean(),
    speed: z.enum(['paced', 'full']).optional(),
  }),
  ...TerminalCommandSchemas,
]);
export type Command = z.infer<typeof CommandSchema>;
export type CommandInput = z.input<typeof CommandSchema>;
export type CommandName = Command['cmd'];

// -------------------------------------------------------------- snapshots

export const PortSnapshotSchema = z.object({
  /** `device:nr`, stable while the port is plugged. */
  key: z.string(),
  device: z.string(),
  nr: z.number().int(),
  kind: PortKindSchema,
  id: z.string().nullable(),
  name: z.string().nullable(),
  /** What a person calls it: the name, else the id, else `port N`. */
  label: z.string(),
  /** The guest's node: `vport0p2`, or `hvc0` for a console (null: the guest has not made it). */
  guestName: z.string().nullable(),
  /** `/dev/virtio-ports/<name>` when the guest made the link. */
  guestPath: z.string().nullable(),
  guestOpen: z.boolean(),
  hostConnected: z.boolean(),
  throttled: z.boolean(),
  /** Bytes host to guest (written into guest buffers) and guest to host (taken by the backend). */
  toGuest: z.number(),
  toHost: z.number(),
  /** Bytes of this port lost on the way, whoever dropped them (device, guest driver, backend). */
  dropped: z.number(),
  /** The same bytes by direction and reason (the lab; absent when attached to a real QEMU). */
  drops: z
    .array(
      z.object({
        direction: z.enum(['to-guest', 'to-host']).nullable(),
        side: z.enum(['device', 'guest', 'backend']),
        reason: z.string(),
        bytes: z.number(),
      }),
    )
    .optional(),
  chardev: z.string().nullable(),
  /** Who is at each end, in words (`socket client`, `guest agent`, ...). */
  hostApp: z.string().nullable(),
  guestApp: z.string().nullable(),
  /** The monitor twin: `device_add virtserialport,bus=vser0.0,...`. */
  monitor: z.string(),
  /** Attached QEMU: the fields above it cannot tell (their values are placeholders; show "—"). */
  unknown: z.array(z.string()).optional(),
  /** Its capture switch (absent where the session cannot capture). */
  capture: PortCaptureSchema.optional(),
  /** Attached QEMU: the tap on its chardev, when there is one. */
  tap: z.lazy(() => TapStateSchema.nullable()).optional(),
});
export type PortSnapshot = z.infer<typeof PortSnapshotSchema>;

export const DeviceSnapshotSchema = z.object({
  /** What ports name it by: the qdev id or, without one, the bus. */
  name: z.string(),
  id: z.string().nullable(),
  bus: z.string(),
  maxPorts: z.number().int(),
  /** The guest's number for it: D in vportDpN (null before the driver probed it). */
  guestIndex: z.number().int().nullable(),
  /** `running`, `needs-reset` (D9), or `stopped` (no driver yet). */
  state: z.enum(['running', 'needs-reset', 'stopped']),
  status: z.array(z.string()),
  fault: z.object({ rule: z.string(), message: z.string() }).nullable(),
  packed: z.boolean(),
  multiport: z.boolean(),
  /** Number of virtqueues the driver set up. */
  queues: z.number().int(),
  monitor: z.string(),
  /** Attached QEMU: the fields above it cannot tell (show "—"). */
  unknown: z.array(z.string()).optional(),
});
export type DeviceSnapshot = z.infer<typeof DeviceSnapshotSchema>;

export const ChardevSnapshotSchema = z.object({
  id: z.string(),
  kind: z.string(),
  /** query-chardev's filename: `unix:/run/.../test1,server=on`, `disconnected:` prefix when nobody is there. */
  filename: z.string(),
  /** The socket path a host application connects to, when there is one. */
  path: z.string().nullable(),
  connected: z.boolean(),
  usedBy: PortRefSchema.nullable(),
  monitor: z.string(),
  /** Attached QEMU: the fields above it cannot tell (show "—"). */
  unknown: z.array(z.string()).optional(),
  /** Asynchronous failures of the chardev's OS resources (counted, never fatal), with the last one. */
  failures: z.object({ count: z.number().int(), last: z.string().nullable() }).optional(),
});
export type ChardevSnapshot = z.infer<typeof ChardevSnapshotSchema>;

export const EngineStateSchema = z.object({
  mode: z.enum(['running', 'paused']),
  pending: z.number().int(),
  executed: z.number(),
  booted: z.boolean(),
  /** Running, but one queue's work waits for steps ("Step this queue", others run): which. */
  hold: z.object({ device: z.string(), queue: z.number().int() }).nullable().optional(),
});
export type EngineState = z.infer<typeof EngineStateSchema>;

export const CaptureStateSchema = z.object({
  on: z.boolean(),
  path: z.string().nullable(),
  records: z.number(),
  /** The last finished capture, ready for saveCapture. */
  last: z.string().nullable(),
  /** The capture open in the capture view (its record count follows a growing file). */
  view: CaptureViewStateSchema.nullable().optional(),
  /** The global switch: ports without a switch of their own are captured. */
  all: z.boolean().optional(),
  /** Size of the capture file now (it grows while the capture runs). */
  bytes: z.number().optional(),
  /** The size the user is warned at (default 1 GiB). */
  warnBytes: z.number().optional(),
  /** Set once the file passed warnBytes. */
  warning: z.string().nullable().optional(),
});
export type CaptureState = z.infer<typeof CaptureStateSchema>;

/** A tap on an attached QEMU's chardev (core/qemu/tap.ts, inplace-tap.ts). */
export const TapStateSchema = z.object({
  chardev: z.string(),
  mode: z.enum(['in-place', 'new-socket', 'reverse']),
  /** Where host applications connect (QEMU's own path for an in-place tap). */
  address: z.string(),
  /** In place: a client from before the tap still talks to QEMU directly until it reconnects. */
  waiting: z.boolean(),
  /** An application is connected through the tap now. */
  connected: z.boolean(),
  /** What could not be done as asked (an owner that could not be given), one line each. */
  notes: z.array(z.string()),
});
export type TapState = z.infer<typeof TapStateSchema>;

/** What the app is attached to when it serves a real QEMU instead of the lab. */
export const AttachedInfoSchema = z.object({
  /** The QMP socket path or HOST:PORT. */
  qmp: z.string(),
  /** QEMU's version and package, from the QMP greeting. */
  qemu: z.string(),
  /** query-chardev polling period (ms). */
  pollMs: z.number(),
  /** What a real QEMU does not tell (VSERPORT_CHANGE's limits, ...), one line each. */
  notes: z.array(z.string()),
  /** Bumped when the vring poller read new queue state (the vring view refreshes). */
  vringRound: z.number().int(),
  /** The vring poller's period now (ms; it backs off when QMP is slow). */
  vringMs: z.number(),
  /** A libvirt domain (libvirt:NAME): its channels as its XML tells them (core/machine/libvirt-channels.ts). */
  libvirt: z
    .object({
      domain: z.string(),
      uri: z.string(),
      channels: z.array(
        z.object({
          element: z.enum(['channel', 'console']),
          target: z.string().nullable(),
          alias: z.string().nullable(),
          chardev: z.string().nullable(),
          type: z.string(),
          path: z.string().nullable(),
          mode: z.string().nullable(),
          state: z.string().nullable(),
          role: z.enum(['agent', 'spice', 'libguestfs', 'application']),
          roleText: z.string(),
        }),
      ),
    })
    .optional(),
});
export type AttachedInfo = z.infer<typeof AttachedInfoSchema>;

/** Whether what is served can do one thing, and why not (capabilities.ts). */
export const CanSchema = z.union([
  z.object({ can: z.literal(true) }),
  z.object({ can: z.literal(false), reason: z.string() }),
]);

export const TopologySnapshotSchema = z.object({
  lab: z.string(),
  runtimeDir: z.string().nullable(),
  engine: EngineStateSchema,
  capture: CaptureStateSchema,
  devices: z.array(DeviceSnapshotSchema),
  ports: z.array(PortSnapshotSchema),
  chardevs: z.array(ChardevSnapshotSchema),
  /** Set while a real QEMU is served instead of the lab (null or absent: the lab). */
  attached: AttachedInfoSchema.nullable().optional(),
  /** What the session served can do (capabilities.ts), with the reason where it cannot. */
  capabilities: z.record(z.string(), CanSchema).optional(),
  /**
   * Every session the app holds on a port (terminals, Send holds) and the
   * monitor consoles: the Console tab lists them, the inspector says who
   * holds a side (issue 17).
   */
  sessions: z.array(TerminalSessionSchema).optional(),
});
export type TopologySnapshot = z.infer<typeof TopologySnapshotSchema>;

/** One virtqueue as the vring view draws it (split or packed), kept loose on purpose. */
export const VringSnapshotSchema = z.object({
  device: z.string(),
  queue: z.number().int(),
  /** `rx port 1`, `control tx`, ... */
  role: z.string(),
  format: z.enum(['split', 'packed']),
  size: z.number().int(),
  snapshot: z.record(z.string(), z.unknown()),
  /** Attached QEMU: what the snapshot cannot hold for a real device, in words. */
  unavailable: z.array(z.string()).optional(),
  /** Attached QEMU: its own counters for the queue (last-avail-idx, inuse, ...). */
  qemu: z.record(z.string(), z.unknown()).optional(),
  /** Attached QEMU: when it was read (ms since the Unix epoch). */
  time: z.number().optional(),
});
export type VringSnapshot = z.infer<typeof VringSnapshotSchema>;

// ----------------------------------------------------------------- events

export const EventKindSchema = z.enum([
  'port-added',
  'port-removed',
  'guest-open',
  'guest-close',
  'host-open',
  'host-close',
  'control',
  'throttle-on',
  'throttle-off',
  'drop',
  'needs-reset',
  'error',
  'device-deleted',
  'guest-node',
  'emergency-write',
  'note',
]);
export type EventKind = z.infer<typeof EventKindSchema>;

export const ApiEventSchema = z.object({
  seq: z.number().int(),
  /** Milliseconds since the Unix epoch. */
  time: z.number(),
  kind: EventKindSchema,
  device: z.string().nullable(),
  nr: z.number().int().nullable(),
  /** The port's label when the event is about a port. */
  port: z.string().nullable(),
  direction: DirectionSchema.nullable(),
  /** Bytes (drops). */
  bytes: z.number().nullable(),
  /** Conformance rule id (needs-reset: `M11`). */
  rule: z.string().nullable(),
  /** One line for people. */
  text: z.string(),
  /** Attached QEMU: how it was learned (a QMP event, polling query-chardev, a command of ours). */
  source: z.enum(['event', 'poll', 'command']).optional(),
  /** Attached QEMU: a QMP event that polling had already shown (VSERPORT_CHANGE is rate-limited). */
  late: z.boolean().optional(),
});
export type ApiEvent = z.infer<typeof ApiEventSchema>;

// ------------------------------------------------------------- throughput

export const PortSampleSchema = z.object({
  key: z.string(),
  /** Bytes moved during the sample, each way. */
  toGuest: z.number(),
  toHost: z.number(),
  /** Bytes moved since the port was plugged, each way (the inspector's counters). */
  totalToGuest: z.number(),
  totalToHost: z.number(),
});
export type PortSample = z.infer<typeof PortSampleSchema>;

export const ThroughputSampleSchema = z.object({
  /** End of the interval, ms since the Unix epoch. */
  t: z.number(),
  /** Length of the interval in ms (longer when samples were coalesced). */
  dt: z.number().positive(),
  ports: z.array(PortSampleSchema),
});
export type ThroughputSample = z.infer<typeof ThroughputSampleSchema>;

// ---------------------------------------------------------------- batches

export const CoalescedSchema = z.object({
  /** Events left out of this batch's list (the newest are kept), by kind. */
  events: z.number().int(),
  byKind: z.record(z.string(), z.number().int()),
  /** Throughput samples merged into their neighbours. */
  samples: z.number().int(),
  /** Topology changes folded into the one snapshot this batch carries. */
  topology: z.number().int(),
});
export type Coalesced = z.infer<typeof CoalescedSchema>;

/**
 * What the bridge sends a screen: at most one at a time, the next only after
 * the screen acknowledged this one (from requestAnimationFrame), so a
 * screen never gets more than one batch per frame whatever the traffic.
 */
export const BatchSchema = z.object({
  seq: z.number().int().min(1),
  time: z.number(),
  events: z.array(ApiEventSchema),
  samples: z.array(ThroughputSampleSchema),
  /** A fresh snapshot when anything changed since the last batch, else null. */
  topology: TopologySnapshotSchema.nullable(),
  engine: EngineStateSchema,
  coalesced: CoalescedSchema,
  /** Terminal output since the last batch, one entry per session (terminal-contract.ts). */
  terminals: z.array(TerminalOutputSchema).optional(),
});
export type Batch = z.infer<typeof BatchSchema>;

// ---------------------------------------------------------------- results

export const HelloSchema = z.object({
  app: z.literal('vmchan'),
  version: z.string(),
  /** `electron` or `web`. */
  face: z.enum(['electron', 'web']),
  /** Commands this face can run natively (file dialogs in Electron). */
  dialogs: z.boolean(),
  /** The QEMU and Linux versions the engine follows (core/version.ts REFERENCE). */
  reference: z.object({ qemu: z.string(), linux: z.string() }),
  /** The documentation: files in the package (relative to `root`) and the CLI's help. */
  docs: z.object({ root: z.string(), files: z.array(z.string()), help: z.string() }),
});
export type Hello = z.infer<typeof HelloSchema>;

const Empty = z.object({});

export const ConfigNoteSchema = z.object({ kind: z.string(), message: z.string() });

/** What each command answers with when it succeeds. */
export const ResultSchemas = {
  hello: HelloSchema,
  attach: TopologySnapshotSchema,
  detach: TopologySnapshotSchema,
  tapChardev: z.lazy(() => TapStateSchema),
  untapChardev: Empty,
  listDomains: z.object({ uri: z.string(), domains: z.array(z.string()) }),
  getTopology: TopologySnapshotSchema,
  loadLab: TopologySnapshotSchema,
  createDevice: z.object({ name: z.string(), bus: z.string() }),
  removeDevice: Empty,
  createChardev: ChardevSnapshotSchema,
  removeChardev: Empty,
  chardevForms: z.array(ChardevFormChoiceSchema),
  hotplugPort: PortSnapshotSchema,
  unplugPort: Empty,
  repointPort: PortSnapshotSchema,
  connectHost: PortSnapshotSchema,
  resetDevice: z.object({
    device: z.string(),
    state: z.enum(['running', 'needs-reset', 'stopped']),
  }),
  disconnectHost: PortSnapshotSchema,
  startCapture: CaptureStateSchema,
  stopCapture: CaptureStateSchema,
  saveCapture: z.object({
    path: z.string(),
    bytes: z.number(),
    /** Records written (a save from the capture view). */
    records: z.number().int().optional(),
  }),
  openCapture: z.object({
    path: z.string(),
    records: z.number().int(),
  }),
  pause: EngineStateSchema,
  run: EngineStateSchema,
  step: z.object({ ran: z.array(z.string()), engine: EngineStateSchema }),
  importConfig: z.object({ topology: TopologySnapshotSchema, notes: z.array(ConfigNoteSchema) }),
  exportConfig: z.object({ text: z.string(), notes: z.array(ConfigNoteSchema) }),
  getVring: VringSnapshotSchema,
  writeHost: z.object({ written: z.number().int() }),
  /** `queued`: the engine is paused; the guest's write runs when it runs (Run or Step). */
  writeGuest: z.object({ written: z.number().int(), queued: z.number().int().optional() }),
  setWorkload: z.object({ running: z.array(z.string()) }),
  getVringView: GetVringViewResultSchema,
  vringStep: z.object({
    ran: z.array(z.string()),
    ops: z.array(RingOpSchema),
    engine: EngineStateSchema,
    view: VringViewSchema,
  }),
  injectFault: InjectFaultResultSchema,
  ...CaptureViewResults,
  ...CaptureSwitchResults,
  setCaptureAll: CaptureStateSchema,
  ...TerminalResults,
} as const satisfies Record<CommandName, z.ZodType>;

export type ResultOf<C extends CommandName> = z.infer<(typeof ResultSchemas)[C]>;
export type CommandOf<C extends CommandName> = Extract<Command, { cmd: C }>;
export type CommandInputOf<C extends CommandName> = Extract<CommandInput, { cmd: C }>;

const resultSchemaCache = new Map<CommandName, z.ZodType>();

/** The schema of the whole answer to command `cmd` ({ok, value} | {ok, error}). */
export function answerSchema(cmd: CommandName): z.ZodType {
  let s = resultSchemaCache.get(cmd);
  if (s === undefined) {
    s = resultSchema(ResultSchemas[cmd]);
    resultSchemaCache.set(cmd, s);
  }
  return s;
}

/** Check an answer before it leaves (or after it arrives); a bad one becomes an Internal error. */
export function checkAnswer<C extends CommandName>(cmd: C, answer: unknown): Result<ResultOf<C>> {
  const r = answerSchema(cmd).safeParse(answer);
  if (r.success) return r.data as Result<ResultOf<C>>;
  return fail('Internal', `answer to ${cmd} broke the contract: ${describeIssues(r.error)}`);
}

/** Check a command as it arrives; the error is the one line the caller gets back. */
export function parseCommand(
  input: unknown,
): { ok: true; value: Command } | { ok: false; error: ApiError } {
  const r = CommandSchema.safeParse(input);
  if (r.success) return { ok: true, value: r.data };
  return fail('InvalidRequest', describeIssues(r.error));
}

// -------------------------------------------------------------- envelopes

/** Client to server on the WebSocket (and the IPC ack channel). */
export const ClientMessageSchema = z.discriminatedUnion('t', [
  z.object({
    t: z.literal('req'),
    id: z.number().int().min(0),
    command: z.unknown(),
    /** What the person at the window agreed this command may reach (reach.ts keys). */
    confirm: z.array(z.string().max(4200)).max(16).optional(),
  }),
  z.object({ t: z.literal('ack'), seq: z.number().int().min(1) }),
]);
export type ClientMessage = z.infer<typeof ClientMessageSchema>;

/** Server to client on the WebSocket. */
export const ServerMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('res'), id: z.number().int().min(0), result: z.unknown() }),
  z.object({ t: z.literal('batch'), batch: BatchSchema }),
]);
export type ServerMessage = z.infer<typeof ServerMessageSchema>;

export const AckSchema = z.number().int().min(1);

/** IPC channel names (Electron). */
export const IPC = {
  request: 'vmchan:request',
  ack: 'vmchan:ack',
  batch: 'vmchan:batch',
  menu: 'vmchan:menu',
} as const;

/** What a menu item asks the window to do (Electron main to renderer). */
export const MenuActionSchema = z.enum([
  'import',
  'export',
  'open-capture',
  'save-capture',
  'about',
  'add-device',
  'add-port',
  'add-chardev',
  'attach',
  'detach',
]);
export type MenuAction = z.infer<typeof MenuActionSchema>;

/** The object the Electron preload exposes as `window.vmchan` (the only one). */
export interface VmchanBridge {
  /** Send one command; resolves with the answer (checked again by the client). */
  request(command: unknown): Promise<unknown>;
  /** The window applied batch `seq` and may take the next. */
  ack(seq: number): void;
  /** Batches from the engine; returns the unsubscribe. */
  onBatch(listener: (batch: unknown) => void): () => void;
  /** Menu actions the window handles (dialogs). */
  onMenu(listener: (action: unknown) => void): () => void;
}
