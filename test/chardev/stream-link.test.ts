import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { StreamLink } from '../../core/chardev/stream-link.js';

/** A writable whose OS takes every write at once (sync), or holds them until release(). */
function sink(sync: boolean) {
  const got: Uint8Array[] = [];
  const held: (() => void)[] = [];
  const out = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Uint8Array, _enc, done) {
      got.push(chunk);
      if (sync) done();
      else held.push(() => done());
    },
  });
  return { out, got, release: () => held.splice(0).forEach((d) => d()) };
}

function link(out: Writable, drains: { n: number }) {
  return new StreamLink({
    input: null,
    output: out,
    owned: true,
    events: { data: () => {}, drain: () => drains.n++, end: () => {}, gone: () => {} },
  });
}

describe('StreamLink writes (D5: whole guest buffers, bounded)', () => {
  it('D5 a 32 KiB buffer the OS took at once leaves room for the next at once: no wait for drain', () => {
    const s = sink(true);
    const l = link(s.out, { n: 0 });
    const buffer = new Uint8Array(32 * 1024).fill(7);
    expect(l.write(buffer)).toBe(buffer.length);
    expect(l.hasRoom()).toBe(true);
    expect(l.write(buffer)).toBe(buffer.length);
    expect(s.got.map((c) => c.length)).toEqual([32 * 1024, 32 * 1024]);
  });

  it('D5 while the OS holds more than the high-water mark nothing is taken until drain', async () => {
    const s = sink(false);
    const drains = { n: 0 };
    const l = link(s.out, drains);
    expect(l.write(new Uint8Array(32 * 1024))).toBe(32 * 1024);
    expect(l.hasRoom()).toBe(false);
    expect(l.write(new Uint8Array(10))).toBe(0);
    const drained = new Promise<void>((resolve) => s.out.once('drain', () => resolve()));
    s.release();
    await drained;
    expect(drains.n).toBe(1);
    expect(l.hasRoom()).toBe(true);
  });

  it('a handed-over buffer is written as it is; any other is copied (the caller may reuse it)', () => {
    const s = sink(true);
    const l = link(s.out, { n: 0 });
    const mine = Buffer.alloc(100, 1);
    const borrowed = Buffer.alloc(100, 2);
    l.write(mine, true);
    l.write(borrowed);
    borrowed.fill(9);
    expect(s.got[0]).toBe(mine);
    expect(s.got[1]).not.toBe(borrowed);
    expect([...s.got[1]!.subarray(0, 3)]).toEqual([2, 2, 2]);
  });
});
