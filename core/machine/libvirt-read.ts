/**
 * libvirt domain XML to Topology: the whole <domain>, a <devices> fragment,
 * or bare <controller>/<channel>/<console> elements.
 *
 * It follows what libvirt's QEMU driver puts on the command line:
 * - <controller type='virtio-serial' index='N' ports='P' vectors='V'> is
 *   `-device virtio-serial-pci,id=virtio-serial<N>,max_ports=P,vectors=V`
 *   (virtio-serial-device when its address is virtio-mmio); a controller
 *   that a port's address names but the XML lacks is added, as libvirt does;
 * - <channel> with <target type='virtio' name='X'/> is a virtserialport
 *   `id=channel<i>,name=X,chardev=charchannel<i>` (i counts all <channel>s);
 * - <console> with <target type='virtio'/> is a virtconsole `id=console<i>`;
 * - <address type='virtio-serial' controller='C' bus='B' port='N'/> is
 *   `bus=virtio-serial<C>.<B>,nr=N`;
 * - an <alias name='...'/> (live XML, or a user alias `ua-*`) replaces the
 *   generated id;
 * - libvirt emits channels before consoles, so ports come in that order.
 *
 * Whatever has no virtio-serial meaning (serial consoles, <serial>,
 * guestfwd channels, source types vmchan does not know) is left out with a
 * NotExpressed note saying so.
 */
import {
  machineError,
  note,
  type MachineError,
  type MachineNote,
  type MachineResult,
} from './machine-error.js';
import { DEVICE_PROPS } from './qemu-tables.js';
import { onOff, parseUint, sourceToChardev } from './libvirt-source.js';
import { repairXml } from './xml-repair.js';
import { child, childrenNamed, parseXmlFragment, type XmlElement } from './xml-nodes.js';
import {
  MAX_PORTS_LIMIT,
  defaultDevice,
  type Chardev,
  type Port,
  type Topology,
  type VirtioSerialDevice,
} from './topology.js';

/** libvirt <driver> attributes of a virtio controller and the QEMU properties they set. */
export const LIBVIRT_DRIVER_PROPS: ReadonlyArray<readonly [string, string]> = [
  ['iommu', 'iommu_platform'],
  ['ats', 'ats'],
  ['page_per_vq', 'page-per-vq'],
];

function devicesRoot(root: XmlElement): XmlElement {
  const domain = child(root, 'domain');
  const container = domain ?? root;
  return child(container, 'devices') ?? container;
}

type Built<T> = { ok: true; value: T } | { ok: false; error: MachineError };

interface ControllerEntry {
  index: number;
  device: VirtioSerialDevice;
}

function readController(
  el: XmlElement,
  index: number,
  position: number,
  notes: MachineNote[],
): Built<ControllerEntry> {
  const where = { element: `<controller> #${position}` };
  const alias = child(el, 'alias')?.attrs.name;
  const mmio = child(el, 'address')?.attrs.type === 'virtio-mmio';
  const device = defaultDevice(mmio ? 'virtio-serial-device' : 'virtio-serial-pci', {
    id: alias ?? `virtio-serial${index}`,
  });
  const ports = parseUint(el.attrs.ports);
  if (ports === 'bad')
    return {
      ok: false,
      error: machineError('XmlValue', `Invalid ports: ${el.attrs.ports}`, where),
    };
  if (ports !== undefined) {
    if (ports === 0) {
      return {
        ok: false,
        error: machineError('DeviceLimit', 'Maximum number of serial ports not specified', where),
      };
    }
    if (ports > MAX_PORTS_LIMIT) {
      return {
        ok: false,
        error: machineError('DeviceLimit', `maximum ports supported: ${MAX_PORTS_LIMIT}`, where),
      };
    }
    device.maxPorts = ports;
  }
  const vectors = parseUint(el.attrs.vectors);
  if (vectors === 'bad') {
    return {
      ok: false,
      error: machineError('XmlValue', `Invalid vectors: ${el.attrs.vectors}`, where),
    };
  }
  if (vectors !== undefined) device.vectors = vectors;

  const driver = child(el, 'driver');
  const ignored: Record<string, string> = {};
  if (driver !== undefined) {
    if (onOff(driver.attrs.packed) !== undefined)
      device.packed = onOff(driver.attrs.packed) as boolean;
    const props = DEVICE_PROPS[mmio ? 'virtio-serial-device' : 'virtio-serial-pci'];
    for (const [attr, prop] of LIBVIRT_DRIVER_PROPS) {
      const v = onOff(driver.attrs[attr]);
      if (v === undefined) continue;
      // ats and page_per_vq are PCI properties: QEMU has them on no virtio-mmio device.
      if (props?.has(prop) === true) ignored[prop] = v ? 'on' : 'off';
      else
        notes.push(
          note(
            'NotExpressed',
            `controller ${index}: ${attr}='${driver.attrs[attr]}' does not apply to virtio-mmio`,
            where,
          ),
        );
    }
  }
  if (Object.keys(ignored).length > 0) device.ignoredKeys = ignored;
  const model = el.attrs.model;
  if (model !== undefined && model !== 'virtio') {
    // virtio-transitional / virtio-non-transitional pick other QEMU device types.
    notes.push(
      note(
        'NotExpressed',
        `controller ${index}: model '${model}' is read as virtio-serial-pci`,
        where,
      ),
    );
  }
  const addressType = child(el, 'address')?.attrs.type;
  if (addressType !== undefined && addressType !== 'virtio-mmio') {
    notes.push(
      note(
        'NotExpressed',
        `controller ${index}: its ${addressType} address (the slot it plugs into) is not modelled`,
        where,
      ),
    );
  }
  return { ok: true, value: { index, device } };
}

