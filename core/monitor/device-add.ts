/**
 * device_add, shared by QMP and HMP, in the order QEMU 7.2 runs it
 * (qemu_opts_create, then qdev_device_add_from_qdict): the id's syntax,
 * the driver, the bus, the id's uniqueness, the properties one by one (in
 * the order QEMU's dict holds them), then realize, which the machine does
 * (chardev in use, port number and name rules of D3, every refusal in
 * QEMU's words).
 *
 * Values arrive as strings, as QMP device_add in 7.2 still converts its
 * arguments through QemuOpts: `"nr": 1` and `"nr": "1"` are the same, a
 * boolean is "on"/"off", and members of other JSON types are ignored.
 */
import type { RunningMachine } from '../machine/running.js';
import { buildDevice } from '../machine/qemu-device.js';
import { parseUint32Property, type OptPair } from '../machine/qemu-options.js';
import { DEVICE_PROPS, DEVICE_TYPE_NAMES, VIRTIO_SERIAL_BUS_TYPE } from '../machine/qemu-tables.js';
import { PORT_NR_UNSET, isWellFormedId } from '../machine/topology.js';
import { QemuError } from '../base/qemu-error.js';
import { labDevices } from './machine-view.js';
import { qdictOrder, type QDict } from './qobject.js';

/** qemu_opts_from_qdict_entry: strings as they are, numbers printed, booleans on/off, the rest ignored. */
export function optsFromQdict(args: QDict): { props: Map<string, string>; id: string | undefined } {
  const props = new Map<string, string>();
  let id: string | undefined;
  for (const [key, value] of args) {
    if (key === 'id') {
      if (typeof value === 'string') id = value;
      continue;
    }
    if (typeof value === 'string') props.set(key, value);
    else if (typeof value === 'number' || typeof value === 'bigint') props.set(key, String(value));
    else if (typeof value === 'boolean') props.set(key, value ? 'on' : 'off');
  }
  return { props, id };
}

export function deviceAdd(
  machine: RunningMachine,
  props: ReadonlyMap<string, string>,
  id: string | undefined,
): QemuError | null {
  if (id !== undefined && !isWellFormedId(id)) {
    return new QemuError("Parameter 'id' expects an identifier");
  }
  const driver = props.get('driver');
  if (driver === undefined) return new QemuError("Parameter 'driver' is missing");
  const typeName = DEVICE_TYPE_NAMES[driver];
  if (typeName === undefined) return new QemuError(`'${driver}' is not a valid device model name`);
  if (typeName === 'virtserialport' || typeName === 'virtconsole') {
    return portAdd(machine, typeName, props, id);
  }
  return controllerAdd(machine, props, id);
}

function portAdd(
  machine: RunningMachine,
  typeName: 'virtserialport' | 'virtconsole',
  props: ReadonlyMap<string, string>,
  id: string | undefined,
): QemuError | null {
  const devices = labDevices(machine);
  const busName = props.get('bus');
  let bus: string;
  if (busName !== undefined) {
    const found = devices.find((d) => d.bus === busName);
    if (found === undefined) return new QemuError(`Bus '${busName}' not found`);
    bus = found.bus;
  } else {
    // QEMU meets the newest virtio-serial bus first (children are added at the head).
    const newest = devices[devices.length - 1];
    if (newest === undefined) {
      return new QemuError(`No '${VIRTIO_SERIAL_BUS_TYPE}' bus found for device '${typeName}'`);
    }
    bus = newest.bus;
  }
  if (id !== undefined && machine.lab.registry.hasId(id)) {
    return new QemuError(`Duplicate device ID '${id}'`);
  }
  const known = DEVICE_PROPS[typeName]!;
  const request: Parameters<RunningMachine['deviceAdd']>[0] = { driver: typeName, bus };
  if (id !== undefined) request.id = id;
  const keys = qdictOrder([...props.keys()]).filter((k) => k !== 'driver' && k !== 'bus');
  for (const key of keys) {
    const value = props.get(key)!;
    if (!known.has(key)) return new QemuError(`Property '${typeName}.${key}' not found`);
    if (key === 'nr') {
      const nr = parseUint32Property('nr', value);
      if (typeof nr !== 'number') return new QemuError(nr.message);
      if (nr !== PORT_NR_UNSET) request.nr = nr;
    } else if (key === 'name') {
      request.name = value;
    } else if (key === 'chardev' && value !== '') {
      request.chardev = value;
    }
  }
  return machine.deviceAdd(request);
}

function controllerAdd(
  machine: RunningMachine,
  props: ReadonlyMap<string, string>,
  id: string | undefined,
): QemuError | null {
  if (id !== undefined && machine.lab.registry.hasId(id)) {
    return new QemuError(`Duplicate device ID '${id}'`);
  }
  const pairs: OptPair[] = [...props].map(([key, value]) => ({
    key,
    value,
    form: 'pair',
    raw: `${key}=${value}`,
  }));
  const built = buildDevice(id, pairs, { devices: [], chardevs: new Map() });
  if (!built.ok) return new QemuError(built.error.message);
  if (built.made !== 'controller')
    return new QemuError(`'${props.get('driver')}' is not a valid device model name`);
  // Through the machine, so its topology (export, info qtree, query-*) lists the device.
  return machine.controllerAdd(built.device);
}
