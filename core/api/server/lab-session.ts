/**
 * One running lab as the API sees it: the engine's Lab, the host side of
 * each chardev (real sockets in the runtime directory), the configuration
 * the lab was built from (for export and the monitor twins), who is at each
 * end of each port, and the demo workloads when it is the demo.
 *
 * Every operation answers with a value: the thing made, or the engine's
 * message (QEMU's words) as a string.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lab } from '../../engine/lab.js';
import type { Capture, CaptureInterface } from '../../capture/record.js';
import { tapLab, type LabTap } from '../../capture/lab-tap.js';
import { LiveHub } from '../../capture/live-server.js';
import { Machine } from '../../machine/machine.js';
import { chardevArg, deviceArg, portArg } from '../../machine/qemu-print.js';
import {
  defaultDevice,
  type Chardev,
  type Topology,
  type VirtioSerialDevice as DeviceConfig,
} from '../../machine/topology.js';
import { isErrno } from '../../serial/guest/errno.js';
import { O_NONBLOCK, O_RDWR } from '../../serial/guest/files.js';
import type { VirtioSerialDevice } from '../../serial/device.js';
import type { SerialPort } from '../../serial/port.js';
import { isVmchanError, type VmchanError } from '../../base/error.js';
import { QemuError, isQemuError } from '../../base/qemu-error.js';
import { notFound, refused, type SessionError } from './api-error.js';
import { Feature } from '../../virtio/features.js';
import { failuresOf, HostTerminals, listenAddress } from './chardev-hosts.js';
import type {
  ChardevSnapshot,
  DeviceSnapshot,
  EngineState,
  PortRef,
  PortSnapshot,
} from '../contract/contract.js';
import { DemoWorkloads } from './demo.js';
import type { Speed } from './demo-lab.js';
import {
  capableBut,
  type CaptureSwitches,
  type CommandTable,
  type Recorder,
  type PortTotals,
  type Session,
} from './session.js';
import type { Capabilities } from '../contract/capabilities.js';
import { recordFromHub } from './recorder.js';
import type { CaptureError } from '../../capture/error.js';

export interface SessionNote {
  kind: string;
  message: string;
}

export interface BuildOptions {
  /** Where relative paths, relocated sockets and new chardevs go. */
  runtimeDir: string;
  /** Start the demo workloads. */
  demo?: boolean;
  /** Called when something the snapshot shows changed outside the engine's events. */
  onChange: () => void;
  /** Called once the lab exists, before any port is plugged (to hear the whole start). */
  onLab?: (lab: Lab) => void;
  /** A line for the events timeline (a backend's notice, a workload's failure). */
  report?: (line: string) => void;
  /**
   * The session's command table (lab-commands.ts), made for the session
   * once it exists. Given by the builder, so this module and the table's
   * do not import each other.
   */
  commands: (session: LabSession) => CommandTable;
}

export function portLabel(
  port: { name: string | null; id: string | null; nr: number },
  device: string,
): string {
  return port.name ?? port.id ?? `${device} port ${port.nr}`;
}

/**
 * Unix socket paths of an imported configuration that cannot be bound here
 * (the file exists, or its directory does not) move into the runtime
 * directory; the notes say so and `original` keeps what was written.
 */
function relocate(
  config: Topology,
  runtimeDir: string,
): { config: Topology; notes: SessionNote[]; original: Map<string, Chardev> } {
  const notes: SessionNote[] = [];
  const original = new Map<string, Chardev>();
  const chardevs = config.chardevs.map((c) => {
    const b = c.backend;
    if (b.kind !== 'socket' || !b.server || b.address.type !== 'unix') return c;
    const p = b.address.path;
    if (!path.isAbsolute(p) || path.dirname(p) === runtimeDir) return c;
    const why = fs.existsSync(p)
      ? 'Address already in use'
      : !fs.existsSync(path.dirname(p))
        ? 'No such file or directory'
        : null;
    if (why === null) return c;
    const moved = path.join(runtimeDir, path.basename(p));
    notes.push({
      kind: 'Relocated',
      message: `chardev '${c.id}': ${p}: ${why}; serving it at ${moved} instead`,
    });
    original.set(c.id, c);
    return { ...c, backend: { ...b, address: { type: 'unix' as const, path: moved } } };
  });
  return { config: { ...config, chardevs }, notes, original };
}

