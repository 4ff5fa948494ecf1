import { describe, it, expect } from 'vitest';
import { gather, scatter } from '../../core/virtio/chain.js';
import { GuestMemory } from '../../core/virtio/memory.js';
import { GuestAllocator } from '../../core/virtio/allocator.js';
import {
  needEvent,
  SPLIT_AVAIL_F_NO_INTERRUPT,
  SPLIT_DESC_F_INDIRECT,
  SPLIT_DESC_F_NEXT,
  SPLIT_DESC_F_WRITE,
  SPLIT_USED_F_NO_NOTIFY,
  type QueueLayout,
} from '../../core/virtio/queue.js';
import {
  allocSplitQueue,
  releaseSplitQueue,
  SplitDeviceQueue,
  SplitDriverQueue,
} from '../../core/virtio/split-queue.js';
import { RingTracer } from '../../core/virtio/trace.js';
import {
  buffer,
  checksum,
  expectFault,
  makeRig,
  makeRigOn,
  must,
  pattern,
  popChain,
  pokeAvail,
  pokeDesc,
  type Rig,
} from './split-helpers.js';

const features = { indirect: true, eventIdx: false, inOrder: false };

function layoutOf(size: number, descAddr: number, driverAddr: number, deviceAddr: number) {
  return { format: 'split' as const, size, descAddr, driverAddr, deviceAddr };
}

/** Driver adds one chain and kicks, device pops it, fills the writable part, pushes. */
function roundTrip(rig: Rig, token: number, out: Uint8Array, inLen: number, indirect = false) {
  const rd = out.length > 0 ? [buffer(rig, out)] : [];
  const wr = inLen > 0 ? [buffer(rig, inLen)] : [];
  must(rig.driver.add(rd, wr, token, indirect));
  must(rig.driver.kickPrepare());
  const chain = popChain(rig);
  const got = new Uint8Array(chain.readableLength);
  must(gather(rig.memory, chain.readable, 0, got));
  const reply = pattern(chain.writableLength, token);
  must(scatter(rig.memory, chain.writable, 0, reply));
  expect(rig.device.push(chain, reply.length)).toBeNull();
  const used = must(rig.driver.getUsed());
  expect(used).not.toBeNull();
  for (const s of [...rd, ...wr]) rig.allocator.release(s.addr);
  return { chain, got, used: used!, reply };
}

describe('split queue layout', () => {
  it('S1 the factories refuse sizes that are not a power of 2 in 1..32768 and misaligned rings', () => {
    const memory = GuestMemory.linear(1 << 22);
    const alloc = new GuestAllocator(memory);
    const cases: [QueueLayout, string][] = [
      [layoutOf(0, 0x1000, 0x2000, 0x3000), 'InvalidQueueSize'],
      [layoutOf(3, 0x1000, 0x2000, 0x3000), 'InvalidQueueSize'],
      [layoutOf(100, 0x1000, 0x2000, 0x3000), 'InvalidQueueSize'],
      [layoutOf(65536, 0x1000, 0x2000, 0x3000), 'InvalidQueueSize'],
      [layoutOf(8, 0x1008, 0x2000, 0x3000), 'MisalignedRing'],
      [layoutOf(8, 0x1000, 0x2001, 0x3000), 'MisalignedRing'],
      [layoutOf(8, 0x1000, 0x2000, 0x3002), 'MisalignedRing'],
      [{ ...layoutOf(8, 0x1000, 0x2000, 0x3000), format: 'packed' }, 'QueueNotReady'],
    ];
    for (const [layout, kind] of cases) {
      const options = { index: 5, layout, features };
      const dev = SplitDeviceQueue.create(options, memory);
      const drv = SplitDriverQueue.create(options, memory, alloc);
      expectFault(dev, kind as never, 'S1', { queue: 5 });
      expectFault(drv, kind as never, 'S1', { queue: 5 });
    }
    // The largest legal queue is accepted.
    const big = layoutOf(32768, 0x10000, 0x90000, 0xa0000);
    expect(SplitDeviceQueue.create({ index: 0, layout: big, features }, memory)).toBeInstanceOf(
      SplitDeviceQueue,
    );
  });

  it('M8 the factories refuse rings that are not entirely inside guest memory', () => {
    const memory = GuestMemory.linear(0x4000);
    const alloc = new GuestAllocator(memory);
    // used ring of size 8 is 70 bytes: starting at 0x3fc0 it ends past 0x4000.
    const cases = [
      layoutOf(8, 0x4000, 0x2000, 0x3000),
      layoutOf(8, 0x1000, 0x3ffe, 0x3000),
      layoutOf(8, 0x1000, 0x2000, 0x3fc0),
      layoutOf(8, 0x1000, 0x2000, 2 ** 60),
    ];
    for (const layout of cases) {
      const options = { index: 2, layout, features };
      expectFault(SplitDeviceQueue.create(options, memory), 'GuestMemoryOutOfRange', 'M8', {
        queue: 2,
      });
      expectFault(SplitDriverQueue.create(options, memory, alloc), 'GuestMemoryOutOfRange', 'M8', {
        queue: 2,
      });
    }
    // A used ring (event-idx tail included) ending 2 bytes before the end of memory is fine.
    const ok = layoutOf(8, 0x1000, 0x2000, 0x4000 - 72);
    expect(SplitDeviceQueue.create({ index: 2, layout: ok, features }, memory)).toBeInstanceOf(
      SplitDeviceQueue,
    );
  });

  it('S1 allocSplitQueue aligns desc 16, avail 2, used 4 and zeroes recycled memory', () => {
    const memory = GuestMemory.linear(1 << 20);
    const alloc = new GuestAllocator(memory);
    memory.fill(0, 1 << 20, 0xff);
    const pad = must(alloc.alloc(3, 1)); // knock later allocations off alignment
    for (const size of [1, 2, 8, 256, 1024]) {
      const l = must(allocSplitQueue(memory, alloc, size));
      expect(l.descAddr % 16).toBe(0);
      expect(l.driverAddr % 2).toBe(0);
      expect(l.deviceAddr % 4).toBe(0);
      expect([...must(memory.readBytes(l.driverAddr, 6 + 2 * size))].every((b) => b === 0)).toBe(
        true,
      );
      expect([...must(memory.readBytes(l.deviceAddr, 6 + 8 * size))].every((b) => b === 0)).toBe(
        true,
      );
      expect([...must(memory.readBytes(l.descAddr, 16 * size))].every((b) => b === 0)).toBe(true);
    }
    alloc.release(pad);
    const used = alloc.allocatedBytes;
    const l = must(allocSplitQueue(memory, alloc, 64));
    expect(alloc.allocatedBytes).toBe(used + 16 * 64 + 6 + 2 * 64 + 6 + 8 * 64);
    expect(releaseSplitQueue(alloc, l)).toBeNull();
    expect(alloc.allocatedBytes).toBe(used);
    expectFault(allocSplitQueue(memory, alloc, 12), 'InvalidQueueSize', 'S1');
    // Room for the table and the avail ring but not the used ring: nothing stays allocated.
    const small = GuestMemory.linear(0x1000 + 16 * 1024 + 4096);
    const smallAlloc = new GuestAllocator(small);
    expectFault(allocSplitQueue(small, smallAlloc, 1024), 'NoBuffers', 'M8');
    expect(smallAlloc.allocatedBytes).toBe(0);
    expectFault(allocSplitQueue(memory, alloc, 32768 * 2), 'InvalidQueueSize', 'S1');
  });

  it('G2 creating either side touches no guest memory: nothing is consumed or signalled until asked', () => {
    const memory = GuestMemory.linear(1 << 16);
    const alloc = new GuestAllocator(memory);
    const layout = must(allocSplitQueue(memory, alloc, 16));
    memory.fill(0, 1 << 16, 0x5a);
    const before = checksum(memory, 0, 1 << 16);
    const options = { index: 0, layout, features };
    must(SplitDeviceQueue.create(options, memory));
    must(SplitDriverQueue.create(options, memory, alloc));
    expect(checksum(memory, 0, 1 << 16)).toBe(before);
  });
});

