/**
 * qom-list and qom-get over the part of QEMU's object tree the lab models:
 *
 *   /machine/peripheral                       container of devices with an id
 *   /machine/peripheral/<port>                virtserialport / virtconsole
 *   /machine/peripheral/<vser>                virtio-serial-pci (the proxy)
 *   /machine/peripheral/<vser>/virtio-backend virtio-serial-device
 *   .../virtio-backend/<vser>.0               virtio-serial-bus
 *   /chardevs, /chardevs/<id>                 chardevs
 *
 * Ports list the properties QEMU 7.2 lists (test/fixtures/qemu-7.2-samples/qom.jsonl),
 * in its order. The proxy lists its own and the aliased virtio-serial
 * properties but not the PCI ones, and no parent_bus: the lab has no PCI
 * bus. A path without a leading '/' is a partial path, resolved as QEMU
 * does when it matches exactly one object.
 */
import type { RunningMachine } from '../machine/running.js';
import type { VirtioSerialDevice } from '../serial/device.js';
import type { SerialPort } from '../serial/port.js';
import { QemuError } from '../base/qemu-error.js';
import type { MonitorHub } from './hub.js';
import {
  busPath,
  controllerPath,
  controllerType,
  labDevices,
  topologyDevice,
  virtioPath,
} from './machine-view.js';
import type { QObject } from './qobject.js';

interface QomProperty {
  name: string;
  type: string;
  get(): QObject;
}

interface QomObject {
  path: string;
  typeName: string;
  properties(): QomProperty[];
}

const prop = (name: string, type: string, get: () => QObject): QomProperty => ({ name, type, get });

const TYPE_NAMES: Record<string, string> = {
  socket: 'chardev-socket',
  pipe: 'chardev-pipe',
  file: 'chardev-file',
  pty: 'chardev-pty',
  null: 'chardev-null',
  ringbuf: 'chardev-ringbuf',
  udp: 'chardev-udp',
  stdio: 'chardev-stdio',
  serial: 'chardev-serial',
};

function portObject(
  machine: RunningMachine,
  hub: MonitorHub,
  device: VirtioSerialDevice,
  port: SerialPort,
): QomObject {
  const typeName = port.kind;
  return {
    path: `/machine/peripheral/${port.id}`,
    typeName,
    properties: () => [
      prop('type', 'string', () => typeName),
      prop('parent_bus', 'link<bus>', () => busPath(machine, device)),
      prop('realized', 'bool', () => true),
      prop('hotplugged', 'bool', () => hub.wasHotplugged(port)),
      prop('hotpluggable', 'bool', () => true),
      prop('nr', 'uint32', () => port.nr),
      prop('name', 'str', () => port.name ?? ''),
      prop('chardev', 'str', () => port.chardev ?? ''),
    ],
  };
}

/** virtio-serial's own properties, as the backend and (aliased) the proxy have them. */
function serialProperties(machine: RunningMachine, device: VirtioSerialDevice): QomProperty[] {
  const t = topologyDevice(machine.topology(), device);
  return [
    prop('queue_reset', 'bool', () => true),
    prop('use-disabled-flag', 'bool', () => true),
    prop('packed', 'bool', () => t?.packed ?? false),
    prop('iommu_platform', 'bool', () => false),
    prop('event_idx', 'bool', () => t?.eventIdx ?? true),
    prop('x-disable-legacy-check', 'bool', () => false),
    prop('notify_on_empty', 'bool', () => true),
    prop('any_layout', 'bool', () => true),
    prop('use-started', 'bool', () => true),
    prop('indirect_desc', 'bool', () => t?.indirectDesc ?? true),
    prop('max_ports', 'uint32', () => device.maxPorts),
    prop('emergency-write', 'bool', () => device.emergencyWrite),
  ];
}

function common(typeName: string): QomProperty[] {
  return [
    prop('type', 'string', () => typeName),
    prop('realized', 'bool', () => true),
    prop('hotplugged', 'bool', () => false),
    prop('hotpluggable', 'bool', () => true),
  ];
}

