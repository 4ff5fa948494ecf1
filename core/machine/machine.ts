/**
 * The headless lab: a machine Topology (./topology.ts, what `vmchan run`
 * parses from a QEMU command line) brought to life as an engine Lab with
 * real chardev backends on the host side. Implements RunningMachine
 * (./running.ts), the one interface the CLI, the monitors and the app drive.
 *
 *   const m = await Machine.start(topology, { runtimeDir });
 *   if (isQemuError(m)) ...;            // QEMU's words, e.g. "-chardev ...: Failed to bind socket ..."
 *   m.chardevs();                        // query-chardev
 *   m.deviceAdd({ driver: 'virtserialport', name: 'hp', id: 'hp0' });
 *   await m.close();                     // every backend closed, its socket files removed
 *
 * Start-up follows QEMU's order: every chardev is opened (and installed in
 * the Lab) before any device, devices before ports, and the guest boots last,
 * so a port never names a backend that does not exist yet. The first failure
 * undoes everything already opened and comes back as a QemuError in the form
 * QEMU prints it (`-chardev ARG: MESSAGE`, `-device ARG: MESSAGE`).
 *
 * The topology stays current: ports plugged or unplugged through any path
 * (this class, a monitor calling the Lab) are followed through the engine's
 * port-added / port-removed / device-deleted events.
 *
 * Differences from QEMU, on purpose:
 * - a server socket with wait=on does not hold the start: the backend says
 *   "waiting for connection" through onNotice and the lab runs meanwhile
 *   (the guest's writes wait while no host is there, as L5 says).
 * - relative paths are taken from `runtimeDir` (the factory's rule); the CLI
 *   makes a user's relative paths absolute first, as QEMU takes them from
 *   its working directory.
 */
import {
  createChardev,
  engineDropReason,
  isChardevError,
  isMux,
  RingbufChardev,
  type MuxChardev,
  type OpenChardev,
} from '../chardev/index.js';
import { Lab, type DeviceTopology } from '../engine/lab.js';
import type { DropDirection, DropReason, EngineEvents } from '../serial/events.js';
import type { ChardevEndpoint } from '../serial/endpoint.js';
import { QemuError, isQemuError } from '../base/qemu-error.js';
import type { ChardevAddFrom, ChardevInfo, PortAddRequest, RunningMachine } from './running.js';
import { guestRamMiB } from './guest-ram.js';
import { fdSetsFromOptions } from './add-fd.js';
import type { FdSets } from '../chardev/fdsets.js';
import { MuxSlot } from './mux-slot.js';
import { chardevAddFailure } from './chardev-errors.js';
import { chardevArg, portArg } from './qemu-print.js';
import { splitRingSizes } from '../virtio/queue.js';
import {
  DEFAULT_MAX_PORTS,
  MAX_PORTS_LIMIT,
  checkTopology,
  type Chardev,
  type Monitor,
  type Port,
  type Topology,
  type VirtioSerialDevice,
  type IgnoredOption,
} from './topology.js';

export interface MachineOptions {
  /** Where relative chardev paths go (and what the CLI removes at the end). */
  runtimeDir: string;
  /** Force one ring format on every device; default: each device's `packed`. */
  ring?: 'split' | 'packed';
  /** One line for the person running the lab (a pty's path, a waiting server, a refused client). */
  onNotice?: (line: string) => void;
  /**
   * Called once the Lab exists, before any port is plugged and before the
   * guest boots, so an observer (a capture tap) sees the whole start.
   */
  onLab?: (lab: Lab) => void;
}

/** A port in the topology, with where the engine put it (for unplug events). */
interface PortEntry {
  port: Port;
  /** The device's engine name (qdev id, else its bus) and the port number it got. */
  device: string;
  nr: number;
}

const MiB = 1024 * 1024;

/** The Lab's shape of a virtio-serial device (everything but the ring format). */
function labDevice(d: VirtioSerialDevice): DeviceTopology {
  return {
    ...(d.id !== undefined ? { id: d.id } : {}),
    maxPorts: d.maxPorts,
    emergencyWrite: d.emergencyWrite,
    eventIdx: d.eventIdx,
    indirectDesc: d.indirectDesc,
  };
}

