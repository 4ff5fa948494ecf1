/**
 * The guest kernel's wait queue (core/serial/guest/waitqueue.ts): every
 * parked waiter wakes once per wake, in order; one that parks again while
 * woken waits for the next wake; leaving works before and after a wake.
 */
import { describe, expect, it } from 'vitest';
import { WaitQueue } from '../../core/serial/guest/waitqueue.js';

describe('WaitQueue', () => {
  it('wakes every waiter once, in the order they parked; a waiter parked twice wakes once', () => {
    const q = new WaitQueue();
    const woke: string[] = [];
    const a = (): void => void woke.push('a');
    q.wait(a);
    q.wait(() => woke.push('b'));
    q.wait(a);
    expect(q.size).toBe(2);
    q.wakeAll();
    expect(woke).toEqual(['a', 'b']);
    expect(q.size).toBe(0);
    q.wakeAll();
    expect(woke).toEqual(['a', 'b']);
  });

  it('a waiter that parks again while woken waits for the next wake', () => {
    const q = new WaitQueue();
    let n = 0;
    const again = (): void => {
      n++;
      q.wait(again);
    };
    q.wait(again);
    q.wakeAll();
    expect(n).toBe(1);
    expect(q.size).toBe(1);
    q.wakeAll();
    q.wakeAll();
    expect(n).toBe(3);
  });

  it('leaving takes the waiter out; a wake inside a wake still wakes each waiter once', () => {
    const q = new WaitQueue();
    const woke: string[] = [];
    const leave = q.wait(() => woke.push('gone'));
    leave();
    q.wait(() => {
      woke.push('outer');
      q.wait(() => woke.push('inner'));
      q.wakeAll();
    });
    q.wait(() => woke.push('second'));
    q.wakeAll();
    expect(woke).toEqual(['outer', 'inner', 'second']);
    expect(q.size).toBe(0);
  });
});