const LAB_CAPABILITIES = capableBut({
  tap: 'the lab’s chardevs are vmchan’s own: capture sees every byte without a tap',
});

export class LabSession implements Session {
  readonly kind = 'lab';
  readonly commands: CommandTable;
  /** Devices added while running (Machine's topology knows those it started with). */
  private readonly addedDevices = new Map<string, DeviceConfig>();
  /** Chardevs as the configuration wrote them, where the lab serves them elsewhere. */
  private readonly original: Map<string, Chardev>;
  /** Guest-side descriptors Send as guest opened (and keeps), by port key, with the node. */
  private readonly terminals = new Map<string, { fd: number; node: string }>();
  /** Host-side terminals (the app as a socket client). */
  private readonly hostTerminals = new HostTerminals();
  readonly workloads: DemoWorkloads | null;
  private readonly onChange: () => void;
  private readonly report: (line: string) => void;
  /** Guest-side terminals being opened (a write queued while paused opens once). */
  private readonly opening = new Map<string, Promise<number | VmchanError>>();
  booted = true;
  /** Every port for live clients and the capture file (liveCapture, liveHub); made on first use. */
  private tap: { tap: LabTap; hub: LiveHub } | null = null;

  private constructor(
    readonly name: string,
    readonly machine: Machine,
    readonly runtimeDir: string,
    original: Map<string, Chardev>,
    demo: boolean,
    onChange: () => void,
    report: (line: string) => void,
    commands: (session: LabSession) => CommandTable,
  ) {
    this.original = original;
    this.onChange = onChange;
    this.commands = commands(this);
    this.report = report;
    this.workloads = demo
      ? new DemoWorkloads({
          lab: machine.lab,
          socketPath: (id) => {
            const w = listenAddress(machine.backend(id));
            return w !== null && w.startsWith('/') ? w : null;
          },
          changed: onChange,
          report,
        })
      : null;
  }

  get lab(): Lab {
    return this.machine.lab;
  }

  get title(): string {
    return this.name;
  }

  /** The emulated lab can do everything the app offers; it needs no tap. */
  capabilities(): Capabilities {
    return LAB_CAPABILITIES;
  }

  info(): null {
    return null;
  }

  /** The lab's terminals reach its chardevs themselves (terminal-service.ts). */
  hostSocket(): null {
    return null;
  }

  /** The engine's events of the ports the switches select into `file`, out of the live hub's encoding (recorder.ts). */
  record(file: string, switches: CaptureSwitches): Recorder | CaptureError {
    return recordFromHub(this.liveHub(), file, switches);
  }

  /** Every port of the lab, for live clients; the tap has no sink of its own, so it costs nothing until one attaches. */
  liveCapture(): Capture {
    return this.live().tap.capture;
  }

  /** The one encoder of the lab's capture: live clients and the capture file share it. */
  liveHub(): LiveHub {
    return this.live().hub;
  }

  private live(): { tap: LabTap; hub: LiveHub } {
    if (this.tap === null) {
      const tap = tapLab(this.lab, null, { describe: (d, nr) => this.captureInterface(d, nr) });
      const hub = new LiveHub({
        source: tap.capture,
        writer: { comment: 'vmchan live capture' },
        onDrop: (reason) => this.report(`live capture client disconnected: ${reason}`),
      });
      this.tap = { tap, hub };
    }
    return this.tap;
  }

  /** The device's own counters of every port. */
  portTotals(): Map<string, PortTotals> {
    const totals = new Map<string, PortTotals>();
    for (const d of this.lab.registry.devices) {
      for (const p of d.ports)
        totals.set(`${d.name}:${p.nr}`, { toGuest: p.stats.toGuest, toHost: p.stats.toHost });
    }
    return totals;
  }

