import { describe, expect, it } from 'vitest';
import { Emitter } from '../../core/base/emitter.js';

interface Events {
  a: { n: number };
  b: string;
}

describe('Emitter', () => {
  it('delivers typed events to listeners of that type, in subscription order', () => {
    const e = new Emitter<Events>();
    const got: string[] = [];
    e.on('a', (x) => got.push(`1:${x.n}`));
    e.on('a', (x) => got.push(`2:${x.n}`));
    e.on('b', (x) => got.push(`b:${x}`));
    e.emit('a', { n: 7 });
    expect(got).toEqual(['1:7', '2:7']);
  });

  it('has() is false while nobody listens, so producers can skip building payloads', () => {
    const e = new Emitter<Events>();
    expect(e.has('a')).toBe(false);
    const off = e.on('a', () => {});
    expect(e.has('a')).toBe(true);
    expect(e.has('b')).toBe(false);
    off();
    expect(e.has('a')).toBe(false);
    const offAny = e.onAny(() => {});
    expect(e.has('b')).toBe(true);
    offAny();
    expect(e.has('b')).toBe(false);
  });

  it('flag(type).on follows has(type) as listeners come and go', () => {
    const e = new Emitter<Events>();
    const a = e.flag('a');
    expect(a.on).toBe(false);
    const off = e.on('a', () => {});
    expect(a.on).toBe(true);
    expect(e.flag('b').on).toBe(false);
    off();
    expect(a.on).toBe(false);
    const offAny = e.onAny(() => {});
    expect(a.on).toBe(true);
    expect(e.flag('b').on).toBe(true);
    offAny();
    expect(a.on).toBe(false);
    expect(e.flag('a')).toBe(a);
  });

  it('a throwing listener is reported and does not stop the others', () => {
    const errors: unknown[] = [];
    const e = new Emitter<Events>((err) => errors.push(err));
    let second = false;
    e.on('b', () => {
      throw new Error('observer bug');
    });
    e.on('b', () => (second = true));
    e.emit('b', 'x');
    expect(second).toBe(true);
    expect(errors).toHaveLength(1);
  });

  it('onAny sees every type', () => {
    const e = new Emitter<Events>();
    const types: string[] = [];
    e.onAny((t) => types.push(String(t)));
    e.emit('a', { n: 1 });
    e.emit('b', 'x');
    expect(types).toEqual(['a', 'b']);
  });
});
