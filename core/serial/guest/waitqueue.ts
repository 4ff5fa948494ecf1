/**
 * A kernel wait queue: blocked system calls park a callback here and are
 * woken all at once by wake_up_interruptible(); each then re-checks its
 * condition, as wait_event() does, and parks again if it still must wait.
 *
 * Two arrays take turns (the one being woken becomes the spare): a transmit
 * interrupt wakes a port's queue once per guest buffer, and a Set cleared
 * and refilled each time reallocated its table, garbage that lived long
 * enough to reach the old generation.
 */
export class WaitQueue {
  private waiters: (() => void)[] = [];
  private spare: (() => void)[] = [];
  private waking = false;

  /** Park until the next wake; returns a function that leaves the queue. */
  wait(wake: () => void): () => void {
    if (!this.waiters.includes(wake)) this.waiters.push(wake);
    return () => {
      const i = this.waiters.indexOf(wake);
      if (i >= 0) this.waiters.splice(i, 1);
    };
  }

  wakeAll(): void {
    if (this.waiters.length === 0) return;
    const now = this.waiters;
    if (this.waking) {
      // A wake inside a wake (wakers post tasks, so never in practice): a list of its own.
      this.waiters = [];
      for (const w of now) w();
      return;
    }
    // Whoever parks again while these run lands in the other list.
    this.waiters = this.spare;
    this.waking = true;
    try {
      for (const w of now) w();
    } finally {
      this.waking = false;
      now.length = 0;
      this.spare = now;
    }
  }

  get size(): number {
    return this.waiters.length;
  }
}