  /**
   * Start a lab from a configuration with core/machine's Machine: chardevs
   * (real backends), devices, ports, boot, in QEMU's order. The first
   * refusal comes back as QEMU prints it (`-device ARG: MESSAGE`).
   */
  static async build(
    name: string,
    given: Topology,
    options: BuildOptions,
  ): Promise<
    { session: LabSession; notes: SessionNote[] } | { error: QemuError; notes: SessionNote[] }
  > {
    const { config, notes, original } = relocate(given, options.runtimeDir);
    const report = options.report ?? (() => {});
    const machine = await Machine.start(config, {
      runtimeDir: options.runtimeDir,
      onNotice: report,
      ...(options.onLab !== undefined ? { onLab: options.onLab } : {}),
    });
    if (isQemuError(machine)) return { error: machine, notes };
    const session = new LabSession(
      name,
      machine,
      options.runtimeDir,
      original,
      options.demo ?? false,
      options.onChange,
      report,
      options.commands,
    );
    if (config.monitors.length > 0) {
      notes.push({
        kind: 'NotExpressed',
        message: `${config.monitors.length} monitor(s) kept for export; this lab serves no QEMU monitor on them`,
      });
    }
    if (session.workloads !== null) await session.workloads.start('paced');
    return { session, notes };
  }

  async dispose(): Promise<void> {
    // The guest programs end with system calls (close), which need the engine
    // running; a paused lab is let run for that, and nothing waits forever.
    this.lab.scheduler.setMode('free-run');
    if (this.workloads !== null) {
      await Promise.race([this.workloads.stop(), new Promise((r) => setTimeout(r, 5000).unref())]);
    }
    this.lab.scheduler.setMode('step'); // nothing runs any more
    this.hostTerminals.closeAll();
    this.tap?.tap.stop();
    this.tap?.hub.close();
    this.tap = null;
    await this.machine.close();
  }

  // -------------------------------------------------------------- lookups

  device(name: string): VirtioSerialDevice | undefined {
    return this.lab.device(name);
  }

  port(ref: PortRef): { device: VirtioSerialDevice; port: SerialPort } | SessionError {
    const device = this.lab.device(ref.device);
    if (device === undefined) return notFound(`Device '${ref.device}' not found`);
    const port = device.port(ref.nr);
    if (port === undefined) return notFound(`${device.name} has no port ${ref.nr}`);
    return { device, port };
  }

  private deviceConfig(device: VirtioSerialDevice): DeviceConfig {
    const buses = this.lab.registry.devices.map((d) => d.bus);
    const known = this.machine.topology().devices;
    const i = buses.indexOf(device.bus);
    return (
      this.addedDevices.get(device.name) ??
      (i >= 0 && i < known.length ? known[i] : undefined) ??
      defaultDevice('virtio-serial-pci', device.id === null ? {} : { id: device.id })
    );
  }

  // ------------------------------------------------------------ commands

  /**
   * `-device virtio-serial-pci` while running (the guest probes it), through
   * Machine.controllerAdd: QEMU's checks, the fixed guest RAM's limit, and
   * the machine's topology (export, the monitors) lists it from then on.
   */
  createDevice(spec: {
    id?: string;
    maxPorts?: number;
    emergencyWrite?: boolean;
    packed?: boolean;
    eventIdx?: boolean;
    indirectDesc?: boolean;
  }): VirtioSerialDevice | VmchanError {
    const config = defaultDevice('virtio-serial-pci', {
      ...(spec.id !== undefined ? { id: spec.id } : {}),
      ...(spec.maxPorts !== undefined ? { maxPorts: spec.maxPorts } : {}),
      ...(spec.emergencyWrite !== undefined ? { emergencyWrite: spec.emergencyWrite } : {}),
      ...(spec.packed !== undefined ? { packed: spec.packed } : {}),
      ...(spec.eventIdx !== undefined ? { eventIdx: spec.eventIdx } : {}),
      ...(spec.indirectDesc !== undefined ? { indirectDesc: spec.indirectDesc } : {}),
    });
    const err = this.machine.controllerAdd(config);
    if (err !== null) return err;
    // The device just plugged is the newest (plug order, as QEMU's list).
    return (
      this.lab.registry.devices.at(-1) ?? refused('the device was plugged but cannot be found')
    );
  }

  removeDevice(name: string): VmchanError | null {
    const device = this.lab.device(name);
    if (device === undefined) return notFound(`Device '${name}' not found`);
    if (device.id === null)
      return refused(`Device '${name}' has no id; QEMU's device_del needs one`);
    const err = this.machine.deviceDel(device.id);
    if (err !== null) return err;
    this.addedDevices.delete(device.name);
    return null;
  }