const LIBVIRT_ROOTS = new Set(['domain', 'devices', 'controller', 'channel', 'console', 'serial']);
const XML_ENTITY = /&(?!(?:lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);)([A-Za-z_][\w.-]*);/;

/**
 * Why an XML that parsed gives no virtio-serial device, in one line: the
 * words differ for an empty text, a text that is not XML, another kind of
 * document, an XML that had to be repaired, an undefined entity, or
 * channels that were all left out (issue 13: four different malformed XMLs
 * all answered the same line).
 */
export function explainNoVirtioSerial(xml: string, notes: readonly MachineNote[]): string {
  const fallback = 'no virtio-serial controller in this XML (<controller type="virtio-serial">)';
  if (xml.trim() === '') return 'the XML is empty: paste a libvirt <domain> (or its <devices>)';
  if (!xml.includes('<')) {
    return 'this is not XML (no elements): paste a libvirt <domain> (or its <devices>)';
  }
  const entity = XML_ENTITY.exec(xml);
  if (entity !== null) {
    return `the XML uses an undefined entity &${entity[1]}; (line ${xml.slice(0, entity.index).split('\n').length})`;
  }
  const repaired = notes.find((n) => n.kind === 'Repaired');
  if (repaired !== undefined) {
    return `the XML is not well-formed (${repaired.message}) and has no virtio-serial controller`;
  }
  const parsed = parseXmlFragment(repairXml(xml).text);
  const top = parsed.ok ? parsed.root.children[0] : undefined;
  if (top === undefined)
    return 'the XML has no elements: paste a libvirt <domain> (or its <devices>)';
  if (!LIBVIRT_ROOTS.has(top.name)) {
    return `the XML is a <${top.name}>, not a libvirt <domain> (or its <devices>)`;
  }
  const leftOut = notes.filter((n) => n.element !== undefined && /left out/.test(n.message));
  if (leftOut.length > 0) {
    return `no virtio-serial controller in this XML, and its ${leftOut.length} device(s) were left out: ${leftOut[0]!.message}`;
  }
  return fallback;
}

