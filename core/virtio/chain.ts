/**
 * A descriptor chain as the device sees it after walking and validating it:
 * device-readable segments first, device-writable after (S4), flattened
 * across indirect tables. Both ring formats produce this shape, so the
 * device code above the rings never knows which format it runs on.
 */
import type { VirtioFault } from './fault.js';
import type { GuestMemory } from './memory.js';

export interface Segment {
  /** Guest-physical address. */
  addr: number;
  /** Length in bytes. */
  len: number;
}

export interface DescriptorChain {
  /** Split: head descriptor index. Packed: buffer id (from the last descriptor, P4). */
  readonly id: number;
  /** Split: same as id. Packed: ring slot of the first descriptor. */
  readonly head: number;
  readonly readable: readonly Segment[];
  readonly writable: readonly Segment[];
  readonly readableLength: number;
  readonly writableLength: number;
  /** Descriptors in the ring proper (an indirect table counts as one) — packed rings skip by this (P4). */
  readonly ringDescCount: number;
  /** All descriptors walked, including those inside an indirect table. */
  readonly descCount: number;
  readonly indirect: boolean;
}

/**
 * Gather up to dst.length bytes from segments, starting `offset` bytes into
 * the chain's readable data. Returns the bytes copied.
 */
export function gather(
  memory: GuestMemory,
  segments: readonly Segment[],
  offset: number,
  dst: Uint8Array,
): number | VirtioFault {
  let copied = 0;
  let skip = offset;
  for (const seg of segments) {
    if (copied === dst.length) break;
    if (skip >= seg.len) {
      skip -= seg.len;
      continue;
    }
    const n = Math.min(seg.len - skip, dst.length - copied);
    // A cached window when this range was copied from before: no view per call.
    const at = seg.addr + skip;
    const src = memory.copyView(at, n);
    if (src === null) return memory.outOfRange(at, n);
    dst.set(src, copied);
    copied += n;
    skip = 0;
  }
  return copied;
}

/**
 * Scatter src into segments starting `offset` bytes into the chain's
 * writable space. Returns the bytes written (less than src.length when the
 * chain is full).
 */
export function scatter(
  memory: GuestMemory,
  segments: readonly Segment[],
  offset: number,
  src: Uint8Array,
): number | VirtioFault {
  let written = 0;
  let skip = offset;
  for (const seg of segments) {
    if (written === src.length) break;
    if (skip >= seg.len) {
      skip -= seg.len;
      continue;
    }
    const n = Math.min(seg.len - skip, src.length - written);
    const at = seg.addr + skip;
    const r = memory.span(at, n);
    if (r === null) return memory.outOfRange(at, n);
    // The whole source in one segment (the common case) needs no subarray.
    r.bytes.set(n === src.length ? src : src.subarray(written, written + n), at - r.base);
    written += n;
    skip = 0;
  }
  return written;
}

export function totalLength(segments: readonly Segment[]): number {
  let n = 0;
  for (const s of segments) n += s.len;
  return n;
}

/**
 * The device's chain objects, reused so that a steady stream of pops and
 * pushes allocates nothing (issue 18: allocation and GC were a tenth of the
 * ring's time).
 *
 * Lifetime rule: a DescriptorChain returned by pop() is valid until push()
 * returns that id to the driver. The id cannot be popped again before then
 * (M9), so the object is not reused while a caller may still read it; after
 * push the caller must not keep it (no caller does: QEMU's VirtQueueElement
 * is freed at the same point).
 *
 * A walk fills the scratch chain; commit(id) swaps it with the id's
 * chain, so the packed ring, which learns the id only at the end of a walk
 * (P4), works the same way as the split ring.
 */
export class ChainPool {
  private readonly byId: (PooledChain | undefined)[];
  private scratch = new PooledChain();
  private readCount = 0;
  private writeCount = 0;

  constructor(size: number) {
    this.byId = new Array<PooledChain | undefined>(size);
  }

  /** Start a walk: the scratch chain, emptied. */
  begin(): void {
    this.readCount = 0;
    this.writeCount = 0;
    this.scratch.readableLength = 0;
    this.scratch.writableLength = 0;
  }

  get readableCount(): number {
    return this.readCount;
  }

  get writableCount(): number {
    return this.writeCount;
  }

  /** Bytes added so far (readable, writable). */
  get readableLength(): number {
    return this.scratch.readableLength;
  }

  get writableLength(): number {
    return this.scratch.writableLength;
  }

  /** The k-th segment of the walk so far: readable ones first, then writable. */
  segmentAt(k: number): Segment {
    const c = this.scratch;
    return k < this.readCount ? c.readable[k]! : c.writable[k - this.readCount]!;
  }

  addReadable(addr: number, len: number): void {
    setSegment(this.scratch.readable, this.readCount++, addr, len);
    this.scratch.readableLength += len;
  }

  addWritable(addr: number, len: number): void {
    setSegment(this.scratch.writable, this.writeCount++, addr, len);
    this.scratch.writableLength += len;
  }

  /** Finish a valid walk: the chain for `id`, holding what was added since begin(). */
  commit(
    id: number,
    head: number,
    ringDescCount: number,
    descCount: number,
    indirect: boolean,
  ): DescriptorChain {
    const c = this.scratch;
    // Trim only when the shape changed: a steady stream keeps its arrays.
    if (c.readable.length !== this.readCount) c.readable.length = this.readCount;
    if (c.writable.length !== this.writeCount) c.writable.length = this.writeCount;
    c.id = id;
    c.head = head;
    c.ringDescCount = ringDescCount;
    c.descCount = descCount;
    c.indirect = indirect;
    this.scratch = this.byId[id] ?? new PooledChain();
    this.byId[id] = c;
    return c;
  }
}

class PooledChain implements DescriptorChain {
  id = 0;
  head = 0;
  readonly readable: Segment[] = [];
  readonly writable: Segment[] = [];
  readableLength = 0;
  writableLength = 0;
  ringDescCount = 0;
  descCount = 0;
  indirect = false;
}

function setSegment(list: Segment[], n: number, addr: number, len: number): void {
  const seg = list[n];
  if (seg === undefined) {
    list.push({ addr, len });
  } else {
    seg.addr = addr;
    seg.len = len;
  }
}
