/**
 * Topology to libvirt XML: a <devices> fragment with the virtio-serial
 * controllers, then the channels (virtserialport), then the consoles
 * (virtconsole), the order libvirt itself writes and runs them in.
 *
 * libvirt names things itself (controller i is virtio-serial<i>, channel k
 * is channel<k> on chardev charchannel<k>); an id that differs is written
 * as an <alias>, which live XML carries and libvirt honours on define only
 * for user aliases (ua-*). Everything libvirt cannot say (ringbuf, mux,
 * wait=on, nodelay, monitors, QEMU options outside the devices, chardev
 * ids that differ from libvirt's) is listed in `notes`, one sentence each,
 * never dropped silently.
 */
import { note, type MachineNote } from './machine-error.js';
import { LIBVIRT_DRIVER_PROPS } from './libvirt-read.js';
import { chardevToSource } from './libvirt-source.js';
import { element, serializeXml, type XmlElement } from './xml-nodes.js';
import {
  DEFAULT_MAX_PORTS,
  deviceIndexForBus,
  type Port,
  type Topology,
  type VirtioSerialDevice,
} from './topology.js';

export interface LibvirtXml {
  xml: string;
  /** NotExpressed notes: what the XML does not carry, one sentence each. */
  notes: MachineNote[];
}

function controllerElement(d: VirtioSerialDevice, i: number, notes: MachineNote[]): XmlElement {
  const what = `device ${d.id ?? `#${i}`}`;
  const lost = (message: string): void => {
    notes.push(note('NotExpressed', `${what}: ${message}`, { token: d.id ?? d.driver }));
  };
  const children: XmlElement[] = [];
  const driverAttrs: Record<string, string | undefined> = { packed: d.packed ? 'on' : undefined };
  const ignored = { ...d.ignoredKeys };
  for (const [attr, prop] of LIBVIRT_DRIVER_PROPS) {
    const v = ignored[prop];
    if (v === 'on' || v === 'off') {
      driverAttrs[attr] = v;
      delete ignored[prop];
    }
  }
  if (Object.values(driverAttrs).some((v) => v !== undefined))
    children.push(element('driver', driverAttrs));
  const defaultId = `virtio-serial${i}`;
  if (d.id === undefined) {
    lost(`it has no id; libvirt names it ${defaultId}, so its bus becomes ${defaultId}.0`);
  } else if (d.id !== defaultId) {
    children.push(element('alias', { name: d.id }));
    if (!d.id.startsWith('ua-')) {
      lost(
        `id '${d.id}' is written as <alias>; libvirt keeps only user aliases (ua-*) when it defines a domain`,
      );
    }
  }
  if (d.driver === 'virtio-serial-device')
    children.push(element('address', { type: 'virtio-mmio' }));
  if (d.driver === 'virtio-serial') {
    lost(
      "the driver alias 'virtio-serial' is written as a controller, which libvirt runs as virtio-serial-pci",
    );
  }
  if (!d.emergencyWrite) lost('emergency-write=off has no libvirt attribute');
  if (!d.eventIdx) lost('event_idx=off has no libvirt attribute for controllers');
  if (!d.indirectDesc) lost('indirect_desc=off has no libvirt attribute for controllers');
  for (const [k, v] of Object.entries(ignored)) lost(`${k}=${v} has no libvirt attribute here`);
  return element(
    'controller',
    {
      type: 'virtio-serial',
      index: String(i),
      ports: d.maxPorts === DEFAULT_MAX_PORTS ? undefined : String(d.maxPorts),
      vectors: d.vectors === undefined ? undefined : String(d.vectors),
    },
    children,
  );
}