/** Guest RAM no device claims: the guest's own buffers (writes in flight, control messages). */
const BASE_BYTES = 32 * MiB;
/** Per device, room for transmit buffers in flight; past it a write waits for memory (L12). */
const TRANSMIT_BYTES = 8 * MiB;
/** What the Lab's guest driver uses (page-sized receive buffers, QEMU's default queue sizes). */
const PAGE = 4096;
const DATA_QUEUE = 128;
const CONTROL_QUEUE = 32;

/** One ring of n entries (split is the larger layout), with alignment slack. */
function ringBytes(n: number): number {
  const s = splitRingSizes(n);
  return s.desc + s.avail + s.used + 64;
}

/**
 * The guest RAM one virtio-serial device claims when the guest probes it:
 * both rings of every possible port (max_ports of them, each rx ring full
 * of page-sized buffers), the control queues with their receive pages, and
 * room for transmit buffers in flight. Linux allocates transmit buffers per
 * write from whatever RAM is free and a write that finds memory short waits
 * (L12), so no full queue per port is reserved: the RAM stays what -m (or
 * QEMU's 128 MiB) says. Pages nothing touched
 * cost nothing: the OS maps them on first write.
 */
export function deviceMemoryBytes(
  maxPorts: number,
  dataQueue = DATA_QUEUE,
  controlQueue = CONTROL_QUEUE,
): number {
  return (
    maxPorts * (dataQueue * PAGE + 2 * ringBytes(dataQueue)) +
    controlQueue * PAGE +
    2 * ringBytes(controlQueue) +
    TRANSMIT_BYTES
  );
}

/**
 * Guest RAM is fixed when the machine starts, as a real guest's is. The rule:
 * 32 MiB for the guest itself, plus what every device of the topology can
 * claim (deviceMemoryBytes), plus the same for one more default device
 * (virtio-serial-pci, max_ports=31), so one controller can be hot-plugged
 * later; more than that is refused by controllerAdd, naming the limit.
 */
export function memoryMiBFor(devices: readonly Pick<VirtioSerialDevice, 'maxPorts'>[]): number {
  let bytes = BASE_BYTES + deviceMemoryBytes(DEFAULT_MAX_PORTS);
  for (const d of devices) bytes += deviceMemoryBytes(d.maxPorts);
  return Math.ceil(bytes / MiB);
}

/**
 * Why Machine.start failed, with the stage: 'topology' and 'device' are the
 * command line's fault (a person fixes the arguments), 'chardev' and 'boot'
 * the host's or the engine's (a path that cannot be bound, a busy socket).
 */
export class StartError extends QemuError {
  constructor(
    message: string,
    readonly stage: 'topology' | 'chardev' | 'device' | 'boot',
  ) {
    super(message);
  }
}

function chardevFailure(spec: Chardev, message: string): StartError {
  return new StartError(`-chardev ${chardevArg(spec)}: ${message}`, 'chardev');
}

export class Machine implements RunningMachine {
  readonly lab: Lab;
  private readonly backends = new Map<string, OpenChardev>();
  /** Mux chardevs: the slot the Lab's table holds now. */
  private readonly slots = new Map<string, MuxSlot>();
  private chardevSpecs: Chardev[] = [];
  private devices: VirtioSerialDevice[];
  private entries: PortEntry[] = [];
  private readonly monitors: Monitor[];
  private readonly ignored: IgnoredOption[];
  /** The port being plugged by this class, so its topology entry keeps the request as given. */
  private plugging: Omit<Port, 'bus'> | null = null;
  private readonly unsubscribe: (() => void)[] = [];
  private closing: Promise<void> | null = null;
  /** The fd sets of -add-fd (query-fdsets, remove-fd, `/dev/fdset/N` paths). */
  readonly fdSets: FdSets;

  private constructor(
    lab: Lab,
    topology: Topology,
    private readonly options: MachineOptions,
    fdSets: FdSets,
  ) {
    this.lab = lab;
    this.fdSets = fdSets;
    this.devices = topology.devices.map((d) => ({ ...d }));
    this.monitors = topology.monitors.map((m) => ({ ...m }));
    this.ignored = topology.ignored.map((o) => ({ ...o }));
    const events = lab.events;
    this.unsubscribe.push(
      events.on('port-added', (e) => this.portAdded(e)),
      events.on('port-removed', (e) => {
        this.entries = this.entries.filter((x) => !(x.device === e.device && x.nr === e.nr));
      }),
      events.on('device-deleted', (e) => {
        if (e.device === null) return;
        this.devices = this.devices.filter((d) => d.id !== e.device);
        // A controller's ports go with it (the lab reports each; this keeps it true regardless).
        this.entries = this.entries.filter((x) => x.device !== e.device);
      }),
    );
  }

