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
    const src = memory.view(seg.addr + skip, n);
    if (!(src instanceof Uint8Array)) return src;
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
    const dst = memory.view(seg.addr + skip, n);
    if (!(dst instanceof Uint8Array)) return dst;
    dst.set(src.subarray(written, written + n));
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