export function topologyFromLibvirtXml(xml: string): MachineResult<Topology> {
  const repaired = repairXml(xml);
  const notes: MachineNote[] = [...repaired.notes];
  const parsed = parseXmlFragment(repaired.text);
  if (!parsed.ok) return { ok: false, error: parsed.error, notes };
  const devicesEl = devicesRoot(parsed.root);

  // Controllers, by index (missing indexes take the lowest free one, as libvirt does).
  const controllers = new Map<number, VirtioSerialDevice>();
  const vsControllers = childrenNamed(devicesEl, 'controller').filter(
    (c) => c.attrs.type === 'virtio-serial',
  );
  const explicit = vsControllers.map((c) => parseUint(c.attrs.index));
  for (const [position, el] of vsControllers.entries()) {
    const where = { element: `<controller> #${position + 1}` };
    let index = explicit[position];
    if (index === 'bad')
      return {
        ok: false,
        error: machineError('XmlValue', `Cannot parse controller index ${el.attrs.index}`, where),
        notes,
      };
    if (index === undefined) {
      index = 0;
      while (controllers.has(index) || explicit.includes(index)) index++;
    }
    if (controllers.has(index)) {
      return {
        ok: false,
        error: machineError(
          'XmlValue',
          `Multiple 'virtio-serial' controllers with index '${index}'`,
          where,
        ),
        notes,
      };
    }
    const built = readController(el, index, position + 1, notes);
    if (!built.ok) return { ok: false, error: built.error, notes };
    controllers.set(index, built.value.device);
  }

  interface PendingPort {
    port: Omit<Port, 'bus'>;
    controller: number;
    busIndex: number;
    chardev: Chardev;
    element: string;
  }
  const pending: PendingPort[] = [];

  const readPort = (
    el: XmlElement,
    kind: 'channel' | 'console',
    i: number,
  ): MachineError | undefined => {
    const where = { element: `<${kind}> #${i + 1}` };
    const what = `${kind} ${i}`;
    const target = child(el, 'target');
    const targetType = target?.attrs.type ?? (kind === 'console' ? 'serial' : undefined);
    if (targetType !== 'virtio') {
      const why =
        kind === 'console'
          ? `console ${i} has target type '${targetType}', a serial or platform console, not a virtio console; it is left out`
          : `channel ${i} has target type '${targetType ?? '(none)'}', not virtio; it is left out`;
      notes.push(note('NotExpressed', why, where));
      return undefined;
    }
    const alias = child(el, 'alias')?.attrs.name;
    const id = alias ?? `${kind}${i}`;
    let type = el.attrs.type;
    if (type === undefined) {
      type = 'pty';
      notes.push(note('Implied', `${what} names no type; libvirt takes pty`, where));
    }
    const source = sourceToChardev(type, el, what, target?.attrs.name, notes, where);
    if (source.ok === 'skip') {
      notes.push(note('NotExpressed', `${what}: ${source.reason}; it is left out`, where));
      return undefined;
    }
    if (!source.ok) return source.error;
    const chardev: Chardev = {
      id: `char${id}`,
      backend: source.value.backend,
      mux: false,
      logappend: false,
    };
    if (source.value.ignoredKeys !== undefined) chardev.ignoredKeys = source.value.ignoredKeys;
    const log = child(el, 'log');
    if (log?.attrs.file !== undefined) {
      chardev.logfile = log.attrs.file;
      chardev.logappend = onOff(log.attrs.append) ?? false;
    }

    const port: Omit<Port, 'bus'> = {
      driver: kind === 'channel' ? 'virtserialport' : 'virtconsole',
      id,
      chardev: chardev.id,
    };
    if (kind === 'channel' && target?.attrs.name !== undefined) port.name = target.attrs.name;
    let controller = 0;
    let busIndex = 0;
    const address = child(el, 'address');
    if (address !== undefined) {
      if (address.attrs.type !== 'virtio-serial') {
        return machineError(
          'XmlValue',
          `virtio serial device has invalid address type '${address.attrs.type}'`,
          where,
        );
      }
      const c = parseUint(address.attrs.controller);
      const b = parseUint(address.attrs.bus);
      const p = parseUint(address.attrs.port);
      if (c === 'bad' || b === 'bad' || p === 'bad') {
        return machineError(
          'XmlValue',
          "Cannot parse <address> 'controller', 'bus' or 'port'",
          where,
        );
      }
      controller = c ?? 0;
      busIndex = b ?? 0;
      if (p !== undefined) {
        // libvirt treats port 0 on a channel as "not assigned yet" and picks one.
        if (p === 0 && kind === 'channel') {
          notes.push(
            note('Implied', `${what}: libvirt reads port='0' on a channel as unassigned`, where),
          );
        } else {
          port.nr = p;
        }
      }
    }
    pending.push({ port, controller, busIndex, chardev, element: where.element });
    return undefined;
  };

  // libvirt's QEMU command line has channels first, then consoles.
  for (const [i, el] of childrenNamed(devicesEl, 'channel').entries()) {
    const error = readPort(el, 'channel', i);
    if (error !== undefined) return { ok: false, error, notes };
  }
  for (const [i, el] of childrenNamed(devicesEl, 'console').entries()) {
    const error = readPort(el, 'console', i);
    if (error !== undefined) return { ok: false, error, notes };
  }
  for (const kind of ['serial', 'parallel']) {
    for (const [i, el] of childrenNamed(devicesEl, kind).entries()) {
      notes.push(
        note(
          'NotExpressed',
          `${kind} ${i} is a UART/parallel port, not virtio-serial; it is left out`,
          { element: `<${el.name}> #${i + 1}` },
        ),
      );
    }
  }

  for (const p of pending) {
    if (!controllers.has(p.controller)) {
      controllers.set(
        p.controller,
        defaultDevice('virtio-serial-pci', { id: `virtio-serial${p.controller}` }),
      );
      notes.push(
        note(
          'Implied',
          `controller ${p.controller} is added, as libvirt adds it for ${p.element}`,
          { element: p.element },
        ),
      );
    }
  }
  const ordered = [...controllers.entries()].sort((a, b) => a[0] - b[0]);
  const devices = ordered.map(([, d]) => d);
  const idOf = new Map(ordered.map(([index, d]) => [index, d.id as string]));

  const chardevs: Chardev[] = [];
  const ports: Port[] = [];
  for (const p of pending) {
    if (p.busIndex !== 0) {
      return {
        ok: false,
        error: machineError(
          'BusNotFound',
          `Bus '${idOf.get(p.controller)}.${p.busIndex}' not found`,
          { element: p.element },
        ),
        notes,
      };
    }
    chardevs.push(p.chardev);
    ports.push({ ...p.port, bus: `${idOf.get(p.controller)}.0` } as Port);
  }
  if (devices.length === 0 && ports.length === 0) {
    notes.push(note('NotExpressed', 'no virtio-serial controller, channel or console found', {}));
  }
  const topology: Topology = { chardevs, devices, ports, monitors: [], ignored: [] };
  return { ok: true, value: topology, notes };
}
