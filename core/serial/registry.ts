/**
 * All virtio-serial devices of a machine and the qdev rules that span them,
 * as QEMU's device_add / device_del run them (D1, D3):
 *
 * device_add virtserialport|virtconsole checks, in QEMU 7.2's order
 * (recorded against a real one, see test/fixtures/qemu-7.2-samples/scenario.log):
 *  1. the driver name;
 *  2. the bus: `bus=vser0.0` must exist; without it the newest virtio-serial
 *     bus is used (QEMU prepends children, so its search meets that one first);
 *  3. the qdev id: well formed, and not taken ("Duplicate device ID 'x'");
 *  4. properties: `nr` a uint32, `chardev` existing and free;
 *  5. realize on the bus (virtser_port_device_realize):
 *     a. an occupied nr: "A port already exists at id N" (so nr=0 while a
 *        console holds 0 reports this, not the reservation);
 *     b. a name taken on any device: "A port already exists by name NAME";
 *     c. no nr: a console takes 0 if no port is there, everything else the
 *        lowest number free in ports_map (bit 0 is reserved from the start,
 *        so serial ports never get 0); none free: "Maximum port limit for this
 *        device reached" (only reachable when max_ports is a multiple of 32:
 *        otherwise the map has spare bits and the next check fires);
 *     d. nr >= max_ports: "Out-of-range port id specified, max. allowed: N-1";
 *     e. the frontend's own realize: a virtserialport at 0 is refused with
 *        "Port number 0 on virtio-serial devices reserved for virtconsole
 *        devices for backward compatibility." (this one has no bus prefix).
 */
import type { Emitter } from '../base/emitter.js';
import type { EngineEvents, PortKind } from './events.js';
import type { PostTask } from '../virtio/device.js';
import type { GuestMemory } from '../virtio/memory.js';
import { BAD_PORT_ID } from './control.js';
import {
  DEFAULT_MAX_PORTS,
  MAX_PORTS_LIMIT,
  VirtioSerialDevice,
  type VirtioSerialOptions,
} from './device.js';
import type { ChardevEndpoint } from './endpoint.js';
import type { SerialPort } from './port.js';
import { QemuError } from '../base/qemu-error.js';

const BUS_PREFIX = 'virtio-serial-bus: ';

/** `-device virtio-serial-pci,...` as options (everything but the machine wiring). */
export type SerialDeviceConfig = Omit<
  VirtioSerialOptions,
  'id' | 'bus' | 'memory' | 'post' | 'events'
> & { id?: string | null };

/** `-device virtserialport|virtconsole,...` / QMP device_add arguments. */
export interface PortAddArgs {
  driver: string;
  bus?: string;
  id?: string;
  nr?: number;
  name?: string;
  chardev?: string;
}

export interface SerialRegistryOptions {
  memory: GuestMemory;
  post: PostTask;
  events: Emitter<EngineEvents>;
  /** The machine's chardevs by id. */
  findChardev: (id: string) => ChardevEndpoint | undefined;
}

type QdevEntry =
  | { type: 'device'; device: VirtioSerialDevice }
  | { type: 'port'; device: VirtioSerialDevice; port: SerialPort };

/** QEMU's id_wellformed: a letter, then letters, digits, '-', '.', '_'. */
export function wellFormedId(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9\-._]*$/.test(id);
}

export class SerialRegistry {
  private readonly list: VirtioSerialDevice[] = [];
  private readonly qdev = new Map<string, QdevEntry>();
  private anonymousBuses = 0;
  /** Ids QEMU would give anonymous ports in /machine/peripheral-anon. */
  private anonymousPorts = 0;

  constructor(private readonly options: SerialRegistryOptions) {}

  get devices(): readonly VirtioSerialDevice[] {
    return this.list;
  }

  /** Reserve a qdev id owned by something outside this registry (another device model). */
  reserveId(id: string): QemuError | null {
    if (this.qdev.has(id)) return new QemuError(`Duplicate device ID '${id}'`);
    return null;
  }

  /** `-device virtio-serial-pci` (D1). */
  addDevice(config: SerialDeviceConfig = {}): VirtioSerialDevice | QemuError {
    const id = config.id ?? null;
    if (id !== null) {
      if (!wellFormedId(id)) return new QemuError("Parameter 'id' expects an identifier");
      if (this.qdev.has(id)) return new QemuError(`Duplicate device ID '${id}'`);
    }
    const maxPorts = config.maxPorts ?? DEFAULT_MAX_PORTS;
    if (!Number.isInteger(maxPorts) || maxPorts < 0 || maxPorts > 0xffffffff) {
      return new QemuError("Parameter 'max_ports' expects uint32_t");
    }
    if (maxPorts === 0) return new QemuError('Maximum number of serial ports not specified');
    if (maxPorts > MAX_PORTS_LIMIT) {
      return new QemuError(`maximum ports supported: ${MAX_PORTS_LIMIT}`);
    }
    for (const [what, size] of [
      ['data', config.dataQueueSize],
      ['control', config.controlQueueSize],
    ] as const) {
      if (
        size !== undefined &&
        !(Number.isInteger(size) && size >= 1 && size <= 32768 && (size & (size - 1)) === 0)
      ) {
        return new QemuError(`${what} queue size ${size} must be a power of 2 in 1..32768`);
      }
    }
    const bus = id !== null ? `${id}.0` : `virtio-serial-bus.${this.anonymousBuses++}`;
    const device = new VirtioSerialDevice({
      ...config,
      maxPorts,
      id,
      bus,
      memory: this.options.memory,
      post: this.options.post,
      events: this.options.events,
    });
    this.list.push(device);
    if (id !== null) this.qdev.set(id, { type: 'device', device });
    return device;
  }

