/**
 * The packed ring's layout, shared by both sides (packed-queue.ts, the
 * device; packed-driver.ts, the driver): byte offsets inside a descriptor
 * and an event suppression structure, the AVAIL/USED bit rules (P1), event
 * suppression (P7), layout checks (P8, M8) and the snapshot reader.
 *
 * A leaf: it imports neither side, so neither side imports the other.
 */
import type { GuestAllocator } from './allocator.js';
import { fault, hex, type VirtioFault } from './fault.js';
import type { GuestMemory } from './memory.js';
import {
  MAX_QUEUE_SIZE,
  PACKED_DESC_F_AVAIL,
  PACKED_DESC_F_USED,
  descFlagNames,
  needEvent,
  packedRingSizes,
  validateLayout,
  type EventSuppressionView,
  type PackedDescriptorView,
  type PackedQueueSnapshot,
  type QueueLayout,
} from './queue.js';

// Byte offsets inside a descriptor and an event suppression structure.
export const DESC_SIZE = 16;
export const DESC_LEN = 8;
export const DESC_ID = 12;
export const DESC_FLAGS = 14;
export const EVENT_OFF_WRAP = 0;
export const EVENT_FLAGS = 2;
/** Bit 15 of off_wrap is the wrap counter the offset belongs to. */
export const EVENT_WRAP_BIT = 0x8000;
export const AVAIL_USED = PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED;
export const MAX_U32 = 0xffffffff;

/** The AVAIL/USED bits a driver with this wrap counter writes to make a descriptor available (P1). */
export function availBits(wrap: boolean): number {
  return wrap ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED;
}

/** The AVAIL/USED bits a device with this wrap counter writes to mark a descriptor used (P1). */
export function usedBits(wrap: boolean): number {
  return wrap ? AVAIL_USED : 0;
}

/** "AVAIL=1 USED=0", for trace lines. */
export function availUsedText(flags: number): string {
  return `AVAIL=${flags & PACKED_DESC_F_AVAIL ? 1 : 0} USED=${flags & PACKED_DESC_F_USED ? 1 : 0}`;
}

const EVENT_NAMES = ['ENABLE', 'DISABLE', 'DESC', 'RESERVED'] as const;

export function eventFlagName(flags: number): EventSuppressionView['flagName'] {
  return EVENT_NAMES[flags & 3]!;
}

/**
 * Does a DESC event suppression entry fire for an index that moved from
 * `newIdx - moved` to `newIdx` (P7)? The structure names a ring offset and
 * the wrap counter of the lap it belongs to; an offset from the previous lap
 * is moved one ring size back so that vring_need_event's 16-bit window
 * arithmetic applies across the wrap, as Linux and QEMU do.
 */
export function packedNeedEvent(
  offWrap: number,
  size: number,
  currentWrap: boolean,
  newIdx: number,
  moved: number,
): boolean {
  if (moved >= size) return true; // every slot was passed
  let off = offWrap & ~EVENT_WRAP_BIT;
  if (((offWrap & EVENT_WRAP_BIT) !== 0) !== currentWrap) off -= size;
  return needEvent(off, newIdx, newIdx - moved);
}

/**
 * Check a packed layout before a queue uses it: P8 (size, alignment) and M8
 * (descriptor ring and both event suppression structures inside guest memory).
 */
export function checkPackedLayout(
  layout: QueueLayout,
  queue: number,
  memory: GuestMemory,
): VirtioFault | null {
  if (layout.format !== 'packed') {
    return fault('QueueNotReady', 'P8', `layout format '${layout.format}' is not packed`, {
      queue,
    });
  }
  const bad = validateLayout(layout, queue);
  if (bad !== null) return bad;
  const sizes = packedRingSizes(layout.size);
  const parts: [number, number, string][] = [
    [layout.descAddr, sizes.desc, 'descriptor ring'],
    [layout.driverAddr, sizes.driver, 'driver event suppression'],
    [layout.deviceAddr, sizes.device, 'device event suppression'],
  ];
  for (const [addr, len, what] of parts) {
    if (memory.check(addr, len) !== null) {
      return fault(
        'GuestMemoryOutOfRange',
        'M8',
        `${what} at ${hex(addr)} (${len} bytes) is outside guest memory`,
        { queue, address: addr, length: len },
      );
    }
  }
  return null;
}

/**
 * Lay out a packed queue in guest memory, the way a guest driver allocates
 * it: one zeroed block (the spec wants the descriptor ring zero-initialized)
 * holding the descriptor ring (align 16), then the driver and device event
 * suppression structures (align 4). Free it with allocator.release(descAddr).
 */
