/**
 * The split ring's layout, shared by both sides (split-queue.ts, the device;
 * split-driver.ts, the driver): allocation the way a guest kernel lays it
 * out (S1), the range checks (S1, M8) and the snapshot reader.
 *
 * A leaf: it imports neither side, so neither side imports the other.
 *
 * Layout (little endian):
 *   desc[i]  @ desc + 16i:        addr u64, len u32, flags u16, next u16
 *   avail    @ driver area:       flags u16, idx u16, ring[size] u16, used_event u16
 *   used     @ device area:       flags u16, idx u16, ring[size] {id u32, len u32}, avail_event u16
 */
import type { GuestAllocator } from './allocator.js';
import { fault, hex, type VirtioFault } from './fault.js';
import type { GuestMemory } from './memory.js';
import {
  MAX_QUEUE_SIZE,
  descFlagNames,
  splitRingSizes,
  validateLayout,
  type QueueLayout,
  type SplitDescriptorView,
  type SplitQueueSnapshot,
} from './queue.js';

// ------------------------------------------------------------------ layout

/**
 * Lay out a split queue of `size` entries in guest memory the way a guest
 * kernel would: descriptor table aligned 16, available ring 2, used ring 4
 * (S1), every byte zeroed so the rings start empty. Returns the layout or the
 * fault (bad size, memory exhausted); nothing is left allocated on failure.
 */
export function allocSplitQueue(
  memory: GuestMemory,
  allocator: GuestAllocator,
  size: number,
): QueueLayout | VirtioFault {
  const probe: QueueLayout = { format: 'split', size, descAddr: 0, driverAddr: 0, deviceAddr: 0 };
  const bad = validateLayout(probe, -1);
  if (bad) return bad;
  const bytes = splitRingSizes(size);
  const desc = allocator.alloc(bytes.desc, 16);
  if (typeof desc !== 'number') return desc;
  const avail = allocator.alloc(bytes.avail, 2);
  if (typeof avail !== 'number') {
    allocator.release(desc);
    return avail;
  }
  const used = allocator.alloc(bytes.used, 4);
  if (typeof used !== 'number') {
    allocator.release(desc);
    allocator.release(avail);
    return used;
  }
  // Allocator memory may be recycled: stale indices would look like a
  // driver that published buffers before the queue existed.
  memory.fill(desc, bytes.desc, 0);
  memory.fill(avail, bytes.avail, 0);
  memory.fill(used, bytes.used, 0);
  return { format: 'split', size, descAddr: desc, driverAddr: avail, deviceAddr: used };
}

/** Give back the memory of a queue laid out by allocSplitQueue. */
export function releaseSplitQueue(
  allocator: GuestAllocator,
  layout: QueueLayout,
): VirtioFault | null {
  // Release all three even if one fails, and report the first failure.
  const desc = allocator.release(layout.descAddr);
  const avail = allocator.release(layout.driverAddr);
  const used = allocator.release(layout.deviceAddr);
  return desc ?? avail ?? used;
}

/**
 * S1 (size, alignment) and M8 (all three areas, event-idx fields included,
 * inside guest memory): after this every ring access of a queue is in range,
 * only buffer addresses and indirect tables remain to be checked per chain.
 */
export function checkSplitQueue(
  layout: QueueLayout,
  queue: number,
  memory: GuestMemory,
): VirtioFault | null {
  if (layout.format !== 'split') {
    return fault('QueueNotReady', 'S1', `a ${layout.format} layout cannot drive a split queue`, {
      queue,
    });
  }
  const bad = validateLayout(layout, queue);
  if (bad) return bad;
  const bytes = splitRingSizes(layout.size);
  const areas: [number, number, string][] = [
    [layout.descAddr, bytes.desc, 'descriptor table'],
    [layout.driverAddr, bytes.avail, 'available ring'],
    [layout.deviceAddr, bytes.used, 'used ring'],
  ];
  for (const [addr, len, what] of areas) {
    if (memory.check(addr, len) !== null) {
      return fault(
        'GuestMemoryOutOfRange',
        'M8',
        `${what} at ${hex(addr)} (${len} bytes) is not inside guest memory`,
        { queue, address: addr, length: len },
      );
    }
  }
  return null;
}

// --------------------------------------------------------------- snapshot

/**
 * Decode the shared ring memory of a split queue. Each side adds what only
 * it knows (device or driver state). Reads that fail are listed in
 * `unreadable` and the field keeps a zero, so a view of a broken ring still
 * shows everything that can be shown.
 */
export function readSplitRings(
  memory: GuestMemory,
  index: number,
  layout: QueueLayout,
  eventIdx: boolean,
): SplitQueueSnapshot {
  const unreadable: string[] = [];
  const size = Math.min(Math.max(0, layout.size | 0), MAX_QUEUE_SIZE);
  const rd = (bits: 16 | 32, addr: number, what: string): number => {
    const v = bits === 16 ? memory.read16(addr) : memory.read32(addr);
    if (typeof v === 'number') return v;
    unreadable.push(`${what}: ${v.message}`);
    return 0;
  };

  const descriptors: SplitDescriptorView[] = [];
  for (let i = 0; i < size; i++) {
    const base = layout.descAddr + 16 * i;
    // Two 32-bit halves rather than read64: a hostile address above 2^53
    // should still be shown (approximately), not become a read error.
    const lo = memory.read32(base);
    const hi = memory.read32(base + 4);
    const len = memory.read32(base + 8);
    const flags = memory.read16(base + 12);
    const next = memory.read16(base + 14);
    if (
      typeof lo !== 'number' ||
      typeof hi !== 'number' ||
      typeof len !== 'number' ||
      typeof flags !== 'number' ||
      typeof next !== 'number'
    ) {
      // One line for the table, not one per descriptor.
      unreadable.push(`descriptor table from entry ${i} at ${hex(base)} is outside guest memory`);
      break;
    }
    descriptors.push({
      index: i,
      addr: hi * 0x1_0000_0000 + lo,
      len,
      flags,
      flagNames: descFlagNames(flags, false),
      next,
    });
  }

  const a = layout.driverAddr;
  const availRing: number[] = [];
  for (let i = 0; i < size; i++) availRing.push(rd(16, a + 4 + 2 * i, `avail.ring[${i}]`));
  const u = layout.deviceAddr;
  const usedRing: { id: number; len: number }[] = [];
  for (let i = 0; i < size; i++) {
    usedRing.push({
      id: rd(32, u + 4 + 8 * i, `used.ring[${i}].id`),
      len: rd(32, u + 8 + 8 * i, `used.ring[${i}].len`),
    });
  }
  return {
    format: 'split',
    index,
    size: layout.size,
    layout: { ...layout },
    eventIdx,
    descriptors,
    avail: {
      flags: rd(16, a, 'avail.flags'),
      idx: rd(16, a + 2, 'avail.idx'),
      ring: availRing,
      usedEvent: eventIdx ? rd(16, a + 4 + 2 * size, 'used_event') : null,
    },
    used: {
      flags: rd(16, u, 'used.flags'),
      idx: rd(16, u + 2, 'used.idx'),
      ring: usedRing,
      availEvent: eventIdx ? rd(16, u + 4 + 8 * size, 'avail_event') : null,
    },
    device: null,
    driver: null,
    chainsInFlight: [],
    unreadable,
  };
}
