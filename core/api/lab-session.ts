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
import * as os from 'node:os';
import * as path from 'node:path';
import type { Lab } from '../engine/lab.js';
import type { CaptureInterface } from '../capture/record.js';
import { Machine } from '../machine/machine.js';
import { chardevArg, deviceArg, portArg } from '../machine/qemu-print.js';
import {
  defaultDevice,
  type Chardev,
  type Topology,
  type VirtioSerialDevice as DeviceConfig,
} from '../machine/topology.js';
import { isErrno } from '../serial/guest/errno.js';
import { O_NONBLOCK, O_RDWR } from '../serial/guest/files.js';
import type { VirtioSerialDevice } from '../serial/device.js';
import type { SerialPort } from '../serial/port.js';
import { isQemuError } from '../serial/qemu-error.js';
import { Feature } from '../virtio/features.js';
import { HostTerminals, listenAddress } from './chardev-hosts.js';
import type {
  ChardevSnapshot,
  DeviceSnapshot,
  EngineState,
  PortRef,
  PortSnapshot,
} from './contract.js';
import { DemoWorkloads, type Speed } from './demo.js';

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

export class LabSession {
  /** Devices added while running (Machine's topology knows those it started with). */
  private readonly addedDevices = new Map<string, DeviceConfig>();
  /** Chardevs as the configuration wrote them, where the lab serves them elsewhere. */
  private readonly original: Map<string, Chardev>;
  /** Guest-side terminal descriptors, by port key. */
  private readonly terminals = new Map<string, number>();
  /** Host-side terminals (the app as a socket client). */
  private readonly hostTerminals = new HostTerminals();
  readonly workloads: DemoWorkloads | null;
  private readonly onChange: () => void;
  booted = true;