describe('split queue round trips', () => {
  it('S4 M10 a single readable descriptor and a single writable one round-trip exactly', () => {
    const rig = makeRig();
    const out = pattern(100, 1);
    const a = roundTrip(rig, 11, out, 0);
    expect(a.chain.readable.length).toBe(1);
    expect(a.chain.writable).toEqual([]);
    expect(a.chain.readableLength).toBe(100);
    expect(a.chain.writableLength).toBe(0);
    expect(a.chain.descCount).toBe(1);
    expect(a.chain.ringDescCount).toBe(1);
    expect(a.chain.indirect).toBe(false);
    expect(a.got).toEqual(out);
    expect(a.used).toEqual({ token: 11, len: 0 });

    const b = roundTrip(rig, 12, new Uint8Array(0), 64);
    expect(b.chain.readable).toEqual([]);
    expect(b.chain.writable.length).toBe(1);
    expect(b.chain.writableLength).toBe(64);
    expect(b.used).toEqual({ token: 12, len: 64 });
    expect(rig.driver.numFree).toBe(8);
  });

  it('S3 S4 M10 a 4-descriptor chain (2 readable, 2 writable) keeps order and bytes in both directions', () => {
    const rig = makeRig();
    const r1 = pattern(10, 1);
    const r2 = pattern(22, 2);
    const rd = [buffer(rig, r1), buffer(rig, r2)];
    const wr = [buffer(rig, 5), buffer(rig, 30)];
    const head = must(rig.driver.add(rd, wr, 77));
    expect(rig.driver.numFree).toBe(4);
    expect(rig.device.hasAvailable()).toBe(false); // not published yet
    expect(rig.driver.kickPrepare()).toBe(true);
    expect(rig.device.hasAvailable()).toBe(true);
    const chain = popChain(rig);
    expect(chain.head).toBe(head);
    expect(chain.id).toBe(head);
    expect(chain.readable).toEqual(rd);
    expect(chain.writable).toEqual(wr);
    expect([chain.readableLength, chain.writableLength]).toEqual([32, 35]);
    expect([chain.descCount, chain.ringDescCount]).toEqual([4, 4]);
    const got = new Uint8Array(32);
    must(gather(rig.memory, chain.readable, 0, got));
    expect(got).toEqual(new Uint8Array([...r1, ...r2]));
    const reply = pattern(35, 9);
    must(scatter(rig.memory, chain.writable, 0, reply));
    expect(rig.device.push(chain, 35)).toBeNull();
    expect(rig.device.needsInterrupt()).toBe(true);
    expect(must(rig.driver.getUsed())).toEqual({ token: 77, len: 35 });
    const back = new Uint8Array(35);
    must(gather(rig.memory, wr, 0, back));
    expect(back).toEqual(reply);
    expect(rig.driver.numFree).toBe(8);
    expect(rig.driver.getUsed()).toBeNull();
    expect(rig.device.pop()).toBeNull();
  });

  it('S6 S7 an indirect chain uses one ring descriptor, and its table is freed on reclaim', () => {
    const rig = makeRig({ indirect: true, size: 4 });
    const baseline = rig.allocator.allocatedBytes;
    const rd = [buffer(rig, pattern(8, 3)), buffer(rig, pattern(8, 4))];
    const wr = [buffer(rig, 16), buffer(rig, 16), buffer(rig, 16)];
    const withBuffers = rig.allocator.allocatedBytes;
    const head = must(rig.driver.add(rd, wr, 5, true));
    expect(rig.driver.numFree).toBe(3);
    expect(rig.allocator.allocatedBytes).toBe(withBuffers + 5 * 16);
    const snap = rig.driver.snapshot();
    expect(snap.descriptors[head]!.flagNames).toEqual(['INDIRECT']);
    expect(snap.descriptors[head]!.len).toBe(80);
    must(rig.driver.kickPrepare());
    const chain = popChain(rig);
    expect(chain.indirect).toBe(true);
    expect(chain.ringDescCount).toBe(1);
    expect(chain.descCount).toBe(6); // the table pointer plus its five entries
    expect(chain.readable).toEqual(rd);
    expect(chain.writable).toEqual(wr);
    rig.device.push(chain, 48);
    expect(must(rig.driver.getUsed())).toEqual({ token: 5, len: 48 });
    expect(rig.allocator.allocatedBytes).toBe(withBuffers);
    expect(rig.driver.numFree).toBe(4);
    for (const s of [...rd, ...wr]) rig.allocator.release(s.addr);
    expect(rig.allocator.allocatedBytes).toBe(baseline);
  });

  it('S6 asking for indirect without INDIRECT_DESC falls back to direct descriptors', () => {
    const rig = makeRig({ indirect: false });
    must(rig.driver.add([buffer(rig, 4)], [buffer(rig, 4), buffer(rig, 4)], 1, true));
    expect(rig.driver.numFree).toBe(5);
    must(rig.driver.kickPrepare());
    const chain = popChain(rig);
    expect(chain.indirect).toBe(false);
    expect(chain.ringDescCount).toBe(3);
  });

  it('S8 S11 16-bit ring indices wrap after 70000 operations and everything keeps working', () => {
    const rig = makeRig({ size: 8, indirect: true, eventIdx: true });
    const out = pattern(16, 7);
    const rd = [buffer(rig, out)];
    const wr = [buffer(rig, 16)];
    const wraps: string[] = [];
    let unsubscribe: (() => void) | null = null;
    const got = new Uint8Array(16);
    for (let i = 0; i < 70000; i++) {
      if (i === 65530) unsubscribe = rig.tracer.on((e) => e.op === 'wrap' && wraps.push(e.text));
      must(rig.driver.add(rd, wr, i, i % 3 === 0));
      must(rig.driver.kickPrepare());
      const chain = popChain(rig);
      if (i % 1000 === 0) {
        must(gather(rig.memory, chain.readable, 0, got));
        expect(got).toEqual(out);
      }
      if (rig.device.push(chain, i % 17) !== null) throw new Error(`push ${i} failed`);
      must(rig.device.needsInterrupt());
      const used = must(rig.driver.getUsed());
      if (used?.token !== i || used.len !== i % 17) throw new Error(`reclaim ${i} mismatch`);
    }
    unsubscribe!();
    expect(rig.device.status.lastAvailIdx).toBe(70000 & 0xffff);
    expect(rig.device.status.usedIdx).toBe(70000 & 0xffff);
    const snap = rig.driver.snapshot();
    expect(snap.avail.idx).toBe(70000 - 65536);
    expect(snap.used.idx).toBe(70000 - 65536);
    expect(snap.driver).toEqual({ freeHead: snap.driver!.freeHead, numFree: 8, lastUsedIdx: 4464 });
    // One wrap each for avail.idx, last_avail_idx, used.idx and last_used_idx.
    expect(wraps.length).toBe(4);
    expect(wraps.some((t) => t.startsWith('avail.idx wrapped from 65535 to 0'))).toBe(true);
    expect(wraps.some((t) => t.startsWith('used.idx wrapped'))).toBe(true);
  });
});

