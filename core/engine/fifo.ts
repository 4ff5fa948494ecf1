/**
 * A first-in first-out queue on a ring of slots that only grows (doubling
 * when full), for the scheduler's tasks.
 *
 * Why not an array with a moving head: during a transfer the queue holds a
 * task or two at a time but sees millions pass, so such an array keeps
 * growing until it is compacted (thousands of slots), and every young-
 * generation GC copied it again (a scavenge every ~20 MB host -> guest,
 * ~40 KB of it this array). The ring's slots stay put: after a scavenge or
 * two they live in the old generation and nothing is copied or allocated
 * per task.
 */
export class Fifo<T> {
  private slots: (T | undefined)[];
  /** Index of the oldest item. */
  private head = 0;
  private count = 0;

  constructor(capacity = 64) {
    let size = 1;
    while (size < capacity) size *= 2;
    this.slots = new Array<T | undefined>(size).fill(undefined);
  }

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.slots.length) this.grow();
    this.slots[(this.head + this.count) & (this.slots.length - 1)] = item;
    this.count++;
  }

  /** Remove and return the oldest item (undefined when empty). */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.slots[this.head];
    this.slots[this.head] = undefined; // let it be collected
    this.head = (this.head + 1) & (this.slots.length - 1);
    this.count--;
    return item;
  }

  /** The item `i` places after the oldest (0: the oldest). */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.count) return undefined;
    return this.slots[(this.head + i) & (this.slots.length - 1)];
  }

  /** Remove the item `i` places after the oldest; the others keep their order. */
  removeAt(i: number): T | undefined {
    if (i < 0 || i >= this.count) return undefined;
    if (i === 0) return this.shift();
    const mask = this.slots.length - 1;
    const item = this.slots[(this.head + i) & mask];
    // Close the gap from the newer side (steps take from the middle rarely).
    for (let k = i; k < this.count - 1; k++) {
      this.slots[(this.head + k) & mask] = this.slots[(this.head + k + 1) & mask];
    }
    this.slots[(this.head + this.count - 1) & mask] = undefined;
    this.count--;
    return item;
  }

  private grow(): void {
    const old = this.slots;
    const slots = new Array<T | undefined>(old.length * 2).fill(undefined);
    for (let k = 0; k < this.count; k++) slots[k] = old[(this.head + k) & (old.length - 1)];
    this.slots = slots;
    this.head = 0;
  }
}
