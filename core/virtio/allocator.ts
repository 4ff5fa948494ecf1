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
      if (start + size > span.end) continue;
      const pieces: Span[] = [];
      if (start > span.start) pieces.push({ start: span.start, end: start });
      if (start + size < span.end) pieces.push({ start: start + size, end: span.end });
      this.free.splice(i, 1, ...pieces);
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
    const span: Span = { start: addr, end: addr + size };
    let i = 0;
    while (i < this.free.length && this.free[i]!.start < span.start) i++;
    this.free.splice(i, 0, span);
    // Merge with the following and the preceding span where they touch.
    const next = this.free[i + 1];
    if (next && next.start === span.end) {
      span.end = next.end;
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev.end === span.start) {
      prev.end = span.end;
      this.free.splice(i, 1);
    }
    return null;
  }
}
