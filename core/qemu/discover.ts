/**
 * Reading the virtio-serial topology of a running QEMU over QMP.
 *
 *   devices   x-query-virtio (QEMU 7.0+) lists every virtio backend with
 *             its QOM path; without it (older QEMU), the children of
 *             /machine/peripheral and /machine/peripheral-anon typed
 *             virtio-serial-* stand in. For each: qom-list of the backend
 *             finds its bus (child<virtio-serial-bus>), qom-get max_ports,
 *             and x-query-virtio-status tells features and queue count.
 *   ports     the bus's children (link<virtserialport>, link<virtconsole>),
 *             each resolved by qom-get to the port's QOM path
 *             (/machine/peripheral/ID, or /machine/peripheral-anon/device[N]
 *             for a port without id); qom-get nr, name, chardev.
 *   chardevs  query-chardev: frontend-open is the guest side of a port,
 *             the `disconnected:` filename prefix the host side.
 *
 * Commands are pipelined (the QMP client matches replies by id); the whole
 * read is a few dozen small commands. Nothing here changes the machine.
 */
import { isQmpError, type QmpError } from './qmp-error.js';
import type { QmpClient } from './qmp-client.js';
import { parseChardevFilename, type ChardevInfo, type VirtioStatus } from './qmp-types.js';
import {
  portKey,
  portLabelOf,
  portQueues,
  socketSpecOf,
  type AttachedChardev,
  type AttachedDevice,
  type AttachedPort,
  type AttachedTopology,
  type PortKind,
} from './attach-model.js';

const SERIAL_DEVICE_TYPES =
  /^child<virtio-serial-(pci|pci-transitional|pci-non-transitional|ccw|device)>$/;

/** Read devices, ports and chardevs. */
export async function discoverTopology(qmp: QmpClient): Promise<AttachedTopology | QmpError> {
  const [backends, chardevList] = await Promise.all([findBackends(qmp), qmp.queryChardev()]);
  if (isQmpError(backends)) return backends;
  if (isQmpError(chardevList)) return chardevList;

  const devices: AttachedDevice[] = [];
  const ports: AttachedPort[] = [];
  const read = await Promise.all(backends.map((path) => readDevice(qmp, path)));
  for (const r of read) {
    if (isQmpError(r)) return r;
    if (!r) continue;
    devices.push(r.device);
    ports.push(...r.ports);
  }
  const chardevs = chardevsOf(chardevList, ports);
  applyChardevState(ports, chardevList);
  ports.sort((a, b) => (a.device === b.device ? a.nr - b.nr : a.device < b.device ? -1 : 1));
  const v = qmp.greeting.version;
  return {
    qmp: qmp.addressText,
    qemu: { version: `${v.major}.${v.minor}.${v.micro}`, package: qmp.greeting.package },
    devices,
    ports,
    chardevs,
    time: Date.now(),
  };
}

