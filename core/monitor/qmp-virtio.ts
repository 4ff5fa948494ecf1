/**
 * QEMU 7.2's virtio introspection commands (hw/virtio/virtio.c qmp_x_query_*),
 * answered from the live device and its rings, in QEMU's JSON shapes (see
 * test/fixtures/qemu-7.2-samples/status.json and qstatus.jsonl).
 *
 * Where the lab has no such state, it says what it can:
 * - isr: reading the lab's ISR clears it, so 0 is reported;
 * - queue-sel: the highest queue the driver enabled (QEMU: the last one it
 *   selected, which for Linux is the same after probe);
 * - shadow-avail-idx: avail->idx as it is in guest memory now (QEMU: as the
 *   device last read it);
 * - features: what the lab's device offers. QEMU 7.2 also offers
 *   VIRTIO_F_RING_RESET (bit 40) and the legacy-detection bit 30, which show
 *   as unknown-dev-features there and are absent here.
 * Feature and status lists are in QEMU's order: its maps walked, each hit
 * prepended (so the last entry of a map comes first).
 */
import type { RunningMachine } from '../machine/running.js';
import type { VirtioSerialDevice } from '../serial/device.js';
import { QemuError } from '../base/qemu-error.js';
import { Feature, FEATURE_DESCRIPTIONS, bit } from '../virtio/features.js';
import { isFault } from '../virtio/fault.js';
import type { QueueSnapshot } from '../virtio/queue.js';
import { statusDescriptions } from '../virtio/status.js';
import { findVirtioDevice, labDevices, virtioPath } from './machine-view.js';
import type { QObject } from './qobject.js';

/** virtio_transport_map, in QEMU's order. */
const TRANSPORT_MAP = [
  Feature.NOTIFY_ON_EMPTY,
  Feature.ANY_LAYOUT,
  Feature.VERSION_1,
  Feature.ACCESS_PLATFORM,
  Feature.RING_PACKED,
  Feature.IN_ORDER,
  Feature.RING_INDIRECT_DESC,
  Feature.RING_EVENT_IDX,
];
/** virtio_serial_feature_map. */
const CONSOLE_MAP = [
  Feature.CONSOLE_F_SIZE,
  Feature.CONSOLE_F_MULTIPORT,
  Feature.CONSOLE_F_EMERG_WRITE,
];

/** VIRTIO_PCI_VRING_ALIGN: what QEMU reports for every modern queue. */
const VRING_ALIGN = 4096;
/** VIRTIO_QUEUE_MAX. */
const QUEUE_MAX = 1024;

/** qmp_decode_features: known bits by name (last first), the rest as a number. */
function decodeFeatures(bitmap: bigint): QObject {
  let left = bitmap;
  const take = (map: readonly number[]): string[] => {
    const names: string[] = [];
    for (const b of map) {
      if ((left & bit(b)) === 0n) continue;
      names.unshift(FEATURE_DESCRIPTIONS[b]!);
      left ^= bit(b);
    }
    return names;
  };
  const transports = take(TRANSPORT_MAP);
  const devFeatures = take(CONSOLE_MAP);
  return {
    transports,
    'dev-features': devFeatures,
    'unknown-dev-features': left !== 0n ? qnum(left) : undefined,
  };
}