describe('split queue interrupts and notifications', () => {
  it('S10 without EVENT_IDX the device interrupts unless avail.flags has NO_INTERRUPT', () => {
    const rig = makeRig();
    roundTripNoReclaim(rig);
    expect(rig.device.needsInterrupt()).toBe(true);
    expect(rig.device.status.signalledUsed).toBe(1);
    rig.driver.disableCallbacks();
    expect(must(rig.memory.read16(rig.layout.driverAddr))).toBe(SPLIT_AVAIL_F_NO_INTERRUPT);
    roundTripNoReclaim(rig);
    expect(rig.device.needsInterrupt()).toBe(false);
    expect(rig.device.status.signalledUsed).toBe(1);
    // Buffers are pending, so enabling reports that the caller must poll.
    expect(rig.driver.enableCallbacks()).toBe(false);
    expect(must(rig.memory.read16(rig.layout.driverAddr))).toBe(0);
    expect(rig.device.needsInterrupt()).toBe(true);
    expect(rig.device.status.signalledUsed).toBe(2);
    must(rig.driver.getUsed());
    must(rig.driver.getUsed());
    expect(rig.driver.enableCallbacks()).toBe(true);
  });

  it('S11 with EVENT_IDX the device interrupts exactly when used idx passes used_event', () => {
    const rig = makeRig({ size: 16, eventIdx: true });
    const usedEventAt = rig.layout.driverAddr + 4 + 2 * 16;
    const chains = [];
    for (let i = 0; i < 12; i++) must(rig.driver.add([], [buffer(rig, 8)], i));
    must(rig.driver.kickPrepare());
    for (let i = 0; i < 12; i++) chains.push(popChain(rig));
    // First decision after reset always interrupts (QEMU's signalled_used_valid).
    expect(rig.device.needsInterrupt()).toBe(true);
    expect(rig.device.status.signalledUsed).toBe(0);
    // used_event = 3: "interrupt me once the buffer at used index 3 is used", i.e. used.idx 3 -> 4.
    rig.memory.write16(usedEventAt, 3);
    const decisions: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      rig.device.push(chains[i]!, 0);
      decisions.push(must(rig.device.needsInterrupt()) as boolean);
    }
    expect(decisions).toEqual([false, false, false, true, false, false]);
    // A batch that jumps over used_event still interrupts once.
    rig.memory.write16(usedEventAt, 7);
    rig.device.push(chains[6]!, 0);
    rig.device.push(chains[7]!, 0);
    rig.device.push(chains[8]!, 0);
    expect(rig.device.needsInterrupt()).toBe(true);
    // used_event behind the window: no interrupt.
    rig.device.push(chains[9]!, 0);
    expect(rig.device.needsInterrupt()).toBe(false);
    // Nothing new pushed: no interrupt even if used_event equals used idx - 1.
    rig.memory.write16(usedEventAt, 9);
    expect(rig.device.needsInterrupt()).toBe(false);
  });

  it('S11 EVENT_IDX interrupt decisions follow vring_need_event across the 16-bit wrap', () => {
    const rig = makeRig({ size: 8, eventIdx: true });
    const usedEventAt = rig.layout.driverAddr + 4 + 2 * 8;
    const rd = [buffer(rig, 4)];
    for (let i = 0; i < 65533; i++) {
      must(rig.driver.add(rd, [], i));
      must(rig.driver.kickPrepare());
      rig.device.push(popChain(rig), 0);
      must(rig.driver.getUsed());
    }
    must(rig.device.needsInterrupt());
    expect(rig.device.status.usedIdx).toBe(65533);
    let old = 65533;
    // (used_event, pushes) pairs that straddle 65535 -> 0.
    const steps: [number, number][] = [
      [65534, 1], // 65533 -> 65534: event 65534 not yet used
      [65534, 1], // 65534 -> 65535: passes it
      [1, 2], // 65535 -> 1: event 1 not yet used
      [1, 1], // 1 -> 2: passes it
      [65535, 3], // 2 -> 5: 65535 is behind, no interrupt
      [4, 4], // 5 -> 9: 4 behind
      [10, 4], // 9 -> 13: passes 10
    ];
    for (const [event, pushes] of steps) {
      rig.memory.write16(usedEventAt, event);
      for (let k = 0; k < pushes; k++) {
        must(rig.driver.add(rd, [], k));
        must(rig.driver.kickPrepare());
        rig.device.push(popChain(rig), 0);
        must(rig.driver.getUsed());
        rig.memory.write16(usedEventAt, event); // getUsed moves used_event: put ours back
      }
      const now = (old + pushes) & 0xffff;
      const want = needEvent(event, now, old);
      const sent = must(rig.device.needsInterrupt());
      expect(sent, `used_event ${event}, used idx ${old} -> ${now}`).toBe(want);
      old = now;
    }
    expect(old).toBe(13);
  });

  it('S11 the driver moves used_event as it reclaims and parks it when callbacks are off', () => {
    const rig = makeRig({ size: 8, eventIdx: true });
    const usedEventAt = rig.layout.driverAddr + 4 + 2 * 8;
    for (let i = 0; i < 3; i++) roundTrip(rig, i, pattern(4, i), 4);
    expect(must(rig.memory.read16(usedEventAt))).toBe(3);
    rig.driver.disableCallbacks();
    expect(must(rig.memory.read16(usedEventAt))).toBe(2);
    expect(must(rig.memory.read16(rig.layout.driverAddr))).toBe(0); // flags stay 0 with EVENT_IDX
    must(rig.device.needsInterrupt());
    roundTripNoReclaim(rig);
    roundTripNoReclaim(rig);
    expect(rig.device.needsInterrupt()).toBe(false);
    must(rig.driver.getUsed());
    expect(must(rig.memory.read16(usedEventAt))).toBe(2); // parked while callbacks are off
    expect(rig.driver.enableCallbacks()).toBe(false); // one still pending
    expect(must(rig.memory.read16(usedEventAt))).toBe(4);
    must(rig.driver.getUsed());
    expect(rig.driver.enableCallbacks()).toBe(true);
    roundTripNoReclaim(rig);
    expect(rig.device.needsInterrupt()).toBe(true);
  });

  it('S12 without EVENT_IDX the device toggles used.flags NO_NOTIFY and the driver obeys it', () => {
    const rig = makeRig();
    must(rig.driver.add([buffer(rig, 4)], [], 1));
    expect(rig.driver.kickPrepare()).toBe(true);
    expect(rig.device.setNotification(false)).toBeNull();
    expect(must(rig.memory.read16(rig.layout.deviceAddr))).toBe(SPLIT_USED_F_NO_NOTIFY);
    must(rig.driver.add([buffer(rig, 4)], [], 2));
    expect(rig.driver.kickPrepare()).toBe(false);
    expect(rig.device.setNotification(true)).toBeNull();
    expect(must(rig.memory.read16(rig.layout.deviceAddr))).toBe(0);
    must(rig.driver.add([buffer(rig, 4)], [], 3));
    expect(rig.driver.kickPrepare()).toBe(true);
  });

  it('S12 with EVENT_IDX the device publishes avail_event, keeps used.flags 0, and the driver kicks on crossing it', () => {
    const rig = makeRig({ eventIdx: true });
    const availEventAt = rig.layout.deviceAddr + 4 + 8 * 8;
    const add = (t: number) => must(rig.driver.add([buffer(rig, 4)], [], t));
    add(1);
    expect(rig.driver.kickPrepare()).toBe(true); // avail_event 0, avail.idx 0 -> 1
    add(2);
    expect(rig.driver.kickPrepare()).toBe(false); // 1 -> 2 does not pass 0 again
    const c1 = popChain(rig);
    expect(must(rig.memory.read16(availEventAt))).toBe(1); // pop keeps it at last_avail_idx
    popChain(rig);
    expect(must(rig.memory.read16(availEventAt))).toBe(2);
    add(3);
    expect(rig.driver.kickPrepare()).toBe(true); // 2 -> 3 passes 2
    // Suppressed: avail_event is parked behind last_avail_idx and pops leave it alone.
    expect(rig.device.setNotification(false)).toBeNull();
    expect(must(rig.memory.read16(availEventAt))).toBe(1);
    popChain(rig);
    expect(must(rig.memory.read16(availEventAt))).toBe(1);
    add(4);
    add(5);
    expect(rig.driver.kickPrepare()).toBe(false);
    // Re-enabled with two buffers still in the ring: avail_event is what is
    // published (5), so the next add kicks; the two pending ones are found by
    // the device's own re-check.
    expect(rig.device.setNotification(true)).toBeNull();
    expect(must(rig.memory.read16(availEventAt))).toBe(5);
    expect(rig.device.hasAvailable()).toBe(true);
    add(6);
    expect(rig.driver.kickPrepare()).toBe(true);
    rig.device.push(c1, 0);
    expect(must(rig.memory.read16(rig.layout.deviceAddr))).toBe(0);
    // Spurious notifications are harmless: a kick with nothing new pops nothing.
    for (let i = 0; i < 3; i++) popChain(rig);
    const status = rig.device.status;
    expect(rig.device.pop()).toBeNull();
    expect(rig.device.pop()).toBeNull();
    expect(rig.device.status).toEqual(status);
    expect(must(rig.memory.read16(rig.layout.deviceAddr))).toBe(0);
  });
});