  /** Build, open every backend, plug every port, boot the guest. */
  static async start(topology: Topology, options: MachineOptions): Promise<Machine | StartError> {
    const problem = checkTopology(topology)[0];
    if (problem !== undefined) return new StartError(problem.toString(), 'topology');

    const packedOf = (d: VirtioSerialDevice): boolean =>
      options.ring !== undefined ? options.ring === 'packed' : d.packed;
    const first = topology.devices[0];
    const uniform = topology.devices.every(
      (d) => first === undefined || packedOf(d) === packedOf(first),
    );
    // Guest RAM (D11): -m, or QEMU's 128 MiB; never less than memoryMiBFor's rule.
    const ram = guestRamMiB(topology.ignored);
    if (isQemuError(ram)) return new StartError(ram.message, 'topology');
    const memoryMiB = Math.max(ram, memoryMiBFor(topology.devices));
    // -add-fd: the inherited descriptors into their sets (vl.c, before any chardev).
    const fdSets = fdSetsFromOptions(topology.ignored);
    if (isQemuError(fdSets)) return new StartError(fdSets.message, 'topology');
    // One ring format for all: the Lab builds the devices.
    const lab = uniform
      ? Lab.create({
          ring: first !== undefined && packedOf(first) ? 'packed' : 'split',
          memoryMiB,
          devices: topology.devices.map(labDevice),
        })
      : Lab.create({ memoryMiB, devices: [] });
    if (isQemuError(lab)) {
      fdSets.closeAll();
      return new StartError(lab.message, 'device');
    }
    if (!uniform) {
      for (const d of topology.devices) {
        const made = lab.addDevice(labDevice(d), packedOf(d));
        if (isQemuError(made)) {
          fdSets.closeAll();
          return new StartError(made.message, 'device');
        }
      }
    }

    const machine = new Machine(lab, topology, options, fdSets);
    options.onLab?.(lab);
    const failed = await machine.build(topology);
    if (failed !== null) {
      await machine.close();
      return failed;
    }
    return machine;
  }

  private async build(topology: Topology): Promise<StartError | null> {
    // 1. Chardevs, in order (qemu_create_early_backends).
    for (const spec of topology.chardevs) {
      const failed = await this.openChardev(spec);
      if (failed !== null) return chardevFailure(spec, failed.message);
    }
    // 2. Ports (devices exist already), in order.
    for (const port of topology.ports) {
      const failed = this.plug(port);
      if (failed !== null) {
        return new StartError(`-device ${portArg(port)}: ${failed.message}`, 'device');
      }
    }
    // 3. Power on.
    const failed = await this.lab.boot();
    return failed === null ? null : new StartError(failed.message, 'boot');
  }

  // ------------------------------------------------------------ topology

  topology(): Topology {
    return {
      chardevs: this.chardevSpecs.map((c) => ({ ...c })),
      devices: this.devices.map((d) => ({ ...d })),
      ports: this.entries.map((e) => ({ ...e.port })),
      monitors: this.monitors.map((m) => ({ ...m })),
      ignored: this.ignored.map((o) => ({ ...o })),
    };
  }

  /** The ports fed by a chardev (a mux feeds several), in plug order. */
  portsOf(chardev: string): Port[] {
    return this.entries.filter((e) => e.port.chardev === chardev).map((e) => ({ ...e.port }));
  }

  /** Where the engine put a topology port: its device's engine name and port number. */
  placeOf(port: Port): { device: string; nr: number } | undefined {
    const e = this.entries.find(
      (x) =>
        x.port.bus === port.bus &&
        (port.nr !== undefined
          ? x.nr === port.nr
          : x.port.id === port.id && x.port.name === port.name),
    );
    return e === undefined ? undefined : { device: e.device, nr: e.nr };
  }