  async createChardev(config: Chardev): Promise<VmchanError | null> {
    return (await this.machine.chardevAdd(config)) ?? null;
  }

  async removeChardev(id: string): Promise<VmchanError | null> {
    // QEMU's words, told apart from a busy chardev by looking first.
    if (this.machine.chardev(id) === undefined) return notFound(`Chardev '${id}' not found`);
    this.hostTerminals.drop(id);
    return (await this.machine.chardevRemove(id)) ?? null;
  }

  plugPort(spec: {
    driver: 'virtserialport' | 'virtconsole';
    device?: string;
    id?: string;
    nr?: number;
    name?: string;
    chardev?: string;
  }): SerialPort | VmchanError {
    let bus: string | undefined;
    if (spec.device !== undefined) {
      const device = this.lab.device(spec.device);
      if (device === undefined) return new QemuError(`Bus '${spec.device}' not found`);
      bus = device.bus;
    }
    const err = this.machine.deviceAdd({
      driver: spec.driver,
      ...(bus !== undefined ? { bus } : {}),
      ...(spec.id !== undefined ? { id: spec.id } : {}),
      ...(spec.nr !== undefined ? { nr: spec.nr } : {}),
      ...(spec.name !== undefined ? { name: spec.name } : {}),
      ...(spec.chardev !== undefined ? { chardev: spec.chardev } : {}),
    });
    if (err !== null) return err;
    // The port just plugged is the newest of its device (plug order, as QEMU's list).
    const device = bus !== undefined ? this.lab.device(bus) : this.lab.registry.devices.at(-1);
    const port = device?.ports.at(-1);
    return port ?? refused('the port was plugged but cannot be found');
  }

  unplugPort(ref: PortRef): VmchanError | null {
    const found = this.port(ref);
    if (isVmchanError(found)) return found;
    this.closeTerminal(ref);
    if (found.port.id !== null) return this.machine.deviceDel(found.port.id) ?? null;
    this.lab.registry.unplug(found.device, found.port);
    return null;
  }

  /** device_del + device_add with the same id, nr and name on another chardev. */
  replug(ref: PortRef, chardev: string): SerialPort | VmchanError {
    const found = this.port(ref);
    if (isVmchanError(found)) return found;
    const { device, port } = found;
    const endpoint = this.machine.chardev(chardev);
    if (endpoint === undefined) {
      return new QemuError(`Property '${port.kind}.chardev' can't find value '${chardev}'`);
    }
    if (endpoint.attached && port.chardev !== chardev) {
      return new QemuError(
        `Property '${port.kind}.chardev' can't take value '${chardev}': Device '${chardev}' is in use`,
      );
    }
    const spec = {
      driver: port.kind,
      device: device.name,
      ...(port.id !== null ? { id: port.id } : {}),
      nr: port.nr,
      ...(port.name !== null ? { name: port.name } : {}),
    };
    const err = this.unplugPort(ref);
    if (err !== null) return err;
    const plugged = this.plugPort({ ...spec, chardev });
    if (isVmchanError(plugged)) {
      // Put the old one back as it was.
      this.plugPort({ ...spec, ...(port.chardev !== null ? { chardev: port.chardev } : {}) });
    }
    return plugged;
  }

  /**
   * Reset a device after NEEDS_RESET as its guest driver would (the
   * engine's Lab.resetDevice: the driver lets go and binds again). What
   * Send held on its ports goes with the guest's ports; the vring view
   * starts the device's rings afresh.
   */
  async resetDevice(name: string): Promise<VmchanError | null> {
    for (const d of this.lab.registry.devices) {
      if (d.name !== name) continue;
      for (const p of d.ports) this.closeTerminal({ device: d.name, nr: p.nr });
    }
    const err = await this.lab.resetDevice(name);
    if (err !== null) this.report(`reset of ${name}: ${err.message}`);
    else this.report(`${name} reset: the guest driver bound again`);
    this.onChange();
    return err;
  }

