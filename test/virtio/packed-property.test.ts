/**
 * Random add / kick / pop / push / reclaim sequences on a packed ring of a
 * random size (powers of 2 or not), driver and device side against each
 * other: bytes arrive intact both ways, used buffers come back in completion
 * order (P3) with the length written (P8), and no slot is ever lost.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GuestMemory } from '../../core/virtio/memory.js';
import { GuestAllocator } from '../../core/virtio/allocator.js';
import { isFault, type VirtioFault } from '../../core/virtio/fault.js';
import { gather, scatter, type DescriptorChain, type Segment } from '../../core/virtio/chain.js';
import {
  PackedDeviceQueue,
  PackedDriverQueue,
  layoutPackedQueue,
} from '../../core/virtio/packed-queue.js';

function ok<T>(v: T | VirtioFault): T {
  if (isFault(v)) throw new Error(v.toString());
  return v;
}

type Op =
  | { kind: 'add'; readLens: number[]; writeLens: number[]; indirect: boolean; seed: number }
  | { kind: 'pop' }
  | { kind: 'push'; pick: number; fraction: number }
  | { kind: 'reclaim' }
  | { kind: 'kick' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      readLens: fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 3 }),
      writeLens: fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 3 }),
      indirect: fc.boolean(),
      seed: fc.integer({ min: 1, max: 250 }),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: 'pop' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('push' as const),
      pick: fc.nat(),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: 'reclaim' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'kick' as const }) },
);

interface Outstanding {
  token: number;
  readable: Segment[];
  writable: Segment[];
  readBytes: number[];
}

describe('packed queue: property', () => {
  it('P3 P4 P8 random add/pop/push/reclaim sequences preserve contents, order and slots', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.boolean(),
        fc.boolean(),
        // size 'max': fast-check otherwise keeps arrays near 10 ops, too few to wrap
        fc.array(opArb, { minLength: 20, maxLength: 200, size: 'max' }),
        (size, indirect, eventIdx, ops) => {
          const memory = GuestMemory.linear(0x80000);
          const allocator = new GuestAllocator(memory);
          const layout = ok(layoutPackedQueue(memory, allocator, size));
          const options = { index: 0, layout, features: { indirect, eventIdx, inOrder: false } };
          const driver = ok(PackedDriverQueue.create<number>(options, memory, allocator));
          const device = ok(PackedDeviceQueue.create(options, memory));
          const outstanding = new Map<number, Outstanding>();
          const added: number[] = []; // tokens in add order, not yet popped
          const popped: DescriptorChain[] = [];
          const pushed: { token: number; len: number; bytes: number[] }[] = [];
          const tokenOfId = new Map<number, number>();
          let nextToken = 0;

          for (const op of ops) {
            if (op.kind === 'add') {
              if (op.readLens.length + op.writeLens.length === 0) continue;
              const mk = (len: number): Segment => ({
                addr: ok(allocator.alloc(Math.max(len, 1))),
                len,
              });
              const readable = op.readLens.map(mk);
              const writable = op.writeLens.map(mk);
              const readBytes: number[] = [];
              for (const seg of readable) {
                for (let i = 0; i < seg.len; i++) {
                  const b = (op.seed + readBytes.length * 7) & 0xff;
                  memory.write8(seg.addr + i, b);
                  readBytes.push(b);
                }
              }
              const token = nextToken++;
              const free = driver.numFree;
              const slots = op.indirect && indirect ? 1 : readable.length + writable.length;
              const id = driver.add(readable, writable, token, op.indirect);
              if (slots > free) {
                expect((id as VirtioFault).kind).toBe('QueueFull'); // P5
                for (const s of [...readable, ...writable]) allocator.release(s.addr);
                continue;
              }
              expect(typeof id).toBe('number');
              expect(driver.numFree).toBe(free - slots);
              outstanding.set(token, { token, readable, writable, readBytes });
              tokenOfId.set(id as number, token);
              added.push(token);
            } else if (op.kind === 'pop') {
              const chain = ok(device.pop());
              if (added.length === 0) {
                expect(chain).toBeNull();
                continue;
              }
              expect(chain).not.toBeNull();
              const token = added.shift()!; // P3: ring order
              expect(tokenOfId.get(chain!.id)).toBe(token);
              const o = outstanding.get(token)!;
              const dst = new Uint8Array(chain!.readableLength);
              ok(gather(memory, chain!.readable, 0, dst));
              expect([...dst]).toEqual(o.readBytes);
              expect(chain!.writable).toEqual(o.writable);
              popped.push(chain!);
            } else if (op.kind === 'push') {
              if (popped.length === 0) continue;
              const [chain] = popped.splice(op.pick % popped.length, 1);
              const len = Math.floor(op.fraction * chain!.writableLength);
              const bytes = Array.from({ length: len }, (_, i) => (chain!.id * 31 + i) & 0xff);
              expect(ok(scatter(memory, chain!.writable, 0, Uint8Array.from(bytes)))).toBe(len);
              expect(device.push(chain!, len)).toBeNull();
              pushed.push({ token: tokenOfId.get(chain!.id)!, len, bytes });
            } else if (op.kind === 'reclaim') {
              const used = ok(driver.getUsed());
              if (pushed.length === 0) {
                expect(used).toBeNull();
                continue;
              }
              const want = pushed.shift()!; // P3: completion order
              expect(used).toEqual({ token: want.token, len: want.len });
              const o = outstanding.get(want.token)!;
              const back = new Uint8Array(want.len);
              ok(gather(memory, o.writable, 0, back));
              expect([...back]).toEqual(want.bytes);
              for (const s of [...o.readable, ...o.writable]) allocator.release(s.addr);
              outstanding.delete(want.token);
            } else {
              expect(typeof ok(driver.kickPrepare())).toBe('boolean');
              expect(typeof ok(device.needsInterrupt())).toBe('boolean');
            }
            expect(device.inFlight).toBe(popped.length);
            expect(driver.numFree).toBeGreaterThanOrEqual(0);
            expect(driver.numFree).toBeLessThanOrEqual(size);
          }
          expect(
            device
              .snapshot()
              .chainsInFlight.map((c) => c.id)
              .sort(),
          ).toEqual(popped.map((c) => c.id).sort());
          // Drain: pop the rest in ring order, complete everything, reclaim
          // everything: every token comes back and every slot is free again.
          for (let c = ok(device.pop()); c !== null; c = ok(device.pop())) {
            expect(tokenOfId.get(c.id)).toBe(added.shift());
            popped.push(c);
          }
          expect(added).toEqual([]);
          for (const c of popped.splice(0)) {
            expect(device.push(c, 0)).toBeNull();
            pushed.push({ token: tokenOfId.get(c.id)!, len: 0, bytes: [] });
          }
          for (const want of pushed.splice(0)) {
            expect(ok(driver.getUsed())).toEqual({ token: want.token, len: want.len });
            outstanding.delete(want.token);
          }
          expect(ok(driver.getUsed())).toBeNull();
          expect(outstanding.size).toBe(0);
          expect(device.inFlight).toBe(0);
          expect(driver.numFree).toBe(size);
          expect(driver.detachUnused()).toEqual([]);
        },
      ),
      { numRuns: 250 },
    );
  });
});
