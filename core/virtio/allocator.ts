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
  private readonly live = new Map<number, number>(); // start -> size

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
    for (let i = 0; i < this.free.length; i++) {
      const span = this.free[i]!;
      const start = Math.ceil(span.start / align) * align;
      const end = start + size;
      if (end > span.end) continue;
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
      this.live.set(start, size);
      return start;
    }
    return fault('NoBuffers', 'M8', `guest memory exhausted allocating ${size} bytes`, {
      length: size,
    });
  }

  release(addr: number): VirtioFault | null {
    const size = this.live.get(addr);
    if (size === undefined) {
      return fault('NoBuffers', 'M8', `release of ${hex(addr)} which was not allocated`, {
        address: addr,
      });
    }
    this.live.delete(addr);
    const end = addr + size;
    let i = 0;
    while (i < this.free.length && this.free[i]!.start < addr) i++;
    // Merge with the spans before and after where they touch; a new span
    // object only when the block touches neither.
    const prev = this.free[i - 1];
    const next = this.free[i];
    const joinsPrev = prev !== undefined && prev.end === addr;
    const joinsNext = next !== undefined && next.start === end;
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
}
