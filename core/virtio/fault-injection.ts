/**
 * Faults on purpose, for teaching: a malformed chain written into the
 * guest's own ring memory the way a buggy driver would, then published, so
 * the device side finds it on its next pop and enforces the rule it breaks
 * (docs/CONFORMANCE.md, M2-M8; the checks are in split-queue.ts,
 * packed-queue.ts and chain.ts). It lives here, next to those rules, because
 * it writes raw descriptors in both ring formats; the API only picks the
 * device and queue and kicks it (core/api/server/vring-service.ts).
 *
 * Only descriptors nobody references are written (split), or the slots the
 * device reads next (packed), so the injected chain is the next thing the
 * device walks and nothing the guest still owns is overwritten.
 */
import { VmchanError } from '../base/error.js';
import { hex, type VirtioFault } from './fault.js';
import type { GuestMemory } from './memory.js';
import {
  PACKED_DESC_F_AVAIL,
  PACKED_DESC_F_INDIRECT,
  PACKED_DESC_F_NEXT,
  PACKED_DESC_F_USED,
  PACKED_DESC_F_WRITE,
  SPLIT_DESC_F_INDIRECT,
  SPLIT_DESC_F_NEXT,
  SPLIT_DESC_F_WRITE,
  type PackedQueueSnapshot,
  type QueueSnapshot,
  type SplitQueueSnapshot,
} from './queue.js';

/** The rules a chain can be written to break, each with what is written. */
export const INJECTABLE_RULES = {
  M2: 'next index out of range (packed: buffer id out of range)',
  M3: 'a chain that loops back on itself (split only)',
  M4: 'an indirect table whose length is not a multiple of 16',
  M5: 'a readable descriptor after a writable one',
  M8: 'a buffer address outside guest memory',
} as const;
export type InjectableRule = keyof typeof INJECTABLE_RULES;
export const INJECTABLE_RULE_IDS = Object.keys(INJECTABLE_RULES) as [
  InjectableRule,
  ...InjectableRule[],
];

/** What was written: the words for the step log, and the descriptors or slots. */
export interface InjectedChain {
  /** Which descriptors were written, how, and where the chain was published. */
  readonly text: string;
  /** Descriptor indices (split) or ring slots (packed) written. */
  readonly descriptors: number[];
}

export type InjectionRefusedKind = 'NoFreeDescriptor' | 'NoLoopInPackedRing' | 'NoDeviceSide';

/** The chain cannot be written into this queue; the message says why and what to pick instead. */
export class InjectionRefused extends VmchanError<InjectionRefusedKind> {
  readonly domain = 'virtio';
}

/**
 * Write a chain breaking `rule` into the queue `snap` describes and make it
 * available to the device (split: the head in the next avail slot, then
 * avail.idx + 1; packed: the AVAIL/USED bits of the wrap counter, flags
 * written last). The caller kicks the queue. A `VirtioFault` is guest memory
 * refusing a write (the ring is not where the snapshot says).
 */
export function injectChain(
  memory: GuestMemory,
  snap: QueueSnapshot,
  rule: InjectableRule,
): InjectedChain | InjectionRefused | VirtioFault {
  return snap.format === 'split'
    ? injectSplit(memory, snap, rule)
    : injectPacked(memory, snap, rule);
}

interface SplitDesc {
  addr: number;
  len: number;
  flags: number;
  next: number;
}

/** Split descriptor: le64 addr, le32 len, le16 flags, le16 next. */
function writeSplitDesc(memory: GuestMemory, at: number, d: SplitDesc): VirtioFault | null {
  return (
    memory.write64(at, d.addr) ??
    memory.write32(at + 8, d.len) ??
    memory.write16(at + 12, d.flags) ??
    memory.write16(at + 14, d.next)
  );
}

/** Descriptors of a split table nobody references: in no avail or used slot's chain, not in flight. */
function freeSplitDescriptors(s: SplitQueueSnapshot, want: number): number[] {
  const size = s.size;
  const busy = new Set<number>();
  const walk = (head: number): void => {
    let i = head;
    for (let n = 0; n < size && i < size && !busy.has(i); n++) {
      busy.add(i);
      const desc = s.descriptors[i];
      if (desc === undefined || !(desc.flags & SPLIT_DESC_F_NEXT)) break;
      i = desc.next;
    }
  };
  for (const h of s.avail.ring) walk(h);
  for (const u of s.used.ring) walk(u.id);
  for (const c of s.chainsInFlight) for (const i of c.descriptors) busy.add(i);
  const free: number[] = [];
  for (let i = size - 1; i >= 0 && free.length < want; i--) if (!busy.has(i)) free.push(i);
  return free;
}