/** Add and publish one buffer, device pops and pushes it; the driver does not reclaim. */
function roundTripNoReclaim(rig: Rig): void {
  must(rig.driver.add([buffer(rig, 4)], [buffer(rig, 4)], 0));
  must(rig.driver.kickPrepare());
  rig.device.push(popChain(rig), 4);
}

describe('split queue bookkeeping', () => {
  it('M9 S5 QueueFull when descriptors run out; an indirect chain needs only one', () => {
    const rig = makeRig({ size: 4, indirect: true });
    const seg = buffer(rig, 8);
    must(rig.driver.add([seg, seg], [seg], 1));
    expect(rig.driver.numFree).toBe(1);
    const full = expectFault(rig.driver.add([seg], [seg], 2), 'QueueFull', 'M9', { queue: 1 });
    expect(full.length).toBe(2);
    expectFault(rig.driver.add([seg, seg, seg, seg, seg], [], 3), 'QueueFull', 'S5');
    // Eight buffers through one free descriptor.
    must(rig.driver.add([seg, seg, seg, seg], [seg, seg, seg, seg], 4, true));
    expect(rig.driver.numFree).toBe(0);
    expectFault(rig.driver.add([seg], [], 5, true), 'QueueFull', 'M9');
    expectFault(rig.driver.add([], [], 6), 'EmptyChain', 'M6');
    expectFault(rig.driver.add([{ addr: -1, len: 4 }], [], 6), 'GuestMemoryOutOfRange', 'M8');
    must(rig.driver.kickPrepare());
    const a = popChain(rig);
    const b = popChain(rig);
    expect(b.descCount).toBe(9);
    rig.device.push(b, 0);
    rig.device.push(a, 0);
    expect(must(rig.driver.getUsed())).toEqual({ token: 4, len: 0 });
    expect(rig.driver.numFree).toBe(1);
    expect(must(rig.driver.getUsed())).toEqual({ token: 1, len: 0 });
    expect(rig.driver.numFree).toBe(4);
  });

  it('detachUnused hands back every outstanding token and frees descriptors and tables', () => {
    const rig = makeRig({ size: 8, indirect: true });
    const baseline = rig.allocator.allocatedBytes;
    const seg = buffer(rig, 8);
    must(rig.driver.add([seg], [], 10));
    must(rig.driver.add([seg, seg], [seg], 11, true));
    must(rig.driver.add([], [seg, seg], 12));
    must(rig.driver.kickPrepare());
    expect(rig.driver.numFree).toBe(4);
    expect(rig.driver.detachUnused().sort()).toEqual([10, 11, 12]);
    expect(rig.driver.numFree).toBe(8);
    expect(rig.allocator.allocatedBytes).toBe(baseline + 8);
    expect(rig.driver.snapshot().avail.idx).toBe(0);
    expect(rig.driver.detachUnused()).toEqual([]);
  });

  it('M15 the device refuses to push a head twice, one it never popped, or more bytes than it could write', () => {
    const rig = makeRig({ trace: true });
    must(rig.driver.add([buffer(rig, 8)], [buffer(rig, 16)], 1));
    must(rig.driver.kickPrepare());
    const chain = popChain(rig);
    expectFault(rig.device.push(chain, 17), 'UsedLengthTooLarge', 'S9', {
      queue: 1,
      index: chain.head,
    });
    expectFault(rig.device.push(chain, -1), 'UsedLengthTooLarge', 'S9');
    expect(rig.device.push(chain, 16)).toBeNull();
    expectFault(rig.device.push(chain, 0), 'DuplicateUsedHead', 'M15', {
      queue: 1,
      index: chain.head,
    });
    expectFault(rig.device.push({ ...chain, id: 5 }, 0), 'DuplicateUsedHead', 'M15');
    expectFault(rig.device.push({ ...chain, id: 4096 }, 0), 'DuplicateUsedHead', 'M15');
    expect(rig.device.status.usedIdx).toBe(1);
    expect(rig.events.filter((e) => e.op === 'fault').map((e) => e.rule)).toEqual([
      'S9',
      'S9',
      'M15',
      'M15',
      'M15',
    ]);
  });

  it('M15 the driver refuses used ids that are not outstanding heads and lengths it never offered', () => {
    const rig = makeRig();
    must(rig.driver.add([], [buffer(rig, 16)], 1));
    must(rig.driver.add([], [buffer(rig, 16)], 2));
    must(rig.driver.kickPrepare());
    const usedAt = rig.layout.deviceAddr;
    const c = popChain(rig);
    rig.device.push(c, 16);
    // A misbehaving device: a second element naming the same head.
    rig.memory.write32(usedAt + 4 + 8, c.head);
    rig.memory.write16(usedAt + 2, 2);
    expect(must(rig.driver.getUsed())).toEqual({ token: 1, len: 16 });
    expectFault(rig.driver.getUsed(), 'UnknownUsedId', 'M15', { queue: 1, index: c.head });
    rig.memory.write32(usedAt + 4 + 8, 99);
    expectFault(rig.driver.getUsed(), 'UnknownUsedId', 'M15', { index: 99 });
    rig.memory.write32(usedAt + 4 + 8, 1);
    rig.memory.write32(usedAt + 8 + 8, 17);
    expectFault(rig.driver.getUsed(), 'UsedLengthTooLarge', 'S9', { index: 1 });
    rig.memory.write16(usedAt + 2, 5);
    expectFault(rig.driver.getUsed(), 'UnknownUsedId', 'M15');
  });

  it('S9 the device writes used id and len before it publishes used.idx', () => {
    // The device writes ring fields through the memory region's DataView
    // (no per-field range lookup), so the order is observed there: every
    // store into guest memory goes through this recording view.
    const writes: { addr: number; size: number }[] = [];
    class RecordingView extends DataView<ArrayBufferLike> {
      override setUint16(offset: number, value: number, le?: boolean): void {
        writes.push({ addr: offset, size: 2 });
        super.setUint16(offset, value, le);
      }
      override setUint32(offset: number, value: number, le?: boolean): void {
        writes.push({ addr: offset, size: 4 });
        super.setUint32(offset, value, le);
      }
    }
    const memory = GuestMemory.linear(1 << 20);
    const region = memory.span(0, 1) as { view: DataView };
    region.view = new RecordingView(region.view.buffer);
    const rig = makeRigOn(memory);
    for (let i = 0; i < 3; i++) must(rig.driver.add([], [buffer(rig, 8)], i));
    must(rig.driver.kickPrepare());
    const chains = [popChain(rig), popChain(rig), popChain(rig)];
    for (const [n, chain] of [chains[1]!, chains[0]!, chains[2]!].entries()) {
      writes.length = 0;
      rig.device.push(chain, 8);
      const elem = rig.layout.deviceAddr + 4 + 8 * n;
      expect(writes).toEqual([
        { addr: elem, size: 4 },
        { addr: elem + 4, size: 4 },
        { addr: rig.layout.deviceAddr + 2, size: 2 },
      ]);
      expect(must(rig.memory.read16(rig.layout.deviceAddr + 2))).toBe(n + 1);
    }
  });

  it('S2 the device never writes the descriptor table, indirect tables or readable buffers', () => {
    const rig = makeRig({ size: 16, indirect: true, eventIdx: true });
    const readables = [];
    for (let i = 0; i < 6; i++) {
      const rd = [buffer(rig, pattern(40, i)), buffer(rig, pattern(9, i + 50))];
      const wr = [buffer(rig, 32)];
      readables.push(...rd);
      must(rig.driver.add(rd, wr, i, i % 2 === 1));
    }
    must(rig.driver.kickPrepare());
    const { descAddr, size } = rig.layout;
    const tables = rig.driver
      .snapshot()
      .descriptors.filter((d) => d.flags & SPLIT_DESC_F_INDIRECT)
      .map((d) => ({ addr: d.addr, len: d.len }));
    expect(tables.length).toBe(3);
    const guarded = [{ addr: descAddr, len: 16 * size }, ...tables, ...readables];
    const sums = guarded.map((g) => checksum(rig.memory, g.addr, g.len));

    const writes: number[] = [];
    const mem = rig.memory as unknown as Record<string, (...a: number[]) => unknown>;
    for (const name of ['write8', 'write16', 'write32', 'write64', 'fill']) {
      const orig = mem[name]!.bind(rig.memory);
      mem[name] = (addr: number, ...rest: number[]) => {
        writes.push(addr);
        return orig(addr, ...rest);
      };
    }
    for (let i = 0; i < 6; i++) {
      const chain = popChain(rig);
      must(scatter(rig.memory, chain.writable, 0, pattern(32, i)));
      rig.device.push(chain, 32);
      must(rig.device.needsInterrupt());
      rig.device.setNotification(i % 2 === 0);
      rig.device.snapshot();
    }
    expect(guarded.map((g) => checksum(rig.memory, g.addr, g.len))).toEqual(sums);
    const inside = (a: number) => guarded.some((g) => a >= g.addr && a < g.addr + g.len);
    expect(writes.filter(inside)).toEqual([]);
    expect(writes.length).toBeGreaterThan(0);
  });
});

