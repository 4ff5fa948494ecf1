import { describe, expect, it } from 'vitest';
import { Scheduler, type TaskInfo } from '../../core/engine/scheduler.js';

describe('Scheduler', () => {
  it('runs tasks in the order they were posted, including tasks posted by tasks', async () => {
    const s = new Scheduler();
    const order: string[] = [];
    s.post('guest', 'a', () => {
      order.push('a');
      s.post('device', 'c', () => order.push('c'));
    });
    s.post('backend', 'b', () => order.push('b'));
    await s.settle();
    expect(order).toEqual(['a', 'b', 'c']);
    expect(s.stats.byKind).toEqual({ guest: 1, device: 1, backend: 1 });
  });

  it('free-run yields to the event loop between batches', async () => {
    const s = new Scheduler({ batchSize: 10 });
    let immediates = 0;
    const executedAtTick: number[] = [];
    const tick = (): void => {
      immediates++;
      executedAtTick.push(s.stats.executed);
      if (s.pending > 0) setImmediate(tick);
    };
    for (let i = 0; i < 100; i++) s.post('device', `t${i}`, () => {});
    setImmediate(tick);
    await s.idle();
    expect(s.stats.executed).toBe(100);
    expect(s.stats.yields).toBe(9); // 10 batches of 10
    expect(immediates).toBeGreaterThan(1); // other macrotasks ran in between
    for (let i = 1; i < executedAtTick.length; i++) {
      expect(executedAtTick[i]! - executedAtTick[i - 1]!).toBeLessThanOrEqual(10);
    }
  });

  it('step mode runs exactly one task per step and nothing by itself', async () => {
    const s = new Scheduler({ mode: 'step' });
    const ran: string[] = [];
    s.post('guest', 'one', () => ran.push('one'));
    s.post('guest', 'two', () => ran.push('two'));
    await new Promise((r) => setImmediate(r));
    expect(ran).toEqual([]);
    expect(s.peek().map((t) => t.label)).toEqual(['one', 'two']);
    expect(s.step()?.label).toBe('one');
    expect(ran).toEqual(['one']);
    expect(s.steps(5)).toBe(1);
    expect(s.step()).toBe(null);
  });

  it('switching to free-run drains what step mode left', async () => {
    const s = new Scheduler({ mode: 'step' });
    let n = 0;
    for (let i = 0; i < 5; i++) s.post('device', 'x', () => n++);
    s.setMode('free-run');
    await s.settle();
    expect(n).toBe(5);
  });

  it('reports a throwing task and keeps going', async () => {
    const errors: TaskInfo[] = [];
    const s = new Scheduler({ onError: (t) => errors.push(t) });
    let after = false;
    s.post('device', 'bad', () => {
      throw new Error('boom');
    });
    s.post('device', 'good', () => (after = true));
    await s.settle();
    expect(errors.map((e) => e.label)).toEqual(['bad']);
    expect(after).toBe(true);
  });

  it('onTask sees every task with its sequence number', async () => {
    const s = new Scheduler();
    const seen: number[] = [];
    s.onTask((t) => seen.push(t.seq));
    for (let i = 0; i < 3; i++) s.post('guest', 'x', () => {});
    await s.settle();
    expect(seen).toEqual([1, 2, 3]);
  });

  it('onTask with a wanted test hears only the tasks run while it wants them', async () => {
    const s = new Scheduler();
    const seen: string[] = [];
    let wanted = false;
    s.onTask(
      (t) => seen.push(`${t.seq} ${t.label}`),
      () => wanted,
    );
    s.post('guest', 'unheard', () => {});
    await s.settle();
    wanted = true;
    s.post('device', 'heard', () => {}, { device: 'd', queue: 3 });
    expect(s.post.mayRunNow?.('guest', 'heard now')).toBe(false); // one is queued
    await s.settle();
    expect(s.post.mayRunNow?.('guest', 'heard now')).toBe(true);
    expect(seen).toEqual(['2 heard', '3 heard now']);
  });

  it('settle waits for work posted by promise continuations', async () => {
    const s = new Scheduler();
    let done = false;
    const p = new Promise<void>((resolve) => s.post('guest', 'first', resolve));
    void p.then(() => s.post('guest', 'second', () => (done = true)));
    await s.settle();
    expect(done).toBe(true);
  });
  it('mayRunNow lets work skip the hop only in free-run, with nothing queued, outside every task, within the batch budget', async () => {
    const s = new Scheduler({ batchSize: 3 });
    const seen: string[] = [];
    s.onTask((t) => seen.push(`${t.kind} ${t.label}`));
    expect(s.post.mayRunNow?.('guest', 'read')).toBe(true);
    expect(s.stats).toMatchObject({ posted: 1, executed: 1 });
    expect(seen).toEqual(['guest read']);
    let nested: boolean | undefined;
    let continued: boolean | undefined;
    s.post('device', 'kick', () => {
      nested = s.post.mayRunNow?.('guest', 'from a task');
      continued = s.post.mayContinue?.('device', 'kick again');
    });
    await s.settle();
    expect(nested).toBe(false); // tasks never nest
    expect(continued).toBe(true);
    expect(s.post.mayContinue?.('backend', 'outside a task')).toBe(false);
    // something queued: posting would run it after that, so no skipping
    s.post('device', 'queued', () => {});
    expect(s.post.mayRunNow?.('guest', 'behind it')).toBe(false);
    await s.settle();
    // the budget: work run now counts against the batch like any task
    const t = new Scheduler({ batchSize: 2 });
    expect(t.post.mayRunNow?.('guest', 'a')).toBe(true);
    expect(t.post.mayRunNow?.('guest', 'b')).toBe(true);
    expect(t.post.mayRunNow?.('guest', 'c')).toBe(false);
    t.post('guest', 'c', () => {});
    await t.settle();
    expect(t.stats.yields).toBe(1);
  });

  it('in step mode nothing skips the queue', () => {
    const s = new Scheduler({ mode: 'step' });
    expect(s.post.mayRunNow?.('guest', 'read')).toBe(false);
    let continued: boolean | undefined;
    s.post('backend', 'chunk', () => {
      continued = s.post.mayContinue?.('backend', 'next chunk');
    });
    expect(s.step()?.label).toBe('chunk');
    expect(continued).toBe(false);
    expect(s.stats.executed).toBe(1);
  });

  describe('one queue at a time (issue 17: Step this queue)', () => {
    const q = (queue: number) => ({ device: 'vser0', queue });
    const onQueue =
      (queue: number) =>
      (t: TaskInfo): boolean =>
        t.queue?.device === 'vser0' && t.queue.queue === queue;

    it('step(match) runs the oldest matching task and leaves the others in their order', () => {
      const s = new Scheduler({ mode: 'step' });
      const ran: string[] = [];
      s.post('device', 'q3', () => ran.push('q3'), q(3));
      s.post('device', 'q5', () => ran.push('q5'), q(5));
      s.post('guest', 'syscall', () => ran.push('syscall'));
      expect(s.step(onQueue(5))).toMatchObject({ label: 'q5', queue: q(5) });
      expect(ran).toEqual(['q5']);
      expect(s.step(onQueue(5))).toBeNull(); // nothing else of queue 5 waits
      expect(s.pending).toBe(2);
      expect(s.step()?.label).toBe('q3'); // the rest in their order
      expect(s.step()?.label).toBe('syscall');
      expect(ran).toEqual(['q5', 'q3', 'syscall']);
    });

    it('hold(queue) runs every other task freely; the held ones wait for steps; setMode ends it', async () => {
      const s = new Scheduler({ mode: 'step' });
      const ran: string[] = [];
      s.post('device', 'held', () => ran.push('held'), q(5));
      s.post('device', 'other', () => ran.push('other'), q(3));
      s.post('guest', 'untagged', () => ran.push('untagged'));
      s.hold(q(5));
      expect(s.holding).toBe(true);
      expect(s.heldQueue).toEqual(q(5));
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(ran).toEqual(['other', 'untagged']);
      expect(s.pending).toBe(1);
      expect(s.step(onQueue(5))?.label).toBe('held');
      s.post('device', 'held again', () => ran.push('held again'), q(5));
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(ran).toEqual(['other', 'untagged', 'held']);
      s.setMode('free-run');
      expect(s.holding).toBe(false);
      await s.settle();
      expect(ran).toEqual(['other', 'untagged', 'held', 'held again']);
    });
  });
});