export function topologyToLibvirtXml(t: Topology): LibvirtXml {
  const notes: MachineNote[] = [];
  const controllers = t.devices.map((d, i) => controllerElement(d, i, notes));
  const chardevs = new Map(t.chardevs.map((c) => [c.id, c]));
  const usedByPorts = new Map<string, number>();
  const channels: XmlElement[] = [];
  const consoles: XmlElement[] = [];

  const writePort = (p: Port): void => {
    const kind = p.driver === 'virtserialport' ? 'channel' : 'console';
    const what = `${p.driver} ${p.id ?? p.name ?? `on ${p.bus}`}`;
    const where = { token: p.id ?? p.name ?? p.bus };
    const leaveOut = (why: string): void => {
      notes.push(note('NotExpressed', `${what} is left out: ${why}`, where));
    };
    const controller = deviceIndexForBus(t.devices, p.bus);
    if (controller < 0) return leaveOut(`its bus '${p.bus}' belongs to no device`);
    if (p.chardev === undefined)
      return leaveOut('it has no chardev, and every libvirt channel has a host side');
    const c = chardevs.get(p.chardev);
    if (c === undefined) return leaveOut(`its chardev '${p.chardev}' does not exist`);
    const lost = (message: string): void => {
      notes.push(note('NotExpressed', `${what} (chardev '${c.id}'): ${message}`, where));
    };
    const source = chardevToSource(c, lost);
    if ('skip' in source) return leaveOut(source.skip);

    usedByPorts.set(c.id, (usedByPorts.get(c.id) ?? 0) + 1);
    const list = kind === 'channel' ? channels : consoles;
    const defaultId = `${kind}${list.length}`;
    const id = p.id ?? defaultId;
    const children = [...source.children];
    children.push(
      element('target', { type: 'virtio', name: kind === 'channel' ? p.name : undefined }),
    );
    if (kind === 'console' && p.name !== undefined)
      lost(`name '${p.name}' is not expressed: libvirt consoles have none`);
    if (p.id === undefined) lost(`it has no id; libvirt names it ${defaultId}`);
    else if (p.id !== defaultId) children.push(element('alias', { name: p.id }));
    if (c.id !== `char${id}`) lost(`libvirt names the chardev 'char${id}'`);
    let nr = p.nr;
    if (kind === 'channel' && nr === 0) {
      // D3: QEMU refuses it anyway; libvirt would read port='0' as "assign one".
      lost(
        "nr=0 is not written: libvirt reads port='0' on a channel as unassigned (and QEMU keeps 0 for a virtconsole)",
      );
      nr = undefined;
    }
    if (controller !== 0 || nr !== undefined) {
      children.push(
        element('address', {
          type: 'virtio-serial',
          controller: String(controller),
          bus: '0',
          port: nr === undefined ? undefined : String(nr),
        }),
      );
    }
    list.push(element(kind, { type: source.type }, children));
  };

  for (const p of t.ports) if (p.driver === 'virtserialport') writePort(p);
  for (const p of t.ports) if (p.driver === 'virtconsole') writePort(p);

  for (const [id, n] of usedByPorts) {
    if (n <= 1) continue;
    const stdio =
      chardevs.get(id)?.backend.kind === 'stdio'
        ? ' (QEMU refuses more than one stdio chardev)'
        : '';
    notes.push(
      note(
        'NotExpressed',
        `chardev '${id}' is shared by ${n} ports; each gets its own copy${stdio}`,
        { token: id },
      ),
    );
  }
  for (const c of t.chardevs) {
    if (usedByPorts.has(c.id)) continue;
    const users = t.monitors.filter((m) => m.chardev === c.id).length;
    const why = users > 0 ? 'it serves a monitor, and libvirt runs its own' : 'no port uses it';
    notes.push(note('NotExpressed', `chardev '${c.id}' is left out: ${why}`, { token: c.id }));
  }
  for (const m of t.monitors) {
    notes.push(
      note(
        'NotExpressed',
        `the ${m.mode === 'control' ? 'QMP' : 'HMP'} monitor on '${m.chardev}' is left out: libvirt owns the monitor`,
        { token: m.chardev },
      ),
    );
  }
  for (const o of t.ignored) {
    const written = [o.option, o.arg].filter((s) => s !== undefined && s !== '').join(' ');
    notes.push(
      note('NotExpressed', `'${written}' is outside the virtio-serial devices and is left out`, {
        option: o.option,
      }),
    );
  }

  const xml = serializeXml(element('devices', {}, [...controllers, ...channels, ...consoles]));
  return { xml, notes };
}
