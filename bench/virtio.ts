/**
 * The virtio core's speed: chain round trips per second for both ring
 * formats and three chain shapes, and bytes moved through 4 KiB and 64 KiB
 * buffers. Baselines, measured in the same run:
 * - chains: the same number of descriptor records moved through a plain
 *   JavaScript FIFO (what a ring does, minus guest memory and validation);
 * - bytes: a plain Buffer copy of the same bytes.
 */
import { GuestAllocator } from '../core/virtio/allocator.js';
import { gather, scatter, type Segment } from '../core/virtio/chain.js';
import {
  allocateRings,
  createDeviceQueue,
  createDriverQueue,
} from '../core/virtio/device-rings.js';
import { isFault } from '../core/virtio/fault.js';
import { GuestMemory } from '../core/virtio/memory.js';
import type { DeviceQueue, DriverQueue, QueueFormat } from '../core/virtio/queue.js';
import { allocatedPerOp, rate, type Report } from './harness.js';

interface Rig {
  memory: GuestMemory;
  allocator: GuestAllocator;
  driver: DriverQueue<number>;
  device: DeviceQueue;
}

function rig(format: QueueFormat, size: number, indirect: boolean): Rig {
  const memory = GuestMemory.linear(64 * 1024 * 1024);
  const allocator = new GuestAllocator(memory);
  const layout = allocateRings(format, size, memory, allocator);
  if (isFault(layout)) throw new Error(layout.toString());
  const features = { indirect, eventIdx: true, inOrder: false };
  const driver = createDriverQueue<number>({ index: 0, layout, features }, memory, allocator);
  const device = createDeviceQueue({ index: 0, layout, features }, memory);
  if (isFault(driver) || isFault(device)) throw new Error('queue setup failed');
  return { memory, allocator, driver, device };
}

/** `count` guest buffers of `len` bytes from the rig's allocator (ring-v86.ts uses them too). */
export function buffers(r: { allocator: GuestAllocator }, count: number, len: number): Segment[] {
  const out: Segment[] = [];
  for (let i = 0; i < count; i++) {
    const addr = r.allocator.alloc(len, 16);
    if (isFault(addr)) throw new Error(addr.toString());
    out.push({ addr, len });
  }
  return out;
}

/** One batch of 64 chains through the whole cycle: add, kick, pop, push, interrupt decision, reclaim. */
function chainRoundTrips(
  r: Rig,
  readable: Segment[],
  writable: Segment[],
  indirect: boolean,
): () => number {
  const batch = 64;
  return () => {
    for (let i = 0; i < batch; i++) {
      if (isFault(r.driver.add(readable, writable, i, indirect))) throw new Error('add failed');
      r.driver.kickPrepare();
      const chain = r.device.pop();
      if (chain === null || isFault(chain)) throw new Error('pop failed');
      if (r.device.push(chain, 0)) throw new Error('push failed');
      r.device.needsInterrupt();
      const used = r.driver.getUsed();
      if (used === null || isFault(used)) throw new Error('reclaim failed');
    }
    return batch;
  };
}

/**
 * Heap bytes the device side allocates per chain (pop, push, interrupt
 * decision); the driver fills the ring and reclaims outside the window.
 */
function devicePopPush(r: Rig, segs: Segment[], indirect: boolean): number {
  const batch = 32;
  const prepare = (): void => {
    while (r.driver.getUsed() !== null);
    for (let i = 0; i < batch; i++) {
      if (isFault(r.driver.add(segs, [], i, indirect))) throw new Error('add failed');
    }
    r.driver.kickPrepare();
  };
  return allocatedPerOp(() => {
    for (let i = 0; i < batch; i++) {
      const chain = r.device.pop();
      if (chain === null || isFault(chain)) throw new Error('pop failed');
      if (r.device.push(chain, 0)) throw new Error('push failed');
    }
    r.device.needsInterrupt();
    return batch;
  }, prepare);
}

/** The baseline for chains: the same descriptor records through a plain array FIFO. */
function plainFifo(descriptors: number): () => number {
  const batch = 64;
  const fifo: { addr: number; len: number; flags: number; next: number }[] = [];
  return () => {
    for (let i = 0; i < batch; i++) {
      for (let d = 0; d < descriptors; d++) fifo.push({ addr: i, len: 64, flags: 1, next: d + 1 });
      for (let d = 0; d < descriptors; d++) fifo.shift();
    }
    return batch;
  };
}

/** Device writes `len` bytes into a guest buffer and the driver reads them back. */
function bytesThroughRing(r: Rig, len: number): () => number {
  const [buf] = buffers(r, 1, len);
  const src = new Uint8Array(len).fill(0x5a);
  const dst = new Uint8Array(len);
  return () => {
    if (isFault(r.driver.add([], [buf!], 0))) throw new Error('add failed');
    r.driver.kickPrepare();
    const chain = r.device.pop();
    if (chain === null || isFault(chain)) throw new Error('pop failed');
    const n = scatter(r.memory, chain.writable, 0, src);
    if (isFault(n)) throw new Error(n.toString());
    r.device.push(chain, n);
    r.device.needsInterrupt();
    const used = r.driver.getUsed();
    if (used === null || isFault(used)) throw new Error('reclaim failed');
    const m = gather(r.memory, [{ addr: buf!.addr, len: used.len }], 0, dst);
    if (isFault(m)) throw new Error(m.toString());
    return len;
  };
}

/** Baseline for bytes: two plain Buffer copies (into guest memory and back out). */
function plainCopy(len: number): () => number {
  const src = Buffer.alloc(len, 0x5a);
  const mid = Buffer.alloc(len);
  const dst = Buffer.alloc(len);
  return () => {
    src.copy(mid);
    mid.copy(dst);
    return len;
  };
}

export function benchVirtio(report: Report): void {
  for (const format of ['split', 'packed'] as const) {
    for (const shape of ['1-descriptor', '4-descriptor', 'indirect (4 in a table)'] as const) {
      const indirect = shape.startsWith('indirect');
      const r = rig(format, 256, indirect);
      const segs = buffers(r, shape === '1-descriptor' ? 1 : 4, 64);
      const trip = chainRoundTrips(r, segs, [], indirect);
      const value = rate(trip);
      const baseline = rate(plainFifo(segs.length));
      report(`${format} ${shape} chains round trip`, value, baseline, 'chains/s');
      // The device side alone should allocate nothing once warm (pooled
      // chains); the whole trip includes the guest driver's used-buffer result.
      const device = devicePopPush(rig(format, 256, indirect), segs, indirect);
      process.stdout.write(
        `  allocated per chain: round trip ${allocatedPerOp(trip).toFixed(0)} B, device pop+push ${device.toFixed(0)} B\n`,
      );
    }
  }
  for (const format of ['split', 'packed'] as const) {
    for (const len of [4096, 65536]) {
      const r = rig(format, 256, false);
      const value = rate(bytesThroughRing(r, len));
      const baseline = rate(plainCopy(len));
      report(`${format} bytes through ${len / 1024} KiB buffers`, value, baseline, 'B/s');
    }
  }
}