function qnum(n: bigint): number | bigint {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

function notFound(path: string, element = false): QemuError {
  return new QemuError(`Path ${path} is not a ${element ? 'VirtIO device' : 'VirtIODevice'}`);
}

export function queryVirtio(machine: RunningMachine): QObject {
  return labDevices(machine).map((d) => ({ path: virtioPath(machine, d), name: 'virtio-serial' }));
}

/** Queues QEMU creates at realize: two per port, plus the control pair. */
function queueCount(device: VirtioSerialDevice): number {
  return 2 * device.maxPorts + 2;
}

export function queryVirtioStatus(machine: RunningMachine, path: string): QObject | QemuError {
  const device = findVirtioDevice(machine, path);
  if (device === undefined) return notFound(path);
  let queueSel = 0;
  for (let q = 0; q < queueCount(device); q++) if (device.queueReady(q)) queueSel = q;
  const status = device.readStatus();
  return {
    name: 'virtio-serial',
    'device-id': device.deviceId,
    'vhost-started': false,
    'device-endian': 'little',
    'guest-features': decodeFeatures(device.negotiatedFeatures),
    'host-features': decodeFeatures(device.hostFeatures),
    'backend-features': decodeFeatures(0n),
    'num-vqs': queueCount(device),
    status: { statuses: statusDescriptions(status) },
    isr: 0,
    'queue-sel': queueSel,
    'vm-running': true,
    broken: device.fault !== null,
    disabled: false,
    'use-started': true,
    started: device.driverOk,
    'start-on-kick': false,
    'disable-legacy-check': false,
    'bus-name': device.bus,
    'use-guest-notifier-mask': true,
  };
}

function checkQueue(device: VirtioSerialDevice, queue: number): QemuError | null {
  if (queue >= QUEUE_MAX || queue >= queueCount(device)) {
    return new QemuError(`Invalid virtqueue number ${queue}`);
  }
  return null;
}

function queueSize(device: VirtioSerialDevice, queue: number): number {
  return (
    device.queueMaxSize(queue) ||
    (queue === 2 || queue === 3 ? device.controlQueueSize : device.dataQueueSize)
  );
}

export function queryVirtioQueueStatus(
  machine: RunningMachine,
  path: string,
  queue: number,
): QObject | QemuError {
  const device = findVirtioDevice(machine, path);
  if (device === undefined) return notFound(path);
  const bad = checkQueue(device, queue);
  if (bad !== null) return bad;
  const max = queueSize(device, queue);
  const snap: QueueSnapshot | null = device.queueSnapshot(queue);
  const status = device.queueStatus(queue);
  const layout = snap?.layout;
  const availIdx = snap?.format === 'split' ? snap.avail.idx : (status?.lastAvailIdx ?? 0);
  return {
    name: 'virtio-serial',
    'queue-index': queue,
    inuse: snap?.device?.inFlight.length ?? 0,
    'vring-num': snap?.size ?? max,
    'vring-num-default': max,
    'vring-align': VRING_ALIGN,
    'vring-desc': layout?.descAddr ?? 0,
    'vring-avail': layout?.driverAddr ?? 0,
    'vring-used': layout?.deviceAddr ?? 0,
    'last-avail-idx': status?.lastAvailIdx ?? 0,
    'shadow-avail-idx': availIdx,
    'used-idx': status?.usedIdx ?? 0,
    'signalled-used': status?.signalledUsed ?? 0,
    'signalled-used-valid': status?.signalledUsed !== null && status?.signalledUsed !== undefined,
  };
}

/** qmp_decode_vring_desc_flags: names, each hit prepended. */
function descFlags(flags: number): string[] {
  const names: string[] = [];
  const map: [number, string][] = [
    [1, 'next'],
    [2, 'write'],
    [4, 'indirect'],
    [1 << 7, 'avail'],
    [1 << 15, 'used'],
  ];
  for (const [f, name] of map) if (flags & f) names.unshift(name);
  return names;
}

/**
 * x-query-virtio-queue-element: the chain at avail ring slot `index`
 * (default: the next one the device would take), read from guest memory
 * like QEMU does, descriptors listed last first as QEMU's list building
 * leaves them.
 */
export function queryVirtioQueueElement(
  machine: RunningMachine,
  path: string,
  queue: number,
  index: number | undefined,
): QObject | QemuError {
  const device = findVirtioDevice(machine, path);
  if (device === undefined) return notFound(path, true);
  const bad = checkQueue(device, queue);
  if (bad !== null) return bad;
  const snap = device.queueSnapshot(queue);
  if (snap === null) return new QemuError('Region caches not initialized');
  if (snap.format !== 'split') return new QemuError('Packed ring not supported');
  const memory = machine.lab.memory;
  const { descAddr, driverAddr, deviceAddr } = snap.layout;
  const num = snap.size;
  const read16 = (addr: number): number => {
    const v = memory.read16(addr);
    return isFault(v) ? 0 : v;
  };
  const slot = (index ?? snap.device?.lastAvailIdx ?? 0) % num;
  const head = read16(driverAddr + 4 + 2 * slot);
  const readDesc = (
    table: number,
    i: number,
  ): { addr: number; len: number; flags: number; next: number } | null => {
    const at = table + 16 * i;
    const addr = memory.read64(at);
    const len = memory.read32(at + 8);
    const flags = memory.read16(at + 12);
    const next = memory.read16(at + 14);
    if (isFault(addr) || isFault(len) || isFault(flags) || isFault(next)) return null;
    return { addr, len, flags, next };
  };
  let table = descAddr;
  let max = num;
  let desc = readDesc(table, head);
  if (desc === null) return new QemuError('Cannot map descriptor ring');
  if (desc.flags & 4) {
    table = desc.addr;
    max = Math.floor(desc.len / 16);
    desc = readDesc(table, 0);
    if (desc === null) return new QemuError('Cannot map indirect buffer');
  }
  const descs: QObject[] = [];
  // "A buggy driver may produce an infinite loop": at most `max` descriptors.
  for (let n = 0; desc !== null && n < max; n++) {
    descs.unshift({ addr: desc.addr, len: desc.len, flags: descFlags(desc.flags) });
    if (!(desc.flags & 1) || desc.next >= max) break;
    desc = readDesc(table, desc.next);
  }
  return {
    name: 'virtio-serial',
    index: head,
    descs,
    avail: { flags: read16(driverAddr), idx: read16(driverAddr + 2), ring: head },
    used: { flags: read16(deviceAddr), idx: read16(deviceAddr + 2) },
  };
}
