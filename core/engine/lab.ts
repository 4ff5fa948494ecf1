/**
 * A Lab is one emulated machine built from a plain topology object: guest
 * memory, the engine's task queue and event bus, the virtio-serial devices
 * with their ports, an in-memory chardev for every backend, and a Linux-like
 * guest that probes the devices. The CLI, the QMP server and the app sit on
 * this facade; tests use it for whole scenarios.
 *
 *   const lab = Lab.create({
 *     devices: [{ id: 'vser0', ports: [
 *       { driver: 'virtconsole', name: 'console.0', chardev: 'test0' },
 *       { driver: 'virtserialport', name: 'test1', chardev: 'test1' },
 *     ] }],
 *   });
 *   if (isQemuError(lab)) ...;
 *   await lab.boot();
 *   lab.host('test1').connect();
 *   const fd = await lab.guest.files.open('/dev/virtio-ports/test1');
 *
 * Chardevs named by ports are created as in-memory endpoints (host side not
 * connected, like a `server=on,wait=off` socket nobody has dialled yet).
 */
import { z } from 'zod';
import type { SerialDeviceConfig } from '../serial/registry.js';
import { SerialRegistry, type PortAddArgs } from '../serial/registry.js';
import type { VirtioSerialDevice } from '../serial/device.js';
import { MemoryEndpoint, type MemoryPeer } from '../serial/memory-endpoint.js';
import type { ChardevEndpoint } from '../serial/endpoint.js';
import type { SerialPort } from '../serial/port.js';
import { QemuError, isQemuError } from '../base/qemu-error.js';
import { Guest } from '../serial/guest/guest.js';
import { isFault } from '../virtio/fault.js';
import { DropLedger } from './drop-ledger.js';
import { GuestAllocator } from '../virtio/allocator.js';
import { GuestMemory } from '../virtio/memory.js';
import { splitRingSizes } from '../virtio/queue.js';
import { Emitter } from '../base/emitter.js';
import type { EngineEvents } from '../serial/events.js';
import { Scheduler } from './scheduler.js';

const PortSchema = z.object({
  driver: z.enum(['virtserialport', 'virtconsole']),
  id: z.string().optional(),
  nr: z.number().int().optional(),
  name: z.string().optional(),
  chardev: z.string().optional(),
});

const DeviceSchema = z.object({
  id: z.string().optional(),
  maxPorts: z.number().int().optional(),
  emergencyWrite: z.boolean().optional(),
  dataQueueSize: z.number().int().optional(),
  controlQueueSize: z.number().int().optional(),
  eventIdx: z.boolean().optional(),
  indirectDesc: z.boolean().optional(),
  consoleSize: z.object({ cols: z.number().int(), rows: z.number().int() }).optional(),
  consoleBackpressure: z.enum(['drop', 'throttle']).optional(),
  malformedControl: z.enum(['needs-reset', 'ignore']).optional(),
  controlRxExhausted: z.enum(['wait', 'drop', 'needs-reset']).optional(),
  resizeOrder: z.enum(['rows-cols', 'cols-rows']).optional(),
  portNameNul: z.boolean().optional(),
  ports: z.array(PortSchema).optional(),
});

const ChardevSchema = z.object({
  id: z.string(),
  connected: z.boolean().optional(),
  capacity: z.number().int().positive().optional(),
});

export const TopologySchema = z.object({
  /** Ring format the devices offer (RING_PACKED) and the guest takes. */
  ring: z.enum(['split', 'packed']).optional(),
  memoryMiB: z.number().int().positive().optional(),
  mode: z.enum(['free-run', 'step']).optional(),
  batchSize: z.number().int().positive().optional(),
  chardevs: z.array(ChardevSchema).optional(),
  devices: z.array(DeviceSchema).optional(),
  guest: z
    .object({
      firstVirtioIndex: z.number().int().nonnegative().optional(),
      acceptPacked: z.boolean().optional(),
      resizeOrder: z.enum(['rows-cols', 'cols-rows']).optional(),
      portNameNul: z.boolean().optional(),
      rxBufferSize: z.number().int().positive().optional(),
    })
    .optional(),
});

export type Topology = z.input<typeof TopologySchema>;
export type DeviceTopology = z.input<typeof DeviceSchema>;
export type PortTopology = z.input<typeof PortSchema>;