  /**
   * The host application hangs up, as if it went away: core/chardev's
   * hangUp() closes the chardev's current connection, whoever holds it (the
   * app's terminal, a demo host program, socat or any outside client). A
   * server keeps listening for the next client (a demo program dials again a
   * second later, as a restarted program would); a client with reconnect=N
   * dials again. The port gets 'closed' (PORT_OPEN 0 to the guest, the
   * timeline's "host disconnected"); bytes that were queued either way are
   * counted and shown as drops. Other backends refuse with the reason.
   */
  disconnectHost(ref: PortRef): VmchanError | null {
    const found = this.port(ref);
    if (isVmchanError(found)) return found;
    const id = found.port.chardev;
    if (id === null) return notFound(`${portLabel(found.port, found.device.name)} has no chardev`);
    if (!this.machine.chardev(id)?.connected) {
      return refused(`nobody is connected to chardev '${id}'`);
    }
    const backend = this.machine.backend(id);
    if (backend === undefined) {
      return refused(
        `chardev '${id}' is not a backend of this lab; vmchan cannot hang up its host side`,
      );
    }
    const r = backend.hangUp();
    if (!r.hungUp) return refused(r.reason);
    this.hostTerminals.drop(id);
    // What the hang-up dropped is in the lab's ledger already (the backend's onDrop, Machine).
    this.onChange();
    return null;
  }

  /** Bytes into the port from the host side: the app's terminal, a client of the chardev like socat. */
  async writeHost(ref: PortRef, bytes: Uint8Array): Promise<number | VmchanError> {
    const found = this.port(ref);
    if (isVmchanError(found)) return found;
    const id = found.port.chardev;
    if (id === null) return notFound(`${portLabel(found.port, found.device.name)} has no chardev`);
    const n = await this.hostTerminals.write(id, this.machine.backend(id), bytes);
    this.onChange();
    return typeof n === 'string' ? refused(n) : n;
  }

  /**
   * Bytes from the guest side: a terminal in the guest writes to the port's
   * device node. The write is a guest syscall, a task on the engine: while
   * the engine is paused (step mode) it waits for Run or Step, so the
   * answer does not wait for it (issue 13 item 6): `{ queued }` says the
   * bytes are in the guest's hands, and a failure then shows as a line in
   * the events.
   */
  async writeGuest(
    ref: PortRef,
    bytes: Uint8Array,
  ): Promise<number | VmchanError | { queued: number }> {
    const found = this.port(ref);
    if (isVmchanError(found)) return found;
    const key = `${ref.device}:${ref.nr}`;
    const gp = this.guestPort(found.device, found.port.nr);
    const label = portLabel(found.port, found.device.name);
    if (!this.terminals.has(key) && !this.opening.has(key) && gp === undefined)
      return refused(`the guest has no device node for ${label} yet`);
    const written = this.guestWrite(key, gp, bytes);
    if (this.lab.scheduler.mode !== 'step') return written;
    void written.then((n) => {
      if (isVmchanError(n))
        this.report(`guest write to ${label} (queued while paused): ${n.message}`);
    });
    return { queued: bytes.length };
  }

  private async guestWrite(
    key: string,
    gp: ReturnType<LabSession['guestPort']>,
    bytes: Uint8Array,
  ): Promise<number | VmchanError> {
    const files = this.lab.guest.files;
    let fd: number | VmchanError | undefined = this.terminals.get(key)?.fd;
    if (fd === undefined) {
      // One open per port, however many writes queue behind it while paused.
      let opening = this.opening.get(key);
      if (opening === undefined) {
        if (gp === undefined) return refused('the guest has no device node for this port');
        const node = gp.console ? `/dev/hvc${gp.console.hvc}` : `/dev/${gp.devName}`;
        opening = files.open(node, O_RDWR | O_NONBLOCK).then((opened) => {
          this.opening.delete(key);
          if (isErrno(opened)) return refused(opened.toString());
          this.terminals.set(key, { fd: opened, node });
          this.onChange();
          return opened;
        });
        this.opening.set(key, opening);
      }
      fd = await opening;
      if (isVmchanError(fd)) return fd;
    }
    const n = await files.write(fd, bytes);
    if (isErrno(n)) {
      return refused(
        n.code === 'EAGAIN'
          ? `${n.toString()}: the host side is not connected or the queue is full`
          : n.toString(),
      );
    }
    return n;
  }

  private closeTerminal(ref: PortRef): void {
    const key = `${ref.device}:${ref.nr}`;
    const held = this.terminals.get(key);
    if (held === undefined) return;
    this.terminals.delete(key);
    void this.lab.guest.files.close(held.fd);
  }

