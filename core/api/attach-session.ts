/**
 * The app's API over a real QEMU: the "attached" kind of machine beside the
 * emulated lab (architecture.md, "Two kinds of machine behind one API").
 *
 * An AttachSession wraps core/qemu's AttachedMachine for ApiService: it
 * turns the attached topology into the contract's snapshots, its events
 * into ApiEvents (with `source` and `late`), the app's hot-plug commands
 * into chardev-add / device_add / device_del (waiting for DEVICE_DELETED),
 * and getVring into the VringPoller's latest state. What a real QEMU cannot
 * tell is never invented: a snapshot field it cannot know holds a
 * placeholder and is named in the snapshot's `unknown` list (the app shows
 * "—"), and a vring snapshot lists what it lacks in `unavailable`.
 *
 * Commands only the emulated lab can do (step mode, writing into a port as
 * the guest or the host, demo workloads, device hot-plug) are refused with
 * the reason; ApiService handles the rest (hello, capture files, loadLab).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AttachedMachine } from '../qemu/attach.js';
import { isAttachFailure, type AttachFailure } from '../qemu/attach-error.js';
import {
  queueRoleText,
  type AttachedChardev,
  type AttachedDevice,
  type AttachedPort,
  type AttachEvent,
} from '../qemu/attach-model.js';
import { isQmpError } from '../qemu/qmp-error.js';
import type { ChardevBackend } from '../qemu/qmp-types.js';
import { backendFromForm } from '../chardev/kinds/app-spec.js';
import { kindOf } from '../chardev/kinds/index.js';
import type { AttachedQueueSnapshot, VringPoller } from '../qemu/vring.js';
import {
  fail,
  ok,
  type ApiErrorKind,
  type ApiEvent,
  type AttachedInfo,
  type ChardevSnapshot,
  type ChardevSpec,
  type Command,
  type DeviceSnapshot,
  type EngineState,
  type PortSnapshot,
  type Result,
  type VringSnapshot,
} from './contract.js';

export interface AttachSessionOptions {
  /** query-chardev polling period (default 1000 ms, AttachedMachine's). */
  pollIntervalMs?: number;
  /** Vring poller period (default: VringPoller's gentle 500 ms, with its backoff). */
  vringIntervalMs?: number;
  /** Time allowed for QEMU's greeting (default 3 s; silence means the socket is taken). */
  greetingTimeoutMs?: number;
  /** Time allowed for the guest to release an unplugged port (default 15 s). */
  unplugTimeoutMs?: number;
}

export interface AttachHooks {
  /** An event for the screens (`time` is QEMU's when the event came from QEMU). */
  emit(event: Omit<ApiEvent, 'seq' | 'time'> & { time?: number }): void;
  /** The topology (or the vring state) changed. */
  changed(): void;
}

/** Why each lab-only command is refused while attached (the UI shows the same words). */
export const LAB_ONLY: Readonly<Record<string, string>> = {
  vringStep: 'step mode needs the emulated lab: a real QEMU runs on its own (Detach to return)',
  injectFault:
    'injecting faults needs the emulated lab: vmchan does not write into a real guest’s memory',
  openMonitor: 'the HMP console is the emulated lab’s: a real QEMU has its own monitor',
  pause: 'step mode needs the emulated lab: a real QEMU runs on its own (Detach to return)',
  run: 'step mode needs the emulated lab: a real QEMU runs on its own (Detach to return)',
  step: 'step mode needs the emulated lab: a real QEMU runs on its own (Detach to return)',
  writeHost:
    'injecting bytes needs the emulated lab: on a real QEMU, connect your own program to the chardev socket',
  writeGuest:
    'the guest side of a real QEMU is the guest’s own: vmchan cannot write as the guest (Detach to return)',
  setWorkload: 'the demo workloads belong to the emulated lab (Detach to return)',
  createDevice:
    'attached to a real QEMU: vmchan hot-plugs ports and chardevs there, not virtio-serial devices',
  removeDevice:
    'attached to a real QEMU: vmchan hot-plugs ports and chardevs there, not virtio-serial devices',
  connectHost:
    'QEMU cannot re-point a live port: unplug it and plug it again with the chardev (+ port)',
  disconnectHost: 'the host application is not vmchan’s here: it has to hang up itself',
  startCapture:
    'capturing a real QEMU goes through a tap between the chardev and your program: vmchan attach --tap CHARDEV=LISTEN -w FILE',
  exportConfig: 'export describes the emulated lab: Detach first',
};

