/**
 * Packed virtqueue: both sides against each other, and the device side
 * against rings written by hand, rule by rule (P1-P8 of the conformance table).
 */
import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../core/virtio/memory.js';
import { GuestAllocator } from '../../core/virtio/allocator.js';
import { isFault, type VirtioFault } from '../../core/virtio/fault.js';
import { gather, scatter, type DescriptorChain, type Segment } from '../../core/virtio/chain.js';
import { RingTracer, type RingTraceEvent } from '../../core/virtio/trace.js';
import {
  PACKED_DESC_F_AVAIL as AV,
  PACKED_DESC_F_INDIRECT as IND,
  PACKED_DESC_F_NEXT as NX,
  PACKED_DESC_F_USED as US,
  PACKED_DESC_F_WRITE as WR,
  PACKED_EVENT_FLAG_DESC,
  PACKED_EVENT_FLAG_DISABLE,
  PACKED_EVENT_FLAG_ENABLE,
  type ChainLimits,
  type QueueLayout,
  type QueueOptions,
} from '../../core/virtio/queue.js';
import {
  PackedDeviceQueue,
  PackedDriverQueue,
  layoutPackedQueue,
  packedNeedEvent,
} from '../../core/virtio/packed-queue.js';

function ok<T>(v: T | VirtioFault): T {
  if (isFault(v)) throw new Error(v.toString());
  return v;
}

function bad(v: unknown): VirtioFault {
  if (!isFault(v)) throw new Error(`expected a fault, got ${JSON.stringify(v)}`);
  return v;
}

interface Setup {
  memory: GuestMemory;
  allocator: GuestAllocator;
  layout: QueueLayout;
  options: QueueOptions;
  driver: PackedDriverQueue<string>;
  device: PackedDeviceQueue;
}

function setup(
  size: number,
  f: { indirect?: boolean; eventIdx?: boolean; limits?: ChainLimits; tracer?: RingTracer } = {},
): Setup {
  const memory = GuestMemory.linear(0x100000);
  const allocator = new GuestAllocator(memory);
  const layout = ok(layoutPackedQueue(memory, allocator, size));
  const options: QueueOptions = {
    index: 3,
    layout,
    features: { indirect: f.indirect ?? false, eventIdx: f.eventIdx ?? false, inOrder: false },
    limits: f.limits,
    tracer: f.tracer ?? null,
  };
  const driver = ok(PackedDriverQueue.create<string>(options, memory, allocator));
  const device = ok(PackedDeviceQueue.create(options, memory));
  return { memory, allocator, layout, options, driver, device };
}

/** A buffer of `len` bytes holding `fill`, from the guest allocator. */
function buf(s: Setup, len: number, fill = 0): Segment {
  const addr = ok(s.allocator.alloc(Math.max(len, 1)));
  s.memory.fill(addr, Math.max(len, 1), fill);
  return { addr, len };
}

function desc(s: Setup, slot: number) {
  const b = s.layout.descAddr + slot * 16;
  return {
    addr: s.memory.read64(b) as number,
    len: s.memory.read32(b + 8) as number,
    id: s.memory.read16(b + 12) as number,
    flags: s.memory.read16(b + 14) as number,
  };
}

function poke(
  s: Setup,
  slot: number,
  d: { addr: number; len: number; id: number; flags: number },
): void {
  const b = s.layout.descAddr + slot * 16;
  s.memory.write64(b, d.addr);
  s.memory.write32(b + 8, d.len);
  s.memory.write16(b + 12, d.id);
  s.memory.write16(b + 14, d.flags);
}

function setEvent(
  s: Setup,
  which: 'driver' | 'device',
  flags: number,
  off = 0,
  wrap = false,
): void {
  const a = which === 'driver' ? s.layout.driverAddr : s.layout.deviceAddr;
  s.memory.write16(a, off | (wrap ? 0x8000 : 0));
  s.memory.write16(a + 2, flags);
}

function readAll(s: Setup, segs: readonly Segment[]): number[] {
  let n = 0;
  for (const x of segs) n += x.len;
  const dst = new Uint8Array(n);
  ok(gather(s.memory, segs, 0, dst));
  return [...dst];
}

/** Add one single-element buffer, pop it, push it, reclaim it. */
function cycle(s: Setup, token: string, written = 0): void {
  ok(s.driver.add([], [buf(s, 8)], token));
  const chain = ok(s.device.pop())!;
  expect(s.device.push(chain, written)).toBeNull();
  expect(ok(s.driver.getUsed())).toEqual({ token, len: written });
}

