/**
 * Test rigs for the split virtqueue: a guest memory with a queue laid out in
 * it, both sides attached, and pokes that write raw ring bytes the way a
 * buggy or hostile driver would.
 */
import { expect } from 'vitest';
import { GuestAllocator } from '../../core/virtio/allocator.js';
import type { DescriptorChain, Segment } from '../../core/virtio/chain.js';
import { VirtioFault, type FaultKind } from '../../core/virtio/fault.js';
import { GuestMemory } from '../../core/virtio/memory.js';
import type { ChainLimits, QueueLayout, RingFeatures } from '../../core/virtio/queue.js';
import {
  allocSplitQueue,
  SplitDeviceQueue,
  SplitDriverQueue,
} from '../../core/virtio/split-queue.js';
import { RingTracer, type RingTraceEvent } from '../../core/virtio/trace.js';

export interface RigOptions {
  size?: number;
  indirect?: boolean;
  eventIdx?: boolean;
  limits?: ChainLimits;
  memSize?: number;
  index?: number;
  trace?: boolean;
}

export interface Rig {
  memory: GuestMemory;
  allocator: GuestAllocator;
  layout: QueueLayout;
  features: RingFeatures;
  device: SplitDeviceQueue;
  driver: SplitDriverQueue<number>;
  tracer: RingTracer;
  events: RingTraceEvent[];
}

export function must<T>(v: T | VirtioFault): T {
  if (v instanceof VirtioFault) throw new Error(`unexpected fault: ${v.toString()}`);
  return v;
}

export function makeRig(o: RigOptions = {}): Rig {
  return makeRigOn(GuestMemory.linear(o.memSize ?? 1 << 20), o);
}

/** A rig on a given memory (tests that instrument the memory first). */
export function makeRigOn(memory: GuestMemory, o: RigOptions = {}): Rig {
  const allocator = new GuestAllocator(memory);
  const size = o.size ?? 8;
  const layout = must(allocSplitQueue(memory, allocator, size));
  const features: RingFeatures = {
    indirect: o.indirect ?? false,
    eventIdx: o.eventIdx ?? false,
    inOrder: false,
  };
  const tracer = new RingTracer();
  const events: RingTraceEvent[] = [];
  if (o.trace) tracer.on((e) => events.push(e));
  const options = { index: o.index ?? 1, layout, features, limits: o.limits, tracer };
  const device = must(SplitDeviceQueue.create(options, memory));
  const driver = must(SplitDriverQueue.create<number>(options, memory, allocator));
  return { memory, allocator, layout, features, device, driver, tracer, events };
}

/** Allocate a guest buffer holding `bytes` (or `len` zero bytes). */
export function buffer(rig: Rig, bytes: Uint8Array | number): Segment {
  const len = typeof bytes === 'number' ? bytes : bytes.length;
  const addr = must(rig.allocator.alloc(Math.max(len, 1), 8));
  if (typeof bytes === 'number') rig.memory.fill(addr, Math.max(len, 1), 0);
  else rig.memory.writeBytes(addr, bytes);
  return { addr, len };
}

export interface RawDesc {
  addr: number;
  len: number;
  flags?: number;
  next?: number;
}

/** Write descriptor `i` of a table at `tableAddr` byte by byte, no checks. */
export function pokeDescAt(memory: GuestMemory, tableAddr: number, i: number, d: RawDesc): void {
  const at = tableAddr + 16 * i;
  memory.write32(at, d.addr % 0x1_0000_0000);
  memory.write32(at + 4, Math.floor(d.addr / 0x1_0000_0000));
  memory.write32(at + 8, d.len);
  memory.write16(at + 12, d.flags ?? 0);
  memory.write16(at + 14, d.next ?? 0);
}

export function pokeDesc(rig: Rig, i: number, d: RawDesc): void {
  pokeDescAt(rig.memory, rig.layout.descAddr, i, d);
}

/** Make `heads` available after whatever the ring already holds, and publish. */
export function pokeAvail(rig: Rig, ...heads: number[]): void {
  const { memory, layout } = rig;
  let idx = must(memory.read16(layout.driverAddr + 2));
  for (const head of heads) {
    memory.write16(layout.driverAddr + 4 + 2 * (idx & (layout.size - 1)), head);
    idx = (idx + 1) & 0xffff;
  }
  memory.write16(layout.driverAddr + 2, idx);
}

export function setAvailIdx(rig: Rig, idx: number): void {
  rig.memory.write16(rig.layout.driverAddr + 2, idx);
}

export function expectFault(
  v: unknown,
  kind: FaultKind,
  rule: string,
  details: { queue?: number; index?: number; address?: number } = {},
): VirtioFault {
  expect(v).toBeInstanceOf(VirtioFault);
  const f = v as VirtioFault;
  expect({ kind: f.kind, rule: f.rule }).toEqual({ kind, rule });
  for (const [k, want] of Object.entries(details)) {
    expect(f[k as keyof typeof details], `${k} of ${f.toString()}`).toBe(want);
  }
  return f;
}

export function popChain(rig: Rig): DescriptorChain {
  const c = rig.device.pop();
  if (c === null) throw new Error('nothing to pop');
  return must(c);
}

/** A small deterministic byte pattern. */
export function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** FNV-1a over a guest range, to prove nobody wrote it. */
export function checksum(memory: GuestMemory, addr: number, len: number): number {
  const bytes = must(memory.readBytes(addr, len));
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}
