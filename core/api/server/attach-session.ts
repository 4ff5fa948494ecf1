/**
 * The app's API over a real QEMU: the "attached" kind of machine beside the
 * emulated lab (docs/ARCHITECTURE.md, core/qemu).
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
 * the guest or the host, demo workloads, device hot-plug) are Refusals in
 * its command table, each naming the capability it lacks and why
 * (ATTACHED_CAPABILITIES); ApiService handles the rest (hello, capture
 * files, loadLab).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CaptureError } from '../../capture/error.js';
import type { Capture, CaptureInterface } from '../../capture/record.js';
import { AttachedMachine } from '../../qemu/attach.js';
import { isAttachError, isAttachFailure, type AttachFailure } from '../../qemu/attach-error.js';
import { InPlaceTap } from '../../qemu/inplace-tap.js';
import {
  domainXml,
  parseLibvirtAddress,
  QmpProxy,
  type LibvirtTarget,
} from '../../qemu/libvirt.js';
import { domainChannels, type DomainChannel } from '../../machine/libvirt-channels.js';
import { ReverseTap } from '../../qemu/reverse-tap.js';
import { tapChardev, type ChardevTap } from '../../qemu/tap.js';
import { recoverMoves, type TapJournal } from '../../qemu/tap-journal.js';
import { AttachCapture } from './attach-capture.js';
import type { LiveHub } from '../../capture/live-server.js';
import { AGENT_PORT_NAME } from '../../qga/agent.js';
import { isQgaError, type QgaClient } from '../../qga/client.js';
import { agentAddress, connectAgent, type AgentAddress } from '../../qga/connect.js';
import { GuestConsole, type GuestConsoleOptions } from '../../qga/guest-console.js';
import {
  queueRoleText,
  type AttachedChardev,
  type AttachedDevice,
  type AttachedPort,
  type AttachEvent,
  type SocketSpec,
} from '../../qemu/attach-model.js';
import { isQmpError } from '../../qemu/qmp-error.js';
import type { ChardevBackend } from '../../qemu/qmp-types.js';
import { backendFromForm } from '../../chardev/kinds/app-spec.js';
import { kindOf } from '../../chardev/kinds/index.js';
import type { AttachedQueueSnapshot, VringPoller } from '../../qemu/vring.js';
import {
  fail,
  ok,
  type ApiErrorKind,
  type ApiEvent,
  type AttachedInfo,
  type ChardevSnapshot,
  type ChardevSpec,
  type DeviceSnapshot,
  type EngineState,
  type PortRef,
  type PortSnapshot,
  type Result,
  type TapState,
  type VringSnapshot,
} from '../contract/contract.js';
import {
  Refusal,
  type CaptureSwitches,
  type CommandTable,
  type HostSocket,
  type PortTotals,
  type Recorder,
  type Session,
} from './session.js';
import type { Can, Capabilities, Capability } from '../contract/capabilities.js';

export interface AttachSessionOptions {
  /** query-chardev polling period (default 1000 ms, AttachedMachine's). */
  pollIntervalMs?: number;
  /** Vring poller period (default: VringPoller's gentle 500 ms, with its backoff). */
  vringIntervalMs?: number;
  /** Time allowed for QEMU's greeting (default 3 s; silence means the socket is taken). */
  greetingTimeoutMs?: number;
  /** Time allowed for the guest to release an unplugged port (default 15 s). */
  unplugTimeoutMs?: number;
  /** Where in-place taps note the paths they moved (default: the user's runtime dir). */
  journal?: TapJournal;
  /** Guest consoles through the guest's agent: poll period and batch (guest-console.ts). */
  guestConsole?: GuestConsoleOptions;
}

export interface AttachHooks {
  /** An event for the screens (`time` is QEMU's when the event came from QEMU). */
  emit(event: Omit<ApiEvent, 'seq' | 'time'> & { time?: number }): void;
  /** The topology (or the vring state) changed. */
  changed(): void;
}

const NO_AGENT_PORT = `a real guest’s side is its own: vmchan reaches it only through a guest agent, and this VM has no ${AGENT_PORT_NAME} port`;

const STEP_MODE =
  'step mode needs the emulated lab: a real QEMU runs on its own (Detach to return)';