describe('packed queue: creation and layout', () => {
  it('P8 accepts any size 1..32768, powers of 2 or not, and refuses the rest', () => {
    const memory = GuestMemory.linear(0x200000);
    const allocator = new GuestAllocator(memory);
    for (const size of [1, 3, 100, 255, 32768]) {
      const layout = ok(layoutPackedQueue(memory, allocator, size));
      const options: QueueOptions = {
        index: 0,
        layout,
        features: { indirect: false, eventIdx: false, inOrder: false },
      };
      expect(ok(PackedDeviceQueue.create(options, memory)).size).toBe(size);
      expect(ok(PackedDriverQueue.create(options, memory, allocator)).numFree).toBe(size);
      allocator.release(layout.descAddr);
    }
    for (const size of [0, -1, 32769, 1.5]) {
      const f = bad(layoutPackedQueue(memory, allocator, size));
      expect([f.kind, f.rule]).toEqual(['InvalidQueueSize', 'P8']);
      const layout: QueueLayout = {
        format: 'packed',
        size,
        descAddr: 0x1000,
        driverAddr: 0x100,
        deviceAddr: 0x104,
      };
      const g = bad(
        PackedDeviceQueue.create(
          { index: 0, layout, features: { indirect: false, eventIdx: false, inOrder: false } },
          memory,
        ),
      );
      expect([g.kind, g.rule]).toEqual(['InvalidQueueSize', 'P8']);
    }
  });

  it('P8 checks the alignment of the three parts (16, 4, 4)', () => {
    const memory = GuestMemory.linear(0x10000);
    const features = { indirect: false, eventIdx: false, inOrder: false };
    const cases: [number, number, number][] = [
      [0x1008, 0x2000, 0x2004],
      [0x1000, 0x2002, 0x2004],
      [0x1000, 0x2000, 0x2006],
    ];
    for (const [descAddr, driverAddr, deviceAddr] of cases) {
      const layout: QueueLayout = { format: 'packed', size: 8, descAddr, driverAddr, deviceAddr };
      const f = bad(PackedDeviceQueue.create({ index: 1, layout, features }, memory));
      expect([f.kind, f.rule, f.queue]).toEqual(['MisalignedRing', 'P8', 1]);
    }
    const split: QueueLayout = {
      format: 'split',
      size: 8,
      descAddr: 0x1000,
      driverAddr: 0x2000,
      deviceAddr: 0x3000,
    };
    expect(isFault(PackedDeviceQueue.create({ index: 1, layout: split, features }, memory))).toBe(
      true,
    );
  });

  it('M8 packed: the descriptor ring and both event suppression structures must lie in guest memory', () => {
    const memory = GuestMemory.linear(0x10000);
    const allocator = new GuestAllocator(memory);
    const features = { indirect: false, eventIdx: false, inOrder: false };
    const cases: [number, number, number][] = [
      [0xff10, 0x1000, 0x1004], // 16 descriptors run past the end
      [0x1000, 0x10000, 0x1104],
      [0x1000, 0x1100, 0x20000],
    ];
    for (const [descAddr, driverAddr, deviceAddr] of cases) {
      const layout: QueueLayout = { format: 'packed', size: 16, descAddr, driverAddr, deviceAddr };
      const f = bad(PackedDeviceQueue.create({ index: 2, layout, features }, memory));
      expect([f.kind, f.rule, f.queue]).toEqual(['GuestMemoryOutOfRange', 'M8', 2]);
      const g = bad(PackedDriverQueue.create({ index: 2, layout, features }, memory, allocator));
      expect(g.kind).toBe('GuestMemoryOutOfRange');
    }
  });

  it('layoutPackedQueue places aligned parts in one zeroed block', () => {
    const memory = GuestMemory.linear(0x10000);
    memory.fill(0, 0x10000, 0xee);
    const allocator = new GuestAllocator(memory);
    const l = ok(layoutPackedQueue(memory, allocator, 10));
    expect(l.descAddr % 16).toBe(0);
    expect(l.driverAddr).toBe(l.descAddr + 160);
    expect(l.deviceAddr).toBe(l.driverAddr + 4);
    expect([...(memory.readBytes(l.descAddr, 168) as Uint8Array)].every((b) => b === 0)).toBe(true);
    expect(allocator.release(l.descAddr)).toBeNull();
  });
});

