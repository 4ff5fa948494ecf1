import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GuestMemory } from '../../core/virtio/memory.js';
import { GuestAllocator } from '../../core/virtio/allocator.js';
import { VirtioFault, isFault } from '../../core/virtio/fault.js';

function mem(): GuestMemory {
  const m = GuestMemory.create([
    { base: 0x0, size: 0x10000 },
    { base: 0x100000, size: 0x1000 },
  ]);
  if (isFault(m)) throw new Error(m.toString());
  return m;
}

describe('guest memory', () => {
  it('reads and writes little-endian values in every region', () => {
    const m = mem();
    expect(m.write16(0x10, 0xbeef)).toBeNull();
    expect(m.read8(0x10)).toBe(0xef);
    expect(m.read8(0x11)).toBe(0xbe);
    expect(m.write32(0x100ffc, 0xdeadbeef)).toBeNull();
    expect(m.read32(0x100ffc)).toBe(0xdeadbeef);
    expect(m.write64(0x20, 0x1234_5678_9abc)).toBeNull();
    expect(m.read64(0x20)).toBe(0x1234_5678_9abc);
    expect(m.read32(0x20)).toBe(0x5678_9abc);
  });

  it('M8 refuses accesses outside every region with a named fault carrying the address', () => {
    const m = mem();
    for (const [addr, read] of [
      [0x10000, (a: number) => m.read8(a)],
      [0xffff, (a: number) => m.read16(a)], // straddles the end of region 0
      [0x100ffe, (a: number) => m.read32(a)],
      [0x50000, (a: number) => m.read64(a)], // the hole between regions
      [-1, (a: number) => m.read8(a)],
      [Number.NaN, (a: number) => m.read8(a)],
      [2 ** 60, (a: number) => m.read16(a)],
      [0.5, (a: number) => m.read8(a)],
    ] as const) {
      const r = read(addr);
      expect(r).toBeInstanceOf(VirtioFault);
      const f = r as VirtioFault;
      expect(f.kind).toBe('GuestMemoryOutOfRange');
      expect(f.rule).toBe('M8');
    }
    const f = m.write32(0x10000 - 2, 1) as VirtioFault;
    expect(f.address).toBe(0xfffe);
    expect(f.length).toBe(4);
    expect(m.readBytes(0xff00, 0x200)).toBeInstanceOf(VirtioFault);
    expect(m.writeBytes(0x100f00, new Uint8Array(0x101))).toBeInstanceOf(VirtioFault);
  });

  it('M8 refuses an access that straddles two adjacent regions', () => {
    const m = GuestMemory.create([
      { base: 0, size: 0x1000 },
      { base: 0x1000, size: 0x1000 },
    ]) as GuestMemory;
    expect(m.read32(0xffe)).toBeInstanceOf(VirtioFault);
    expect(m.read32(0xffc)).toBe(0);
    expect(m.read32(0x1000)).toBe(0);
  });

  it('M8 reports a 64-bit value beyond 2^53 as a fault, not a rounded number', () => {
    const m = mem();
    m.write32(0x40, 0xffffffff);
    m.write32(0x44, 0xffffffff);
    const r = m.read64(0x40);
    expect(r).toBeInstanceOf(VirtioFault);
    expect((r as VirtioFault).rule).toBe('M8');
  });

  it('rejects bad layouts as values', () => {
    expect(GuestMemory.create([])).toBeInstanceOf(VirtioFault);
    expect(
      GuestMemory.create([
        { base: 0, size: 0x2000 },
        { base: 0x1000, size: 0x1000 },
      ]),
    ).toBeInstanceOf(VirtioFault);
    expect(GuestMemory.create([{ base: 0, size: 0 }])).toBeInstanceOf(VirtioFault);
  });

  it('shared memory: regions in SharedArrayBuffers that another GuestMemory attaches to', () => {
    expect(mem().shared).toBeNull();
    const specs = [
      { base: 0x100000, size: 0x1000 },
      { base: 0x0, size: 0x10000 },
    ];
    const a = GuestMemory.create(specs, { shared: true });
    if (isFault(a)) throw new Error(a.toString());
    const shared = a.shared!;
    expect(shared.regions.map((r) => [r.base, r.buffer.byteLength])).toEqual([
      [0x0, 0x10000],
      [0x100000, 0x1000],
    ]);
    for (const r of shared.regions) expect(r.buffer).toBeInstanceOf(SharedArrayBuffer);
    const b = GuestMemory.attach(shared);
    if (isFault(b)) throw new Error(b.toString());
    expect(b.layout).toEqual(a.layout);
    expect(b.shared!.regions.map((r) => r.buffer)).toEqual(shared.regions.map((r) => r.buffer));
    // The same bytes through either: a write on one side is a read on the other.
    expect(a.write32(0x100ffc, 0xdeadbeef)).toBeNull();
    expect(b.read32(0x100ffc)).toBe(0xdeadbeef);
    expect(b.writeBytes(0x20, Uint8Array.of(1, 2, 3))).toBeNull();
    expect(Array.from(a.readBytes(0x20, 3) as Uint8Array)).toEqual([1, 2, 3]);
    const span = b.span(0x100ff0, 16)!;
    expect(span.view.getUint32(0x100ffc - span.base, true)).toBe(0xdeadbeef);
    // Out of range stays M8 on the attached side too.
    expect((b.read8(0x10000) as VirtioFault).rule).toBe('M8');
  });

  it('attach refuses buffers that are not shared and bad layouts, as values', () => {
    const plain = {
      regions: [{ base: 0, buffer: new ArrayBuffer(0x1000) as unknown as SharedArrayBuffer }],
    };
    const notShared = GuestMemory.attach(plain);
    expect(notShared).toBeInstanceOf(VirtioFault);
    expect((notShared as VirtioFault).rule).toBe('M8');
    const sab = new SharedArrayBuffer(0x2000);
    expect(
      GuestMemory.attach({
        regions: [
          { base: 0, buffer: sab },
          { base: 0x1000, buffer: sab },
        ],
      }),
    ).toBeInstanceOf(VirtioFault);
    expect(GuestMemory.attach({ regions: [] })).toBeInstanceOf(VirtioFault);
  });

  it('M8 copyView: the bytes of a range inside one region, null outside, whatever it cached before (property)', () => {
    const m = mem();
    // A model of guest memory to compare with, written through the checked accessors.
    const model = new Map<number, number>();
    const at = (a: number): number => model.get(a) ?? 0;
    // Few distinct addresses and lengths so that ranges repeat (cache hits) and
    // different ranges land on the same cache slot (replacements).
    const addr = fc.oneof(
      fc.constantFrom(0, 16, 0x1000, 0x1010, 0xfff0, 0xfffc, 0x10000, 0x100000, 0x100ff0, 0x101000),
      fc.constantFrom(-16, -1, 0.5, Number.NaN, 2 ** 60),
    );
    const op = fc.oneof(
      fc.record({ kind: fc.constant('read' as const), addr, len: fc.constantFrom(0, 1, 16, 32) }),
      fc.record({
        kind: fc.constant('write' as const),
        addr,
        value: fc.integer({ min: 0, max: 255 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        for (const o of ops) {
          if (o.kind === 'write') {
            if (!isFault(m.write8(o.addr, o.value))) model.set(o.addr, o.value);
            continue;
          }
          const v = m.copyView(o.addr, o.len);
          const checked = m.view(o.addr, o.len);
          if (isFault(checked)) {
            expect(v).toBeNull();
            continue;
          }
          expect(v).not.toBeNull();
          expect([...v!]).toEqual(Array.from({ length: o.len }, (_, i) => at(o.addr + i)));
        }
      }),
      { numRuns: 500 },
    );
    // An empty cache matches nothing, whatever the (invalid) address.
    expect(mem().copyView(-1, 0)).toBeNull();
    expect(mem().copyView(Number.NaN, 0)).toBeNull();
    // Straddling two regions is refused even right after the same address was cached.
    expect(m.copyView(0xfff0, 16)).not.toBeNull();
    expect(m.copyView(0xfff0, 32)).toBeNull();
  });

  it('M8 never throws and never wraps for arbitrary addresses and lengths (property)', () => {
    const m = mem();
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: -10, max: 0x200000 }), fc.double(), fc.constant(2 ** 64)),
        fc.integer({ min: 0, max: 0x20000 }),
        (addr, len) => {
          const r = m.view(addr, len);
          const inside =
            Number.isSafeInteger(addr) &&
            addr >= 0 &&
            (addr + len <= 0x10000 || (addr >= 0x100000 && addr + len <= 0x101000) || len === 0);
          expect(r instanceof Uint8Array).toBe(inside);
          if (r instanceof Uint8Array) expect(r.length).toBe(len);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('guest allocator', () => {
  it('hands out aligned, non-overlapping ranges and merges on release', () => {
    const m = GuestMemory.linear(0x10000);
    const a = new GuestAllocator(m);
    const x = a.alloc(100, 16) as number;
    const y = a.alloc(4096, 4096) as number;
    const z = a.alloc(6, 2) as number;
    expect(x % 16).toBe(0);
    expect(y % 4096).toBe(0);
    expect(x).toBeGreaterThanOrEqual(0x1000); // page 0 stays unused
    const ranges = [
      [x, x + 100],
      [y, y + 4096],
      [z, z + 6],
    ].sort((p, q) => p[0]! - q[0]!);
    for (let i = 1; i < ranges.length; i++)
      expect(ranges[i]![0]).toBeGreaterThanOrEqual(ranges[i - 1]![1]!);
    expect(a.release(y)).toBeNull();
    expect(a.release(x)).toBeNull();
    expect(a.release(z)).toBeNull();
    expect(a.allocatedBytes).toBe(0);
    // after merging, the whole free space is one span again
    expect(a.alloc(0xf000, 16)).toBe(0x1000);
  });

  it('picks the span a plain first-fit walk picks, whatever the holes (the walk shortcut is exact)', () => {
    // The reference: walk every span from the lowest address, as the allocator did before its shortcut.
    const firstFit = (free: { start: number; end: number }[], size: number, align: number) => {
      for (const s of free) {
        const start = Math.ceil(s.start / align) * align;
        if (start + size <= s.end) return start;
      }
      return null;
    };
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('alloc' as const),
        size: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 0x3000 })),
        align: fc.constantFrom(1, 2, 4, 16, 4096),
      }),
      fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const a = new GuestAllocator(GuestMemory.linear(0x20000));
        const live: { addr: number; size: number }[] = [];
        const model = [{ start: 0x1000, end: 0x20000 }];
        for (const o of ops) {
          if (o.kind === 'alloc') {
            const want = firstFit(model, o.size, o.align);
            const got = a.alloc(o.size, o.align);
            if (want === null) {
              expect(got).toBeInstanceOf(VirtioFault);
              continue;
            }
            expect(got).toBe(want);
            live.push({ addr: want, size: o.size });
            const i = model.findIndex((s) => s.start <= want && want + o.size <= s.end);
            const s = model[i]!;
            model.splice(i, 1, { start: s.start, end: want }, { start: want + o.size, end: s.end });
          } else if (live.length > 0) {
            const [b] = live.splice(o.pick % live.length, 1);
            expect(a.release(b!.addr)).toBeNull();
            model.push({ start: b!.addr, end: b!.addr + b!.size });
          }
          // Normalise the model: sorted, empty spans gone, touching spans merged.
          model.sort((x, y) => x.start - y.start);
          for (let i = model.length - 1; i >= 0; i--) {
            if (model[i]!.end <= model[i]!.start) model.splice(i, 1);
            else if (i + 1 < model.length && model[i]!.end === model[i + 1]!.start) {
              model[i]!.end = model[i + 1]!.end;
              model.splice(i + 1, 1);
            }
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('double release stays a fault after many blocks came and went (released keys are dropped in bulk)', () => {
    const a = new GuestAllocator(GuestMemory.linear(0x100000));
    for (let round = 0; round < 3; round++) {
      const blocks = Array.from({ length: 200 }, (_, i) => a.alloc(16 + i) as number);
      expect(a.allocatedBytes).toBe(blocks.reduce((n, _, i) => n + 16 + i, 0));
      for (const b of blocks) expect(a.release(b)).toBeNull();
      expect(a.allocatedBytes).toBe(0);
      expect(a.release(blocks[0]!)).toBeInstanceOf(VirtioFault);
      expect(a.release(blocks[199]!)).toBeInstanceOf(VirtioFault);
    }
    expect(a.alloc(0xff000)).toBe(0x1000);
  });

  it('reports exhaustion and double release as values', () => {
    const a = new GuestAllocator(GuestMemory.linear(0x2000));
    expect(a.alloc(0x2000)).toBeInstanceOf(VirtioFault);
    const p = a.alloc(16) as number;
    expect(a.release(p)).toBeNull();
    expect(a.release(p)).toBeInstanceOf(VirtioFault);
  });
});
