/**
 * D6 pause policy: when the backend pauses its host source. A socket read
 * is up to 64 KiB, so one read into an empty queue lands exactly on the
 * high-water mark; the source pauses then only if the frontend takes
 * nothing, and always once the queue is over the mark.
 */
import { describe, expect, it } from 'vitest';
import {
  BackendEndpoint,
  INBOUND_HIGH_WATER,
  type BackendOptions,
} from '../../core/chardev/backend-endpoint.js';
import { Scheduler } from '../../core/engine/scheduler.js';
import { TestFrontend } from './helpers.js';

/** A backend whose host side is the test: bytes in by hand, pauses counted. */
class HandFed extends BackendEndpoint {
  readonly kind = 'hand';
  pauses = 0;
  resumes = 0;

  constructor(options: BackendOptions) {
    super(options);
  }

  describe(): string {
    return 'hand';
  }

  connect(): void {
    this.peerConnected();
  }

  feed(bytes: number): void {
    this.hostBytes(new Uint8Array(bytes));
  }

  protected transmit(bytes: Uint8Array): number {
    return bytes.length;
  }

  protected async teardown(): Promise<void> {}

  protected override pauseSource(): void {
    this.pauses++;
  }

  protected override resumeSource(): void {
    this.resumes++;
  }
}

function setUp(room: number): { be: HandFed; fe: TestFrontend; scheduler: Scheduler } {
  const scheduler = new Scheduler({ mode: 'step' });
  const be = new HandFed({ id: 'h', post: scheduler.post });
  const fe = new TestFrontend();
  fe.room = room;
  be.attach(fe);
  be.connect();
  return { be, fe, scheduler };
}

describe('D6 the host source pauses at the high-water mark', () => {
  it('a read that fills the queue to the mark pauses it while the frontend takes nothing', () => {
    const { be } = setUp(0);
    be.feed(INBOUND_HIGH_WATER - 1);
    expect(be.pauses).toBe(0);
    be.feed(1);
    expect(be.pauses).toBe(1);
  });

  it('at the mark with room in the frontend it reads on; over the mark it pauses, room or not', () => {
    const { be, fe, scheduler } = setUp(Infinity);
    be.feed(INBOUND_HIGH_WATER);
    expect(be.pauses).toBe(0);
    be.feed(1);
    expect(be.pauses).toBe(1);
    expect(be.pendingToGuest).toBe(INBOUND_HIGH_WATER + 1);
    // The frontend takes it: the source resumes once the queue is at the low-water mark.
    while (scheduler.step() !== null);
    expect(fe.received).toBe(INBOUND_HIGH_WATER + 1);
    expect(be.resumes).toBe(1);
  });
});
