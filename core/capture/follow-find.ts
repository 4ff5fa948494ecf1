/**
 * Find in Follow stream: search a port's reassembled bytes, one direction
 * at a time, and name the records that hold each match. Typed text travels
 * one byte per guest buffer, so a record-by-record `contains` never sees
 * "hello"; the stream does, and the match points back at its records (the
 * records stay one per buffer).
 */
import type { Direction } from './record.js';
import type { FollowStream } from './follow.js';

export interface FollowMatch {
  direction: Direction;
  /** Byte offset of the match in that direction's reassembled stream. */
  offset: number;
  /** The records (0-based numbers) holding its bytes, first to last. */
  records: number[];
}

export interface FollowFind {
  matches: FollowMatch[];
  /** More matches than `max` were found (only the first `max` are listed). */
  more: boolean;
}

/** Every match of `needle` (non-overlapping, in stream order per direction), at most `max`. */
export function findInStream(
  stream: FollowStream,
  needle: Uint8Array,
  max = 1000,
  only?: Direction,
): FollowFind {
  const matches: FollowMatch[] = [];
  let more = false;
  if (needle.length === 0) return { matches, more };
  for (const direction of ['host-to-guest', 'guest-to-host'] as const) {
    if (only !== undefined && only !== direction) continue;
    const segs = stream.segments.filter((s) => s.direction === direction);
    const total = segs.reduce((n, s) => n + s.bytes.length, 0);
    const bytes = new Uint8Array(total);
    /** starts[i]: offset of segment i in `bytes` (ascending, for the record lookup). */
    const starts = new Array<number>(segs.length);
    let at = 0;
    segs.forEach((s, i) => {
      starts[i] = at;
      bytes.set(s.bytes, at);
      at += s.bytes.length;
    });
    const segmentAt = (offset: number): number => {
      let lo = 0;
      let hi = segs.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (starts[mid]! <= offset) lo = mid;
        else hi = mid - 1;
      }
      return lo;
    };
    const first = needle[0]!;
    for (let i = bytes.indexOf(first); i >= 0 && i + needle.length <= total;) {
      let k = 1;
      while (k < needle.length && bytes[i + k] === needle[k]) k++;
      if (k === needle.length) {
        if (matches.length === max) {
          more = true;
          break;
        }
        const a = segmentAt(i);
        const b = segmentAt(i + needle.length - 1);
        const records: number[] = [];
        for (let j = a; j <= b; j++) records.push(segs[j]!.record);
        matches.push({ direction, offset: i, records });
        i = bytes.indexOf(first, i + needle.length);
      } else {
        i = bytes.indexOf(first, i + 1);
      }
    }
    if (more) break;
  }
  return { matches, more };
}
