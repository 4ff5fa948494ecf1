/**
 * `info qtree` for the part of the device tree the lab models, in QEMU
 * 7.2's layout (softmmu/qdev-monitor.c qbus_print / qdev_print):
 *
 *   bus: <name>                     then, two spaces deeper,
 *     type <bus type>
 *     dev: <type>, id "<id>"         properties two deeper again,
 *       <prop padded to 10> = <value>     the class's own first, then its parents'
 *       port 1, guest on, host off, throttle off   (virtser_bus_dev_print)
 *       bus: <child bus>
 *
 * Integers print as `1 (0x1)`, strings quoted, booleans true/false
 * (object_property_print, human form). A bus lists its newest child
 * first: QEMU inserts children at the head of the list.
 *
 * The lab has no PCI machine, so the tree starts at the PCI bus (named
 * pcie.0 as on q35) and a virtio-serial-pci shows only its own
 * properties (ioeventfd, vectors, class), not those of virtio-pci and
 * pci-device, nor the class/addr/bar lines of the PCI bus printer.
 */
import type { RunningMachine } from '../machine/running.js';
import type { VirtioSerialDevice } from '../serial/device.js';
import type { SerialPort } from '../serial/port.js';
import { controllerType, labDevices, topologyDevice } from './machine-view.js';

type Value = number | string | boolean;

function show(value: Value): string {
  if (typeof value === 'number') return `${value} (0x${value.toString(16)})`;
  if (typeof value === 'string') return `"${value}"`;
  return value ? 'true' : 'false';
}

class Printer {
  out = '';

  line(indent: number, text: string): void {
    this.out += `${' '.repeat(indent)}${text}\n`;
  }

  props(indent: number, props: readonly [string, Value][]): void {
    for (const [name, value] of props) this.line(indent, `${name.padEnd(10)} = ${show(value)}`);
  }
}

function printPort(p: Printer, indent: number, port: SerialPort): void {
  p.line(indent, `dev: ${port.kind}, id "${port.id ?? ''}"`);
  // virtserialport's own chardev, then virtio-serial-port's nr and name.
  p.props(indent + 2, [
    ['chardev', port.chardev ?? ''],
    ['nr', port.nr],
    ['name', port.name ?? ''],
  ]);
  p.line(indent + 2, port.describe());
}

function printBackend(
  p: Printer,
  indent: number,
  machine: RunningMachine,
  device: VirtioSerialDevice,
  id: string,
): void {
  const t = topologyDevice(machine.topology(), device);
  p.line(indent, `dev: virtio-serial-device, id "${id}"`);
  // virtio-serial's properties, then VirtIODevice's (DEFINE_VIRTIO_COMMON_FEATURES first).
  p.props(indent + 2, [
    ['max_ports', device.maxPorts],
    ['emergency-write', device.emergencyWrite],
    ['indirect_desc', t?.indirectDesc ?? true],
    ['event_idx', t?.eventIdx ?? true],
    ['notify_on_empty', true],
    ['any_layout', true],
    ['iommu_platform', false],
    ['packed', t?.packed ?? false],
    ['queue_reset', true],
    ['use-started', true],
    ['use-disabled-flag', true],
    ['x-disable-legacy-check', false],
  ]);
  p.line(indent + 2, `bus: ${device.bus}`);
  p.line(indent + 4, 'type virtio-serial-bus');
  for (const port of [...device.ports].reverse()) printPort(p, indent + 4, port);
}

/** The tree under the bus the controllers sit on (their newest first, as QEMU lists). */
export function infoQtree(machine: RunningMachine): string {
  const p = new Printer();
  const topology = machine.topology();
  const devices = [...labDevices(machine)].reverse();
  const pci = devices.filter((d) => controllerType(topology, d) === 'virtio-serial-pci');
  const mmio = devices.filter((d) => controllerType(topology, d) === 'virtio-serial-device');
  if (pci.length > 0 || mmio.length === 0) {
    p.line(0, 'bus: pcie.0');
    p.line(2, 'type PCIE');
    for (const device of pci) {
      const t = topologyDevice(topology, device);
      p.line(2, `dev: virtio-serial-pci, id "${device.id ?? ''}"`);
      p.props(4, [
        ['ioeventfd', true],
        ['vectors', t?.vectors ?? 2],
        ['class', 0x780],
      ]);
      p.line(4, 'bus: virtio-bus');
      p.line(6, 'type virtio-pci-bus');
      printBackend(p, 6, machine, device, '');
    }
  }
  mmio.forEach((device, i) => {
    p.line(0, `bus: virtio-mmio-bus.${i}`);
    p.line(2, 'type virtio-mmio-bus');
    printBackend(p, 2, machine, device, device.id ?? '');
  });
  return p.out;
}