describe('packed queue: wrap counters and descriptor states', () => {
  it('P1 wrap counters start at 1: available is AVAIL=1 USED=0, used is AVAIL=USED=1', () => {
    const s = setup(4);
    expect(s.device.status).toEqual({
      lastAvailIdx: 0,
      usedIdx: 0,
      signalledUsed: null,
      availWrap: true,
      usedWrap: true,
    });
    expect(s.device.hasAvailable()).toBe(false); // the zeroed ring holds nothing
    expect(ok(s.device.pop())).toBeNull();
    ok(s.driver.add([buf(s, 4)], [], 'a'));
    expect(desc(s, 0).flags & (AV | US)).toBe(AV);
    expect(s.device.hasAvailable()).toBe(true);
    const chain = ok(s.device.pop())!;
    expect(s.device.push(chain, 0)).toBeNull();
    expect(desc(s, 0).flags & (AV | US)).toBe(AV | US);
    expect(ok(s.driver.getUsed())).toEqual({ token: 'a', len: 0 });
  });

  it('P1 after a wrap the driver marks AVAIL=0 USED=1 and the device marks used with AVAIL=USED=0', () => {
    const s = setup(3);
    for (let i = 0; i < 3; i++) cycle(s, `t${i}`);
    expect(s.device.status).toMatchObject({
      lastAvailIdx: 0,
      usedIdx: 0,
      availWrap: false,
      usedWrap: false,
    });
    ok(s.driver.add([], [buf(s, 4)], 'w'));
    expect(desc(s, 0).flags & (AV | US)).toBe(US);
    const chain = ok(s.device.pop())!;
    expect(s.device.push(chain, 2)).toBeNull();
    expect(desc(s, 0).flags & (AV | US)).toBe(0);
    expect(ok(s.driver.getUsed())).toEqual({ token: 'w', len: 2 });
  });

  it('P1 the device takes a slot only when AVAIL equals its wrap and USED does not', () => {
    const s = setup(4);
    const data = buf(s, 8);
    for (const flags of [0, US, AV | US]) {
      poke(s, 0, { addr: data.addr, len: 8, id: 0, flags });
      expect(s.device.hasAvailable()).toBe(false);
      expect(ok(s.device.pop())).toBeNull();
    }
    poke(s, 0, { addr: data.addr, len: 8, id: 0, flags: AV });
    expect(s.device.hasAvailable()).toBe(true);
    expect(ok(s.device.pop())!.id).toBe(0);
  });

  it('P2 the device reads a descriptor’s flags before anything else of it, and nothing when unavailable', () => {
    const s = setup(4);
    const log: number[] = [];
    const m = s.memory;
    // Every read of guest memory, checked accessor or the walk's one range
    // check per descriptor, goes through the region's view: record there
    // (memory starts at 0, so a view offset is the guest address).
    class RecordingView extends DataView<ArrayBufferLike> {
      override getUint16(offset: number, le?: boolean): number {
        log.push(offset);
        return super.getUint16(offset, le);
      }
      override getUint32(offset: number, le?: boolean): number {
        log.push(offset);
        return super.getUint32(offset, le);
      }
    }
    const region = m.span(0, 1) as { view: DataView };
    region.view = new RecordingView(region.view.buffer);
    const flagsAt = (slot: number) => s.layout.descAddr + slot * 16 + 14;
    expect(ok(s.device.pop())).toBeNull();
    expect(log).toEqual([flagsAt(0)]);
    ok(s.driver.add([buf(s, 4), buf(s, 4)], [], 'two'));
    log.length = 0;
    ok(s.device.pop());
    const slot1 = log.indexOf(flagsAt(1));
    expect(log[0]).toBe(flagsAt(0));
    expect(slot1).toBeGreaterThan(0);
    // every other field of slot 1 is read after its flags
    for (let i = 0; i < log.length; i++) {
      const a = log[i]!;
      if (a >= s.layout.descAddr + 16 && a < s.layout.descAddr + 32 && a !== flagsAt(1)) {
        expect(i).toBeGreaterThan(slot1);
      }
    }
    // A list whose next descriptor is not available: its flags are read,
    // nothing else of it.
    const t = setup(4);
    const d = buf(t, 8);
    poke(t, 0, { addr: d.addr, len: 4, id: 3, flags: AV | NX });
    const tm = t.memory;
    const tregion = tm.span(0, 1) as { view: DataView };
    log.length = 0;
    tregion.view = new RecordingView(tregion.view.buffer);
    expect(bad(t.device.pop()).rule).toBe('P2');
    const second = t.layout.descAddr + 16;
    expect(log.filter((a) => a >= second && a < second + 16)).toEqual([second + 14]);
  });

  it('P2 a NEXT list whose later descriptor was never made available is refused', () => {
    const s = setup(4);
    const d = buf(s, 8);
    poke(s, 0, { addr: d.addr, len: 4, id: 9, flags: AV | NX });
    poke(s, 1, { addr: d.addr + 4, len: 4, id: 0, flags: 0 }); // still zeroed: not available
    const f = bad(s.device.pop());
    expect([f.kind, f.rule, f.index]).toEqual(['InvalidDescriptorIndex', 'P2', 1]);
    expect(s.device.status.lastAvailIdx).toBe(0); // nothing consumed
  });

  it('P2 the device writes a used descriptor’s flags last and never touches it again', () => {
    const s = setup(4);
    ok(s.driver.add([], [buf(s, 8)], 'a'));
    const chain = ok(s.device.pop())!;
    const writes: number[] = [];
    const m = s.memory;
    const w16 = m.write16.bind(m);
    const w32 = m.write32.bind(m);
    m.write16 = (a, v) => (writes.push(a), w16(a, v));
    m.write32 = (a, v) => (writes.push(a), w32(a, v));
    expect(s.device.push(chain, 3)).toBeNull();
    expect(writes.at(-1)).toBe(s.layout.descAddr + 14);
    expect(writes).toHaveLength(3); // id, len, flags: the address is left alone
    writes.length = 0;
    expect(bad(s.device.push(chain, 3)).rule).toBe('M15');
    expect(writes).toEqual([]);
  });
});

