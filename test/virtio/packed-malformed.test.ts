/**
 * Malformed packed rings written byte by byte: every case ends in a named
 * fault (the device then goes NEEDS_RESET, G3), never an exception, an access
 * outside guest memory, or a hang, and never moves the device's state.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GuestMemory } from '../../core/virtio/memory.js';
import { GuestAllocator } from '../../core/virtio/allocator.js';
import { isFault, type VirtioFault } from '../../core/virtio/fault.js';
import {
  PACKED_DESC_F_AVAIL as AV,
  PACKED_DESC_F_INDIRECT as IND,
  PACKED_DESC_F_NEXT as NX,
  PACKED_DESC_F_USED as US,
  PACKED_DESC_F_WRITE as WR,
  type ChainLimits,
  type QueueLayout,
} from '../../core/virtio/queue.js';
import {
  PackedDeviceQueue,
  PackedDriverQueue,
  layoutPackedQueue,
} from '../../core/virtio/packed-queue.js';

const MEM = 0x40000;
const DATA = 0x20000; // scratch data area, well inside memory

function ok<T>(v: T | VirtioFault): T {
  if (isFault(v)) throw new Error(v.toString());
  return v;
}

function ring(size: number, indirect = true, limits?: ChainLimits) {
  const memory = GuestMemory.linear(MEM);
  const allocator = new GuestAllocator(memory);
  const layout = ok(layoutPackedQueue(memory, allocator, size));
  const options = {
    index: 5,
    layout,
    features: { indirect, eventIdx: false, inOrder: false },
    limits,
  };
  const device = ok(PackedDeviceQueue.create(options, memory));
  const driver = ok(PackedDriverQueue.create<number>(options, memory, allocator));
  const poke = (slot: number, addr: number, len: number, id: number, flags: number) => {
    const b = layout.descAddr + slot * 16;
    memory.write64(b, addr);
    memory.write32(b + 8, len);
    memory.write16(b + 12, id);
    memory.write16(b + 14, flags);
  };
  const table = (at: number, entries: [number, number, number][]) => {
    entries.forEach(([addr, len, flags], i) => {
      memory.write64(at + i * 16, addr);
      memory.write32(at + i * 16 + 8, len);
      memory.write16(at + i * 16 + 14, flags);
    });
  };
  return { memory, allocator, layout, device, driver, poke, table };
}

/** Pop must fail with this kind and rule, twice (no state moved), on queue 5. */
function expectFault(device: PackedDeviceQueue, kind: string, rule: string): VirtioFault {
  const before = device.status;
  const f = device.pop();
  if (!isFault(f)) throw new Error(`expected ${kind}, got ${JSON.stringify(f)}`);
  expect([f.kind, f.rule, f.queue]).toEqual([kind, rule, 5]);
  expect(device.status).toEqual(before);
  expect(device.inFlight).toBe(0);
  const again = device.pop() as VirtioFault;
  expect(again.kind).toBe(kind);
  return f;
}

