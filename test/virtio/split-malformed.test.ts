/**
 * Malformed split rings, written byte by byte the way a buggy or hostile
 * driver would: every one must end in a named fault (queue, rule, index or
 * address), never in an exception, a hang or an access outside memory.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { gather } from '../../core/virtio/chain.js';
import { VirtioFault } from '../../core/virtio/fault.js';
import {
  SPLIT_DESC_F_INDIRECT as IND,
  SPLIT_DESC_F_NEXT as NEXT,
  SPLIT_DESC_F_WRITE as WRITE,
} from '../../core/virtio/queue.js';
import {
  buffer,
  checksum,
  expectFault,
  makeRig,
  must,
  pattern,
  pokeAvail,
  pokeDesc,
  pokeDescAt,
  popChain,
  setAvailIdx,
  type Rig,
  type RigOptions,
} from './split-helpers.js';

const MEM = 1 << 20;

function rig(o: RigOptions = {}): Rig & { buf: number; table: number } {
  const r = makeRig({ size: 8, indirect: true, memSize: MEM, ...o });
  const buf = must(r.allocator.alloc(0x4000, 16));
  const table = must(r.allocator.alloc(0x1000, 16));
  return { ...r, buf, table };
}

describe('split queue: malformed available ring', () => {
  it('M1 S8 avail.idx more than the queue size ahead of last_avail_idx is refused', () => {
    const r = rig();
    for (let i = 0; i < 8; i++) pokeDesc(r, i, { addr: r.buf, len: 8 });
    setAvailIdx(r, 9);
    expectFault(r.device.hasAvailable(), 'AvailIndexTooFarAhead', 'M1', { queue: 1, index: 9 });
    expectFault(r.device.pop(), 'AvailIndexTooFarAhead', 'M1', { queue: 1, index: 9 });
    // Exactly a full ring is fine.
    for (let i = 0; i < 8; i++) r.memory.write16(r.layout.driverAddr + 4 + 2 * i, i);
    setAvailIdx(r, 8);
    for (let i = 0; i < 8; i++) expect(popChain(r).head).toBe(i);
    expect(r.device.inFlight).toBe(8);
  });

  it('S8 M1 avail.idx that goes backwards is refused', () => {
    const r = rig();
    for (let i = 0; i < 3; i++) pokeDesc(r, i, { addr: r.buf, len: 8 });
    pokeAvail(r, 0, 1, 2);
    popChain(r);
    // Back from 3 to 2: still ahead of last_avail_idx 1, but published buffers cannot vanish.
    setAvailIdx(r, 2);
    expectFault(r.device.pop(), 'AvailIndexWentBackwards', 'S8', { queue: 1, index: 2 });
    // Back behind what was consumed looks like 65535 entries ahead.
    setAvailIdx(r, 0);
    expectFault(r.device.pop(), 'AvailIndexTooFarAhead', 'M1', { index: 0 });
    setAvailIdx(r, 3);
    expect(popChain(r).head).toBe(1);
  });

  it('M2 a head index outside the descriptor table is refused', () => {
    const r = rig();
    pokeAvail(r, 8);
    const f = expectFault(r.device.pop(), 'InvalidDescriptorIndex', 'M2', { queue: 1, index: 8 });
    expect(f.address).toBe(r.layout.driverAddr + 4);
    expect(r.device.status.lastAvailIdx).toBe(0); // nothing consumed
  });

  it('M9 more chains in flight than the queue size, or a head made available twice, is refused', () => {
    const r = rig({ size: 4 });
    for (let i = 0; i < 4; i++) pokeDesc(r, i, { addr: r.buf, len: 8 });
    pokeAvail(r, 0, 1, 2, 3);
    for (let i = 0; i < 4; i++) popChain(r);
    pokeAvail(r, 0);
    expectFault(r.device.pop(), 'TooManyBuffersInFlight', 'M9', { queue: 1 });
    const r2 = rig({ size: 4 });
    pokeDesc(r2, 0, { addr: r2.buf, len: 8 });
    pokeAvail(r2, 0, 0);
    popChain(r2);
    expectFault(r2.device.pop(), 'HeadAlreadyInFlight', 'M9', { index: 0 });
  });
});

describe('split queue: malformed descriptor chains', () => {
  it('M2 a next index outside the descriptor table is refused', () => {
    const r = rig();
    pokeDesc(r, 0, { addr: r.buf, len: 8, flags: NEXT, next: 1 });
    pokeDesc(r, 1, { addr: r.buf, len: 8, flags: NEXT, next: 200 });
    pokeAvail(r, 0);
    const f = expectFault(r.device.pop(), 'InvalidDescriptorIndex', 'M2', {
      queue: 1,
      index: 200,
    });
    expect(f.address).toBe(r.layout.descAddr + 16 + 14);
  });

  it('M3 S5 direct loops are found by counting to the queue size; a chain of exactly size is fine', () => {
    for (const links of [[0], [0, 1, 2, 0], [3, 4, 5, 6, 7, 3]]) {
      const r = rig();
      for (let k = 0; k < links.length - 1; k++) {
        pokeDesc(r, links[k]!, { addr: r.buf, len: 8, flags: NEXT, next: links[k + 1]! });
      }
      if (links.length === 1) pokeDesc(r, 0, { addr: r.buf, len: 8, flags: NEXT, next: 0 });
      pokeAvail(r, links[0]!);
      const f = expectFault(r.device.pop(), 'DescriptorChainLoop', 'M3', { queue: 1 });
      expect(f.message).toContain('S5');
    }
    const r = rig();
    for (let i = 0; i < 8; i++) {
      pokeDesc(r, i, { addr: r.buf, len: 8, flags: i < 7 ? NEXT : 0, next: i + 1 });
    }
    pokeAvail(r, 0);
    const chain = popChain(r);
    expect(chain.descCount).toBe(8);
    expect(chain.readableLength).toBe(64);
  });

  it('M3 loops inside an indirect table are found by counting its entries', () => {
    const r = rig();
    pokeDescAt(r.memory, r.table, 0, { addr: r.buf, len: 8, flags: NEXT, next: 1 });
    pokeDescAt(r.memory, r.table, 1, { addr: r.buf, len: 8, flags: NEXT, next: 2 });
    pokeDescAt(r.memory, r.table, 2, { addr: r.buf, len: 8, flags: NEXT, next: 1 });
    pokeDesc(r, 0, { addr: r.table, len: 48, flags: IND });
    pokeAvail(r, 0);
    expectFault(r.device.pop(), 'DescriptorChainLoop', 'M3', { queue: 1, index: 1 });
    // Same table, entry 2 chains outside it instead.
    pokeDescAt(r.memory, r.table, 2, { addr: r.buf, len: 8, flags: NEXT, next: 3 });
    expectFault(r.device.pop(), 'InvalidDescriptorIndex', 'M2', { index: 3 });
  });

  it('S3 chains are capped at limits.maxChainLength, counting indirect entries', () => {
    const limits = { maxChainLength: 3, zeroLengthDescriptors: 'allow' as const };
    const r = rig({ limits });
    for (let i = 0; i < 4; i++) {
      pokeDesc(r, i, { addr: r.buf, len: 8, flags: i < 3 ? NEXT : 0, next: i + 1 });
    }
    pokeAvail(r, 0);
    expectFault(r.device.pop(), 'ChainTooLong', 'S3', { queue: 1, index: 3 });
    // 2 direct + a 2-entry table = 4 buffers.
    const r2 = rig({ limits });
    pokeDesc(r2, 0, { addr: r2.buf, len: 8, flags: NEXT, next: 1 });
    pokeDesc(r2, 1, { addr: r2.buf, len: 8, flags: NEXT, next: 2 });
    pokeDesc(r2, 2, { addr: r2.table, len: 32, flags: IND });
    pokeDescAt(r2.memory, r2.table, 0, { addr: r2.buf, len: 8, flags: NEXT | WRITE, next: 1 });
    pokeDescAt(r2.memory, r2.table, 1, { addr: r2.buf, len: 8, flags: WRITE });
    pokeAvail(r2, 0);
    expectFault(r2.device.pop(), 'ChainTooLong', 'S3', { index: 1 });
  });

  it('S3 any split of a message over descriptors is accepted and reads the same bytes', () => {
    const msg = pattern(60, 42);
    const splits = [[60], [1, 59], [20, 20, 20], [1, 9, 1, 49], [7, 7, 7, 7, 7, 7, 18]];
    for (const indirect of [false, true]) {
      const r = rig({ size: 8 });
      for (const split of splits) {
        const segs = [];
        let at = 0;
        for (const n of split) {
          segs.push(buffer(r, msg.subarray(at, at + n)));
          at += n;
        }
        must(r.driver.add(segs, [], 0, indirect));
        must(r.driver.kickPrepare());
        const chain = popChain(r);
        expect(chain.readable.length).toBe(split.length);
        const got = new Uint8Array(60);
        expect(must(gather(r.memory, chain.readable, 0, got))).toBe(60);
        expect(got).toEqual(msg);
        r.device.push(chain, 0);
        must(r.driver.getUsed());
      }
    }
  });

  it('S4 M5 a readable descriptor after a writable one is refused, across an indirect table too', () => {
    const r = rig();
    pokeDesc(r, 0, { addr: r.buf, len: 8, flags: NEXT, next: 1 });
    pokeDesc(r, 1, { addr: r.buf, len: 8, flags: NEXT | WRITE, next: 2 });
    pokeDesc(r, 2, { addr: r.buf, len: 8 });
    pokeAvail(r, 0);
    expectFault(r.device.pop(), 'ReadableAfterWritable', 'M5', { queue: 1, index: 2 });

    const r2 = rig();
    pokeDesc(r2, 0, { addr: r2.buf, len: 8, flags: NEXT | WRITE, next: 1 });
    pokeDesc(r2, 1, { addr: r2.table, len: 16, flags: IND });
    pokeDescAt(r2.memory, r2.table, 0, { addr: r2.buf, len: 8 });
    pokeAvail(r2, 0);
    expectFault(r2.device.pop(), 'ReadableAfterWritable', 'M5', { index: 0 });

    const r3 = rig();
    pokeDesc(r3, 0, { addr: r3.table, len: 32, flags: IND });
    pokeDescAt(r3.memory, r3.table, 0, { addr: r3.buf, len: 8, flags: WRITE | NEXT, next: 1 });
    pokeDescAt(r3.memory, r3.table, 1, { addr: r3.buf, len: 8 });
    pokeAvail(r3, 0);
    const f = expectFault(r3.device.pop(), 'ReadableAfterWritable', 'M5', { index: 1 });
    expect(f.message).toContain('indirect table entry 1');
  });

  it('M6 zero-length descriptors are refused by default (as QEMU) and accepted under the allow policy', () => {
    const build = (r: Rig & { buf: number }) => {
      pokeDesc(r, 0, { addr: r.buf, len: 0, flags: NEXT, next: 1 });
      pokeDesc(r, 1, { addr: r.buf, len: 0, flags: WRITE });
      pokeAvail(r, 0);
    };
    const allow = rig({ limits: { maxChainLength: 1024, zeroLengthDescriptors: 'allow' } });
    build(allow);
    const chain = popChain(allow);
    expect([chain.readable.length, chain.writable.length]).toEqual([1, 1]);
    expect(chain.readableLength + chain.writableLength).toBe(0);
    expect(allow.device.push(chain, 0)).toBeNull();
    const reject = rig(); // the default refuses them, as QEMU does
    build(reject);
    const f = expectFault(reject.device.pop(), 'ZeroLengthDescriptor', 'M6', {
      queue: 1,
      index: 0,
    });
    expect(f.message).toContain("'reject'");
  });

  it('M7 S5 a chain whose total length passes 2^32 - 1 is refused before its buffers are checked', () => {
    const r = rig();
    pokeDesc(r, 0, { addr: 0x10000, len: 0x8000_0000, flags: NEXT, next: 1 });
    pokeDesc(r, 1, { addr: 0x10000, len: 0x8000_0000, flags: WRITE });
    pokeAvail(r, 0);
    expectFault(r.device.pop(), 'ChainLengthOverflow', 'M7', { queue: 1, index: 1 });
    // 2^32 - 1 exactly fits, so the buffer range is what fails.
    pokeDesc(r, 1, { addr: 0x10000, len: 0x7fff_ffff, flags: WRITE });
    expectFault(r.device.pop(), 'GuestMemoryOutOfRange', 'M8', { index: 0, address: 0x10000 });
  });

  it('M8 buffers, indirect tables and 64-bit addresses outside guest memory are refused', () => {
    const r = rig();
    pokeDesc(r, 0, { addr: r.buf, len: 8, flags: NEXT, next: 1 });
    pokeDesc(r, 1, { addr: MEM - 4, len: 8, flags: WRITE });
    pokeAvail(r, 0);
    const f = expectFault(r.device.pop(), 'GuestMemoryOutOfRange', 'M8', {
      queue: 1,
      index: 1,
      address: MEM - 4,
    });
    expect(f.length).toBe(8);
    // An address beyond 2^53 never reaches arithmetic.
    pokeDesc(r, 1, { addr: 2 ** 62, len: 8, flags: WRITE });
    expectFault(r.device.pop(), 'GuestMemoryOutOfRange', 'M8', { index: 1 });
    // Indirect table partly outside memory.
    pokeDesc(r, 1, { addr: MEM - 16, len: 32, flags: IND });
    expectFault(r.device.pop(), 'GuestMemoryOutOfRange', 'M8', { index: 1, address: MEM - 16 });
    // A buffer named by an indirect entry.
    pokeDesc(r, 1, { addr: r.table, len: 16, flags: IND });
    pokeDescAt(r.memory, r.table, 0, { addr: MEM, len: 1, flags: WRITE });
    expectFault(r.device.pop(), 'GuestMemoryOutOfRange', 'M8', { index: 0, address: MEM });
    expect(r.device.status.lastAvailIdx).toBe(0);
  });
});

describe('split queue: malformed indirect descriptors', () => {
  it('M4 indirect tables of length 0, not a multiple of 16, or too large are refused', () => {
    for (const [len, what] of [
      [0, 'empty'],
      [24, 'not a multiple of 16'],
      [16 * 1025, 'more than the 1024'],
    ] as const) {
      const r = rig();
      pokeDesc(r, 0, { addr: r.table, len, flags: IND });
      pokeAvail(r, 0);
      const f = expectFault(r.device.pop(), 'InvalidIndirectTableLength', 'M4', {
        queue: 1,
        index: 0,
        address: r.table,
      });
      expect(f.message).toContain(what);
    }
  });

  it('M4 S6 an INDIRECT entry inside an indirect table is refused', () => {
    const r = rig();
    pokeDesc(r, 0, { addr: r.table, len: 32, flags: IND });
    pokeDescAt(r.memory, r.table, 0, { addr: r.buf, len: 8, flags: NEXT, next: 1 });
    pokeDescAt(r.memory, r.table, 1, { addr: r.table, len: 32, flags: IND });
    pokeAvail(r, 0);
    expectFault(r.device.pop(), 'NestedIndirectDescriptor', 'M4', {
      queue: 1,
      index: 1,
      address: r.table + 16,
    });
  });

  it('S6 INDIRECT is refused unless negotiated, and never together with NEXT', () => {
    const r = rig({ indirect: false });
    pokeDesc(r, 0, { addr: r.table, len: 16, flags: IND });
    pokeDescAt(r.memory, r.table, 0, { addr: r.buf, len: 8 });
    pokeAvail(r, 0);
    expectFault(r.device.pop(), 'IndirectNotNegotiated', 'S6', { queue: 1, index: 0 });
    const r2 = rig();
    pokeDesc(r2, 0, { addr: r2.table, len: 16, flags: IND | NEXT, next: 1 });
    pokeDesc(r2, 1, { addr: r2.buf, len: 8 });
    pokeAvail(r2, 0);
    expectFault(r2.device.pop(), 'IndirectWithNext', 'S6', { index: 0 });
  });

  it('S6 the table is walked from entry 0 and only along its own NEXT links', () => {
    const r = rig();
    pokeDesc(r, 0, { addr: r.table, len: 64, flags: IND });
    pokeDescAt(r.memory, r.table, 0, { addr: r.buf, len: 1, flags: NEXT, next: 2 });
    pokeDescAt(r.memory, r.table, 1, { addr: MEM + 100, len: 1, flags: IND }); // never visited
    pokeDescAt(r.memory, r.table, 2, { addr: r.buf + 2, len: 2, flags: WRITE });
    pokeDescAt(r.memory, r.table, 3, { addr: 0, len: 0, flags: 0xffff, next: 0xffff });
    pokeAvail(r, 0);
    const chain = popChain(r);
    expect(chain.readable).toEqual([{ addr: r.buf, len: 1 }]);
    expect(chain.writable).toEqual([{ addr: r.buf + 2, len: 2 }]);
    expect(chain.descCount).toBe(3);
  });

  it('S7 WRITE on the indirect pointer is ignored, and direct descriptors may precede one indirect', () => {
    const r = rig();
    pokeDesc(r, 5, { addr: r.buf, len: 4, flags: NEXT, next: 6 });
    pokeDesc(r, 6, { addr: r.buf + 4, len: 4, flags: NEXT, next: 2 });
    pokeDesc(r, 2, { addr: r.table, len: 32, flags: IND | WRITE });
    pokeDescAt(r.memory, r.table, 0, { addr: r.buf + 8, len: 8, flags: NEXT, next: 1 });
    pokeDescAt(r.memory, r.table, 1, { addr: r.buf + 16, len: 16, flags: WRITE });
    pokeAvail(r, 5);
    const chain = popChain(r);
    expect(chain.head).toBe(5);
    expect(chain.indirect).toBe(true);
    expect(chain.ringDescCount).toBe(3);
    expect(chain.descCount).toBe(5);
    expect(chain.readable.map((s) => s.len)).toEqual([4, 4, 8]);
    expect(chain.writable).toEqual([{ addr: r.buf + 16, len: 16 }]);
    expect(r.device.snapshot().chainsInFlight).toEqual([{ head: 5, descriptors: [5, 6, 2] }]);
  });
});

describe('split queue: direction split', () => {
  it('M10 C5 readable and writable parts are exact, so the device can refuse wrong-direction buffers', () => {
    const r = rig();
    const out = [buffer(r, pattern(3, 1)), buffer(r, pattern(5, 2)), buffer(r, pattern(7, 3))];
    const inn = [buffer(r, 11), buffer(r, 13)];
    must(r.driver.add(out, inn, 1));
    must(r.driver.add(out, [], 2, true));
    must(r.driver.add([], inn, 3, true));
    must(r.driver.kickPrepare());
    const a = popChain(r);
    expect(a.readable).toEqual(out);
    expect(a.writable).toEqual(inn);
    expect([a.readableLength, a.writableLength]).toEqual([15, 24]);
    const tx = popChain(r);
    expect([tx.readable.length, tx.writable.length, tx.writableLength]).toEqual([3, 0, 0]);
    const rx = popChain(r);
    expect([rx.readable.length, rx.readableLength, rx.writable.length]).toEqual([0, 0, 2]);
  });
});

describe('split queue: fuzzed rings', () => {
  it('M1 M2 M3 M4 M5 M8 S2 S6 garbage rings give chains or named faults, never throws, hangs or stray writes', () => {
    const size = 8;
    // Each rule the title names, and the faults that are its own outcome (S2's
    // outcome is the unchanged descriptor and indirect tables, checked per run).
    const OWN_FAULTS: Record<string, readonly string[]> = {
      M1: ['AvailIndexTooFarAhead'],
      M2: ['InvalidDescriptorIndex'],
      M3: ['DescriptorChainLoop'],
      M4: ['InvalidIndirectTableLength', 'NestedIndirectDescriptor'],
      M5: ['ReadableAfterWritable'],
      M8: ['GuestMemoryOutOfRange'],
      S6: ['IndirectNotNegotiated', 'IndirectWithNext'],
    };
    // Rules garbage may also break on the way, with their own faults.
    const ALSO: Record<string, readonly string[]> = {
      M6: ['ZeroLengthDescriptor'],
      M7: ['ChainLengthOverflow'],
      S3: ['ChainTooLong'],
      S8: ['AvailIndexWentBackwards'],
      M9: ['TooManyBuffersInFlight', 'HeadAlreadyInFlight'],
    };
    const seen = new Set<string>();
    let intactRuns = 0;
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16 * size, maxLength: 16 * size }),
        fc.uint8Array({ minLength: 256, maxLength: 256 }),
        fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 2 }),
        (descBytes, tableBytes, heads, availIdx, tame) => {
          const r = rig({ size, memSize: 1 << 16 });
          r.memory.writeBytes(r.layout.descAddr, descBytes);
          r.memory.writeBytes(r.table, tableBytes);
          // Tamer rings get past the first checks: addresses and lengths
          // mostly inside memory (1), then next links inside the table and
          // only the three defined flags (2), so walks meet loops and order errors.
          for (let i = 0; i < size && tame > 0; i++) {
            const at = r.layout.descAddr + 16 * i;
            r.memory.write32(at + 4, 0);
            r.memory.write16(at + 2, 0);
            r.memory.write16(at + 10, 0);
            if (tame === 2) {
              r.memory.write32(at + 8, must(r.memory.read32(at + 8)) & 0x3f);
              r.memory.write16(at + 12, must(r.memory.read16(at + 12)) & 7);
              r.memory.write16(at + 14, must(r.memory.read16(at + 14)) & 7);
            }
          }
          for (let i = 0; i < heads.length; i++) {
            r.memory.write16(r.layout.driverAddr + 4 + 2 * (i % size), heads[i]!);
          }
          setAvailIdx(r, heads.length > size ? availIdx : heads.length);
          const guard = checksum(r.memory, r.layout.descAddr, 16 * size);
          const tables = checksum(r.memory, r.table, 256);
          for (let n = 0; n < 2 * size + 2; n++) {
            const c = r.device.pop();
            if (c === null) break;
            if (c instanceof VirtioFault) {
              expect(c.queue).toBe(1);
              const own = OWN_FAULTS[c.rule] ?? ALSO[c.rule];
              expect(own, `${c.rule} ${c.kind}: ${c.message}`).toContain(c.kind);
              expect(c.index !== undefined || c.address !== undefined).toBe(true);
              seen.add(c.rule);
              break;
            }
            for (const s of [...c.readable, ...c.writable]) {
              expect(r.memory.check(s.addr, s.len)).toBeNull();
            }
            expect(c.readable.length + c.writable.length).toBeLessThanOrEqual(1024);
            expect(r.device.push(c, c.writableLength)).toBeNull();
          }
          // S2: neither the descriptor table nor the indirect tables were written.
          expect(checksum(r.memory, r.layout.descAddr, 16 * size)).toBe(guard);
          expect(checksum(r.memory, r.table, 256)).toBe(tables);
          intactRuns++;
          r.device.snapshot();
        },
      ),
      { numRuns: 300, seed: 12 },
    );
    // Every rule of the title was broken by some ring, and met with its own fault.
    expect([...seen].filter((rule) => rule in OWN_FAULTS).sort()).toEqual(
      Object.keys(OWN_FAULTS).sort(),
    );
    expect(intactRuns).toBeGreaterThanOrEqual(300);
  });
});
