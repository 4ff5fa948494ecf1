/**
 * -device for the virtio-serial family, as qdev_device_add_from_qdict runs
 * it once the machine exists: find the driver (aliases resolved), find the
 * bus, set the properties, realize. Devices vmchan does not model are kept
 * verbatim, but their `chardev=` still claims the chardev, because QEMU
 * refuses a second frontend on it whoever the first one is.
 */
import { machineError, note, type MachineError, type MachineNote } from './machine-error.js';
import { boolMessage, parseBool, parseUint32Property, type OptPair } from './qemu-options.js';
import { MAX_MUX_FRONTENDS } from '../chardev/spec.js';
import {
  DEVICE_PROPS,
  DEVICE_TYPE_NAMES,
  VIRTIO_SERIAL_BUS_TYPE,
  type ControllerDriver,
  type PortDriver,
} from './qemu-tables.js';
import {
  MAX_PORTS_LIMIT,
  PORT_NR_UNSET,
  busNames,
  defaultDevice,
  type Chardev,
  type Port,
  type VirtioSerialDevice,
} from './topology.js';

/** What device creation sees of the machine built so far. */
export interface DeviceContext {
  /** virtio-serial devices created so far, in creation order. */
  devices: VirtioSerialDevice[];
  /** Every chardev with the number of frontends it has. */
  chardevs: Map<string, { chardev: Chardev; users: number }>;
}

export type DeviceBuild =
  | { ok: true; made: 'controller'; device: VirtioSerialDevice; notes: MachineNote[] }
  | { ok: true; made: 'port'; port: Port; notes: MachineNote[] }
  | { ok: true; made: 'other'; notes: MachineNote[] }
  | { ok: false; error: MachineError };

/**
 * qemu_chr_fe_init: attach one more frontend to a chardev. A plain chardev
 * takes one, a mux up to four; the caller words the refusal.
 */
export function claimChardev(ctx: DeviceContext, id: string): 'ok' | 'not-found' | 'in-use' {
  const entry = ctx.chardevs.get(id);
  if (entry === undefined) return 'not-found';
  const limit = entry.chardev.mux ? MAX_MUX_FRONTENDS : 1;
  if (entry.users >= limit) return 'in-use';
  entry.users++;
  return 'ok';
}

/** set_chr (hw/core/qdev-properties-system.c): the chardev property of any device. */
function setChardevProperty(
  ctx: DeviceContext,
  typeName: string,
  value: string,
): MachineError | undefined {
  if (value === '') return undefined;
  const where = { key: 'chardev', token: value };
  const claim = claimChardev(ctx, value);
  if (claim === 'not-found') {
    return machineError(
      'ChardevNotFound',
      `Property '${typeName}.chardev' can't find value '${value}'`,
      where,
    );
  }
  if (claim === 'in-use') {
    return machineError(
      'ChardevInUse',
      `Property '${typeName}.chardev' can't take value '${value}': Device '${value}' is in use`,
      where,
    );
  }
  return undefined;
}

const OUR_DRIVERS = Object.keys(DEVICE_TYPE_NAMES);
/** Real QEMU devices that are a typo's distance from ours. */
const NEAR_BUT_REAL = new Set(['virtio-serial-ccw']);

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(
        cur + 1,
        (row[j - 1] as number) + 1,
        prev + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      prev = cur;
    }
  }
  return row[b.length] as number;
}

/**
 * vmchan cannot know all of QEMU's device models, so unknown drivers are
 * kept as ignored. A near miss of a virtio-serial name is far more likely a
 * typo that would silently lose a port, so it is refused as QEMU would.
 */
function isTypoOfOurs(driver: string): boolean {
  return !NEAR_BUT_REAL.has(driver) && OUR_DRIVERS.some((d) => editDistance(d, driver) <= 2);
}

/** Last value per key, first position kept (qemu_opts_to_qdict overwrites). */
function lastValues(pairs: readonly OptPair[]): Map<string, OptPair> {
  const map = new Map<string, OptPair>();
  for (const p of pairs) map.set(p.key, p);
  return map;
}

