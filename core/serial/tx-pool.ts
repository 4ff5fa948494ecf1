/**
 * The buffers the device gathers transmit chains into (guest -> host), kept
 * for the next chain once the backend has handed them to the OS.
 *
 * A fresh buffer per chain (Buffer.allocUnsafeSlow: its own backing store,
 * freed by the garbage collector) cost a tenth of the main thread in the
 * lab's guest -> host bulk path, most of it in collections that the external
 * memory of those buffers set off. A buffer comes back only through
 * `release`, which a backend that kept the array calls once nothing refers
 * to it any more (the socket's write finished); a backend that never calls
 * it lets the buffer go to the collector, as before. So a buffer is reused
 * only when its bytes can no longer be seen by anyone.
 */

export class TxBufferPool {
  private readonly free: ArrayBuffer[] = [];
  /** Every backing store this pool made (added once each, never removed: no churn). */
  private readonly mine = new WeakSet<ArrayBuffer>();

  /**
   * @param slabSize every pooled backing store's size (the largest buffer taken)
   * @param maxFree backing stores kept for reuse; more coming back are let go
   */
  constructor(
    readonly slabSize: number,
    private readonly maxFree: number,
  ) {}

  /** A buffer of `size` bytes (contents undefined: the caller fills all of it). */
  take(size: number): Buffer {
    if (size > this.slabSize) return Buffer.allocUnsafeSlow(size);
    let slab = this.free.pop();
    if (slab === undefined) {
      slab = Buffer.allocUnsafeSlow(this.slabSize).buffer;
      this.mine.add(slab);
    }
    return Buffer.from(slab, 0, size);
  }

  /**
   * The holder of a buffer from take() is done with it: its backing store
   * may serve the next one. A second release of the same buffer is ignored
   * (it is found among the few free ones: no Set of those handed out,
   * whose add and delete per buffer reallocate its table now and then), and
   * so is any array the pool did not make.
   */
  readonly release = (bytes: Uint8Array): void => {
    const slab = bytes.buffer as ArrayBuffer;
    if (!this.mine.has(slab) || this.free.includes(slab)) return;
    if (this.free.length < this.maxFree) this.free.push(slab);
  };

  /** Backing stores ready for reuse (for tests). */
  get freeCount(): number {
    return this.free.length;
  }
}