/** What a real QEMU does not tell, shown in the inspector and the events. */
export const ATTACH_NOTES = (pollMs: number): string[] => [
  'VSERPORT_CHANGE (guest open/close) is rate-limited by QEMU to one per second per port: a quick open/close/open shows as one event, the newest state a second later (marked late when polling saw it first).',
  'Ports without an id get no VSERPORT_CHANGE at all, and the host side never has an event.',
  pollMs > 0
    ? `Polling query-chardev every ${pollMs} ms fills those gaps: polled changes are marked “poll”.`
    : 'query-chardev polling is off: only QMP events are shown.',
  'Byte counters, throttling and the guest’s node names are not visible over QMP: shown as —.',
];

const PORT_UNKNOWN = [
  'guestName',
  'guestPath',
  'throttled',
  'toGuest',
  'toHost',
  'dropped',
  'hostApp',
  'guestApp',
] as const;

const RUNNING: EngineState = { mode: 'running', pending: 0, executed: 0, booted: true };

type Answer = Result<unknown>;

export class AttachSession {
  private readonly pollers = new Map<string, VringPoller>();
  private vringRound = 0;
  private readonly vringSeen = new Map<string, string>();
  private readonly vringVersions = new Map<string, number>();
  private readonly off: () => void;
  private closed = false;

  private constructor(
    readonly machine: AttachedMachine,
    readonly address: string,
    /** Where sockets of chardevs made from the app go (QEMU creates them). */
    readonly runtimeDir: string,
    private readonly hooks: AttachHooks,
    private readonly options: AttachSessionOptions,
  ) {
    this.off = machine.onEvent((e) => this.onEvent(e));
  }

  /** Attach to the QMP socket at `address` (path or HOST:PORT); the error is one line. */
  static async connect(
    address: string,
    runtimeDir: string,
    hooks: AttachHooks,
    options: AttachSessionOptions = {},
  ): Promise<AttachSession | AttachFailure> {
    const machine = await AttachedMachine.connect(address, {
      ...(options.pollIntervalMs !== undefined ? { pollIntervalMs: options.pollIntervalMs } : {}),
      qmp: {
        ...(options.greetingTimeoutMs !== undefined
          ? { greetingTimeoutMs: options.greetingTimeoutMs }
          : {}),
        reconnect: false,
      },
    });
    if (isQmpError(machine)) return machine;
    fs.mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
    return new AttachSession(machine, address, runtimeDir, hooks, options);
  }

  // ------------------------------------------------------------ snapshots

  get pollMs(): number {
    return this.options.pollIntervalMs ?? 1_000;
  }

  engineState(): EngineState {
    return RUNNING;
  }

  info(): AttachedInfo {
    const t = this.machine.topology();
    const vringMs = Math.max(0, ...[...this.pollers.values()].map((p) => p.intervalMs));
    return {
      qmp: this.address,
      qemu: `QEMU ${t.qemu.version}${t.qemu.package ? ` (${t.qemu.package})` : ''}`,
      pollMs: this.pollMs,
      notes: ATTACH_NOTES(this.pollMs),
      vringRound: this.vringRound,
      vringMs,
    };
  }

  devices(): DeviceSnapshot[] {
    return this.machine.devices.map(deviceSnapshot);
  }

  ports(): PortSnapshot[] {
    return this.machine.ports.map((p) => portSnapshot(p, this.machine.devices));
  }

  chardevs(): ChardevSnapshot[] {
    return this.machine.chardevs.map(chardevSnapshot);
  }

  // ------------------------------------------------------------- commands