/**
 * What a real QEMU cannot do through vmchan, and why (the app shows the
 * same words on the control).
 */
export const ATTACHED_CAPABILITIES: Capabilities = {
  devices: {
    can: false,
    reason:
      'attached to a real QEMU: vmchan hot-plugs ports and chardevs there, not virtio-serial devices',
  },
  hotplug: { can: true },
  rewire: {
    can: false,
    reason:
      'QEMU cannot re-point a live port, and the host application is not vmchan’s to hang up: unplug the port and plug it again with the chardev',
  },
  stepMode: { can: false, reason: STEP_MODE },
  faults: {
    can: false,
    reason:
      'injecting faults needs the emulated lab: vmchan does not write into a real guest’s memory',
  },
  writeHost: {
    can: false,
    reason:
      'injecting bytes needs the emulated lab: on a real QEMU, connect your own program to the chardev socket',
  },
  writeGuest: {
    can: false,
    reason:
      'the guest side of a real QEMU is the guest’s own: vmchan cannot write as the guest (Detach to return)',
  },
  workloads: {
    can: false,
    reason: 'the demo workloads belong to the emulated lab (Detach to return)',
  },
  hostTerminal: { can: true },
  guestTerminal: {
    can: false,
    reason: NO_AGENT_PORT,
  },
  monitor: {
    can: false,
    reason: 'the HMP console is the emulated lab’s: a real QEMU has its own monitor',
  },
  capture: { can: true },
  exportConfig: { can: false, reason: 'export describes the emulated lab: Detach first' },
  vringHistory: {
    can: false,
    reason:
      'QEMU cannot show the descriptor table beyond queried chains, nor the ring’s history: the view shows its latest poll',
  },
  tap: { can: true },
};

/** The refusal of a command that needs `capability`, in the words above. */
function refusal(capability: Capability): Refusal {
  const c = ATTACHED_CAPABILITIES[capability];
  return new Refusal(capability, c.can ? `${capability} is not available` : c.reason);
}

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

type TapMode = 'in-place' | 'new-socket' | 'reverse';

interface LiveTap {
  mode: TapMode;
  chardevTap: ChardevTap;
  /** The in-place tap that moved QEMU's node (null: a new socket). */
  inPlace: InPlaceTap | null;
  /** The reverse tap that re-pointed QEMU's chardev (null otherwise). */
  reverse?: ReverseTap;
  off?: () => void;
}