  /**
   * The port sides Send keeps open between writes (the host client socket,
   * the guest's descriptor): the terminal service lists them beside the
   * terminals, so nothing the app holds on a port is hidden (issue 17).
   */
  sendHolds(): { port: PortRef; side: 'host' | 'guest'; label: string; path: string }[] {
    const out: { port: PortRef; side: 'host' | 'guest'; label: string; path: string }[] = [];
    for (const d of this.lab.registry.devices) {
      for (const p of d.ports) {
        const port = { device: d.name, nr: p.nr };
        const label = portLabel(p, d.name);
        if (p.chardev !== null && this.hostTerminals.has(p.chardev)) {
          const where = listenAddress(this.machine.backend(p.chardev));
          const path =
            where === null ? p.chardev : where.startsWith('/') ? `unix:${where}` : `tcp:${where}`;
          out.push({ port, side: 'host', label, path });
        }
        const held = this.terminals.get(`${d.name}:${p.nr}`);
        if (held !== undefined) out.push({ port, side: 'guest', label, path: held.node });
      }
    }
    return out;
  }

  /** Let go of what Send holds on one side of a port: the host client hangs up, the guest closes. */
  releaseSend(ref: PortRef, side: 'host' | 'guest'): boolean {
    const found = this.port(ref);
    if (isVmchanError(found)) return false;
    if (side === 'host') {
      const id = found.port.chardev;
      const dropped = id !== null && this.hostTerminals.drop(id);
      if (dropped) this.onChange();
      return dropped;
    }
    const key = `${ref.device}:${ref.nr}`;
    const held = this.terminals.get(key);
    if (held === undefined) return false;
    this.terminals.delete(key);
    // A guest system call: while paused it runs at the next Run or Step, and nothing waits for it.
    void this.lab.guest.files.close(held.fd).then(() => this.onChange());
    this.onChange();
    return true;
  }

  async setWorkload(
    portName: string | undefined,
    on: boolean,
    speed: Speed,
  ): Promise<string[] | string> {
    const w = this.workloads;
    if (w === null) return 'this lab has no demo workloads (load the demo lab)';
    if (portName !== undefined && !w.has(portName)) return `port ${portName} has no demo workload`;
    if (on) await w.start(speed, portName);
    else await w.stop(portName);
    return w.running;
  }

  // ----------------------------------------------------------- snapshots

  engineState(): EngineState {
    const s = this.lab.scheduler;
    return {
      mode: s.mode === 'step' ? 'paused' : 'running',
      pending: s.pending,
      executed: s.stats.executed,
      booted: this.booted,
      hold: s.heldQueue,
    };
  }

  private guestPort(device: VirtioSerialDevice, nr: number) {
    return this.lab.guest.driverFor(device)?.port(nr);
  }

  devices(): DeviceSnapshot[] {
    return this.lab.registry.devices.map((d) => {
      const driver = this.lab.guest.driverFor(d);
      const fault = d.fault;
      return {
        name: d.name,
        id: d.id,
        bus: d.bus,
        maxPorts: d.maxPorts,
        guestIndex: driver?.virtioIndex ?? null,
        state: fault !== null ? 'needs-reset' : d.running ? 'running' : 'stopped',
        status: d.statusNames,
        fault: fault === null ? null : { rule: fault.rule, message: fault.message },
        packed: d.hasFeature(Feature.RING_PACKED),
        multiport: d.multiport,
        queues: d.numQueues,
        monitor: `device_add ${deviceArg(this.deviceConfig(d))}`,
      };
    });
  }