describe('packed queue: order, lists and indirect tables', () => {
  it('P3 processes buffers in ring order and writes used descriptors in completion order', () => {
    const s = setup(8);
    const ids = ['a', 'b', 'c'].map((t) => ok(s.driver.add([], [buf(s, 8)], t)));
    const chains = [0, 1, 2].map(() => ok(s.device.pop())!);
    expect(chains.map((c) => c.id)).toEqual(ids);
    expect(chains.map((c) => c.head)).toEqual([0, 1, 2]);
    // complete c, a, b: used descriptors fill slots 0, 1, 2 in that order
    expect(s.device.push(chains[2]!, 1)).toBeNull();
    expect(s.device.push(chains[0]!, 2)).toBeNull();
    expect(s.device.push(chains[1]!, 3)).toBeNull();
    expect([0, 1, 2].map((i) => desc(s, i).id)).toEqual([ids[2], ids[0], ids[1]]);
    // Each result copied: getUsed() refills one object per queue.
    const got = [0, 1, 2].map(() => ({ ...ok(s.driver.getUsed()) }));
    expect(got).toEqual([
      { token: 'c', len: 1 },
      { token: 'a', len: 2 },
      { token: 'b', len: 3 },
    ]);
    expect(ok(s.driver.getUsed())).toBeNull();
    expect(s.driver.numFree).toBe(8);
  });

  it('P3 out-of-order completion of NEXT lists of different lengths keeps both sides in step', () => {
    const s = setup(7);
    const a = ok(s.driver.add([buf(s, 4), buf(s, 4)], [buf(s, 4)], 'a')); // 3 slots
    ok(s.driver.add([], [buf(s, 4)], 'b')); // 1 slot
    const ca = ok(s.device.pop())!;
    const cb = ok(s.device.pop())!;
    expect(s.device.push(cb, 4)).toBeNull(); // used at slot 0, skips 1
    expect(s.device.push(ca, 4)).toBeNull(); // used at slot 1, skips 3
    expect(s.device.status.usedIdx).toBe(4);
    expect(desc(s, 1).id).toBe(a);
    expect(ok(s.driver.getUsed())!.token).toBe('b');
    expect(ok(s.driver.getUsed())!.token).toBe('a');
    expect(s.driver.snapshot().driver!.nextUsed).toBe(4);
  });

  it('P4 a 4-descriptor NEXT list is one buffer: id from the last, one used descriptor, skip by 4', () => {
    const s = setup(6);
    const r1 = buf(s, 3, 0x11);
    const r2 = buf(s, 5, 0x22);
    const w1 = buf(s, 4);
    const w2 = buf(s, 6);
    const id = ok(s.driver.add([r1, r2], [w1, w2], 'list'));
    expect([0, 1, 2, 3].map((i) => desc(s, i).flags & (NX | WR))).toEqual([NX, NX, NX | WR, WR]);
    // Only the last descriptor's id counts: scribble over the others.
    for (const slot of [0, 1, 2]) s.memory.write16(s.layout.descAddr + slot * 16 + 12, 0x7777);
    const chain = ok(s.device.pop())!;
    expect(chain).toMatchObject({ id, head: 0, ringDescCount: 4, descCount: 4, indirect: false });
    expect(chain).toMatchObject({ readableLength: 8, writableLength: 10 });
    expect(readAll(s, chain.readable)).toEqual([...Array(3).fill(0x11), ...Array(5).fill(0x22)]);
    expect(s.device.status.lastAvailIdx).toBe(4);
    ok(scatter(s.memory, chain.writable, 0, new Uint8Array(7).fill(0x5a)));
    expect(s.device.push(chain, 7)).toBeNull();
    expect(s.device.status.usedIdx).toBe(4);
    expect(desc(s, 0)).toMatchObject({ id, len: 7 });
    expect(desc(s, 1).flags & (AV | US)).toBe(AV); // untouched: still as the driver wrote it
    expect(ok(s.driver.getUsed())).toEqual({ token: 'list', len: 7 });
    expect(readAll(s, [w1, { addr: w2.addr, len: 3 }])).toEqual(Array(7).fill(0x5a));
    // the next buffer goes to slot 4 and its used descriptor too
    ok(s.driver.add([buf(s, 1)], [], 'next'));
    const c2 = ok(s.device.pop())!;
    expect(c2.head).toBe(4);
    expect(s.device.push(c2, 0)).toBeNull();
    expect(desc(s, 4).flags & (AV | US)).toBe(AV | US);
  });

  it('P4 a NEXT list that runs across the end of the ring toggles the wrap counter mid-list', () => {
    const s = setup(5);
    for (let i = 0; i < 3; i++) cycle(s, `pre${i}`);
    const id = ok(s.driver.add([buf(s, 2), buf(s, 2)], [buf(s, 2), buf(s, 2)], 'across')); // slots 3,4,0,1
    expect([3, 4, 0, 1].map((i) => desc(s, i).flags & (AV | US))).toEqual([AV, AV, US, US]);
    const chain = ok(s.device.pop())!;
    expect(chain).toMatchObject({ id, head: 3, ringDescCount: 4 });
    expect(s.device.status).toMatchObject({ lastAvailIdx: 2, availWrap: false });
    expect(s.device.push(chain, 2)).toBeNull();
    expect(s.device.status).toMatchObject({ usedIdx: 2, usedWrap: false });
    expect(ok(s.driver.getUsed())).toEqual({ token: 'across', len: 2 });
    cycle(s, 'after');
  });

  it('P5 the driver writes the head’s flags last, after every other descriptor of the list', () => {
    const s = setup(8);
    const writes: number[] = [];
    const m = s.memory;
    const w16 = m.write16.bind(m);
    m.write16 = (a, v) => (writes.push(a), w16(a, v));
    ok(s.driver.add([buf(s, 4)], [buf(s, 4), buf(s, 4)], 'x'));
    expect(writes.at(-1)).toBe(s.layout.descAddr + 14);
    expect(writes.filter((a) => a === s.layout.descAddr + 14)).toHaveLength(1);
  });

  it('P5 the driver never has more than size descriptors outstanding (QueueFull)', () => {
    const s = setup(5, { indirect: true });
    ok(s.driver.add([buf(s, 1), buf(s, 1)], [buf(s, 1)], 'three'));
    expect(s.driver.numFree).toBe(2);
    const f = bad(s.driver.add([buf(s, 1), buf(s, 1), buf(s, 1)], [], 'too-big'));
    expect([f.kind, f.rule, f.queue]).toEqual(['QueueFull', 'P5', 3]);
    // an indirect table needs one ring slot whatever its length
    ok(s.driver.add([buf(s, 1), buf(s, 1), buf(s, 1)], [], 'indirect', true));
    ok(s.driver.add([], [buf(s, 1)], 'last'));
    expect(s.driver.numFree).toBe(0);
    expect(bad(s.driver.add([], [buf(s, 1)], 'no room')).kind).toBe('QueueFull');
    expect(bad(s.driver.add([], [buf(s, 1)], 'no room', true)).kind).toBe('QueueFull');
    // nothing half-written became visible
    let n = 0;
    while (ok(s.device.pop()) !== null) n++;
    expect(n).toBe(3);
  });

  it('P6 indirect round trip: one ring slot, len/16 table entries in order, WRITE decides direction', () => {
    const s = setup(4, { indirect: true });
    const r = [buf(s, 3, 1), buf(s, 4, 2)];
    const w = [buf(s, 5), buf(s, 6)];
    const before = s.allocator.allocatedBytes;
    const id = ok(s.driver.add(r, w, 'ind', true));
    expect(s.allocator.allocatedBytes).toBe(before + 64); // a 4-entry table
    expect(desc(s, 0).flags & (IND | NX)).toBe(IND);
    expect(s.driver.numFree).toBe(3);
    const chain = ok(s.device.pop())!;
    expect(chain).toMatchObject({ id, head: 0, ringDescCount: 1, descCount: 4, indirect: true });
    expect(chain.readable).toEqual(r);
    expect(chain.writable).toEqual(w);
    expect(readAll(s, chain.readable)).toEqual([1, 1, 1, 2, 2, 2, 2]);
    expect(s.device.push(chain, 11)).toBeNull();
    expect(ok(s.driver.getUsed())).toEqual({ token: 'ind', len: 11 });
    expect(s.allocator.allocatedBytes).toBe(before); // the table went back
  });

  it('P6 inside an indirect table NEXT is ignored: every len/16 entry is used', () => {
    const s = setup(4, { indirect: true });
    const table = ok(s.allocator.alloc(48));
    const data = buf(s, 30);
    const entries = [
      { addr: data.addr, len: 10, flags: 0 }, // no NEXT, yet not the end
      { addr: data.addr + 10, len: 10, flags: NX | WR },
      { addr: data.addr + 20, len: 10, flags: NX | WR }, // NEXT on the last: ignored
    ];
    entries.forEach((e, i) => {
      s.memory.write64(table + i * 16, e.addr);
      s.memory.write32(table + i * 16 + 8, e.len);
      s.memory.write16(table + i * 16 + 14, e.flags);
    });
    // WRITE on the descriptor pointing to the table is reserved and ignored
    poke(s, 0, { addr: table, len: 48, id: 2, flags: AV | IND | WR });
    const chain = ok(s.device.pop())!;
    expect(chain).toMatchObject({
      id: 2,
      readableLength: 10,
      writableLength: 20,
      descCount: 3,
      ringDescCount: 1,
    });
  });

  it('P6 INDIRECT inside a NEXT list, or with NEXT, is an error; and only when negotiated', () => {
    const s = setup(4, { indirect: true });
    const table = ok(s.allocator.alloc(16));
    const data = buf(s, 8);
    s.memory.write64(table, data.addr);
    s.memory.write32(table + 8, 8);
    poke(s, 0, { addr: data.addr, len: 8, id: 0, flags: AV | NX });
    poke(s, 1, { addr: table, len: 16, id: 0, flags: AV | IND });
    let f = bad(s.device.pop());
    expect([f.kind, f.rule, f.index]).toEqual(['IndirectWithNext', 'P6', 1]);
    const t = setup(4, { indirect: true });
    poke(t, 0, { addr: table, len: 16, id: 0, flags: AV | IND | NX });
    f = bad(t.device.pop());
    expect([f.kind, f.rule]).toEqual(['IndirectWithNext', 'P6']);
    const u = setup(4, { indirect: false });
    poke(u, 0, { addr: table, len: 16, id: 0, flags: AV | IND });
    f = bad(u.device.pop());
    expect([f.kind, f.rule]).toEqual(['IndirectNotNegotiated', 'P6']);
    // and a driver without the feature falls back to direct descriptors
    ok(u.driver.add([buf(u, 1)], [buf(u, 1)], 'direct', true));
  });
});