const MiB = 1024 * 1024;

/** L5's largest write: one transmit buffer holds at most this much. */
const MAX_WRITE = 32 * 1024;
/** Guest RAM is made of regions of at most this size (a typed array's limit is 4 GiB). */
const REGION_MAX = 2 * 1024 * MiB;

/**
 * Guest RAM a topology needs: every possible port's receive buffers and
 * rings, and a full transmit queue of the largest writes on every possible
 * port (so 511 ports streaming at once never wait for memory). The buffer
 * is allocated lazily by the OS: pages no buffer touched cost nothing.
 */
function memoryFor(topology: z.output<typeof TopologySchema>): number {
  const page = topology.guest?.rxBufferSize ?? 4096;
  let bytes = 32 * MiB;
  for (const d of topology.devices ?? []) {
    const ports = d.maxPorts ?? 31;
    const data = d.dataQueueSize ?? 128;
    const control = d.controlQueueSize ?? 32;
    const ring = (n: number): number => {
      const s = splitRingSizes(n);
      return s.desc + s.avail + s.used + 64;
    };
    bytes += ports * (data * page + 2 * ring(data)) + control * page + 2 * ring(control);
    bytes += ports * data * (MAX_WRITE + 16); // transmit buffers in flight, aligned
  }
  return Math.ceil(bytes / MiB) * MiB;
}

/** Back-to-back regions of at most REGION_MAX bytes from address 0. */
function guestMemory(size: number): GuestMemory {
  const regions: { base: number; size: number }[] = [];
  for (let base = 0; base < size; base += REGION_MAX) {
    regions.push({ base, size: Math.min(REGION_MAX, size - base) });
  }
  const memory = GuestMemory.create(regions);
  if (memory instanceof GuestMemory) return memory;
  throw new TypeError(memory.toString()); // programming error: the layout is made here
}

export class Lab {
  readonly scheduler: Scheduler;
  readonly events: Emitter<EngineEvents>;
  /** Every dropped byte of this lab, counted by port, reason and direction. */
  readonly drops: DropLedger;
  readonly memory: GuestMemory;
  readonly allocator: GuestAllocator;
  readonly registry: SerialRegistry;
  readonly guest: Guest;
  /** Every chardev by id: in-memory ones made here, real backends installed from outside. */
  private readonly chardevs = new Map<string, ChardevEndpoint>();
  private booted = false;

  private constructor(topology: z.output<typeof TopologySchema>) {
    this.events = new Emitter<EngineEvents>();
    this.drops = new DropLedger(this.events);
    this.scheduler = new Scheduler({
      mode: topology.mode,
      batchSize: topology.batchSize,
      onError: (task, error) => {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        if (this.events.has('engine-error')) this.events.emit('engine-error', { task, message });
        else process.stderr.write(`vmchan: task ${task.label} failed: ${message}\n`);
      },
    });
    const taskListened = this.events.flag('task');
    this.scheduler.onTask(
      (task) => this.events.emit('task', task),
      () => taskListened.on,
    );
    const size = topology.memoryMiB !== undefined ? topology.memoryMiB * MiB : memoryFor(topology);
    this.memory = guestMemory(size);
    this.allocator = new GuestAllocator(this.memory);
    this.registry = new SerialRegistry({
      memory: this.memory,
      post: this.scheduler.post,
      events: this.events,
      findChardev: (id) => this.chardevs.get(id),
    });
    const g = topology.guest ?? {};
    this.guest = new Guest({
      memory: this.memory,
      allocator: this.allocator,
      post: this.scheduler.post,
      events: this.events,
      firstVirtioIndex: g.firstVirtioIndex,
      console: {
        acceptPacked: g.acceptPacked,
        rxBufferSize: g.rxBufferSize,
        codec: {
          ...(g.resizeOrder !== undefined ? { resizeOrder: g.resizeOrder } : {}),
          ...(g.portNameNul !== undefined ? { portNameNul: g.portNameNul } : {}),
        },
      },
    });
  }