  portSnapshot(device: VirtioSerialDevice, p: SerialPort): PortSnapshot {
    const gp = this.guestPort(device, p.nr);
    const key = `${device.name}:${p.nr}`;
    const label = portLabel(p, device.name);
    const linked =
      gp?.name != null && this.lab.guest.namespace.exists(`/dev/virtio-ports/${gp.name}`);
    let hostApp: string | null = null;
    if (p.chardev !== null && p.hostConnected) {
      const spec = this.chardevSpec(p.chardev);
      hostApp =
        this.workloads?.hostLabel(p.chardev) ??
        (this.hostTerminals.has(p.chardev) ? 'vmchan terminal (socket client)' : null) ??
        (spec?.backend.kind === 'socket' ? 'socket client' : (spec?.backend.kind ?? null));
    }
    let guestApp = p.name === null ? null : (this.workloads?.guestLabel(p.name) ?? null);
    if (guestApp === null && this.terminals.has(key)) guestApp = 'vmchan terminal';
    if (guestApp === null && p.guestConnected)
      guestApp = p.isConsole ? 'hvc console' : 'a guest program';
    // The lab's ledger: the device's drops and the guest's and backends' for this port.
    const drops = this.lab.drops
      .list()
      .filter((c) => c.device === device.name && c.nr === p.nr)
      .map((c) => ({ direction: c.direction, side: c.side, reason: c.reason, bytes: c.bytes }));
    const dropped = drops.reduce((n, c) => n + c.bytes, 0);
    return {
      key,
      device: device.name,
      nr: p.nr,
      kind: p.kind,
      id: p.id,
      name: p.name,
      label,
      guestName: gp === undefined ? null : gp.console ? `hvc${gp.console.hvc}` : gp.devName,
      guestPath: linked ? `/dev/virtio-ports/${gp!.name}` : null,
      guestOpen: p.guestConnected,
      hostConnected: p.hostConnected,
      throttled: p.throttled,
      toGuest: p.stats.toGuest,
      toHost: p.stats.toHost,
      dropped,
      drops,
      chardev: p.chardev,
      hostApp,
      guestApp,
      monitor: `device_add ${portArg({
        driver: p.kind,
        bus: device.bus,
        ...(p.id !== null ? { id: p.id } : {}),
        nr: p.nr,
        ...(p.name !== null ? { name: p.name } : {}),
        ...(p.chardev !== null ? { chardev: p.chardev } : {}),
      })}`,
    };
  }

  ports(): PortSnapshot[] {
    return this.lab.registry.devices.flatMap((d) => d.ports.map((p) => this.portSnapshot(d, p)));
  }

  /** A chardev's spec as the lab runs it. */
  private chardevSpec(id: string): Chardev | undefined {
    return this.machine.topology().chardevs.find((c) => c.id === id);
  }

  chardevs(): ChardevSnapshot[] {
    const users = new Map<string, PortRef>();
    for (const d of this.lab.registry.devices) {
      for (const p of d.ports)
        if (p.chardev !== null) users.set(p.chardev, { device: d.name, nr: p.nr });
    }
    return this.machine.topology().chardevs.map((spec) => {
      const backend = this.machine.backend(spec.id);
      return {
        id: spec.id,
        kind: `${spec.backend.kind === 'other' ? spec.backend.driver : spec.backend.kind}${spec.mux ? ' (mux)' : ''}`,
        filename: backend?.describe() ?? spec.id,
        path: listenAddress(backend),
        connected: this.machine.chardev(spec.id)?.connected ?? false,
        usedBy: users.get(spec.id) ?? null,
        monitor: `chardev-add ${chardevArg(spec)}`,
        failures: failuresOf(backend),
      };
    });
  }

  /**
   * The lab as a QEMU configuration: what it runs (Machine follows every
   * plug and unplug), with each port's number as the engine gave it, the
   * devices added while running, and the socket paths as first written.
   */
  exportTopology(): Topology {
    const t = this.machine.topology();
    const chardevs = t.chardevs.map((c) => this.original.get(c.id) ?? c);
    const ports = t.ports.map((p) => {
      const place = this.machine.placeOf(p);
      return place === undefined ? p : { ...p, nr: place.nr };
    });
    return { ...t, chardevs, devices: [...t.devices, ...this.addedDevices.values()], ports };
  }

  /** A port as capture describes it. */
  captureInterface(deviceName: string, nr: number): CaptureInterface | null {
    const device = this.lab.device(deviceName);
    const port = device?.port(nr);
    if (device === undefined || port === undefined) return null;
    const spec = port.chardev === null ? undefined : this.chardevSpec(port.chardev);
    return {
      device: device.name,
      deviceIndex: this.lab.guest.driverFor(device)?.virtioIndex ?? 0,
      port: nr,
      kind: port.kind,
      name: port.name ?? undefined,
      chardev:
        port.chardev === null
          ? undefined
          : { id: port.chardev, backend: spec ? chardevArg(spec) : 'memory' },
    };
  }
}