describe('packed queue: event suppression', () => {
  it('P7 device interrupts on ENABLE, not on DISABLE, and on DESC without EVENT_IDX treats it as ENABLE', () => {
    const s = setup(4);
    cycle(s, 'a');
    setEvent(s, 'driver', PACKED_EVENT_FLAG_ENABLE);
    expect(s.device.needsInterrupt()).toBe(true);
    setEvent(s, 'driver', PACKED_EVENT_FLAG_DISABLE);
    expect(s.device.needsInterrupt()).toBe(false);
    setEvent(s, 'driver', PACKED_EVENT_FLAG_DESC, 3, true);
    expect(s.device.needsInterrupt()).toBe(true);
    expect(s.device.status.signalledUsed).toBe(1);
  });

  it('P7 DESC: the device interrupts exactly when the used index passes the offset of that lap', () => {
    const s = setup(8, { eventIdx: true });
    const chains: DescriptorChain[] = [];
    for (let i = 0; i < 5; i++) ok(s.driver.add([], [buf(s, 4)], `b${i}`));
    for (let i = 0; i < 5; i++) chains.push(ok(s.device.pop())!);
    setEvent(s, 'driver', PACKED_EVENT_FLAG_DESC, 2, true); // "interrupt when slot 2 is used"
    const decisions = chains.map((c) => {
      expect(s.device.push(c, 0)).toBeNull();
      return s.device.needsInterrupt();
    });
    expect(decisions).toEqual([false, false, true, false, false]);
    // batching several pushes before deciding: the window covers all of them
    const t = setup(8, { eventIdx: true });
    for (let i = 0; i < 4; i++) ok(t.driver.add([], [buf(t, 4)], `b${i}`));
    const cs = [0, 1, 2, 3].map(() => ok(t.device.pop())!);
    setEvent(t, 'driver', PACKED_EVENT_FLAG_DESC, 1, true);
    for (const c of cs) expect(t.device.push(c, 0)).toBeNull();
    expect(t.device.needsInterrupt()).toBe(true);
    expect(t.device.needsInterrupt()).toBe(false); // nothing new since
  });

  it('P7 DESC with wrap: offsets of the previous lap are reached across the end of the ring', () => {
    const s = setup(4, { eventIdx: true });
    for (let i = 0; i < 3; i++) cycle(s, `p${i}`);
    expect(s.device.needsInterrupt()).toBe(true); // ENABLE so far; window now starts at 3 (wrap 1)
    // two more buffers: slots 3 (lap 1) and 0 (lap 0)
    const push2 = (off: number, wrap: boolean): boolean => {
      ok(s.driver.add([], [buf(s, 1)], 'x'));
      ok(s.driver.add([], [buf(s, 1)], 'y'));
      const a = ok(s.device.pop())!;
      const b = ok(s.device.pop())!;
      setEvent(s, 'driver', PACKED_EVENT_FLAG_DESC, off, wrap);
      s.device.push(a, 0);
      s.device.push(b, 0);
      ok(s.driver.getUsed());
      ok(s.driver.getUsed());
      return ok(s.device.needsInterrupt());
    };
    expect(push2(3, true)).toBe(true); // slot 3 of lap 1 was used in this window
    expect(s.device.status).toMatchObject({ usedIdx: 1, usedWrap: false });
    expect(push2(3, true)).toBe(false); // slots 1, 2 of lap 0 used: slot 3 of lap 1 is long past
    expect(push2(3, false)).toBe(true); // slots 3 (lap 0) and 0 (lap 1)
    expect(push2(1, true)).toBe(true); // slots 1, 2 of lap 1
    expect(push2(2, false)).toBe(false); // slots 3, 0: slot 2 of lap 0 is still ahead
    expect(packedNeedEvent(0x8000 | 1, 4, true, 1, 4)).toBe(true); // a whole lap passes everything
  });

  it('P7 device setNotification writes DISABLE, ENABLE, or DESC with the next avail offset and wrap', () => {
    const s = setup(3, { eventIdx: false });
    expect(s.device.setNotification(false)).toBeNull();
    expect(s.device.snapshot().deviceEvent).toMatchObject({ flags: 1, flagName: 'DISABLE' });
    expect(ok(s.driver.kickPrepare())).toBe(false);
    expect(s.device.setNotification(true)).toBeNull();
    expect(s.device.snapshot().deviceEvent.flagName).toBe('ENABLE');
    expect(ok(s.driver.kickPrepare())).toBe(true);

    const e = setup(3, { eventIdx: true });
    for (let i = 0; i < 4; i++) cycle(e, `c${i}`); // device now at slot 1, wrap 0
    expect(e.device.setNotification(true)).toBeNull();
    expect(e.device.snapshot().deviceEvent).toEqual({
      flags: 2,
      flagName: 'DESC',
      offset: 1,
      wrap: false,
    });
  });

  it('P7 driver kickPrepare follows the device event: DESC fires only for the named slot and lap', () => {
    const s = setup(3, { eventIdx: true });
    expect(s.device.setNotification(true)).toBeNull(); // DESC slot 0, wrap 1
    ok(s.driver.add([], [buf(s, 1)], 'a'));
    expect(s.driver.kickPrepare()).toBe(true);
    ok(s.driver.add([], [buf(s, 1)], 'b'));
    expect(s.driver.kickPrepare()).toBe(false); // the device asked about slot 0 only
    expect(s.driver.kickPrepare()).toBe(false);
    s.device.push(ok(s.device.pop())!, 0);
    s.device.push(ok(s.device.pop())!, 0);
    ok(s.driver.getUsed());
    ok(s.driver.getUsed());
    expect(s.device.setNotification(true)).toBeNull(); // DESC slot 2, wrap 1
    ok(s.driver.add([], [buf(s, 1)], 'c')); // slot 2: the driver wraps after it
    ok(s.driver.add([], [buf(s, 1)], 'd')); // slot 0 of lap 0
    expect(s.driver.kickPrepare()).toBe(true);
    s.device.push(ok(s.device.pop())!, 0);
    s.device.push(ok(s.device.pop())!, 0);
    ok(s.driver.getUsed());
    ok(s.driver.getUsed());
    setEvent(s, 'device', PACKED_EVENT_FLAG_DESC, 2, true); // slot 2 of the previous lap: long passed
    ok(s.driver.add([], [buf(s, 1)], 'e')); // slot 1 of lap 0
    expect(s.driver.kickPrepare()).toBe(false);
    setEvent(s, 'device', PACKED_EVENT_FLAG_DESC, 2, false); // slot 2 of this lap
    ok(s.driver.add([], [buf(s, 1)], 'f'));
    expect(s.driver.kickPrepare()).toBe(true);
  });

  it('P7 driver disable/enableCallbacks write the driver event; enable reports pending used buffers', () => {
    const s = setup(4, { eventIdx: true });
    s.driver.disableCallbacks();
    expect(s.driver.snapshot().driverEvent.flagName).toBe('DISABLE');
    ok(s.driver.add([], [buf(s, 1)], 'a'));
    s.device.push(ok(s.device.pop())!, 0);
    expect(s.device.needsInterrupt()).toBe(false);
    expect(s.driver.enableCallbacks()).toBe(false); // a used buffer is already waiting
    expect(s.driver.snapshot().driverEvent).toEqual({
      flags: 2,
      flagName: 'DESC',
      offset: 0,
      wrap: true,
    });
    expect(ok(s.driver.getUsed())!.token).toBe('a');
    // after reclaiming, the driver asks for the slot after it
    expect(s.driver.snapshot().driverEvent).toMatchObject({
      flagName: 'DESC',
      offset: 1,
      wrap: true,
    });
    expect(s.driver.enableCallbacks()).toBe(true);
    ok(s.driver.add([], [buf(s, 1)], 'b'));
    s.device.push(ok(s.device.pop())!, 0);
    expect(s.device.needsInterrupt()).toBe(true);

    const n = setup(4, { eventIdx: false });
    n.driver.disableCallbacks();
    expect(n.driver.enableCallbacks()).toBe(true);
    expect(n.driver.snapshot().driverEvent.flagName).toBe('ENABLE');
  });
});

