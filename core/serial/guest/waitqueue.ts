/**
 * A kernel wait queue: blocked system calls park a callback here and are
 * woken all at once by wake_up_interruptible(); each then re-checks its
 * condition, as wait_event() does, and parks again if it still must wait.
 */
export class WaitQueue {
  private waiters = new Set<() => void>();

  /** Park until the next wake; returns a function that leaves the queue. */
  wait(wake: () => void): () => void {
    this.waiters.add(wake);
    return () => this.waiters.delete(wake);
  }

  wakeAll(): void {
    if (this.waiters.size === 0) return;
    const now = [...this.waiters];
    this.waiters.clear();
    for (const w of now) w();
  }

  get size(): number {
    return this.waiters.size;
  }
}