function injectSplit(
  memory: GuestMemory,
  s: SplitQueueSnapshot,
  rule: InjectableRule,
): InjectedChain | InjectionRefused | VirtioFault {
  const size = s.size;
  const need = rule === 'M3' || rule === 'M5' ? 2 : 1;
  const free = freeSplitDescriptors(s, 2);
  if (free.length < need) {
    return new InjectionRefused(
      'NoFreeDescriptor',
      `every descriptor of queue ${s.index} is in use (a receive queue keeps all of them posted): inject into a transmit queue`,
    );
  }
  const [a, b] = free as [number, number];
  const valid = s.layout.descAddr; // some readable guest memory
  const desc = (i: number): number => s.layout.descAddr + 16 * i;
  const write = (i: number, d: SplitDesc): VirtioFault | null => writeSplitDesc(memory, desc(i), d);
  let text: string;
  let used: number[];
  let bad: VirtioFault | null;
  switch (rule) {
    case 'M2': {
      const next = size + 5;
      bad = write(a, { addr: valid, len: 16, flags: SPLIT_DESC_F_NEXT, next });
      text = `descriptor ${a}: NEXT to ${next}, outside the table of ${size}`;
      used = [a];
      break;
    }
    case 'M3':
      bad =
        write(a, { addr: valid, len: 16, flags: SPLIT_DESC_F_NEXT, next: b }) ??
        write(b, { addr: valid, len: 16, flags: SPLIT_DESC_F_NEXT, next: a });
      text = `descriptors ${a} and ${b} chain to each other: a loop`;
      used = [a, b];
      break;
    case 'M4':
      bad = write(a, { addr: valid, len: 20, flags: SPLIT_DESC_F_INDIRECT, next: 0 });
      text = `descriptor ${a}: INDIRECT with a table of 20 bytes, not a multiple of 16`;
      used = [a];
      break;
    case 'M5':
      bad =
        write(a, {
          addr: valid,
          len: 16,
          flags: SPLIT_DESC_F_WRITE | SPLIT_DESC_F_NEXT,
          next: b,
        }) ?? write(b, { addr: valid, len: 16, flags: 0, next: 0 });
      text = `descriptor ${a} is WRITE and chains to ${b}, which is readable: readable after writable`;
      used = [a, b];
      break;
    case 'M8': {
      const addr = outsideMemory(memory);
      bad = write(a, { addr, len: 64, flags: 0, next: 0 });
      text = `descriptor ${a}: a 64-byte buffer at ${hex(addr)}, outside guest memory`;
      used = [a];
      break;
    }
  }
  if (bad !== null) return bad;
  // Publish as a driver does: the head into the next avail slot, then avail.idx + 1.
  const idxAddr = s.layout.driverAddr + 2;
  const idx = memory.read16(idxAddr);
  if (typeof idx !== 'number') return idx;
  const slot = idx % size;
  const published =
    memory.write16(s.layout.driverAddr + 4 + 2 * slot, a) ??
    memory.write16(idxAddr, (idx + 1) & 0xffff);
  if (published !== null) return published;
  return {
    text: `${text}; head ${a} published in avail slot ${slot}, avail.idx ${idx} -> ${(idx + 1) & 0xffff}, queue ${s.index} kicked`,
    descriptors: used,
  };
}

function injectPacked(
  memory: GuestMemory,
  s: PackedQueueSnapshot,
  rule: InjectableRule,
): InjectedChain | InjectionRefused | VirtioFault {
  if (rule === 'M3') {
    return new InjectionRefused(
      'NoLoopInPackedRing',
      'a packed ring has no next index, so a loop cannot be written into it (M3 is about split rings and indirect tables): pick another fault',
    );
  }
  if (s.device === null)
    return new InjectionRefused('NoDeviceSide', `queue ${s.index} has no device side`);
  const size = s.size;
  const slot0 = s.device.nextAvail;
  const wrap0 = s.device.availWrap;
  const slot1 = (slot0 + 1) % size;
  const wrap1 = slot1 === 0 ? !wrap0 : wrap0;
  // Available to the device: AVAIL equal to the wrap counter, USED not (P3).
  const availBits = (wrap: boolean): number => (wrap ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED);
  const valid = s.layout.descAddr;
  const at = (slot: number): number => s.layout.descAddr + 16 * slot;
  // Packed descriptor: le64 addr, le32 len, le16 id, le16 flags (flags last: the AVAIL flip).
  const write = (
    slot: number,
    d: { addr: number; len: number; id: number; flags: number },
  ): VirtioFault | null =>
    memory.write64(at(slot), d.addr) ??
    memory.write32(at(slot) + 8, d.len) ??
    memory.write16(at(slot) + 12, d.id) ??
    memory.write16(at(slot) + 14, d.flags);
  let bad: VirtioFault | null;
  let text: string;
  let used = [slot0];
  switch (rule) {
    case 'M2':
      bad = write(slot0, { addr: valid, len: 16, id: size + 3, flags: availBits(wrap0) });
      text = `slot ${slot0}: buffer id ${size + 3}, not below the queue size ${size}`;
      break;
    case 'M4':
      bad = write(slot0, {
        addr: valid,
        len: 20,
        id: 0,
        flags: PACKED_DESC_F_INDIRECT | availBits(wrap0),
      });
      text = `slot ${slot0}: INDIRECT with a table of 20 bytes, not a multiple of 16`;
      break;
    case 'M5':
      bad =
        write(slot1, { addr: valid, len: 16, id: 0, flags: availBits(wrap1) }) ??
        write(slot0, {
          addr: valid,
          len: 16,
          id: 0,
          flags: PACKED_DESC_F_WRITE | PACKED_DESC_F_NEXT | availBits(wrap0),
        });
      text = `slot ${slot0} is WRITE with NEXT, slot ${slot1} is readable: readable after writable`;
      used = [slot0, slot1];
      break;
    case 'M8': {
      const addr = outsideMemory(memory);
      bad = write(slot0, { addr, len: 64, id: 0, flags: availBits(wrap0) });
      text = `slot ${slot0}: a 64-byte buffer at ${hex(addr)}, outside guest memory`;
      break;
    }
  }
  if (bad !== null) return bad;
  return {
    text: `${text}; made available with AVAIL=${wrap0 ? 1 : 0} USED=${wrap0 ? 0 : 1} (wrap counter ${wrap0 ? 1 : 0}), queue ${s.index} kicked`,
    descriptors: used,
  };
}

/** A guest-physical address no memory region holds. */
function outsideMemory(memory: GuestMemory): number {
  let addr = 0x10_0000_0000; // 64 GiB
  while (memory.check(addr, 64) === null) addr *= 2;
  return addr;
}
