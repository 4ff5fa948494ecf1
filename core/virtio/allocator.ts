/**
 * A small guest-physical allocator for the simulated guest: rings, indirect
 * tables and receive buffers come from here, the way a guest kernel's DMA
 * allocations come from its RAM. First fit over a sorted free list, with
 * neighbours merged on free, so long runs with hot-plug do not fragment.
 */
import { fault, hex, type VirtioFault } from './fault.js';
import type { GuestMemory } from './memory.js';

interface Span {
  start: number;
  end: number; // exclusive
}

export class GuestAllocator {
  private free: Span[];
  /**
   * start -> size of every block handed out; 0 for a block released since.
   * A release keeps its key (0) instead of deleting it: transmit buffers
   * come back to the same few addresses, so the next allocation there
   * updates the entry in place, where a delete and a set per buffer made
   * the Map rebuild its table every few hundred buffers (2% of the main
   * thread in the guest -> host bulk path). Released keys are dropped once
   * they outnumber the live ones (`released`).
   */
  private readonly live = new Map<number, number>();
  private released = 0;
  /**
   * A shortcut for the first-fit walk: the spans before index `skipTo` are
   * all shorter than `skipMax` + 1 bytes, so a larger request starts its walk
   * at `skipTo` and finds the same span a walk from the start finds. The
   * low end of memory holds many tiny holes (alignment gaps between ring
   * parts: 128 with 64 queues) that every transmit buffer would walk past
   * otherwise. Set by a walk; cleared when a release changes a span before
   * `skipTo` (an allocation only changes the span it takes, at or after it).
   */
  private skipTo = 0;
  private skipMax = 0;

  constructor(memory: GuestMemory, reserveLow = 0x1000) {
    // The first page stays unused so that a zero address is never valid
    // guest data: a driver bug that posts address 0 then stands out.
    this.free = memory.layout
      .map((r) => ({ start: Math.max(r.base, reserveLow), end: r.base + r.size }))
      .filter((s) => s.end > s.start);
  }

  /** Bytes currently handed out. */
  get allocatedBytes(): number {
    let n = 0;
    for (const size of this.live.values()) n += size;
    return n;
  }

  alloc(size: number, align = 16): number | VirtioFault {
    if (!Number.isSafeInteger(size) || size <= 0 || align <= 0 || (align & (align - 1)) !== 0) {
      return fault('NoBuffers', 'M8', `cannot allocate ${size} bytes aligned ${align}`);
    }
    const from = size > this.skipMax ? this.skipTo : 0;
    let passedMax = from === 0 ? 0 : this.skipMax;
    for (let i = from; i < this.free.length; i++) {
      const span = this.free[i]!;
      const length = span.end - span.start;
      // Too short whatever the alignment: passed without the division.
      const start = length < size ? span.end : Math.ceil(span.start / align) * align;
      const end = start + size;
      if (end > span.end) {
        if (length > passedMax) passedMax = length;
        continue;
      }
      // Spans before this one are not changed below: the shortcut holds.
      this.skipTo = i;
      this.skipMax = passedMax;
      // Cut [start, end) out of the span in place: the common cases (from
      // its start, or all of it) allocate nothing, which matters for the
      // indirect tables a driver allocates and frees on every chain.
      if (start > span.start && end < span.end) {
        this.free.splice(i + 1, 0, { start: end, end: span.end });
        span.end = start;
      } else if (start > span.start) {
        span.end = start;
      } else if (end < span.end) {
        span.start = end;
      } else {
        this.free.splice(i, 1);
      }
      if (this.live.get(start) === 0) this.released--;
      this.live.set(start, size);
      return start;
    }
    return fault('NoBuffers', 'M8', `guest memory exhausted allocating ${size} bytes`, {
      length: size,
    });
  }

  release(addr: number): VirtioFault | null {
    const size = this.live.get(addr);
    if (size === undefined || size === 0) {
      return fault('NoBuffers', 'M8', `release of ${hex(addr)} which was not allocated`, {
        address: addr,
      });
    }
    this.live.set(addr, 0);
    this.released++;
    if (this.released > 64 && this.released > this.live.size - this.released) this.dropReleased();
    const end = addr + size;
    // The first span at or after addr (the list is sorted): binary search.
    let i = 0;
    let hi = this.free.length;
    while (i < hi) {
      const mid = (i + hi) >>> 1;
      if (this.free[mid]!.start < addr) i = mid + 1;
      else hi = mid;
    }
    // Merge with the spans before and after where they touch; a new span
    // object only when the block touches neither.
    const prev = this.free[i - 1];
    const next = this.free[i];
    const joinsPrev = prev !== undefined && prev.end === addr;
    const joinsNext = next !== undefined && next.start === end;
    // A span before skipTo grows or moves: the walk's shortcut is void. (A
    // transmit buffer usually goes back into the span at skipTo itself.)
    if (i < this.skipTo || (joinsPrev && i === this.skipTo)) {
      this.skipTo = 0;
      this.skipMax = 0;
    }
    if (joinsPrev && joinsNext) {
      prev.end = next.end;
      this.free.splice(i, 1);
    } else if (joinsPrev) {
      prev.end = end;
    } else if (joinsNext) {
      next.start = addr;
    } else {
      this.free.splice(i, 0, { start: addr, end });
    }
    return null;
  }

  /** Forget released blocks' keys (rarely: see `live`). */
  private dropReleased(): void {
    for (const [start, size] of this.live) if (size === 0) this.live.delete(start);
    this.released = 0;
  }
}