  /** device_add for a port (D3, every refusal in QEMU's order and words). */
  addPort(args: PortAddArgs, hotplug = false): SerialPort | QemuError {
    if (args.driver !== 'virtserialport' && args.driver !== 'virtconsole') {
      return new QemuError(`'${args.driver}' is not a valid device model name`);
    }
    const kind: PortKind = args.driver;
    let device: VirtioSerialDevice | undefined;
    if (args.bus !== undefined) {
      device = this.list.find((d) => d.bus === args.bus);
      if (device === undefined) return new QemuError(`Bus '${args.bus}' not found`);
    } else {
      device = this.list[this.list.length - 1];
      if (device === undefined) {
        return new QemuError(`No 'virtio-serial-bus' bus found for device '${kind}'`);
      }
    }
    const id = args.id ?? null;
    if (id !== null) {
      if (!wellFormedId(id)) return new QemuError("Parameter 'id' expects an identifier");
      if (this.qdev.has(id)) return new QemuError(`Duplicate device ID '${id}'`);
    }
    const nrSet = args.nr !== undefined && args.nr !== BAD_PORT_ID;
    if (
      args.nr !== undefined &&
      !(Number.isInteger(args.nr) && args.nr >= 0 && args.nr <= 0xffffffff)
    ) {
      return new QemuError("Parameter 'nr' expects uint32_t");
    }
    let endpoint: ChardevEndpoint | null = null;
    if (args.chardev !== undefined) {
      const found = this.options.findChardev(args.chardev);
      if (found === undefined) {
        return new QemuError(`Property '${kind}.chardev' can't find value '${args.chardev}'`);
      }
      if (found.attached) {
        return new QemuError(
          `Property '${kind}.chardev' can't take value '${args.chardev}': Device '${args.chardev}' is in use`,
        );
      }
      endpoint = found;
    }

    // virtser_port_device_realize
    const name = args.name ?? null;
    const pluggingPort0 = kind === 'virtconsole' && device.port(0) === undefined;
    if (nrSet && device.port(args.nr!) !== undefined) {
      return new QemuError(`${BUS_PREFIX}A port already exists at id ${args.nr}`);
    }
    if (name !== null && this.findPortByName(name) !== undefined) {
      return new QemuError(`${BUS_PREFIX}A port already exists by name ${name}`);
    }
    let nr: number;
    if (nrSet) {
      nr = args.nr!;
    } else if (pluggingPort0) {
      nr = 0;
    } else {
      const free = device.findFreeNr();
      if (free === null) {
        return new QemuError(`${BUS_PREFIX}Maximum port limit for this device reached`);
      }
      nr = free;
    }
    if (nr >= device.maxPorts) {
      return new QemuError(
        `${BUS_PREFIX}Out-of-range port id specified, max. allowed: ${device.maxPorts - 1}`,
      );
    }
    // virtconsole_realize (the frontend), after the bus checks.
    if (nr === 0 && kind !== 'virtconsole') {
      return new QemuError(
        'Port number 0 on virtio-serial devices reserved for virtconsole devices for backward compatibility.',
      );
    }
    const port = device.plugPort(
      { kind, id, nr, name, chardev: args.chardev ?? null },
      endpoint,
      hotplug,
    );
    if (id !== null) this.qdev.set(id, { type: 'port', device, port });
    return port;
  }

  /** device_del of a port: hot-unplug (D8) and DEVICE_DELETED. */
  deletePort(id: string): QemuError | null {
    const entry = this.qdev.get(id);
    if (entry === undefined) return new QemuError(`Device '${id}' not found`, 'DeviceNotFound');
    if (entry.type !== 'port') {
      return new QemuError(`Device '${id}' is a virtio-serial device, not a port`);
    }
    this.unplug(entry.device, entry.port);
    return null;
  }

  /** Unplug a port that may have no qdev id. */
  unplug(device: VirtioSerialDevice, port: SerialPort): void {
    device.unplugPort(port);
    if (port.id !== null) this.qdev.delete(port.id);
    const path =
      port.id !== null
        ? `/machine/peripheral/${port.id}`
        : `/machine/peripheral-anon/device[${this.anonymousPorts++}]`;
    this.options.events.emit('device-deleted', { device: port.id, path });
  }

  /**
   * Remove a whole device; its ports go first, each with its DEVICE_DELETED
   * (QEMU unparents the children before the parent). The guest side is the
   * caller's business.
   */
  removeDevice(device: VirtioSerialDevice): void {
    for (const port of [...device.ports]) this.unplug(device, port);
    const i = this.list.indexOf(device);
    if (i >= 0) this.list.splice(i, 1);
    if (device.id !== null) this.qdev.delete(device.id);
  }

  device(idOrBus: string): VirtioSerialDevice | undefined {
    return this.list.find((d) => d.id === idOrBus || d.bus === idOrBus || d.name === idOrBus);
  }

  /** A port by qdev id. */
  portById(id: string): { device: VirtioSerialDevice; port: SerialPort } | undefined {
    const entry = this.qdev.get(id);
    return entry?.type === 'port' ? { device: entry.device, port: entry.port } : undefined;
  }

  /** find_port_by_name: names are unique across all devices. */
  findPortByName(name: string): { device: VirtioSerialDevice; port: SerialPort } | undefined {
    for (const device of this.list) {
      for (const port of device.ports) if (port.name === name) return { device, port };
    }
    return undefined;
  }

  /** Is a qdev id in use? */
  hasId(id: string): boolean {
    return this.qdev.has(id);
  }
}