  private portAdded(e: EngineEvents['port-added']): void {
    const given = this.plugging;
    const chardev = this.lab.device(e.bus)?.port(e.nr)?.chardev ?? null;
    const port: Port =
      given !== null
        ? { ...given, bus: e.bus }
        : {
            driver: e.kind,
            bus: e.bus,
            ...(e.id !== null ? { id: e.id } : {}),
            ...(e.name !== null ? { name: e.name } : {}),
            ...(chardev !== null ? { chardev } : {}),
          };
    this.entries.push({ port, device: e.device, nr: e.nr });
  }

  // ------------------------------------------------------------ chardevs

  chardev(id: string): ChardevEndpoint | undefined {
    return this.backends.get(id);
  }

  /** The backend itself (kind, listening address, counters), for the CLI and the app. */
  backend(id: string): OpenChardev | undefined {
    return this.backends.get(id);
  }

  chardevs(): ChardevInfo[] {
    const rows: ChardevInfo[] = [];
    for (const [id, c] of this.backends) {
      if (isMux(c)) {
        // query-chardev lists a mux and its base (`ID-base`).
        rows.push({
          id,
          filename: 'mux',
          frontendOpen: c.frontends.some((f) => f.frontendOpen),
          busy: c.frontends.some((f) => f.attached),
        });
        rows.push({
          id: `${id}-base`,
          filename: c.base.describe(),
          frontendOpen: c.base.frontendOpen,
          busy: true,
        });
      } else {
        rows.push({ id, filename: c.describe(), frontendOpen: c.frontendOpen, busy: c.attached });
      }
    }
    return rows;
  }

  async chardevAdd(spec: Chardev, from: ChardevAddFrom = {}): Promise<QemuError | null> {
    if (this.closing !== null) return new QemuError('the machine is shutting down');
    const failed = await this.openChardev(spec, from);
    return failed === null ? null : new QemuError(failed.message);
  }

  async chardevRemove(id: string): Promise<QemuError | null> {
    const c = this.backends.get(id);
    if (c === undefined) return new QemuError(`Chardev '${id}' not found`);
    const busy = isMux(c) ? c.frontends.some((f) => f.attached) : c.attached;
    if (busy) return new QemuError(`Chardev '${id}' is busy`);
    const refused = this.lab.chardevRemove(id);
    if (refused !== null) return refused;
    this.backends.delete(id);
    this.slots.delete(id);
    this.chardevSpecs = this.chardevSpecs.filter((s) => s.id !== id);
    await c.close();
    return null;
  }

  /**
   * QMP chardev-change, in qmp_chardev_change's order (QEMU 7.2, chardev/char.c):
   * an unknown id and a mux are refused; a chardev nothing holds is removed
   * and the new one added (if that add fails the id is gone, as in QEMU); a
   * chardev a frontend holds is refused unless the frontend can change
   * backends. QEMU 7.2's virtio-console and monitors cannot ("Chardev user
   * does not support chardev hotswap"), so that is the answer by default;
   * `portHotswap` (a vmchan extra) lets a port take the new backend: it is
   * opened first (a failure leaves the old one in place, QEMU's words
   * unprefixed), then swapped in under the port, then the old one closes.
   */
  async chardevChange(
    spec: Chardev,
    options: { portHotswap?: boolean } = {},
  ): Promise<QemuError | null> {
    if (this.closing !== null) return new QemuError('the machine is shutting down');
    const old = this.backends.get(spec.id);
    if (old === undefined) return new QemuError(`Chardev '${spec.id}' does not exist`);
    if (isMux(old)) return new QemuError('Mux device hotswap not supported yet');
    if (!old.attached) {
      const removed = await this.chardevRemove(spec.id);
      if (removed !== null) return removed;
      const failed = await this.openChardev(spec);
      return failed === null ? null : chardevAddFailure(spec.id, failed);
    }
    if (options.portHotswap !== true || this.portsOf(spec.id).length === 0) {
      return new QemuError('Chardev user does not support chardev hotswap');
    }
    const next = await this.createBackend(spec);
    if (isQemuError(next)) return next;
    const refused = this.lab.chardevSwap(next);
    if (refused !== null) {
      await next.close();
      return refused;
    }
    this.backends.set(spec.id, next);
    this.chardevSpecs = this.chardevSpecs.map((s) => (s.id === spec.id ? { ...spec } : s));
    await old.close();
    return null;
  }