export function layoutPackedQueue(
  memory: GuestMemory,
  allocator: GuestAllocator,
  size: number,
): QueueLayout | VirtioFault {
  if (!Number.isInteger(size) || size < 1 || size > MAX_QUEUE_SIZE) {
    return fault('InvalidQueueSize', 'P8', `queue size ${size} is not in 1..32768`, {
      length: size,
    });
  }
  const sizes = packedRingSizes(size);
  const bytes = sizes.desc + sizes.driver + sizes.device;
  const base = allocator.alloc(bytes, DESC_SIZE);
  if (typeof base !== 'number') return base;
  const zeroed = memory.fill(base, bytes, 0);
  if (zeroed !== null) return zeroed;
  return {
    format: 'packed',
    size,
    descAddr: base,
    driverAddr: base + sizes.desc,
    deviceAddr: base + sizes.desc + sizes.driver,
  };
}

const ZERO_EVENT: EventSuppressionView = { flags: 0, flagName: 'ENABLE', offset: 0, wrap: false };

/** Decode one event suppression structure for a snapshot; read errors go to `unreadable`. */
export function readEventView(
  memory: GuestMemory,
  addr: number,
  what: string,
  unreadable: string[],
): EventSuppressionView {
  const offWrap = memory.read16(addr + EVENT_OFF_WRAP);
  const flags = memory.read16(addr + EVENT_FLAGS);
  if (typeof offWrap !== 'number' || typeof flags !== 'number') {
    unreadable.push(`${what} at ${hex(addr)} is outside guest memory`);
    return { ...ZERO_EVENT };
  }
  return {
    flags,
    flagName: eventFlagName(flags),
    offset: offWrap & ~EVENT_WRAP_BIT,
    wrap: (offWrap & EVENT_WRAP_BIT) !== 0,
  };
}

/** Every descriptor of the ring, decoded; stops at the first read error. */
export function readDescriptorViews(
  memory: GuestMemory,
  layout: QueueLayout,
  unreadable: string[],
): PackedDescriptorView[] {
  const out: PackedDescriptorView[] = [];
  for (let i = 0; i < layout.size; i++) {
    const base = layout.descAddr + i * DESC_SIZE;
    const flags = memory.read16(base + DESC_FLAGS);
    // Two halves rather than read64: a garbage address above 2^53 is still
    // something to show (approximately), not a reason to stop the view.
    const lo = memory.read32(base);
    const hi = memory.read32(base + 4);
    const len = memory.read32(base + DESC_LEN);
    const id = memory.read16(base + DESC_ID);
    if (
      typeof flags !== 'number' ||
      typeof lo !== 'number' ||
      typeof hi !== 'number' ||
      typeof len !== 'number' ||
      typeof id !== 'number'
    ) {
      unreadable.push(`descriptor ${i} at ${hex(base)} could not be read`);
      break;
    }
    out.push({
      index: i,
      addr: hi * 0x1_0000_0000 + lo,
      len,
      id,
      flags,
      flagNames: descFlagNames(flags, true),
      avail: (flags & PACKED_DESC_F_AVAIL) !== 0,
      used: (flags & PACKED_DESC_F_USED) !== 0,
    });
  }
  return out;
}

/**
 * What both sides show of a packed ring, read from guest memory: every
 * descriptor and both event suppression structures (read errors go to
 * `unreadable`, one line each). The device and the driver fill in their
 * own part (`device` or `driver`, and `chainsInFlight` with
 * {@link addChainsInFlight}).
 */
export function readPackedRings(
  memory: GuestMemory,
  index: number,
  layout: QueueLayout,
  eventIdx: boolean,
): PackedQueueSnapshot {
  const unreadable: string[] = [];
  return {
    format: 'packed',
    index,
    size: layout.size,
    layout: { ...layout },
    eventIdx,
    descriptors: readDescriptorViews(memory, layout, unreadable),
    driverEvent: readEventView(memory, layout.driverAddr, 'driver event suppression', unreadable),
    deviceEvent: readEventView(memory, layout.deviceAddr, 'device event suppression', unreadable),
    device: null,
    driver: null,
    chainsInFlight: [],
    unreadable,
  };
}

/**
 * Add one entry to `snap.chainsInFlight` per buffer id with slots in use
 * (`slots[id]` ring slots from `heads[id]`); returns those ids in order.
 */
export function addChainsInFlight(
  snap: PackedQueueSnapshot,
  heads: Uint16Array,
  slots: Uint16Array,
): number[] {
  const ids: number[] = [];
  for (let id = 0; id < slots.length; id++) {
    const count = slots[id]!;
    if (count === 0) continue;
    const head = heads[id]!;
    ids.push(id);
    snap.chainsInFlight.push({ id, head, descriptors: slotsFrom(head, count, slots.length) });
  }
  return ids;
}

/** Ring slots a buffer occupies, starting at its head. */
export function slotsFrom(head: number, count: number, size: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push((head + i) % size);
  return out;
}