describe('packed queue: malformed rings', () => {
  it('M2 packed: a buffer id not below the queue size is refused (device and driver side)', () => {
    const r = ring(8);
    r.poke(0, DATA, 8, 8, AV);
    expect(expectFault(r.device, 'InvalidBufferId', 'M2').index).toBe(8);
    r.poke(0, DATA, 8, 0xffff, AV);
    expectFault(r.device, 'InvalidBufferId', 'M2');
    // the id of a NEXT list is taken from its last descriptor only
    r.poke(0, DATA, 8, 0xffff, AV | NX);
    r.poke(1, DATA, 8, 3, AV);
    expect(ok(r.device.pop())!.id).toBe(3);
    // a device that writes a used descriptor with a bogus id
    const d = ring(4);
    ok(d.driver.add([{ addr: DATA, len: 4 }], [], 1));
    d.poke(0, 0, 0, 9, AV | US);
    const f = d.driver.getUsed() as VirtioFault;
    expect([f.kind, f.rule]).toEqual(['InvalidBufferId', 'M2']);
  });

  it('M3 packed: a NEXT list that never ends (it would wrap onto itself) is a loop', () => {
    const r = ring(4);
    for (let i = 0; i < 4; i++) r.poke(i, DATA + i * 8, 8, 0, AV | NX);
    const f = expectFault(r.device, 'DescriptorChainLoop', 'M3');
    expect(f.length).toBe(4);
  });

  it('M3 packed: a list longer than the device allows is refused, direct or through a table', () => {
    const limits: ChainLimits = { maxChainLength: 3, zeroLengthDescriptors: 'allow' };
    const r = ring(8, true, limits);
    for (let i = 0; i < 3; i++) r.poke(i, DATA, 8, 0, AV | NX);
    r.poke(3, DATA, 8, 0, AV);
    expectFault(r.device, 'ChainTooLong', 'M3');
  });

  it('M4 packed: indirect tables of length 0, not a multiple of 16, or too large', () => {
    for (const len of [0, 20, 15]) {
      const r = ring(4);
      r.poke(0, DATA + 0x1000, len, 0, AV | IND);
      expect(expectFault(r.device, 'InvalidIndirectTableLength', 'M4').length).toBe(len);
    }
    const limits: ChainLimits = { maxChainLength: 4, zeroLengthDescriptors: 'allow' };
    const r = ring(4, true, limits);
    r.poke(0, DATA + 0x1000, 5 * 16, 0, AV | IND);
    expectFault(r.device, 'ChainTooLong', 'M4');
  });

  it('M4 packed: INDIRECT inside a table is reserved and ignored (no nested walk), as the spec says', () => {
    const r = ring(4);
    r.table(DATA + 0x1000, [
      [DATA, 16, IND], // would be a nested table in a split ring: here just a readable element
      [DATA + 16, 16, WR | IND],
    ]);
    r.poke(0, DATA + 0x1000, 32, 1, AV | IND);
    const chain = ok(r.device.pop())!;
    expect(chain).toMatchObject({
      id: 1,
      readableLength: 16,
      writableLength: 16,
      descCount: 2,
      indirect: true,
    });
  });

  it('M5 packed: a readable element after a writable one, in the ring and in a table', () => {
    const r = ring(4);
    r.poke(0, DATA, 8, 0, AV | NX | WR);
    r.poke(1, DATA + 8, 8, 0, AV);
    expectFault(r.device, 'ReadableAfterWritable', 'M5');
    const t = ring(4);
    t.table(DATA + 0x1000, [
      [DATA, 8, WR],
      [DATA + 8, 8, 0],
    ]);
    t.poke(0, DATA + 0x1000, 32, 0, AV | IND);
    expectFault(t.device, 'ReadableAfterWritable', 'M5');
  });

  it('M6 packed: zero-length elements are refused by default (as QEMU) and allowed under the allow policy', () => {
    const r = ring(4, true, { maxChainLength: 1024, zeroLengthDescriptors: 'allow' });
    r.poke(0, DATA, 0, 0, AV | NX);
    r.poke(1, DATA, 0, 0, AV | WR);
    expect(ok(r.device.pop())).toMatchObject({
      readableLength: 0,
      writableLength: 0,
      descCount: 2,
    });
    const strict = ring(4);
    strict.poke(0, DATA, 8, 0, AV | NX);
    strict.poke(1, DATA, 0, 0, AV | WR);
    expectFault(strict.device, 'ZeroLengthDescriptor', 'M6');
    // a buffer with no element at all cannot even be expressed by the driver
    const f = r.driver.add([], [], 7) as VirtioFault;
    expect([f.kind, f.rule]).toEqual(['EmptyChain', 'M6']);
  });

  it('M7 packed: a buffer whose elements total more than 2^32-1 bytes', () => {
    // The sum is checked before the element's memory range, so a huge
    // second element is named for the overflow (M7), not its address (M8).
    const r = ring(4);
    r.poke(0, DATA, 8, 0, AV | NX);
    r.poke(1, DATA, 0xffffffff, 0, AV | WR);
    expectFault(r.device, 'ChainLengthOverflow', 'M7');
  });

  it('M8 packed: elements and indirect tables outside guest memory', () => {
    const cases: [number, number, number][] = [
      [MEM - 4, 8, AV], // straddles the end
      [2 ** 40, 1, AV],
      [MEM, 0x1000, AV | IND], // a table outside memory
    ];
    for (const [addr, len, flags] of cases) {
      const r = ring(4);
      r.poke(0, addr, len, 0, flags);
      const f = expectFault(r.device, 'GuestMemoryOutOfRange', 'M8');
      expect(f.address).toBe(addr);
    }
    const r = ring(4);
    r.table(DATA + 0x1000, [[MEM + 0x100, 4, 0]]);
    r.poke(0, DATA + 0x1000, 16, 0, AV | IND);
    expectFault(r.device, 'GuestMemoryOutOfRange', 'M8');
    // a 64-bit address beyond anything modelled
    const h = ring(4);
    h.poke(0, 0, 8, 0, AV);
    h.memory.write32(h.layout.descAddr + 4, 0xffffffff);
    expectFault(h.device, 'GuestMemoryOutOfRange', 'M8');
  });

  it('M9 packed: an id made available again while in flight, or more slots in flight than the ring', () => {
    const r = ring(4);
    r.poke(0, DATA, 8, 2, AV);
    ok(r.device.pop());
    r.poke(1, DATA, 8, 2, AV);
    const f = r.device.pop() as VirtioFault;
    expect([f.kind, f.rule, f.index]).toEqual(['InvalidBufferId', 'M9', 2]);
    // A driver that overwrote slots still in flight: the device has popped
    // 0..3 (nothing pushed) and the driver makes slot 0 available again.
    const s = ring(4);
    for (let i = 0; i < 4; i++) s.poke(i, DATA, 8, i, AV);
    for (let i = 0; i < 4; i++) ok(s.device.pop());
    s.poke(0, DATA, 8, 0, US); // lap 0 "available", id 0 is in flight
    expect((s.device.pop() as VirtioFault).rule).toBe('M9');
    // a two-slot list with a fresh id still needs more ring than exists
    const t = ring(3);
    t.poke(0, DATA, 8, 0, AV);
    t.poke(1, DATA, 8, 1, AV);
    ok(t.device.pop());
    ok(t.device.pop());
    t.poke(2, DATA, 8, 0, AV | NX);
    t.poke(0, DATA, 8, 2, US);
    const g = t.device.pop() as VirtioFault;
    expect([g.kind, g.rule]).toEqual(['TooManyBuffersInFlight', 'M9']);
  });

  it('M15 packed: the device refuses to push an id twice; the driver refuses a used id not outstanding', () => {
    const r = ring(4);
    ok(r.driver.add([], [{ addr: DATA, len: 8 }], 1));
    ok(r.driver.add([], [{ addr: DATA + 8, len: 8 }], 2));
    const chain = ok(r.device.pop())!;
    expect(r.device.push(chain, 0)).toBeNull();
    const f = r.device.push(chain, 0) as VirtioFault;
    expect([f.kind, f.rule, f.index]).toEqual(['DuplicateUsedHead', 'M15', chain.id]);
    expect(r.device.push({ ...chain, id: 99 }, 0)!.rule).toBe('M15');
    expect(ok(r.driver.getUsed())).toEqual({ token: 1, len: 0 });
    // a misbehaving device writes a used descriptor for the id just reclaimed
    r.poke(1, 0, 0, chain.id, AV | US);
    const g = r.driver.getUsed() as VirtioFault;
    expect([g.kind, g.rule]).toEqual(['UnknownUsedId', 'M15']);
  });

  it('M8 packed: random ring bytes never throw, never touch memory outside, and pop never hangs', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.uint8Array({ minLength: 16 * 9, maxLength: 16 * 9 }),
        fc.boolean(),
        fc.constantFrom<'allow' | 'reject'>('allow', 'reject'),
        (size, bytes, indirect, zero) => {
          const r = ring(size, indirect, { maxChainLength: 16, zeroLengthDescriptors: zero });
          r.memory.writeBytes(r.layout.descAddr, bytes.subarray(0, size * 16));
          // steer some addresses into memory so that deeper checks are reached
          for (let i = 0; i < size; i++) {
            if (bytes[i]! & 1)
              r.memory.write64(r.layout.descAddr + i * 16, DATA + (bytes[i]! << 4));
          }
          for (let n = 0; n < 3 * size + 2; n++) {
            const got = r.device.pop();
            if (got === null) break;
            if (isFault(got)) {
              expect(got.rule).toMatch(/^[PM]\d+$/);
              break;
            }
            expect(got.id).toBeLessThan(size);
            expect(r.device.push(got, 0)).toBeNull();
          }
          const snap = r.device.snapshot();
          expect(snap.descriptors).toHaveLength(size);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('packed queue: layouts a driver may program', () => {
  it('M8 packed: queues whose parts overlap the end of a memory region are refused', () => {
    const memory = ok(
      GuestMemory.create([
        { base: 0, size: 0x2000 },
        { base: 0x3000, size: 0x1000 },
      ]),
    );
    const features = { indirect: false, eventIdx: false, inOrder: false };
    // 32 descriptors (512 bytes) from 0x1f00 run into the hole at 0x2000
    const layout: QueueLayout = {
      format: 'packed',
      size: 32,
      descAddr: 0x1f00,
      driverAddr: 0x3000,
      deviceAddr: 0x3004,
    };
    const f = PackedDeviceQueue.create({ index: 5, layout, features }, memory) as VirtioFault;
    expect([f.kind, f.rule, f.address]).toEqual(['GuestMemoryOutOfRange', 'M8', 0x1f00]);
  });
});
