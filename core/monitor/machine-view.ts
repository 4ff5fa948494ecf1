/**
 * How the monitors see a running machine: the live devices and ports come
 * from the lab (the engine is the truth about guest/host connection and the
 * rings), what the command line said about them (driver name, vectors,
 * chardev backends) from the topology. Also the QOM paths QEMU gives them.
 */
import type { RunningMachine } from '../machine/running.js';
import {
  busNames,
  type Topology,
  type VirtioSerialDevice as TopologyDevice,
} from '../machine/topology.js';
import type { VirtioSerialDevice } from '../serial/device.js';
import type { SerialPort } from '../serial/port.js';
import { QemuError } from '../base/qemu-error.js';

export function labDevices(machine: RunningMachine): readonly VirtioSerialDevice[] {
  return machine.lab.registry.devices;
}

/** The topology's description of a live device (matched by bus name), if it has one. */
export function topologyDevice(
  topology: Topology,
  device: VirtioSerialDevice,
): TopologyDevice | undefined {
  const i = busNames(topology.devices).indexOf(device.bus);
  return i < 0 ? undefined : topology.devices[i];
}

/** The QOM type of a live controller: virtio-serial-pci unless the topology says -device. */
export function controllerType(topology: Topology, device: VirtioSerialDevice): string {
  return topologyDevice(topology, device)?.driver === 'virtio-serial-device'
    ? 'virtio-serial-device'
    : 'virtio-serial-pci';
}

/**
 * The controller's QOM path. Anonymous ones go to /machine/peripheral-anon
 * numbered among the anonymous controllers only (QEMU numbers every
 * anonymous -device there; the lab knows only its own).
 */
export function controllerPath(machine: RunningMachine, device: VirtioSerialDevice): string {
  if (device.id !== null) return `/machine/peripheral/${device.id}`;
  const anonymous = labDevices(machine).filter((d) => d.id === null);
  return `/machine/peripheral-anon/device[${anonymous.indexOf(device)}]`;
}

/** The VirtIODevice's path, as x-query-virtio lists it (the PCI proxy's `virtio-backend` child). */
export function virtioPath(machine: RunningMachine, device: VirtioSerialDevice): string {
  const base = controllerPath(machine, device);
  return controllerType(machine.topology(), device) === 'virtio-serial-device'
    ? base
    : `${base}/virtio-backend`;
}

/** The bus's path (a child of the VirtIODevice). */
export function busPath(machine: RunningMachine, device: VirtioSerialDevice): string {
  return `${virtioPath(machine, device)}/${device.bus}`;
}

export function findVirtioDevice(
  machine: RunningMachine,
  path: string,
): VirtioSerialDevice | undefined {
  return labDevices(machine).find((d) => virtioPath(machine, d) === path);
}

export interface PortRef {
  device: VirtioSerialDevice;
  port: SerialPort;
}

export function portById(machine: RunningMachine, id: string): PortRef | undefined {
  return machine.lab.registry.portById(id);
}

/** Is a chardev of the topology a ringbuf (QEMU's CHARDEV_IS_RINGBUF)? */
export function chardevKind(machine: RunningMachine, id: string): string | undefined {
  const known = machine.topology().chardevs.find((c) => c.id === id);
  if (known !== undefined) return known.backend.kind;
  return machine.chardevs().some((c) => c.id === id) ? 'unknown' : undefined;
}

/** The checks qmp_ringbuf_read/write make before touching the ring, in QEMU's order. */
export function ringbufCheck(machine: RunningMachine, device: string): QemuError | null {
  const kind = chardevKind(machine, device);
  if (kind === undefined) return new QemuError(`Device '${device}' not found`);
  if (kind !== 'ringbuf') return new QemuError(`${device} is not a ringbuf device`);
  return null;
}