describe('packed queue: sizes, lengths, bookkeeping', () => {
  it('P8 a queue of size 100 wraps many times with mixed list lengths and keeps both sides in step', () => {
    const s = setup(100, { indirect: true });
    let wraps = 0;
    let lastWrap = true;
    for (let round = 0; round < 400; round++) {
      const n = 1 + (round % 4);
      const r = Array.from({ length: n - 1 }, () => buf(s, 2, round & 0xff));
      const w = [buf(s, 4)];
      const id = ok(s.driver.add(r, w, `r${round}`, round % 7 === 0));
      const chain = ok(s.device.pop())!;
      expect(chain.id).toBe(id);
      expect(readAll(s, chain.readable)).toEqual(Array(2 * (n - 1)).fill(round & 0xff));
      expect(s.device.push(chain, round % 5)).toBeNull();
      expect(ok(s.driver.getUsed())).toEqual({ token: `r${round}`, len: round % 5 });
      for (const x of [...r, ...w]) s.allocator.release(x.addr);
      const st = s.device.status;
      if (st.availWrap !== lastWrap) wraps++;
      lastWrap = st.availWrap!;
      expect(st.usedIdx).toBe(st.lastAvailIdx);
      expect(st.usedWrap).toBe(st.availWrap);
    }
    expect(wraps).toBeGreaterThan(5);
    expect(s.driver.numFree).toBe(100);
  });

  it('P8 the used length is the number of bytes written, never more than the writable room', () => {
    const s = setup(4);
    ok(s.driver.add([buf(s, 8)], [buf(s, 4)], 'a'));
    const chain = ok(s.device.pop())!;
    const f = bad(s.device.push(chain, 5));
    expect([f.kind, f.rule]).toEqual(['UsedLengthTooLarge', 'P8']);
    expect(s.device.push(chain, 4)).toBeNull();
    expect(desc(s, 0).flags & WR).toBe(WR); // WRITE: the length is meaningful
    expect(ok(s.driver.getUsed())!.len).toBe(4);
    // the driver refuses a device that claims more than the buffer held
    ok(s.driver.add([], [buf(s, 2)], 'b')); // slot 2
    poke(s, 2, { addr: 0, len: 9, id: desc(s, 2).id, flags: AV | US | WR });
    expect(bad(s.driver.getUsed()).kind).toBe('UsedLengthTooLarge');
  });

  it('detachUnused returns the tokens never used and frees their slots and tables', () => {
    const s = setup(6, { indirect: true });
    const before = s.allocator.allocatedBytes;
    ok(s.driver.add([buf(s, 1)], [], 'a'));
    ok(s.driver.add([buf(s, 1), buf(s, 1)], [], 'b', true));
    ok(s.driver.add([], [buf(s, 1), buf(s, 1)], 'c'));
    expect(s.driver.numFree).toBe(2);
    expect(s.driver.detachUnused().sort()).toEqual(['a', 'b', 'c']);
    expect(s.driver.numFree).toBe(6);
    expect(s.allocator.allocatedBytes).toBe(before + 5); // only the five data buffers remain
    expect(s.driver.detachUnused()).toEqual([]);
  });

  it('snapshot decodes every descriptor, both event structures, indices and chains in flight', () => {
    const s = setup(4, { eventIdx: true });
    ok(s.driver.add([buf(s, 2)], [buf(s, 2)], 'a'));
    ok(s.driver.add([], [buf(s, 2)], 'b'));
    const c = ok(s.device.pop())!;
    s.device.setNotification(true);
    const snap = s.device.snapshot();
    expect(snap).toMatchObject({
      format: 'packed',
      index: 3,
      size: 4,
      eventIdx: true,
      unreadable: [],
    });
    expect(snap.descriptors).toHaveLength(4);
    expect(snap.descriptors[0]).toMatchObject({
      index: 0,
      flagNames: ['NEXT', 'AVAIL'],
      avail: true,
      used: false,
    });
    expect(snap.descriptors[1]!.flagNames).toEqual(['WRITE', 'AVAIL']);
    expect(snap.descriptors[3]).toMatchObject({ flags: 0, flagNames: [] });
    expect(snap.deviceEvent).toEqual({ flags: 2, flagName: 'DESC', offset: 2, wrap: true });
    expect(snap.driverEvent.flagName).toBe('ENABLE');
    expect(snap.device).toEqual({
      nextAvail: 2,
      availWrap: true,
      nextUsed: 0,
      usedWrap: true,
      signalledUsed: null,
      inFlight: [c.id],
    });
    expect(snap.driver).toBeNull();
    expect(snap.chainsInFlight).toEqual([{ id: c.id, head: 0, descriptors: [0, 1] }]);
    const d = s.driver.snapshot();
    expect(d.device).toBeNull();
    expect(d.driver).toEqual({
      nextAvail: 3,
      availWrap: true,
      nextUsed: 0,
      usedWrap: true,
      numFree: 1,
    });
    expect(d.chainsInFlight).toHaveLength(2);
  });
});