describe('split queue snapshot, status and trace', () => {
  it('snapshot decodes descriptors, both rings, event fields and in-flight chains from each side', () => {
    const rig = makeRig({ size: 8, indirect: true, eventIdx: true });
    const seg = buffer(rig, 8);
    const h0 = must(rig.driver.add([seg, seg], [seg], 100));
    const h1 = must(rig.driver.add([seg], [seg, seg], 101, true));
    must(rig.driver.kickPrepare());
    const c0 = popChain(rig);
    popChain(rig);
    rig.device.push(c0, 8);
    must(rig.device.needsInterrupt());

    const dev = rig.device.snapshot();
    expect(dev.format).toBe('split');
    expect(dev.index).toBe(1);
    expect(dev.size).toBe(8);
    expect(dev.eventIdx).toBe(true);
    expect(dev.descriptors.length).toBe(8);
    expect(dev.descriptors[h0]).toMatchObject({
      index: h0,
      addr: seg.addr,
      len: 8,
      flags: SPLIT_DESC_F_NEXT,
      flagNames: ['NEXT'],
      next: 1,
    });
    expect(dev.descriptors[2]!.flagNames).toEqual(['WRITE']);
    expect(dev.descriptors[h1]!.flagNames).toEqual(['INDIRECT']);
    expect(dev.avail).toMatchObject({ flags: 0, idx: 2, usedEvent: 0 });
    expect(dev.avail.ring.slice(0, 2)).toEqual([h0, h1]);
    expect(dev.used).toMatchObject({ flags: 0, idx: 1, availEvent: 2 });
    expect(dev.used.ring[0]).toEqual({ id: h0, len: 8 });
    expect(dev.device).toEqual({ lastAvailIdx: 2, usedIdx: 1, signalledUsed: 1, inFlight: [h1] });
    expect(dev.driver).toBeNull();
    expect(dev.chainsInFlight).toEqual([{ head: h1, descriptors: [h1] }]);
    expect(dev.unreadable).toEqual([]);

    const drv = rig.driver.snapshot();
    expect(drv.device).toBeNull();
    expect(drv.driver).toEqual({ freeHead: 4, numFree: 4, lastUsedIdx: 0 });
    expect(drv.used.ring[0]).toEqual(dev.used.ring[0]);
    // A direct 3-descriptor chain in flight is listed descriptor by descriptor.
    const h2 = must(rig.driver.add([seg], [seg, seg], 102));
    must(rig.driver.kickPrepare());
    popChain(rig);
    const again = rig.device.snapshot();
    expect(again.chainsInFlight.find((c) => c.head === h2)!.descriptors.length).toBe(3);
    expect(again.descriptors[again.chainsInFlight[1]!.descriptors[1]!]!.flagNames).toEqual([
      'NEXT',
      'WRITE',
    ]);
  });

  it('M8 a snapshot of rings outside guest memory lists what it could not read instead of throwing', () => {
    const memory = GuestMemory.linear(0x2000);
    const alloc = new GuestAllocator(memory);
    const layout = layoutOf(8, 0x1f80, 0x1000, 0x3000);
    const options = { index: 3, layout, features: { ...features, eventIdx: true } };
    for (const q of [
      new SplitDeviceQueue(options, memory),
      new SplitDriverQueue<number>(options, memory, alloc),
    ]) {
      const snap = q.snapshot();
      expect(snap.descriptors.length).toBe(8); // 0x1f80 + 128 = 0x2000: the table just fits
      expect(snap.unreadable.length).toBeGreaterThan(0);
      expect(snap.unreadable.some((u) => u.startsWith('used.flags'))).toBe(true);
      expect(snap.used.idx).toBe(0);
    }
    const off = new SplitDeviceQueue(
      { ...options, layout: layoutOf(8, 0x1fc0, 0x1000, 0x1800) },
      memory,
    );
    const snap = off.snapshot();
    expect(snap.descriptors.length).toBe(4);
    expect(snap.unreadable).toEqual([
      'descriptor table from entry 4 at 0x2000 is outside guest memory',
    ]);
    // And the device side reports, rather than throws, when used against such a layout.
    const dev = new SplitDeviceQueue(options, memory);
    expectFault(dev.setNotification(false), 'GuestMemoryOutOfRange', 'M8', { queue: 3 });
  });

  it('status reports last-avail-idx, used-idx and signalled-used for x-query-virtio-queue-status', () => {
    const rig = makeRig({ eventIdx: true });
    expect(rig.device.status).toEqual({ lastAvailIdx: 0, usedIdx: 0, signalledUsed: null });
    for (let i = 0; i < 3; i++) must(rig.driver.add([buffer(rig, 4)], [], i));
    must(rig.driver.kickPrepare());
    const c = popChain(rig);
    popChain(rig);
    expect(rig.device.inFlight).toBe(2);
    rig.device.push(c, 0);
    expect(rig.device.inFlight).toBe(1);
    expect(rig.device.status).toEqual({ lastAvailIdx: 2, usedIdx: 1, signalledUsed: null });
    must(rig.device.needsInterrupt());
    expect(rig.device.status).toEqual({ lastAvailIdx: 2, usedIdx: 1, signalledUsed: 1 });
  });

  it('trace events narrate a round trip with rule ids and teaching texts', () => {
    const rig = makeRig({ trace: true, index: 4 });
    must(rig.driver.add([buffer(rig, 10)], [buffer(rig, 4096)], 1));
    must(rig.driver.kickPrepare());
    const chain = popChain(rig);
    rig.device.push(chain, 512);
    must(rig.device.needsInterrupt());
    must(rig.driver.getUsed());
    rig.driver.disableCallbacks();
    rig.device.setNotification(false);
    expect(rig.events.map((e) => [e.op, e.rule])).toEqual([
      ['driver-add', 'S4'],
      ['driver-publish', 'S8'],
      ['driver-notify', 'S12'],
      ['device-pop', 'S4'],
      ['device-push', 'S9'],
      ['device-interrupt', 'S10'],
      ['driver-reclaim', 'S9'],
      ['driver-suppress', 'S10'],
      ['device-suppress', 'S12'],
    ]);
    for (const e of rig.events) {
      expect(e.queue).toBe(4);
      expect(e.format).toBe('split');
      expect(e.text).not.toMatch(/\n/);
    }
    const text = (op: string) => rig.events.find((e) => e.op === op)!.text;
    expect(text('device-pop')).toBe(
      'device popped head 0 (2 buffers: 1 readable, 10 bytes; 1 writable, 4096 bytes); last_avail_idx 0 -> 1',
    );
    expect(text('device-push')).toBe(
      'device returned head 0 with 512 bytes written: used.ring[0] = {id 0, len 512} first, then used.idx 0 -> 1',
    );
    expect(text('driver-add')).toContain(
      'avail.ring[0] = 0, not visible until avail.idx is published',
    );
    expect(rig.events.find((e) => e.op === 'device-pop')).toMatchObject({
      head: 0,
      descCount: 2,
      len: 4106,
      idx: 1,
    });
    expect(rig.events.find((e) => e.op === 'device-interrupt')!.sent).toBe(true);

    // Faults are traced too, with the fault attached.
    pokeDesc(rig, 0, {
      addr: 0x2000,
      len: 4,
      flags: SPLIT_DESC_F_WRITE | SPLIT_DESC_F_NEXT,
      next: 1,
    });
    pokeDesc(rig, 1, { addr: 0x2000, len: 4 });
    pokeAvail(rig, 0);
    const f = rig.device.pop();
    const last = rig.events.at(-1)!;
    expect(last.op).toBe('fault');
    expect(last.rule).toBe('M5');
    expect(last.fault).toBe(f);
    expect(last.text).toContain('NEEDS_RESET');
  });

  it('a tracer nobody listens to is never called', () => {
    const memory = GuestMemory.linear(1 << 20);
    const alloc = new GuestAllocator(memory);
    const layout = must(allocSplitQueue(memory, alloc, 8));
    const tracer = new RingTracer();
    let emitted = 0;
    tracer.emit = () => void emitted++;
    const options = { index: 0, layout, features: { ...features, eventIdx: true }, tracer };
    const device = must(SplitDeviceQueue.create(options, memory));
    const driver = must(SplitDriverQueue.create<number>(options, memory, alloc));
    const seg = { addr: must(alloc.alloc(64)), len: 64 };
    for (let i = 0; i < 20; i++) {
      must(driver.add([seg], [seg], i, i % 2 === 0));
      must(driver.kickPrepare());
      const c = device.pop() as ReturnType<SplitDeviceQueue['pop']>;
      device.push(c as never, 64);
      device.needsInterrupt();
      device.setNotification(i % 2 === 0);
      driver.getUsed();
    }
    device.push({ id: 3 } as never, 0);
    expect(emitted).toBe(0);
  });
});