export function buildDevice(
  id: string | undefined,
  pairs: readonly OptPair[],
  ctx: DeviceContext,
): DeviceBuild {
  const props = lastValues(pairs.filter((p) => p.key !== 'id'));
  const driver = props.get('driver')?.value;
  if (driver === undefined) {
    return { ok: false, error: machineError('MissingParameter', "Parameter 'driver' is missing") };
  }
  props.delete('driver');
  const typeName = DEVICE_TYPE_NAMES[driver];
  if (typeName === undefined) {
    if (isTypoOfOurs(driver)) {
      return {
        ok: false,
        error: machineError('UnknownDevice', `'${driver}' is not a valid device model name`, {
          key: 'driver',
          token: driver,
        }),
      };
    }
    const chardev = props.get('chardev');
    if (chardev !== undefined) {
      const error = setChardevProperty(ctx, driver, chardev.value);
      if (error !== undefined) return { ok: false, error };
    }
    return { ok: true, made: 'other', notes: [] };
  }
  if (typeName === 'virtserialport' || typeName === 'virtconsole') {
    return buildPort(typeName, id, props, ctx);
  }
  return buildController(driver as ControllerDriver, typeName, id, props);
}

function propertyType(typeName: string, key: string): string | undefined {
  return DEVICE_PROPS[typeName]?.get(key);
}

function notFound(typeName: string, pair: OptPair): MachineError {
  return machineError('PropertyNotFound', `Property '${typeName}.${pair.key}' not found`, {
    key: pair.key,
    token: pair.raw,
  });
}

/** Type-check one property value the way the keyval visitor does. */
function checkValue(type: string, pair: OptPair): MachineError | undefined {
  const where = { key: pair.key, token: pair.raw };
  if (type === 'bool' && parseBool(pair.value) === undefined) {
    return machineError('InvalidValue', boolMessage(pair.key), where);
  }
  if (type === 'uint32') {
    const n = parseUint32Property(pair.key, pair.value);
    if (typeof n !== 'number') return machineError('InvalidValue', n.message, where);
  }
  if (type === 'OnOffAuto' && !['on', 'off', 'auto'].includes(pair.value)) {
    return machineError(
      'InvalidValue',
      `Parameter '${pair.key}' does not accept value '${pair.value}'`,
      where,
    );
  }
  return undefined;
}

function buildController(
  driver: ControllerDriver,
  typeName: string,
  id: string | undefined,
  props: Map<string, OptPair>,
): DeviceBuild {
  const device = defaultDevice(driver, id === undefined ? {} : { id });
  const ignored: Record<string, string> = {};
  const notes: MachineNote[] = [];
  for (const pair of props.values()) {
    if (pair.key === 'bus') {
      // The PCI (or virtio-mmio) bus the controller plugs into: not modelled.
      ignored.bus = pair.value;
      continue;
    }
    const type = propertyType(typeName, pair.key);
    if (type === undefined) return { ok: false, error: notFound(typeName, pair) };
    const error = checkValue(type, pair);
    if (error !== undefined) return { ok: false, error };
    switch (pair.key) {
      case 'max_ports':
        device.maxPorts = parseUint32Property(pair.key, pair.value) as number;
        break;
      case 'vectors':
        device.vectors = parseUint32Property(pair.key, pair.value) as number;
        break;
      case 'emergency-write':
        device.emergencyWrite = parseBool(pair.value) as boolean;
        break;
      case 'packed':
        device.packed = parseBool(pair.value) as boolean;
        break;
      case 'event_idx':
        device.eventIdx = parseBool(pair.value) as boolean;
        break;
      case 'indirect_desc':
        device.indirectDesc = parseBool(pair.value) as boolean;
        break;
      default:
        ignored[pair.key] = pair.value;
    }
  }
  for (const key of Object.keys(ignored)) {
    notes.push(
      note('Ignored', `device '${id ?? driver}': '${key}' is kept as written but not modelled`, {
        key,
      }),
    );
  }
  if (Object.keys(ignored).length > 0) device.ignoredKeys = ignored;
  // virtio_serial_device_realize (D1).
  const maxPortsWhere = { key: 'max_ports', token: props.get('max_ports')?.raw ?? 'max_ports' };
  if (device.maxPorts === 0) {
    return {
      ok: false,
      error: machineError(
        'DeviceLimit',
        'Maximum number of serial ports not specified',
        maxPortsWhere,
      ),
    };
  }
  if (device.maxPorts > MAX_PORTS_LIMIT) {
    return {
      ok: false,
      error: machineError(
        'DeviceLimit',
        `maximum ports supported: ${MAX_PORTS_LIMIT}`,
        maxPortsWhere,
      ),
    };
  }
  return { ok: true, made: 'controller', device, notes };
}