function deviceObjects(
  machine: RunningMachine,
  hub: MonitorHub,
  device: VirtioSerialDevice,
): QomObject[] {
  const topology = machine.topology();
  const backendPath = virtioPath(machine, device);
  const pci = controllerType(topology, device) === 'virtio-serial-pci';
  const backendType = 'virtio-serial-device';
  const t = topologyDevice(topology, device);
  const out: QomObject[] = [];
  if (pci) {
    out.push({
      path: controllerPath(machine, device),
      typeName: 'virtio-serial-pci',
      properties: () => [
        ...common('virtio-serial-pci'),
        prop('vectors', 'uint32', () => t?.vectors ?? 2),
        prop('class', 'uint32', () => 0x780),
        prop('ioeventfd', 'bool', () => true),
        ...serialProperties(machine, device),
        prop('virtio-backend', `child<${backendType}>`, () => backendPath),
      ],
    });
  }
  out.push({
    path: backendPath,
    typeName: backendType,
    properties: () => [
      prop('type', 'string', () => backendType),
      prop('parent_bus', 'link<bus>', () => `${controllerPath(machine, device)}/virtio-bus`),
      ...common(backendType).slice(1),
      ...serialProperties(machine, device),
      prop(device.bus, 'child<virtio-serial-bus>', () => busPath(machine, device)),
    ],
  });
  out.push({
    path: busPath(machine, device),
    typeName: 'virtio-serial-bus',
    properties: () => [
      prop('type', 'string', () => 'virtio-serial-bus'),
      prop('realized', 'bool', () => true),
      prop('hotplug-handler', 'link<hotplug-handler>', () => backendPath),
      ...device.ports.map((p, i) =>
        prop(`child[${i}]`, `link<${p.kind}>`, () =>
          p.id !== null ? `/machine/peripheral/${p.id}` : '',
        ),
      ),
    ],
  });
  for (const port of device.ports) {
    if (port.id !== null) out.push(portObject(machine, hub, device, port));
  }
  return out;
}

function objects(machine: RunningMachine, hub: MonitorHub): QomObject[] {
  const devices = labDevices(machine);
  const all = devices.flatMap((d) => deviceObjects(machine, hub, d));
  const peripheral = all.filter((o) => /^\/machine\/peripheral\/[^/]+$/.test(o.path));
  const chardevs = machine.chardevs();
  const kinds = new Map(machine.topology().chardevs.map((c) => [c.id, c.backend.kind]));
  const chardevType = (id: string): string => TYPE_NAMES[kinds.get(id) ?? ''] ?? 'chardev';
  return [
    {
      path: '/machine/peripheral',
      typeName: 'container',
      properties: () => [
        prop('type', 'string', () => 'container'),
        ...peripheral.map((o) =>
          prop(o.path.slice('/machine/peripheral/'.length), `child<${o.typeName}>`, () => o.path),
        ),
      ],
    },
    {
      path: '/chardevs',
      typeName: 'container',
      properties: () => [
        prop('type', 'string', () => 'container'),
        ...chardevs.map((c) =>
          prop(c.id, `child<${chardevType(c.id)}>`, () => `/chardevs/${c.id}`),
        ),
      ],
    },
    ...chardevs.map((c) => ({
      path: `/chardevs/${c.id}`,
      typeName: chardevType(c.id),
      properties: () => [prop('type', 'string', () => chardevType(c.id))],
    })),
    ...all,
  ];
}

/** object_resolve_path: absolute, or partial when exactly one object's path ends with it. */
function resolve(machine: RunningMachine, hub: MonitorHub, path: string): QomObject | QemuError {
  const all = objects(machine, hub);
  const found = path.startsWith('/')
    ? all.filter((o) => o.path === path.replace(/\/+$/, ''))
    : all.filter((o) => o.path.endsWith(`/${path}`));
  if (found.length !== 1) return new QemuError(`Device '${path}' not found`, 'DeviceNotFound');
  return found[0]!;
}

export function qomList(
  machine: RunningMachine,
  hub: MonitorHub,
  path: string,
): QObject | QemuError {
  const obj = resolve(machine, hub, path);
  if (obj instanceof QemuError) return obj;
  return obj.properties().map((p) => ({ name: p.name, type: p.type }));
}

export function qomGet(
  machine: RunningMachine,
  hub: MonitorHub,
  path: string,
  property: string,
): QObject | QemuError {
  const obj = resolve(machine, hub, path);
  if (obj instanceof QemuError) return obj;
  const p = obj.properties().find((x) => x.name === property);
  if (p === undefined) return new QemuError(`Property '${obj.typeName}.${property}' not found`);
  return p.get();
}