  /** Run a command on the attached QEMU; null: not for the attach mode (ApiService's own). */
  async run(c: Command): Promise<Answer | null> {
    const refused = LAB_ONLY[c.cmd];
    if (refused !== undefined) return fail('Unsupported', refused);
    if (c.cmd === 'openTerminal') {
      return fail(
        'Unsupported',
        c.side === 'guest'
          ? 'terminals on the guest side need the emulated lab: a real guest’s side is its own'
          : 'the app’s terminals are the emulated lab’s: connect socat or your program to the chardev socket',
      );
    }
    switch (c.cmd) {
      case 'createChardev': {
        const backend = this.backendOf(c.chardev);
        if (typeof backend === 'string') return fail('InvalidRequest', `chardev.${backend}`);
        const r = await this.machine.addChardev(c.chardev.id, backend);
        if (isAttachFailure(r)) return failure(r);
        this.hooks.changed();
        const made = this.machine.chardev(c.chardev.id);
        return made === undefined
          ? fail('Internal', `chardev ${c.chardev.id} was added but QEMU does not list it`)
          : ok(chardevSnapshot(made));
      }
      case 'removeChardev': {
        if (this.machine.chardev(c.id) === undefined)
          return fail('NotFound', `Chardev '${c.id}' not found`);
        const r = await this.machine.removeChardev(c.id);
        if (isAttachFailure(r)) return failure(r);
        this.hooks.changed();
        return ok({});
      }
      case 'hotplugPort': {
        const s = c.port;
        if (s.newChardev !== undefined && s.chardev !== undefined && s.chardev !== s.newChardev.id)
          return fail('InvalidRequest', 'give either chardev or newChardev, not both');
        const newBackend = s.newChardev === undefined ? undefined : this.backendOf(s.newChardev);
        if (typeof newBackend === 'string')
          return fail('InvalidRequest', `newChardev.${newBackend}`);
        const r = await this.machine.addPort({
          ...(s.device !== undefined ? { device: s.device } : {}),
          kind: s.driver,
          ...(s.id !== undefined ? { id: s.id } : {}),
          ...(s.name !== undefined ? { name: s.name } : {}),
          ...(s.nr !== undefined ? { nr: s.nr } : {}),
          ...(s.newChardev !== undefined && newBackend !== undefined
            ? { chardev: { id: s.newChardev.id, backend: newBackend } }
            : s.chardev !== undefined
              ? { chardev: s.chardev }
              : {}),
        });
        if (isAttachFailure(r)) return failure(r);
        this.hooks.changed();
        return ok(portSnapshot(r, this.machine.devices));
      }
      case 'unplugPort': {
        const port = this.machine.ports.find(
          (p) =>
            p.nr === c.port.nr &&
            this.machine.devices.some(
              (d) =>
                d.name === p.device &&
                (d.name === c.port.device || d.id === c.port.device || d.bus === c.port.device),
            ),
        );
        if (port === undefined)
          return fail('NotFound', `${c.port.device} has no port ${c.port.nr}`);
        const r = await this.machine.removePort(port.key, {
          ...(this.options.unplugTimeoutMs !== undefined
            ? { timeoutMs: this.options.unplugTimeoutMs }
            : {}),
        });
        if (isAttachFailure(r)) return failure(r);
        this.hooks.changed();
        return ok({});
      }
      case 'getVring':
        return this.vring(c.device, c.queue);
      case 'getVringView': {
        const r = await this.vring(c.device, c.queue);
        if (!r.ok) return r;
        const d = this.machine.devices.find(
          (x) => x.name === c.device || x.id === c.device || x.bus === c.device,
        )!;
        const snap = this.pollers
          .get(d.name)!
          .latest()
          .find((x) => x.queue === c.queue)!;
        const version = this.vringVersions.get(`${d.name}:${c.queue}`) ?? 0;
        if (c.since !== undefined && c.since === version)
          return ok({ changed: false, version, view: null });
        return ok({ changed: true, version, view: vringView(snap, d, version) });
      }
      default:
        return null;
    }
  }

  /** The poller's latest state of one queue (the first ask starts the device's poller). */
  private async vring(device: string, queue: number): Promise<Answer> {
    const d = this.machine.devices.find(
      (x) => x.name === device || x.id === device || x.bus === device,
    );
    if (d === undefined) return fail('NotFound', `Device '${device}' not found`);
    let poller = this.pollers.get(d.name);
    if (poller === undefined) {
      const made = this.machine.vring(d.name, {
        ...(this.options.vringIntervalMs !== undefined
          ? { intervalMs: this.options.vringIntervalMs }
          : {}),
      });
      if (isAttachFailure(made)) return failure(made);
      poller = made;
      this.pollers.set(d.name, poller);
      poller.onSnapshot((snaps) => this.onVring(snaps));
      const first = await poller.pollOnce();
      if (isQmpError(first)) return failure(first);
      poller.start();
    }
    const snap = poller.latest().find((s) => s.queue === queue);
    if (snap === undefined) {
      return fail(
        'NotFound',
        `queue ${queue} of ${d.name} is not set up (QEMU has ${d.queues ?? 'an unknown number of'} queues; the guest sets them up)`,
      );
    }
    return ok(vringSnapshot(snap));
  }