  /** Build the machine; a bad topology or a refused device comes back as QEMU would word it. */
  static create(input: Topology): Lab | QemuError {
    const parsed = TopologySchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return new QemuError(`topology: ${issue.path.join('.')}: ${issue.message}`);
    }
    const topology = parsed.data;
    const lab = new Lab(topology);
    for (const c of topology.chardevs ?? []) {
      const made = lab.chardevAdd(c.id, { connected: c.connected, capacity: c.capacity });
      if (isQemuError(made)) return made;
    }
    for (const d of topology.devices ?? []) {
      const device = lab.addDevice(d, topology.ring === 'packed');
      if (isQemuError(device)) return device;
      for (const p of d.ports ?? []) {
        if (p.chardev !== undefined && !lab.chardevs.has(p.chardev)) lab.chardevAdd(p.chardev);
        const port = lab.registry.addPort({ ...p, bus: device.bus }, false);
        if (isQemuError(port)) return port;
      }
    }
    return lab;
  }

  /** Power on: the guest probes every device; resolves when the machine is quiet. */
  async boot(): Promise<QemuError | null> {
    if (this.booted) return null;
    this.booted = true;
    const probes = this.registry.devices.map((device) => this.probe(device));
    const results = await Promise.all([...probes, this.settle()]);
    return results.find((r): r is QemuError => isQemuError(r)) ?? null;
  }

  /** Free-run until nothing is left to do. */
  settle(): Promise<void> {
    return this.scheduler.settle();
  }

  /** The host application's end of a chardev (connect, write, read, disconnect). */
  host(chardev: string): MemoryPeer {
    const endpoint = this.chardevs.get(chardev);
    if (!(endpoint instanceof MemoryEndpoint)) {
      throw new TypeError(`no in-memory chardev '${chardev}' in this lab`);
    }
    return endpoint.peer;
  }

  /** An in-memory chardev (made by the topology or chardevAdd), for tests and the demo's peers. */
  endpoint(chardev: string): MemoryEndpoint | undefined {
    const endpoint = this.chardevs.get(chardev);
    return endpoint instanceof MemoryEndpoint ? endpoint : undefined;
  }

  /** Any chardev by id, in-memory or a real backend. */
  chardev(id: string): ChardevEndpoint | undefined {
    return this.chardevs.get(id);
  }

  /**
   * Put a real backend (a socket, a pipe, a pty...) in the chardev table, as
   * `-chardev` or QMP chardev-add does; ports name it by id.
   */
  installChardev(endpoint: ChardevEndpoint): QemuError | null {
    if (this.chardevs.has(endpoint.id)) {
      return new QemuError(
        `attempt to add duplicate property '${endpoint.id}' to object (type 'container')`,
      );
    }
    this.chardevs.set(endpoint.id, endpoint);
    return null;
  }

  get chardevIds(): string[] {
    return [...this.chardevs.keys()];
  }

  device(idOrBus: string): VirtioSerialDevice | undefined {
    return this.registry.device(idOrBus);
  }

  /** A port by qdev id or by name. */
  port(idOrName: string): { device: VirtioSerialDevice; port: SerialPort } | undefined {
    return this.registry.portById(idOrName) ?? this.registry.findPortByName(idOrName);
  }

  /** `-device virtio-serial-pci`: before boot, or hot-plugged (the guest probes it). */
  addDevice(config: DeviceTopology, packed = false): VirtioSerialDevice | QemuError {
    const { ports: _ports, resizeOrder, portNameNul, ...rest } = config;
    const deviceConfig: SerialDeviceConfig = {
      ...rest,
      packed,
      codec: {
        ...(resizeOrder !== undefined ? { resizeOrder } : {}),
        ...(portNameNul !== undefined ? { portNameNul } : {}),
      },
    };
    const device = this.registry.addDevice(deviceConfig);
    if (isQemuError(device)) return device;
    if (this.booted) void this.probe(device);
    return device;
  }

  /** QMP device_add of a port (hot-plug once booted, D8). */
  deviceAdd(args: PortAddArgs): SerialPort | QemuError {
    return this.registry.addPort(args, this.booted);
  }

  /** QMP device_del: a port (D8) or a whole virtio-serial device. */
  deviceDel(id: string): QemuError | null {
    const device = this.registry.device(id);
    if (device !== undefined && device.id === id) {
      const driver = this.guest.driverFor(device);
      if (driver !== undefined) this.guest.remove(driver);
      this.registry.removeDevice(device);
      this.events.emit('device-deleted', { device: id, path: `/machine/peripheral/${id}` });
      return null;
    }
    return this.registry.deletePort(id);
  }

  /** QMP chardev-add of an in-memory backend. */
  chardevAdd(
    id: string,
    options: { connected?: boolean; capacity?: number } = {},
  ): MemoryPeer | QemuError {
    if (this.chardevs.has(id)) {
      return new QemuError(
        `attempt to add duplicate property '${id}' to object (type 'container')`,
      );
    }
    const endpoint = new MemoryEndpoint({
      id,
      post: this.scheduler.post,
      connected: options.connected,
      capacity: options.capacity,
      onDiscard: (direction, bytes) => this.backendDrop(id, direction, bytes),
    });
    this.chardevs.set(id, endpoint);
    return endpoint.peer;
  }

  /**
   * QMP chardev-remove: refused while a port holds it. The caller closes a
   * real backend it installed (this only takes it out of the table).
   */
  chardevRemove(id: string): QemuError | null {
    const endpoint = this.chardevs.get(id);
    if (endpoint === undefined) return new QemuError(`Chardev '${id}' not found`);
    if (endpoint.attached) return new QemuError(`Chardev '${id}' is busy`);
    if (endpoint instanceof MemoryEndpoint && endpoint.connected) endpoint.peer.disconnect();
    this.chardevs.delete(id);
    return null;
  }

  /**
   * chardev-change under a port (a vmchan extra; QEMU 7.2 refuses it for
   * virtio-serial ports): `next` (same id, opened, free) takes the place of
   * the backend a port holds. Refused as QEMU refuses a frontend with no
   * be_change handler when no port holds it (a monitor does). The caller
   * closes the old backend.
   */
  chardevSwap(next: ChardevEndpoint): QemuError | null {
    const old = this.chardevs.get(next.id);
    if (old === undefined) return new QemuError(`Chardev '${next.id}' does not exist`);
    const holder = this.registry.devices
      .flatMap((device) => device.ports.map((port) => ({ device, port })))
      .find((p) => p.port.chardev === next.id);
    if (holder === undefined || !old.attached) {
      return new QemuError('Chardev user does not support chardev hotswap');
    }
    this.chardevs.set(next.id, next);
    holder.device.changeBackend(holder.port, next);
    return null;
  }

  /** A backend threw bytes away: report it against the port that holds the chardev. */
  private backendDrop(chardev: string, direction: 'from-host' | 'to-host', bytes: number): void {
    if (!this.events.has('drop')) return;
    const holder = this.registry.devices
      .flatMap((device) => device.ports.map((port) => ({ device, port })))
      .find((p) => p.port.chardev === chardev);
    this.events.emit('drop', {
      device: holder?.device.name ?? '',
      nr: holder?.port.nr ?? null,
      side: 'backend',
      bytes,
      reason: direction === 'from-host' ? 'host-hung-up' : 'host-disconnected',
      direction: direction === 'from-host' ? 'to-guest' : 'to-host',
      chardev,
    });
  }

  /**
   * Reset a device as a guest driver recovers one in NEEDS_RESET: the
   * driver lets go (virtcons_remove: its ports leave the guest, status 0
   * resets the device, its rings go back to the allocator) and binds again
   * (virtcons_probe, the same virtio index, as an unbind and bind through
   * sysfs does): negotiation, new rings, DEVICE_READY, the ports announced
   * again. Resolves once the driver is ready (or failed, with why).
   */
  async resetDevice(name: string): Promise<QemuError | null> {
    const device = this.device(name);
    if (device === undefined) return new QemuError(`Device '${name}' not found`);
    const driver = this.guest.driverFor(device);
    if (driver === undefined) return this.probe(device);
    const index = driver.virtioIndex;
    this.guest.remove(driver);
    return this.probe(device, index);
  }

  private async probe(device: VirtioSerialDevice, index?: number): Promise<QemuError | null> {
    const r = await this.guest.probe(device, {
      label: device.name,
      tracer: device.tracer,
      ...(index !== undefined ? { index } : {}),
    });
    return isFault(r) ? new QemuError(`${device.name}: guest driver: ${r.toString()}`) : null;
  }
}