export class AttachSession implements Session {
  readonly kind = 'attached';
  /** Taps by chardev id. */
  private readonly taps = new Map<string, LiveTap>();
  /** The libvirt QMP proxy this session started (a domain), stopped on close. */
  private proxy: QmpProxy | null = null;
  /** A libvirt domain's target and its channels from its XML (read at attach, again after hot-plug). */
  private libvirt: { target: LibvirtTarget; channels: DomainChannel[] } | null = null;
  /** Every tap's bytes and QEMU's events, into a file while recording. */
  private readonly capture = new AttachCapture((reason) =>
    this.note(`live capture client disconnected: ${reason}`),
  );
  private readonly pollers = new Map<string, VringPoller>();
  private vringRound = 0;
  private readonly vringSeen = new Map<string, string>();
  private readonly vringVersions = new Map<string, number>();
  private readonly off: () => void;
  private closed = false;
  /** vmchan's client of the guest's agent while a guest console is open. */
  private agentClient: QgaClient | null = null;
  /** Why the last try to reach the agent failed (null: it did not), and the agent port's guest state then. */
  private agentProblem: string | null = null;
  private agentProblemOpen: boolean | null = null;
  private readonly consoles = new Set<GuestConsole>();

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
    // A libvirt domain: libvirtd holds its monitor; QMP goes through virt-qemu-qmp-proxy (libvirt.ts).
    const domain = parseLibvirtAddress(address);
    let proxy: QmpProxy | null = null;
    let qmpAddress = address;
    if (domain !== null) {
      fs.mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
      const started = await QmpProxy.start(domain, path.join(runtimeDir, 'qmp-proxy.sock'));
      if (isAttachError(started)) {
        fs.rmSync(runtimeDir, { recursive: true, force: true });
        return started;
      }
      proxy = started;
      qmpAddress = started.socketPath;
    }
    const machine = await AttachedMachine.connect(qmpAddress, {
      ...(options.pollIntervalMs !== undefined ? { pollIntervalMs: options.pollIntervalMs } : {}),
      qmp: {
        ...(options.greetingTimeoutMs !== undefined
          ? { greetingTimeoutMs: options.greetingTimeoutMs }
          : {}),
        reconnect: false,
        ...(proxy !== null ? { oneAtATime: true } : {}),
      },
    });
    if (isQmpError(machine)) {
      await proxy?.stop();
      return machine;
    }
    fs.mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
    const session = new AttachSession(machine, address, runtimeDir, hooks, options);
    session.proxy = proxy;
    if (domain !== null) {
      session.libvirt = { target: domain, channels: [] };
      await session.readDomainChannels();
    }
    // A vmchan that died while tapping in place left QEMU's paths moved: give them back first.
    for (const line of recoverMoves(options.journal)) session.note(`after a crash: ${line}`);
    return session;
  }

  /**
   * The domain's channels from `virsh dumpxml` (QMP does not tell a
   * channel's libvirt role); a failure is a note, the attach goes on.
   */
  private async readDomainChannels(): Promise<void> {
    if (this.libvirt === null) return;
    const xml = await domainXml(this.libvirt.target);
    if (typeof xml !== 'string') {
      this.note(`the domain's channels are not known: ${xml.message}`);
      return;
    }
    const channels = domainChannels(xml);
    if (!Array.isArray(channels)) {
      this.note(`the domain's XML cannot be read: ${channels.message}`);
      return;
    }
    if (this.libvirt !== null && !this.closed) {
      this.libvirt.channels = channels;
      this.hooks.changed();
    }
  }

  // ------------------------------------------------------------ snapshots

  get pollMs(): number {
    return this.options.pollIntervalMs ?? 1_000;
  }

  get title(): string {
    return `attached: ${this.address}`;
  }

  capabilities(): Capabilities {
    return { ...ATTACHED_CAPABILITIES, guestTerminal: this.guestConsoleCan() };
  }

  // -------------------------------------------------------- guest console

  /** The agent's port and chardev, when the VM has one. */
  private agentPort(): AttachedPort | undefined {
    return this.machine.ports.find((p) => p.name === AGENT_PORT_NAME && p.chardev !== null);
  }

  /**
   * Whether a guest console can open now: a qemu-ga must hold the agent port
   * open in the guest, and its chardev must be free for vmchan (a socket
   * QEMU listens on, nobody else connected, or vmchan's tap with no client).
   */
  private guestConsoleCan(): Can {
    if (this.agentClient !== null) return { can: true };
    const agent = this.agentPort();
    if (agent === undefined) return ATTACHED_CAPABILITIES.guestTerminal;
    if (agent.guestOpen === false)
      return {
        can: false,
        reason: `no guest agent runs: the guest has not opened ${AGENT_PORT_NAME} (start qemu-ga in the guest)`,
      };
    const where = this.agentAddress(agent);
    if (typeof where === 'string') return { can: false, reason: where };
    if (this.agentProblem !== null) return { can: false, reason: this.agentProblem };
    return { can: true };
  }

  /** Where vmchan connects to the agent channel's host end (through a tap if there is one), or why it cannot. */
  private agentAddress(agent: AttachedPort): AgentAddress | string {
    const id = agent.chardev!;
    const tap = this.taps.get(id);
    if (tap !== undefined) {
      if (tap.chardevTap.connected)
        return `the agent channel (chardev ${id}) is in use by another client through the tap: qemu-ga answers one client at a time`;
      const l = tap.chardevTap.listenSpec;
      return l.transport === 'unix'
        ? { transport: 'unix', path: l.path }
        : { transport: 'tcp', host: l.host, port: l.port };
    }
    const c = this.machine.chardev(id);
    if (c === undefined) return `the agent channel's chardev ${id} is gone`;
    return agentAddress(c);
  }

  /** A console on the guest side of `ref` through the guest's agent, or why not. */
  async openGuestConsole(ref: PortRef): Promise<{ label: string; console: GuestConsole } | string> {
    const p = this.findPort(ref);
    if (p === undefined) return `${ref.device} has no port ${ref.nr}`;
    if (p.name === null)
      return `${p.label} has no name: the guest has no /dev/virtio-ports link to open it by`;
    if (p.name === AGENT_PORT_NAME) return `${p.label} is the agent’s own port`;
    const can = this.guestConsoleCan();
    if (!can.can) return can.reason;
    const client = await this.agent();
    if (typeof client === 'string') return client;
    const opened = await GuestConsole.open(
      client,
      `/dev/virtio-ports/${p.name}`,
      this.options.guestConsole,
    );
    if (isQgaError(opened)) {
      this.releaseAgent();
      return `guest-file-open /dev/virtio-ports/${p.name}: ${opened.message}`;
    }
    this.consoles.add(opened);
    opened.onEnd(() => {
      this.consoles.delete(opened);
      this.releaseAgent();
    });
    return { label: p.label, console: opened };
  }

  /** The shared agent client (connected and synced on first use). */
  private async agent(): Promise<QgaClient | string> {
    if (this.agentClient !== null && !this.agentClient.closed) return this.agentClient;
    const agent = this.agentPort();
    if (agent === undefined) return NO_AGENT_PORT;
    const where = this.agentAddress(agent);
    if (typeof where === 'string') return where;
    const client = await connectAgent(where);
    if (isQgaError(client)) {
      // Kept until the guest's side of the agent port changes (the next open may be a new qemu-ga).
      this.agentProblem = client.message;
      this.agentProblemOpen = agent.guestOpen;
      this.hooks.changed();
      return client.message;
    }
    this.agentProblem = null;
    this.agentClient = client;
    client.onClose(() => {
      if (this.agentClient === client) this.agentClient = null;
    });
    return client;
  }

  /** Hang up on the agent when no console uses it: its chardev is free for others again. */
  private releaseAgent(): void {
    if (this.consoles.size > 0 || this.agentClient === null) return;
    this.agentClient.close();
    this.agentClient = null;
  }

  private findPort(ref: PortRef): AttachedPort | undefined {
    return this.machine.ports.find(
      (x) =>
        x.nr === ref.nr &&
        this.machine.devices.some(
          (d) =>
            d.name === x.device &&
            (d.name === ref.device || d.id === ref.device || d.bus === ref.device),
        ),
    );
  }

  engineState(): EngineState {
    return RUNNING;
  }

  /**
   * Capture: the taps' bytes and QEMU's events into `file` (attach-capture.ts);
   * every port is described from the start, tapped or not.
   */
  record(file: string, switches: CaptureSwitches): Recorder | CaptureError {
    for (const p of this.machine.ports) this.capture.describe(this.captureInterface(p));
    return this.capture.record(file, switches);
  }

  /** Every tap's bytes and QEMU's events, for live clients (attach-capture.ts). */
  liveCapture(): Capture {
    for (const p of this.machine.ports) this.capture.describe(this.captureInterface(p));
    return this.capture.live;
  }

  /** The one encoder of liveCapture, shared by live clients and the capture file. */
  liveHub(): LiveHub {
    this.liveCapture();
    return this.capture.hub;
  }

  /** QMP counts no bytes: the totals are the taps' (an untapped port has none). */
  portTotals(): Map<string, PortTotals> {
    const totals = new Map<string, PortTotals>();
    for (const [id, t] of this.taps) {
      const p = this.machine.ports.find((x) => x.chardev === id);
      if (p !== undefined)
        totals.set(p.key, {
          toGuest: t.chardevTap.stats.toGuest,
          toHost: t.chardevTap.stats.toHost,
        });
    }
    return totals;
  }

  /** A host terminal is an application of the port's tap (so what it types is captured too). */
  hostSocket(ref: PortRef): HostSocket | string {
    const p = this.machine.ports.find(
      (x) =>
        x.nr === ref.nr &&
        this.machine.devices.some(
          (d) =>
            d.name === x.device &&
            (d.name === ref.device || d.id === ref.device || d.bus === ref.device),
        ),
    );
    if (p === undefined) return `${ref.device} has no port ${ref.nr}`;
    const t = p.chardev === null ? undefined : this.taps.get(p.chardev);
    if (t === undefined)
      return `${p.label}: a host terminal on a real QEMU goes through a tap: tap chardev ${p.chardev ?? '(none)'} first`;
    const spec = t.chardevTap.listenSpec;
    return {
      label: p.label,
      address:
        spec.transport === 'unix'
          ? { type: 'unix', path: spec.path }
          : { type: 'tcp', host: spec.host, port: spec.port },
    };
  }

  /** The tap on a chardev as the contract shows it. */
  private tapState(id: string): TapState | null {
    const t = this.taps.get(id);
    if (t === undefined) return null;
    return {
      chardev: id,
      mode: t.mode,
      address: t.chardevTap.address,
      waiting: t.inPlace?.waitingForReconnect ?? false,
      connected: t.chardevTap.connected,
      notes: t.inPlace?.notes ?? [],
    };
  }

  private captureInterface(p: AttachedPort): CaptureInterface {
    const c = p.chardev === null ? undefined : this.machine.chardev(p.chardev);
    return {
      device: p.device,
      deviceIndex: Math.max(
        0,
        this.machine.devices.findIndex((d) => d.name === p.device),
      ),
      port: p.nr,
      kind: p.kind,
      name: p.name ?? undefined,
      chardev: c === undefined ? undefined : { id: c.id, backend: c.filename },
    };
  }

  private async tap(
    id: string,
    mode: TapMode | undefined,
    listen: string | undefined,
    consent: boolean,
  ): Promise<Answer> {
    if (this.taps.has(id))
      return fail(
        'Refused',
        `chardev ${id} is tapped already (${this.taps.get(id)!.chardevTap.address})`,
      );
    const chardev = this.machine.chardev(id);
    if (chardev === undefined) return fail('NotFound', `Chardev '${id}' not found`);
    const socket = chardev.socket ?? (await this.clientAddress(id, chardev.kind));
    if (socket === null)
      return fail(
        'Unsupported',
        `chardev ${id} is a ${chardev.kind} backend (${chardev.filename}); only socket chardevs can be tapped`,
      );
    const chosen: TapMode =
      mode ??
      (!socket.server ? 'reverse' : socket.transport === 'unix' ? 'in-place' : 'new-socket');
    const port = this.machine.ports.find((p) => p.chardev === id);
    const tapPort =
      port === undefined
        ? undefined
        : {
            device: port.device,
            deviceIndex: this.captureInterface(port).deviceIndex,
            nr: port.nr,
            kind: port.kind,
            name: port.name,
          };
    if (chosen === 'reverse') {
      const t = await ReverseTap.start({
        qmp: this.machine.qmp,
        chardev: id,
        target: socket,
        listen: listen ?? path.join(this.runtimeDir, `${id}-rtap.sock`),
        consent,
        ...(tapPort !== undefined ? { port: tapPort } : {}),
        sink: this.capture.sink,
      });
      if (!(t instanceof ReverseTap)) return failure(t);
      this.adoptTap(id, { mode: chosen, chardevTap: t.tap, inPlace: null, reverse: t });
      this.note(
        `chardev ${id} re-pointed at vmchan (chardev-change) with your consent: QEMU connects to ${t.tap.address}, vmchan on to ${socket.transport === 'unix' ? socket.path : `${socket.host}:${socket.port}`}; changed back on detach`,
      );
    } else if (chosen === 'in-place') {
      const t = await InPlaceTap.start({
        chardev: id,
        target: socket,
        ...(tapPort !== undefined ? { port: tapPort } : {}),
        sink: this.capture.sink,
        clientConnected: chardev.connected === true,
        ...(this.options.journal !== undefined ? { journal: this.options.journal } : {}),
      });
      if (isAttachError(t)) return failure(t);
      this.adoptTap(id, { mode: chosen, chardevTap: t.tap, inPlace: t });
      for (const n of t.notes) this.note(`tap on ${id}: ${n}`);
      this.note(
        t.waitingForReconnect
          ? `chardev ${id} tapped in place at ${t.path}: the client connected before keeps talking to QEMU directly (uncaptured) until it reconnects`
          : `chardev ${id} tapped in place at ${t.path}: applications connect as before, through vmchan`,
      );
    } else {
      const where = listen ?? path.join(this.runtimeDir, `${id}-tap.sock`);
      const t = await tapChardev(this.machine.topology(), id, where, { sink: this.capture.sink });
      if (isAttachFailure(t)) return failure(t);
      this.adoptTap(id, { mode: chosen, chardevTap: t, inPlace: null });
      this.note(
        socket.transport === 'tcp'
          ? `chardev ${id} tapped on a new socket ${t.address}: QEMU holds its tcp port, which cannot be taken; point the application at ${t.address}`
          : `chardev ${id} tapped on a new socket ${t.address}: point the application there`,
      );
    }
    this.hooks.changed();
    return ok(this.tapState(id)!);
  }

  /**
   * A client socket chardev shows no path in query-chardev (`unix:`, the
   * unnamed local end): its QOM `addr` property has the address it connects to.
   */
  private async clientAddress(id: string, kind: string): Promise<SocketSpec | null> {
    if (kind !== 'unix' && kind !== 'tcp') return null;
    const addr = await this.machine.qmp.qomGet(`/chardevs/${id}`, 'addr');
    if (isQmpError(addr) || typeof addr !== 'object' || addr === null) return null;
    const a = addr as {
      type?: string;
      path?: string;
      host?: string;
      port?: string;
      data?: unknown;
    };
    const flat = (a.data ?? a) as { path?: string; host?: string; port?: string };
    if (a.type === 'unix' && typeof flat.path === 'string')
      return { transport: 'unix', path: flat.path, server: false };
    if (a.type === 'inet' && typeof flat.host === 'string' && flat.port !== undefined)
      return { transport: 'tcp', host: flat.host, port: Number(flat.port), server: false };
    return null;
  }

  private adoptTap(id: string, t: LiveTap): void {
    this.taps.set(id, t);
    t.off = t.chardevTap.onEvent((e) => {
      if (e.kind === 'app-connected' || e.kind === 'app-disconnected') this.hooks.changed();
    });
  }

  private async untap(id: string): Promise<Answer> {
    const t = this.taps.get(id);
    if (t === undefined) return fail('NotFound', `chardev ${id} is not tapped`);
    this.taps.delete(id);
    t.off?.();
    if (t.inPlace !== null) this.note(await t.inPlace.close());
    else if (t.reverse !== undefined) this.note(await t.reverse.close());
    else await t.chardevTap.close();
    this.hooks.changed();
    return ok({});
  }

  private note(text: string): void {
    this.hooks.emit({
      kind: 'note',
      device: null,
      nr: null,
      port: null,
      direction: null,
      bytes: null,
      rule: null,
      text,
      source: 'command',
    });
  }

  info(): AttachedInfo {
    const t = this.machine.topology();
    const vringMs = Math.max(0, ...[...this.pollers.values()].map((p) => p.intervalMs));
    const lv = this.libvirt;
    return {
      qmp: this.address,
      qemu: `QEMU ${t.qemu.version}${t.qemu.package ? ` (${t.qemu.package})` : ''}`,
      pollMs: this.pollMs,
      notes: [
        ...ATTACH_NOTES(this.pollMs),
        ...(lv?.channels ?? []).map(
          (c) =>
            `libvirt channel ${c.target ?? c.element} (${c.chardev ?? 'no alias'}, ${c.type}${c.path !== null ? ` ${c.path}` : ''}): ${c.roleText}`,
        ),
      ],
      vringRound: this.vringRound,
      vringMs,
      ...(lv !== null
        ? {
            libvirt: {
              domain: lv.target.domain,
              uri: lv.target.uri,
              channels: lv.channels.map((c) => ({ ...c })),
            },
          }
        : {}),
    };
  }

  devices(): DeviceSnapshot[] {
    return this.machine.devices.map(deviceSnapshot);
  }

  ports(): PortSnapshot[] {
    return this.machine.ports.map((p) => ({
      ...portSnapshot(p, this.machine.devices),
      tap: p.chardev === null ? null : this.tapState(p.chardev),
    }));
  }

  chardevs(): ChardevSnapshot[] {
    return this.machine.chardevs.map(chardevSnapshot);
  }

  // ------------------------------------------------------------- commands

  /** The session commands on a real QEMU: QMP where QEMU can, a Refusal where it cannot. */
  readonly commands: CommandTable = {
    createDevice: refusal('devices'),
    removeDevice: refusal('devices'),
    connectHost: refusal('rewire'),
    repointPort: refusal('rewire'),
    disconnectHost: refusal('rewire'),
    resetDevice: refusal('devices'),
    pause: refusal('stepMode'),
    run: refusal('stepMode'),
    step: refusal('stepMode'),
    vringStep: refusal('stepMode'),
    injectFault: refusal('faults'),
    writeHost: refusal('writeHost'),
    writeGuest: refusal('writeGuest'),
    setWorkload: refusal('workloads'),
    exportConfig: refusal('exportConfig'),
    tapChardev: (c) => this.tap(c.id, c.mode, c.listen, c.consent ?? false),
    untapChardev: (c) => this.untap(c.id),
    createChardev: async (c) => {
      const backend = this.backendOf(c.chardev);
      if (typeof backend === 'string') return fail('InvalidRequest', `chardev.${backend}`);
      const r = await this.machine.addChardev(c.chardev.id, backend);
      if (isAttachFailure(r)) return failure(r);
      this.hooks.changed();
      const made = this.machine.chardev(c.chardev.id);
      return made === undefined
        ? fail('Internal', `chardev ${c.chardev.id} was added but QEMU does not list it`)
        : ok(chardevSnapshot(made));
    },
    removeChardev: async (c) => {
      if (this.machine.chardev(c.id) === undefined)
        return fail('NotFound', `Chardev '${c.id}' not found`);
      const r = await this.machine.removeChardev(c.id);
      if (isAttachFailure(r)) return failure(r);
      this.hooks.changed();
      return ok({});
    },
    hotplugPort: async (c) => {
      const s = c.port;
      if (s.newChardev !== undefined && s.chardev !== undefined && s.chardev !== s.newChardev.id)
        return fail('InvalidRequest', 'give either chardev or newChardev, not both');
      const backend = s.newChardev === undefined ? null : this.backendOf(s.newChardev);
      if (typeof backend === 'string') return fail('InvalidRequest', `newChardev.${backend}`);
      const r = await this.machine.addPort({
        ...(s.device !== undefined ? { device: s.device } : {}),
        kind: s.driver,
        ...(s.id !== undefined ? { id: s.id } : {}),
        ...(s.name !== undefined ? { name: s.name } : {}),
        ...(s.nr !== undefined ? { nr: s.nr } : {}),
        ...(s.newChardev !== undefined && backend !== null
          ? { chardev: { id: s.newChardev.id, backend } }
          : s.chardev !== undefined
            ? { chardev: s.chardev }
            : {}),
      });
      if (isAttachFailure(r)) return failure(r);
      this.hooks.changed();
      return ok(portSnapshot(r, this.machine.devices));
    },
    unplugPort: async (c) => {
      const port = this.machine.ports.find(
        (p) =>
          p.nr === c.port.nr &&
          this.machine.devices.some(
            (d) =>
              d.name === p.device &&
              (d.name === c.port.device || d.id === c.port.device || d.bus === c.port.device),
          ),
      );
      if (port === undefined) return fail('NotFound', `${c.port.device} has no port ${c.port.nr}`);
      const r = await this.machine.removePort(port.key, {
        ...(this.options.unplugTimeoutMs !== undefined
          ? { timeoutMs: this.options.unplugTimeoutMs }
          : {}),
      });
      if (isAttachFailure(r)) return failure(r);
      this.hooks.changed();
      return ok({});
    },
    getVring: (c) => this.vring(c.device, c.queue),
    getVringView: async (c) => {
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
    },
  };

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
    if (this.agentProblem !== null && this.agentPort()?.guestOpen !== this.agentProblemOpen)
      this.agentProblem = null;
    this.capture.event(e);
    // a channel plugged or unplugged: the domain's XML says what it is now
    if (e.kind === 'port-added' || e.kind === 'port-removed') void this.readDomainChannels();
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
    for (const c of [...this.consoles]) await c.close();
    this.agentClient?.close();
    this.agentClient = null;
    // every path an in-place tap took goes back before the QMP connection closes
    for (const id of [...this.taps.keys()]) await this.untap(id);
    this.capture.live.close();
    this.capture.hub.close();
    for (const p of this.pollers.values()) p.stop();
    this.pollers.clear();
    await this.machine.close();
    await this.proxy?.stop();
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