/** Chardev snapshots from query-chardev, with the port using each. */
export function chardevsOf(
  list: readonly ChardevInfo[],
  ports: readonly AttachedPort[],
): AttachedChardev[] {
  return list
    .map((c) => {
      const parsed = parseChardevFilename(c.filename);
      const socket = socketSpecOf(c.filename) ?? null;
      const user = ports.find((p) => p.chardev === c.label);
      return {
        id: c.label,
        kind: parsed.kind,
        filename: c.filename,
        socket,
        path: socket?.transport === 'unix' && socket.server ? socket.path : null,
        connected: parsed.connected ?? null,
        frontendOpen: c['frontend-open'],
        usedBy: user ? { device: user.device, nr: user.nr } : null,
      };
    })
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Set each port's guestOpen/hostConnected from query-chardev. */
export function applyChardevState(ports: AttachedPort[], list: readonly ChardevInfo[]): void {
  const byLabel = new Map(list.map((c) => [c.label, c]));
  for (const p of ports) {
    const c = p.chardev === null ? undefined : byLabel.get(p.chardev);
    p.guestOpen = c ? c['frontend-open'] : null;
    p.hostConnected = c ? (parseChardevFilename(c.filename).connected ?? null) : null;
  }
}

async function findBackends(qmp: QmpClient): Promise<string[] | QmpError> {
  const virtio = await qmp.xQueryVirtio();
  if (!isQmpError(virtio))
    return virtio.filter((d) => d.name === 'virtio-serial').map((d) => d.path);
  if (virtio.errorClass !== 'CommandNotFound') return virtio;
  // QEMU before 7.0: look for the devices among the peripherals.
  const found: string[] = [];
  for (const root of ['/machine/peripheral', '/machine/peripheral-anon']) {
    const children = await qmp.qomList(root);
    if (isQmpError(children)) return children;
    for (const c of children) {
      if (!SERIAL_DEVICE_TYPES.test(c.type)) continue;
      found.push(
        c.type === 'child<virtio-serial-device>'
          ? `${root}/${c.name}`
          : `${root}/${c.name}/virtio-backend`,
      );
    }
  }
  return found;
}

async function readDevice(
  qmp: QmpClient,
  path: string,
): Promise<{ device: AttachedDevice; ports: AttachedPort[] } | QmpError | undefined> {
  const [props, maxPorts, status] = await Promise.all([
    qmp.qomList(path),
    qmp.qomGet(path, 'max_ports'),
    qmp.xQueryVirtioStatus(path),
  ]);
  if (isQmpError(props)) {
    // The device went away between the two queries.
    return props.errorClass === 'DeviceNotFound' ? undefined : props;
  }
  const busProp = props.find((p) => p.type === 'child<virtio-serial-bus>');
  if (!busProp) return undefined;
  const bus = busProp.name;
  const busPath = `${path}/${bus}`;
  const id = /^\/machine\/peripheral\/([^/]+)\/virtio-backend$/.exec(path)?.[1] ?? null;
  const name = id ?? bus;
  const st: VirtioStatus | undefined = isQmpError(status) ? undefined : status;
  const has = (list: string[] | undefined, feature: string): boolean | null =>
    list === undefined ? null : list.some((f) => f.startsWith(`${feature}:`) || f === feature);
  const device: AttachedDevice = {
    name,
    id,
    bus,
    path,
    busPath,
    maxPorts: typeof maxPorts === 'number' ? maxPorts : null,
    queues: st ? st['num-vqs'] : null,
    status: st ? st.status.statuses.map((s) => s.split(':')[0]!.trim()) : [],
    multiport: has(st?.['guest-features']['dev-features'], 'VIRTIO_CONSOLE_F_MULTIPORT'),
    eventIdx: has(st?.['guest-features'].transports, 'VIRTIO_RING_F_EVENT_IDX'),
    packed: has(st?.['guest-features'].transports, 'VIRTIO_F_RING_PACKED'),
  };

  const children = await qmp.qomList(busPath);
  if (isQmpError(children)) return children;
  const links = children.filter((c) => /^child\[\d+\]$/.test(c.name) && c.type.startsWith('link<'));
  const ports = await Promise.all(links.map((l) => readPort(qmp, device, busPath, l.name, l.type)));
  const ok: AttachedPort[] = [];
  for (const p of ports) {
    if (isQmpError(p)) return p;
    if (p) ok.push(p);
  }
  return { device, ports: ok };
}

async function readPort(
  qmp: QmpClient,
  device: AttachedDevice,
  busPath: string,
  child: string,
  type: string,
): Promise<AttachedPort | QmpError | undefined> {
  const target = await qmp.qomGet(busPath, child);
  if (isQmpError(target)) return gone(target);
  if (typeof target !== 'string' || target === '') return undefined;
  const [nr, name, chardev] = await Promise.all([
    qmp.qomGet(target, 'nr'),
    qmp.qomGet(target, 'name'),
    qmp.qomGet(target, 'chardev'),
  ]);
  if (isQmpError(nr)) return gone(nr);
  if (typeof nr !== 'number') return undefined;
  const driver = /^link<(.*)>$/.exec(type)?.[1] ?? '';
  const kind: PortKind = driver === 'virtconsole' ? 'virtconsole' : 'virtserialport';
  const id = /^\/machine\/peripheral\/([^/]+)$/.exec(target)?.[1] ?? null;
  const portName = typeof name === 'string' && name !== '' ? name : null;
  return {
    key: portKey(device.name, nr),
    device: device.name,
    nr,
    kind,
    id,
    name: portName,
    label: portLabelOf({ name: portName, id, nr }),
    path: target,
    chardev: typeof chardev === 'string' && chardev !== '' ? chardev : null,
    guestOpen: null,
    hostConnected: null,
    queues: portQueues(nr),
  };
}

/** A port unplugged while we read it is simply not there. */
function gone(err: QmpError): QmpError | undefined {
  return err.errorClass === 'DeviceNotFound' || err.errorClass === 'GenericError' ? undefined : err;
}
