/**
 * Pure helpers for the vring view: which descriptors, avail slots and used
 * slots belong to which chain, so the three tables can paint one chain in
 * one colour. The renderer imports this; tests check it under Node.
 *
 * Chain colours avoid the two direction hues (blue host-to-guest, orange
 * guest-to-host, view.ts), which mark the queue's direction instead.
 */
import type { PackedRing, Ring, SplitRing } from '../contract/vring-contract.js';

export type ChainState = 'available' | 'in-flight' | 'used';

export interface ChainMark {
  /** Split: the head descriptor. Packed: the buffer id. */
  key: number;
  state: ChainState;
  colour: string;
  /** Descriptor indices (split) or ring slots (packed), in chain order. */
  descriptors: number[];
}

export interface ChainMap {
  chains: ChainMark[];
  /** Descriptor index (or packed slot) -> its chain. */
  byDesc: Map<number, ChainMark>;
  /** Split: avail ring slot -> chain; used ring slot -> chain. */
  byAvail: Map<number, ChainMark>;
  byUsed: Map<number, ChainMark>;
}

/** Hues far from 214 (blue) and 36 (orange). */
const HUES = [140, 285, 330, 170, 60, 0, 255, 100, 190, 310];

export function chainColour(key: number): string {
  return `hsl(${HUES[key % HUES.length]!} 65% 42% / 0.55)`;
}

/** Recent used entries painted with their chain (older ones are history). */
const RECENT_USED = 8;

function walkSplit(r: SplitRing, head: number): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  let i = head;
  while (i < r.size && !seen.has(i)) {
    seen.add(i);
    out.push(i);
    const d = r.descriptors[i];
    if (d === undefined || (d.flags & 1) === 0) break;
    i = d.next;
  }
  return out;
}

export function splitChains(r: SplitRing): ChainMap {
  const map: ChainMap = { chains: [], byDesc: new Map(), byAvail: new Map(), byUsed: new Map() };
  const add = (head: number, state: ChainState, descriptors: number[]): ChainMark => {
    const mark: ChainMark = { key: head, state, colour: chainColour(head), descriptors };
    map.chains.push(mark);
    for (const d of descriptors) if (!map.byDesc.has(d)) map.byDesc.set(d, mark);
    return mark;
  };
  const size = r.size;
  // In flight: popped by the device, not pushed yet.
  for (const c of r.chainsInFlight) add(c.head, 'in-flight', c.descriptors);
  // Available: published by the driver, not yet popped (last_avail_idx .. avail.idx).
  const last = r.device?.lastAvailIdx ?? r.avail.idx;
  const pending = Math.min(size, (r.avail.idx - last) & 0xffff);
  for (let k = 0; k < pending; k++) {
    const slot = (last + k) % size;
    const head = r.avail.ring[slot];
    if (head === undefined) continue;
    const mark = add(head, 'available', walkSplit(r, head));
    map.byAvail.set(slot, mark);
  }
  // Used: the newest entries, the chain they returned (unless its descriptors are reused already).
  const usedCount = Math.min(size, RECENT_USED, r.used.idx);
  for (let k = 1; k <= usedCount; k++) {
    const slot = (r.used.idx - k + 0x10000) % size;
    const e = r.used.ring[slot];
    if (e === undefined) continue;
    const live = map.byDesc.get(e.id);
    const mark = live ?? add(e.id, 'used', walkSplit(r, e.id));
    map.byUsed.set(slot, mark);
  }
  return map;
}

export function packedChains(r: PackedRing): ChainMap {
  const map: ChainMap = { chains: [], byDesc: new Map(), byAvail: new Map(), byUsed: new Map() };
  const add = (key: number, state: ChainState, descriptors: number[]): void => {
    const mark: ChainMark = { key, state, colour: chainColour(key), descriptors };
    map.chains.push(mark);
    for (const d of descriptors) if (!map.byDesc.has(d)) map.byDesc.set(d, mark);
  };
  for (const c of r.chainsInFlight) add(c.id, 'in-flight', c.descriptors);
  if (r.device === null) return map;
  // Available to the device: from its next slot, while AVAIL == wrap and USED != wrap (P3).
  let slot = r.device.nextAvail;
  let wrap = r.device.availWrap;
  let chain: number[] = [];
  for (let n = 0; n < r.size; n++) {
    const d = r.descriptors[slot];
    if (d === undefined || d.avail !== wrap || d.used === wrap) break;
    chain.push(slot);
    if ((d.flags & 1) === 0) {
      add(d.id, 'available', chain);
      chain = [];
    }
    if (++slot === r.size) {
      slot = 0;
      wrap = !wrap;
    }
  }
  return map;
}

export function chainsOf(r: Ring): ChainMap {
  return r.format === 'split' ? splitChains(r) : packedChains(r);
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** A rule id the view can link (S*, P*, C*, M*, G*, D*, L*, H*, Q*). */
export const RULE_ID = /^[CGSPMDLHQ]\d+$/;
