import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../core/engine/scheduler.js';
import { createChardev, isChardevError } from '../../core/chardev/index.js';
import type { ChardevEndpoint } from '../../core/serial/endpoint.js';
import type { TaskInfo } from '../../core/engine/scheduler.js';
import { mkfifo, spec, tempDir, TestFrontend, waitFor } from './helpers.js';

/** A frontend that fails if a handler runs inside one of its own calls into the backend. */
class GuardedFrontend extends TestFrontend {
  inside = false;
  violations = 0;
  override canRead(): number {
    if (this.inside) this.violations++;
    return super.canRead();
  }
  override read(bytes: Uint8Array): void {
    if (this.inside) this.violations++;
    super.read(bytes);
  }
  override event(e: 'opened' | 'closed'): void {
    if (this.inside) this.violations++;
    super.event(e);
  }
  call<T>(f: () => T): T {
    this.inside = true;
    try {
      return f();
    } finally {
      this.inside = false;
    }
  }
}

describe('the ChardevEndpoint contract (core/serial/endpoint.ts)', () => {
  it('D5 D6 handlers run only in posted backend tasks, never inside attach/write/acceptInput', async () => {
    const dir = tempDir();
    const base = path.join(dir, 'c');
    mkfifo(`${base}.in`);
    mkfifo(`${base}.out`);
    const scheduler = new Scheduler({ mode: 'step' });
    const tasks: TaskInfo[] = [];
    scheduler.onTask((t) => tasks.push(t));
    const c = await createChardev(spec('k1', { kind: 'pipe', path: base }), {
      post: scheduler.post,
    });
    if (isChardevError(c)) throw new Error(c.toString());
    const ep: ChardevEndpoint = c;
    const fe = new GuardedFrontend();

    fe.call(() => ep.attach(fe));
    expect(fe.events).toEqual([]); // 'opened' is a task, not a callback inside attach()
    scheduler.steps(10);
    expect(fe.events).toEqual(['opened']);

    const hostIn = fs.openSync(`${base}.in`, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    fs.writeSync(hostIn, 'abc');
    await waitFor(() => scheduler.pending > 0, 'a read task');
    fe.call(() => ep.acceptInput());
    expect(fe.received).toBe(0);
    scheduler.steps(10);
    expect(fe.text()).toBe('abc');

    let fired = 0;
    fe.call(() => {
      ep.write(new TextEncoder().encode('x'));
      ep.addWriteWatch(() => fired++);
    });
    expect(fired).toBe(0); // the watch fires from a task even when there is room at once
    scheduler.steps(10);
    expect(fired).toBe(1);

    expect(fe.violations).toBe(0);
    expect(tasks.length).toBeGreaterThan(0);
    expect(new Set(tasks.map((t) => t.kind))).toEqual(new Set(['backend']));
    expect(tasks.map((t) => t.label)).toContain('chardev k1: opened');
    fs.closeSync(hostIn);
    await c.close();
  });
});