/**
 * Where a port without bus= goes. qbus_find_recursive walks the tree and
 * returns the first virtio-serial bus that is not full; children are added
 * at the head of their bus's list (bus_add_child, QTAILQ_INSERT_HEAD), so
 * with several controllers on one PCI bus the walk meets the most recently
 * created one first. The brief said "the first device's bus"; QEMU picks
 * the last one created before the port. (virtio-serial buses are never
 * full: the bus class sets no max_dev.) This assumes the controllers share
 * one parent bus, which vmchan does not model.
 */
function implicitBus(ctx: DeviceContext): string | undefined {
  const names = busNames(ctx.devices);
  return names[names.length - 1];
}

function buildPort(
  typeName: PortDriver,
  id: string | undefined,
  props: Map<string, OptPair>,
  ctx: DeviceContext,
): DeviceBuild {
  const notes: MachineNote[] = [];
  const busPair = props.get('bus');
  props.delete('bus');
  let bus: string;
  if (busPair !== undefined) {
    const found = findBus(busPair, ctx);
    if (typeof found !== 'string') return { ok: false, error: found };
    bus = found;
  } else {
    const implied = implicitBus(ctx);
    if (implied === undefined) {
      return {
        ok: false,
        error: machineError(
          'BusNotFound',
          `No '${VIRTIO_SERIAL_BUS_TYPE}' bus found for device '${typeName}'`,
          { key: 'driver', token: typeName },
        ),
      };
    }
    bus = implied;
    notes.push(
      note('Implied', `${typeName} '${id ?? '(no id)'}' goes on bus '${bus}' (no bus= given)`, {
        token: bus,
      }),
    );
  }

  const port: Port = { driver: typeName, bus };
  if (id !== undefined) port.id = id;
  for (const pair of props.values()) {
    const type = propertyType(typeName, pair.key);
    if (type === undefined) return { ok: false, error: notFound(typeName, pair) };
    const error = checkValue(type, pair);
    if (error !== undefined) return { ok: false, error };
    if (pair.key === 'nr') {
      const nr = parseUint32Property('nr', pair.value) as number;
      if (nr !== PORT_NR_UNSET) port.nr = nr;
      else delete port.nr;
    } else if (pair.key === 'name') {
      port.name = pair.value;
    } else if (pair.key === 'chardev') {
      const chardevError = setChardevProperty(ctx, typeName, pair.value);
      if (chardevError !== undefined) return { ok: false, error: chardevError };
      if (pair.value === '') delete port.chardev;
      else port.chardev = pair.value;
    }
  }
  return { ok: true, made: 'port', port, notes };
}

/** qbus_find for the bus names vmchan knows: only virtio-serial buses exist here. */
function findBus(pair: OptPair, ctx: DeviceContext): string | MachineError {
  const where = { key: 'bus', token: pair.raw };
  const path = pair.value;
  if (path.startsWith('/')) {
    return machineError(
      'Unsupported',
      `vmchan resolves bus names, not QOM paths ('${path}')`,
      where,
    );
  }
  const [first = '', ...rest] = path.split('/');
  const names = busNames(ctx.devices);
  if (!names.includes(first)) return machineError('BusNotFound', `Bus '${first}' not found`, where);
  const deeper = rest.find((e) => e !== '');
  if (deeper !== undefined)
    return machineError('BusNotFound', `Device '${deeper}' not found`, where);
  return first;
}
