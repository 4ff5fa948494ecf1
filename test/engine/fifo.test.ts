import { describe, expect, it } from 'vitest';
import { Fifo } from '../../core/engine/fifo.js';

/** Drain a fifo into an array, oldest first. */
function drain<T>(f: Fifo<T>): T[] {
  const out: T[] = [];
  for (let item = f.shift(); item !== undefined; item = f.shift()) out.push(item);
  return out;
}

describe('Fifo (the scheduler task ring)', () => {
  it('keeps order across wrap-around and growth', () => {
    const f = new Fifo<number>(4);
    const model: number[] = [];
    let next = 0;
    // Interleave pushes and shifts so the head wraps many times, then grow past the capacity.
    for (let round = 0; round < 50; round++) {
      for (let k = 0; k < (round % 7) + 1; k++) {
        f.push(next);
        model.push(next++);
      }
      for (let k = 0; k < round % 5; k++) expect(f.shift()).toBe(model.shift());
      expect(f.length).toBe(model.length);
      for (let i = 0; i < model.length; i++) expect(f.at(i)).toBe(model[i]);
    }
    expect(drain(f)).toEqual(model);
    expect(f.shift()).toBeUndefined();
    expect(f.length).toBe(0);
  });

  it('removes from the middle keeping the others in order', () => {
    const f = new Fifo<string>(4);
    for (const s of ['x', 'y']) f.push(s);
    f.shift();
    f.shift(); // the head now sits mid-ring, so removal crosses the wrap
    for (const s of ['a', 'b', 'c', 'd']) f.push(s);
    expect(f.removeAt(2)).toBe('c');
    expect(f.removeAt(0)).toBe('a');
    expect(f.removeAt(5)).toBeUndefined();
    f.push('e');
    expect(drain(f)).toEqual(['b', 'd', 'e']);
  });

  it('at() outside the queue is undefined', () => {
    const f = new Fifo<number>();
    f.push(1);
    expect(f.at(-1)).toBeUndefined();
    expect(f.at(1)).toBeUndefined();
    expect(f.at(0)).toBe(1);
  });
});