describe('packed queue: tracing', () => {
  it('emits one teaching line per step with its P rule, and wraps with the new counter', () => {
    const tracer = new RingTracer();
    const events: RingTraceEvent[] = [];
    tracer.on((e) => events.push(e));
    const s = setup(2, { eventIdx: true, tracer });
    ok(s.driver.add([buf(s, 1)], [buf(s, 1)], 'a'));
    s.driver.kickPrepare();
    const chain = ok(s.device.pop())!;
    s.device.push(chain, 1);
    s.device.needsInterrupt();
    ok(s.driver.getUsed());
    s.device.setNotification(false);
    s.driver.disableCallbacks();
    s.device.push(chain, 1); // a fault, traced too
    const ops = events.map((e) => e.op);
    expect(ops).toEqual([
      'driver-add',
      'wrap',
      'driver-notify',
      'device-pop',
      'wrap',
      'device-push',
      'wrap',
      'device-interrupt',
      'driver-reclaim',
      'wrap',
      'device-suppress',
      'driver-suppress',
      'fault',
    ]);
    for (const e of events) {
      expect(e.format).toBe('packed');
      expect(e.queue).toBe(3);
      expect(e.rule).toMatch(/^[PM]\d+$/);
      expect(e.text.length).toBeGreaterThan(20);
    }
    const pop = events.find((e) => e.op === 'device-pop')!;
    expect(pop.text).toContain(
      'device saw slot 0 AVAIL=1 USED=0 with wrap 1: buffer id 0 is available (P1)',
    );
    expect(pop.rule).toBe('P4');
    expect(events.filter((e) => e.op === 'wrap').every((e) => e.wrapCounter === false)).toBe(true);
    expect(events.at(-1)!.fault!.rule).toBe('M15');
  });

  it('builds no event while nobody listens', () => {
    const tracer = new RingTracer();
    let emitted = 0;
    tracer.emit = () => void emitted++;
    const s = setup(2, { tracer });
    cycle(s, 'quiet');
    s.device.needsInterrupt();
    s.driver.kickPrepare();
    expect(emitted).toBe(0);
  });
});