  private constructor(
    readonly name: string,
    readonly machine: Machine,
    readonly runtimeDir: string,
    original: Map<string, Chardev>,
    demo: boolean,
    onChange: () => void,
    report: (line: string) => void,
  ) {
    this.original = original;
    this.onChange = onChange;
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
    { session: LabSession; notes: SessionNote[] } | { error: string; notes: SessionNote[] }
  > {
    const { config, notes, original } = relocate(given, options.runtimeDir);
    const report = options.report ?? (() => {});
    const machine = await Machine.start(config, {
      runtimeDir: options.runtimeDir,
      onNotice: report,
      ...(options.onLab !== undefined ? { onLab: options.onLab } : {}),
    });
    if (isQemuError(machine)) return { error: machine.message, notes };
    const session = new LabSession(
      name,
      machine,
      options.runtimeDir,
      original,
      options.demo ?? false,
      options.onChange,
      report,
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
    await this.machine.close();
  }

  // -------------------------------------------------------------- lookups

  device(name: string): VirtioSerialDevice | undefined {
    return this.lab.device(name);
  }

  port(ref: PortRef): { device: VirtioSerialDevice; port: SerialPort } | string {
    const device = this.lab.device(ref.device);
    if (device === undefined) return `Device '${ref.device}' not found`;
    const port = device.port(ref.nr);
    if (port === undefined) return `${device.name} has no port ${ref.nr}`;
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
  }): VirtioSerialDevice | string {
    const config = defaultDevice('virtio-serial-pci', {
      ...(spec.id !== undefined ? { id: spec.id } : {}),
      ...(spec.maxPorts !== undefined ? { maxPorts: spec.maxPorts } : {}),
      ...(spec.emergencyWrite !== undefined ? { emergencyWrite: spec.emergencyWrite } : {}),
      ...(spec.packed !== undefined ? { packed: spec.packed } : {}),
      ...(spec.eventIdx !== undefined ? { eventIdx: spec.eventIdx } : {}),
      ...(spec.indirectDesc !== undefined ? { indirectDesc: spec.indirectDesc } : {}),
    });
    const refused = this.machine.controllerAdd(config);
    if (refused !== null) return refused.message;
    // The device just plugged is the newest (plug order, as QEMU's list).
    return this.lab.registry.devices.at(-1) ?? 'the device was plugged but cannot be found';
  }

  removeDevice(name: string): string | null {
    const device = this.lab.device(name);
    if (device === undefined) return `Device '${name}' not found`;
    if (device.id === null) return `Device '${name}' has no id; QEMU's device_del needs one`;
    const err = this.machine.deviceDel(device.id);
    if (err !== null) return err.message;
    this.addedDevices.delete(device.name);
    return null;
  }

  async createChardev(config: Chardev): Promise<string | null> {
    return (await this.machine.chardevAdd(config))?.message ?? null;
  }

  async removeChardev(id: string): Promise<string | null> {
    this.hostTerminals.drop(id);
    return (await this.machine.chardevRemove(id))?.message ?? null;
  }

  plugPort(spec: {
    driver: 'virtserialport' | 'virtconsole';
    device?: string;
    id?: string;
    nr?: number;
    name?: string;
    chardev?: string;
  }): SerialPort | string {
    let bus: string | undefined;
    if (spec.device !== undefined) {
      const device = this.lab.device(spec.device);
      if (device === undefined) return `Bus '${spec.device}' not found`;
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
    if (err !== null) return err.message;
    // The port just plugged is the newest of its device (plug order, as QEMU's list).
    const device = bus !== undefined ? this.lab.device(bus) : this.lab.registry.devices.at(-1);
    const port = device?.ports.at(-1);
    return port ?? 'the port was plugged but cannot be found';
  }

  unplugPort(ref: PortRef): string | null {
    const found = this.port(ref);
    if (typeof found === 'string') return found;
    this.closeTerminal(ref);
    if (found.port.id !== null) return this.machine.deviceDel(found.port.id)?.message ?? null;
    this.lab.registry.unplug(found.device, found.port);
    return null;
  }

  /** device_del + device_add with the same id, nr and name on another chardev. */
  replug(ref: PortRef, chardev: string): SerialPort | string {
    const found = this.port(ref);
    if (typeof found === 'string') return found;
    const { device, port } = found;
    const endpoint = this.machine.chardev(chardev);
    if (endpoint === undefined) {
      return `Property '${port.kind}.chardev' can't find value '${chardev}'`;
    }
    if (endpoint.attached && port.chardev !== chardev) {
      return `Property '${port.kind}.chardev' can't take value '${chardev}': Device '${chardev}' is in use`;
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
    if (typeof plugged === 'string') {
      // Put the old one back as it was.
      this.plugPort({ ...spec, ...(port.chardev !== null ? { chardev: port.chardev } : {}) });
    }
    return plugged;
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
  disconnectHost(ref: PortRef): string | null {
    const found = this.port(ref);
    if (typeof found === 'string') return found;
    const id = found.port.chardev;
    if (id === null) return `${portLabel(found.port, found.device.name)} has no chardev`;
    if (!this.machine.chardev(id)?.connected) return `nobody is connected to chardev '${id}'`;
    const backend = this.machine.backend(id);
    if (backend === undefined) {
      return `chardev '${id}' is not a backend of this lab; vmchan cannot hang up its host side`;
    }
    const r = backend.hangUp();
    if (!r.hungUp) return r.reason;
    this.hostTerminals.drop(id);
    const events = this.lab.events;
    const drop = (bytes: number, reason: 'host-hung-up' | 'host-disconnected'): void => {
      if (bytes === 0 || !events.has('drop')) return;
      events.emit('drop', {
        device: found.device.name,
        nr: found.port.nr,
        side: 'backend',
        bytes,
        reason,
        chardev: id,
      });
    };
    drop(r.droppedToGuest, 'host-hung-up');
    drop(r.droppedToHost, 'host-disconnected');
    this.onChange();
    return null;
  }

  /** Bytes into the port from the host side: the app's terminal, a client of the chardev like socat. */
  async writeHost(ref: PortRef, bytes: Uint8Array): Promise<number | string> {
    const found = this.port(ref);
    if (typeof found === 'string') return found;
    const id = found.port.chardev;
    if (id === null) return `${portLabel(found.port, found.device.name)} has no chardev`;
    const n = await this.hostTerminals.write(id, this.machine.backend(id), bytes);
    this.onChange();
    return n;
  }

  /** Bytes from the guest side: a terminal in the guest writes to the port's device node. */
  async writeGuest(ref: PortRef, bytes: Uint8Array): Promise<number | string> {
    const found = this.port(ref);
    if (typeof found === 'string') return found;
    const key = `${ref.device}:${ref.nr}`;
    const files = this.lab.guest.files;
    let fd = this.terminals.get(key);
    if (fd === undefined) {
      const gp = this.guestPort(found.device, found.port.nr);
      if (gp === undefined)
        return `the guest has no device node for ${portLabel(found.port, found.device.name)} yet`;
      const node = gp.console ? `/dev/hvc${gp.console.hvc}` : `/dev/${gp.devName}`;
      const opened = await files.open(node, O_RDWR | O_NONBLOCK);
      if (isErrno(opened)) return opened.toString();
      fd = opened;
      this.terminals.set(key, fd);
      this.onChange();
    }
    const n = await files.write(fd, bytes);
    if (isErrno(n)) {
      return n.code === 'EAGAIN'
        ? `${n.toString()}: the host side is not connected or the queue is full`
        : n.toString();
    }
    return n;
  }

  private closeTerminal(ref: PortRef): void {
    const key = `${ref.device}:${ref.nr}`;
    const fd = this.terminals.get(key);
    if (fd === undefined) return;
    this.terminals.delete(key);
    void this.lab.guest.files.close(fd);
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
    let dropped = 0;
    for (const n of Object.values(p.stats.dropped)) dropped += n ?? 0;
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

/** A fresh runtime directory for sockets: $XDG_RUNTIME_DIR/vmchan-XXXXXX or the temp dir's. */
export function makeRuntimeDir(base?: string): string {
  const xdg = process.env['XDG_RUNTIME_DIR'];
  const root = base ?? (xdg !== undefined && fs.existsSync(xdg) ? xdg : os.tmpdir());
  return fs.mkdtempSync(path.join(root, 'vmchan-'));
}