  private onVring(snaps: AttachedQueueSnapshot[]): void {
    let moved = false;
    for (const s of snaps) {
      const key = `${s.device}:${s.queue}`;
      const sig = JSON.stringify([s.qemu, s.elements, s.snapshot.avail.idx, s.snapshot.used.idx]);
      if (this.vringSeen.get(key) !== sig) {
        this.vringSeen.set(key, sig);
        this.vringVersions.set(key, (this.vringVersions.get(key) ?? 0) + 1);
        moved = true;
      }
    }
    if (moved && !this.closed) {
      this.vringRound++;
      this.hooks.changed();
    }
  }

  /**
   * An API chardev spec as chardev-add's backend, by the kind's record;
   * sockets without a path go to runtimeDir. A string names what is wrong.
   */
  private backendOf(spec: ChardevSpec): ChardevBackend | string {
    const at = (p: string, fallback: string): string =>
      p === ''
        ? path.join(this.runtimeDir, `${fallback}.sock`)
        : path.isAbsolute(p)
          ? p
          : path.join(this.runtimeDir, p);
    const made = backendFromForm(spec.id, spec.backend, at);
    if (typeof made === 'string') return made;
    // wait=on would stall QEMU's monitor until a client comes: never from here.
    const backend = made.kind === 'socket' && made.server ? { ...made, wait: false } : made;
    const wire = kindOf(backend).qmp.write(backend);
    return 'unsupported' in wire ? wire.unsupported : (wire as ChardevBackend);
  }

  // --------------------------------------------------------------- events

  private onEvent(e: AttachEvent): void {
    if (this.closed) return;
    this.hooks.emit({
      time: e.time,
      kind: e.kind,
      device: e.device,
      nr: e.nr,
      port: e.port,
      direction: null,
      bytes: null,
      rule: null,
      text: e.text,
      source: e.source,
      late: e.late,
    });
    this.hooks.changed();
  }