  /** A backend's drop as an engine event, against the port that holds the chardev. */
  private backendDrop(
    chardev: string,
    reason: DropReason,
    bytes: number,
    direction: DropDirection,
  ): void {
    const events = this.lab.events;
    if (!events.has('drop')) return;
    const holder = this.lab.registry.devices
      .flatMap((device) => device.ports.map((port) => ({ device, port })))
      .find((p) => p.port.chardev === chardev);
    events.emit('drop', {
      device: holder?.device.name ?? '',
      nr: holder?.port.nr ?? null,
      side: 'backend',
      bytes,
      reason,
      direction,
      chardev,
    });
  }

  /** Open a backend (not yet in the Lab's table). */
  private async createBackend(
    spec: Chardev,
    from: ChardevAddFrom = {},
  ): Promise<OpenChardev | QemuError> {
    const opened = await createChardev(spec, {
      post: this.lab.scheduler.post,
      runtimeDir: this.options.runtimeDir,
      fdSets: this.fdSets,
      ...(from.monitorFd !== undefined ? { monitorFd: from.monitorFd } : {}),
      ...(this.options.onNotice !== undefined ? { onNotice: this.options.onNotice } : {}),
      onDrop: (chardev, reason, bytes, direction) =>
        this.backendDrop(chardev, engineDropReason(reason, direction), bytes, direction),
    });
    return isChardevError(opened) ? new QemuError(opened.message) : opened;
  }

  /** Open a backend and put it in the Lab's table (a mux: its first slot for ports). */
  private async openChardev(spec: Chardev, from: ChardevAddFrom = {}): Promise<QemuError | null> {
    if (this.backends.has(spec.id) || this.lab.chardev(spec.id) !== undefined) {
      return new QemuError(
        `attempt to add duplicate property '${spec.id}' to object (type 'container')`,
      );
    }
    const opened = await this.createBackend(spec, from);
    if (isQemuError(opened)) return opened;
    let endpoint: ChardevEndpoint = opened;
    if (isMux(opened)) {
      const slot = this.freeSlot(opened);
      if (slot === undefined) return new QemuError(`Device '${spec.id}' is in use`);
      this.slots.set(spec.id, slot);
      endpoint = slot;
    }
    const refused = this.lab.installChardev(endpoint);
    if (refused !== null) {
      await opened.close();
      return refused;
    }
    this.backends.set(spec.id, opened);
    this.chardevSpecs.push({ ...spec });
    return null;
  }

  /**
   * A slot for the next port on a mux. QEMU creates monitors before devices,
   * so the monitors on this chardev get the first frontends; ports take the
   * ones after them.
   */
  private freeSlot(mux: MuxChardev): MuxSlot | undefined {
    const reserved = this.monitors.filter((m) => m.chardev === mux.id).length;
    const f = mux.frontends.find((x) => x.index >= reserved && !x.attached);
    return f === undefined ? undefined : new MuxSlot(f);
  }

  /** Before a port names a mux chardev: make the Lab's table hold a free slot. */
  private prepareMux(id: string): void {
    const mux = this.backends.get(id);
    const current = this.slots.get(id);
    if (mux === undefined || !isMux(mux) || current === undefined || !current.attached) return;
    const next = this.freeSlot(mux);
    if (next === undefined) return; // all taken: the registry refuses with "is in use"
    current.releasing = true;
    const refused = this.lab.chardevRemove(id);
    current.releasing = false;
    if (refused !== null) return;
    this.lab.installChardev(next);
    this.slots.set(id, next);
  }

  // ------------------------------------------------------------- ringbuf

  /** The ringbuf behind an id, or QEMU's refusal (qmp_ringbuf_write / _read). */
  private ringbuf(id: string): RingbufChardev | QemuError {
    const c = this.backends.get(id);
    if (c === undefined) return new QemuError(`Device '${id}' not found`, 'DeviceNotFound');
    const base = isMux(c) ? c.base : c;
    if (!(base instanceof RingbufChardev)) return new QemuError(`${id} is not a ringbuf device`);
    return base;
  }

  ringbufWrite(id: string, data: Uint8Array): QemuError | null {
    const r = this.ringbuf(id);
    if (isQemuError(r)) return r;
    r.ringbufWrite(data);
    return null;
  }

