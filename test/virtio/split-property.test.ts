/**
 * Property: any interleaving of driver adds, kicks and reclaims with device
 * pops and pushes keeps both rings FIFO (pops in add order, reclaims in push
 * order) and moves the bytes intact in both directions.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { gather, scatter, type DescriptorChain, type Segment } from '../../core/virtio/chain.js';
import { VirtioFault } from '../../core/virtio/fault.js';
import { buffer, makeRig, must, pattern } from './split-helpers.js';

type Op =
  | { op: 'add'; rd: number[]; wr: number[]; indirect: boolean }
  | { op: 'kick' }
  | { op: 'pop' }
  | { op: 'push'; pick: number; fill: number }
  | { op: 'reclaim' };

const lens = fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 4 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('add' as const),
      rd: lens,
      wr: lens,
      indirect: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('kick' as const) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('pop' as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('push' as const),
      pick: fc.nat(),
      fill: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('reclaim' as const) }) },
);

interface Sent {
  token: number;
  out: Uint8Array;
  rd: Segment[];
  wr: Segment[];
}

describe('split queue: property', () => {
  it('S4 S8 S9 M10 random adds, pops, pushes and reclaims keep FIFO order and byte contents', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(2, 4, 8, 16),
        fc.boolean(),
        fc.array(opArb, { minLength: 1, maxLength: 120 }),
        (size, eventIdx, ops) => {
          const rig = makeRig({ size, indirect: true, eventIdx });
          const sent = new Map<number, Sent>();
          const added: number[] = []; // tokens added, not yet published
          const published: number[] = []; // tokens the device should pop next, in order
          const held: { chain: DescriptorChain; token: number }[] = [];
          const used: { token: number; reply: Uint8Array }[] = [];
          let nextToken = 0;

          for (const step of ops) {
            switch (step.op) {
              case 'add': {
                if (step.rd.length + step.wr.length === 0) break;
                const token = nextToken++;
                const out = pattern(
                  step.rd.reduce((a, b) => a + b, 0),
                  token,
                );
                const rd: Segment[] = [];
                let at = 0;
                for (const n of step.rd) {
                  rd.push(buffer(rig, out.subarray(at, at + n)));
                  at += n;
                }
                const wr = step.wr.map((n) => buffer(rig, n));
                const free = rig.driver.numFree;
                const need = step.indirect ? 1 : rd.length + wr.length;
                const head = rig.driver.add(rd, wr, token, step.indirect);
                if (head instanceof VirtioFault) {
                  expect(head.kind).toBe('QueueFull');
                  expect(free).toBeLessThan(need);
                  for (const s of [...rd, ...wr]) rig.allocator.release(s.addr);
                  break;
                }
                expect(rig.driver.numFree).toBe(free - need);
                sent.set(token, { token, out, rd, wr });
                added.push(token);
                break;
              }
              case 'kick':
                must(rig.driver.kickPrepare());
                published.push(...added.splice(0));
                break;
              case 'pop': {
                const chain = must(rig.device.pop());
                if (published.length === 0) {
                  expect(chain).toBeNull();
                  break;
                }
                const token = published.shift()!;
                const s = sent.get(token)!;
                expect(chain).not.toBeNull();
                expect(chain!.readable).toEqual(s.rd);
                expect(chain!.writable).toEqual(s.wr);
                const got = new Uint8Array(chain!.readableLength);
                must(gather(rig.memory, chain!.readable, 0, got));
                expect(got).toEqual(s.out);
                held.push({ chain: chain!, token });
                break;
              }
              case 'push': {
                if (held.length === 0) break;
                const { chain, token } = held.splice(step.pick % held.length, 1)[0]!;
                const n = Math.floor(chain.writableLength * step.fill);
                const reply = pattern(n, token + 1000);
                must(scatter(rig.memory, chain.writable, 0, reply));
                expect(rig.device.push(chain, n)).toBeNull();
                used.push({ token, reply });
                must(rig.device.needsInterrupt());
                break;
              }
              case 'reclaim': {
                const u = must(rig.driver.getUsed());
                if (used.length === 0) {
                  expect(u).toBeNull();
                  break;
                }
                const want = used.shift()!;
                expect(u).toEqual({ token: want.token, len: want.reply.length });
                const s = sent.get(want.token)!;
                const back = new Uint8Array(want.reply.length);
                must(gather(rig.memory, s.wr, 0, back));
                expect(back).toEqual(want.reply);
                for (const seg of [...s.rd, ...s.wr]) rig.allocator.release(seg.addr);
                sent.delete(want.token);
                break;
              }
            }
            expect(rig.device.inFlight).toBe(held.length);
          }
          // Drain: everything outstanding comes back through detachUnused.
          const left = rig.driver.detachUnused().sort((a, b) => a - b);
          expect(left).toEqual([...sent.keys()].sort((a, b) => a - b));
          expect(rig.driver.numFree).toBe(size);
        },
      ),
      { numRuns: 200 },
    );
  });
});