  /** Stop the pollers and close the QMP connection (QEMU keeps running). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.off();
    for (const p of this.pollers.values()) p.stop();
    this.pollers.clear();
    await this.machine.close();
    fs.rmSync(this.runtimeDir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------- conversions

/** An attach failure as the contract's error: QEMU's own words for a refused command. */
export function failure(e: AttachFailure): {
  ok: false;
  error: { kind: ApiErrorKind; message: string };
} {
  if (isQmpError(e)) {
    switch (e.kind) {
      case 'CommandFailed':
        return fail(
          e.errorClass === 'DeviceNotFound' ? 'NotFound' : 'Refused',
          e.desc ?? e.message,
        );
      case 'SocketTaken':
        return fail('Refused', e.message);
      case 'InvalidAddress':
        return fail('InvalidRequest', e.message);
      default:
        return fail('IoError', e.message);
    }
  }
  switch (e.kind) {
    case 'NotFound':
      return fail('NotFound', e.message);
    case 'InvalidArgument':
      return fail('InvalidRequest', e.message);
    case 'Unsupported':
      return fail('Unsupported', e.message);
    default:
      return fail('IoError', e.message);
  }
}

function deviceSnapshot(d: AttachedDevice): DeviceSnapshot {
  const unknown: string[] = ['guestIndex', 'fault'];
  if (d.maxPorts === null) unknown.push('maxPorts');
  if (d.queues === null) unknown.push('queues');
  if (d.packed === null) unknown.push('packed');
  if (d.multiport === null) unknown.push('multiport');
  const state = d.status.includes('VIRTIO_CONFIG_S_NEEDS_RESET')
    ? 'needs-reset'
    : d.status.includes('VIRTIO_CONFIG_S_DRIVER_OK')
      ? 'running'
      : 'stopped';
  return {
    name: d.name,
    id: d.id,
    bus: d.bus,
    maxPorts: d.maxPorts ?? 0,
    guestIndex: null,
    state,
    status: d.status.map((s) => s.replace(/^VIRTIO_CONFIG_S_/, '')),
    fault: null,
    packed: d.packed ?? false,
    multiport: d.multiport ?? false,
    queues: d.queues ?? 0,
    monitor: `x-query-virtio-status path=${d.path}`,
    unknown,
  };
}

function portSnapshot(p: AttachedPort, devices: readonly AttachedDevice[]): PortSnapshot {
  const unknown: string[] = [...PORT_UNKNOWN];
  if (p.guestOpen === null) unknown.push('guestOpen');
  if (p.hostConnected === null) unknown.push('hostConnected');
  const bus = devices.find((d) => d.name === p.device)?.bus ?? p.device;
  const props = [
    `bus=${bus}`,
    p.id !== null ? `id=${p.id}` : null,
    `nr=${p.nr}`,
    p.name !== null ? `name=${p.name}` : null,
    p.chardev !== null ? `chardev=${p.chardev}` : null,
  ].filter((x) => x !== null);
  return {
    key: p.key,
    device: p.device,
    nr: p.nr,
    kind: p.kind,
    id: p.id,
    name: p.name,
    label: p.label,
    guestName: null,
    guestPath: null,
    guestOpen: p.guestOpen ?? false,
    hostConnected: p.hostConnected ?? false,
    throttled: false,
    toGuest: 0,
    toHost: 0,
    dropped: 0,
    chardev: p.chardev,
    hostApp: null,
    guestApp: null,
    monitor: `device_add ${p.kind},${props.join(',')}`,
    unknown,
  };
}

function chardevSnapshot(c: AttachedChardev): ChardevSnapshot {
  return {
    id: c.id,
    kind: c.kind,
    filename: c.filename,
    path: c.path,
    connected: c.connected ?? false,
    usedBy: c.usedBy,
    monitor: `chardev-remove id=${c.id}`,
    unknown: c.connected === null ? ['connected'] : [],
  };
}

function vringSnapshot(s: AttachedQueueSnapshot): VringSnapshot {
  return {
    device: s.device,
    queue: s.queue,
    role: s.role,
    format: s.format,
    size: s.size,
    snapshot: JSON.parse(JSON.stringify(s.snapshot)) as Record<string, unknown>,
    unavailable: [...s.unavailable],
    qemu: JSON.parse(
      JSON.stringify({ ...s.qemu, elements: s.elements, queryMs: Math.round(s.queryMs) }),
    ) as Record<string, unknown>,
    time: s.time,
  };
}

/** The vring view's shape (vring-contract.ts VringView) for a real queue: no log, no negotiation. */
function vringView(s: AttachedQueueSnapshot, d: AttachedDevice, version: number) {
  const q = s.snapshot;
  const state = deviceSnapshot(d);
  return {
    device: s.device,
    queue: s.queue,
    role: s.role,
    direction: s.queue % 2 === 0 ? ('host-to-guest' as const) : ('guest-to-host' as const),
    version,
    ring: {
      format: 'split' as const,
      index: q.index,
      size: q.size,
      eventIdx: q.eventIdx,
      descAddr: q.layout.descAddr,
      driverAddr: q.layout.driverAddr,
      deviceAddr: q.layout.deviceAddr,
      descriptors: q.descriptors.map((x) => ({ ...x })),
      avail: { ...q.avail, ring: [...q.avail.ring] },
      used: { ...q.used, ring: [...q.used.ring] },
      device: q.device === null ? null : { ...q.device, inFlight: [...q.device.inFlight] },
      chainsInFlight: [],
      unreadable: [...s.unavailable],
    },
    deviceState: {
      name: d.name,
      state: state.state,
      status: state.status,
      fault: null,
      offered: [],
      negotiated: [],
    },
    negotiation: [],
    log: [],
    queues: Array.from({ length: d.queues ?? 0 }, (_, i) => ({
      queue: i,
      role: queueRoleText(i),
      direction: i % 2 === 0 ? ('host-to-guest' as const) : ('guest-to-host' as const),
      ready: true,
    })),
  };
}