  ringbufRead(id: string, size: number): Uint8Array | QemuError {
    const r = this.ringbuf(id);
    if (isQemuError(r)) return r;
    if (!Number.isInteger(size) || size <= 0) {
      return new QemuError('size must be greater than zero');
    }
    return r.ringbufRead(size);
  }

  // ------------------------------------------------------------- devices

  deviceAdd(request: PortAddRequest): QemuError | null {
    if (this.closing !== null) return new QemuError('the machine is shutting down');
    return this.plug(request);
  }

  deviceDel(id: string): QemuError | null {
    return this.lab.deviceDel(id);
  }

  /**
   * `device_add virtio-serial-pci,...` while running: realize's checks in
   * QEMU's order and words (the qdev id, then max_ports), then the guest
   * memory the device can claim (memoryMiBFor's rule: RAM is fixed at
   * start), then the guest probes it. The topology lists it from now on;
   * device_del takes it (and its ports) out again.
   */
  controllerAdd(device: VirtioSerialDevice): QemuError | null {
    if (this.closing !== null) return new QemuError('the machine is shutting down');
    const registry = this.lab.registry;
    if (device.id !== undefined && registry.hasId(device.id)) {
      return new QemuError(`Duplicate device ID '${device.id}'`);
    }
    if (device.maxPorts === 0) {
      return new QemuError('Maximum number of serial ports not specified');
    }
    if (device.maxPorts > MAX_PORTS_LIMIT) {
      return new QemuError(`maximum ports supported: ${MAX_PORTS_LIMIT}`);
    }
    const refused = this.memoryCheck(device);
    if (refused !== null) return refused;
    const packed = this.options.ring !== undefined ? this.options.ring === 'packed' : device.packed;
    const made = this.lab.addDevice(labDevice(device), packed);
    if (isQemuError(made)) return made;
    this.devices.push({ ...device });
    return null;
  }

  /** Can the fixed guest RAM take one more device (memoryMiBFor's rule)? */
  private memoryCheck(device: VirtioSerialDevice): QemuError | null {
    const total = this.lab.memory.layout.reduce((n, r) => n + r.size, 0);
    let claimed = BASE_BYTES;
    for (const d of this.lab.registry.devices) {
      claimed += deviceMemoryBytes(d.maxPorts, d.dataQueueSize, d.controlQueueSize);
    }
    claimed = Math.max(claimed, this.lab.allocator.allocatedBytes + BASE_BYTES);
    const needs = deviceMemoryBytes(device.maxPorts);
    if (claimed + needs <= total) return null;
    const mib = (n: number): string => `${Math.ceil(n / MiB)} MiB`;
    const free = Math.max(0, total - claimed);
    return new QemuError(
      `cannot allocate the rings of ${device.id !== undefined ? `'${device.id}'` : 'a new device'}: ` +
        `max_ports=${device.maxPorts} needs ${mib(needs)} of guest memory and only ` +
        `${Math.floor(free / MiB)} MiB of the guest's ${mib(total)} are free ` +
        `(guest memory is fixed at start: -m gives the guest more)`,
    );
  }

  /** device_add of one port; the topology entry is made by the port-added event. */
  private plug(port: Omit<Port, 'bus'> & { bus?: string }): QemuError | null {
    if (port.chardev !== undefined) this.prepareMux(port.chardev);
    const { bus, ...given } = port;
    this.plugging = given;
    try {
      const made = this.lab.deviceAdd({
        driver: port.driver,
        ...(bus !== undefined ? { bus } : {}),
        ...(port.id !== undefined ? { id: port.id } : {}),
        ...(port.nr !== undefined ? { nr: port.nr } : {}),
        ...(port.name !== undefined ? { name: port.name } : {}),
        ...(port.chardev !== undefined ? { chardev: port.chardev } : {}),
      });
      return isQemuError(made) ? made : null;
    } finally {
      this.plugging = null;
    }
  }

  // --------------------------------------------------------------- close

  close(): Promise<void> {
    if (this.closing === null) this.closing = this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    const all = [...this.backends.values()];
    this.backends.clear();
    this.slots.clear();
    // Each backend removes what it made (its socket file, its pty, its fds).
    await Promise.all(all.map((c) => c.close()));
    this.fdSets.closeAll();
  }
}

export function isMachine(value: unknown): value is Machine {
  return value instanceof Machine;
}
