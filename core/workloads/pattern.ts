/**
 * The bytes the built-in programs send, reproducible from outside so a host
 * program can check what arrived:
 *
 * - PatternStream: binary, xorshift32 from a seed, one byte per step (the
 *   same sequence as test/serial/helpers.ts `pattern(n, seed)`). The sha1
 *   service sends it; `patternSha1(n, seed)` is what the host should get.
 * - LineStream: text, numbered 64-byte lines
 *   (`test2 0000000001 abcdefghijklmnopqrstuvwxyz0123456789...\n`), for the
 *   source workload: readable in a terminal, and a lost or repeated byte
 *   shows as a broken line or a skipped number.
 */
import { createHash } from 'node:crypto';

export class PatternStream {
  private x: number;

  constructor(seed = 1) {
    this.x = seed >>> 0 || 1;
  }

  /** The next `n` bytes of the sequence. */
  next(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let x = this.x;
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
    this.x = x;
    return out;
  }
}

/** sha1 (hex) of the first `n` bytes of the pattern with `seed`. */
export function patternSha1(n: number, seed = 1): string {
  const hash = createHash('sha1');
  const p = new PatternStream(seed);
  for (let left = n; left > 0;) {
    const k = Math.min(left, 1 << 20);
    hash.update(p.next(k));
    left -= k;
  }
  return hash.digest('hex');
}

export const LINE_BYTES = 64;
const FILL = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** `${label} ${seq} ` + filler to 63 characters + '\n'. */
export function sourceLine(label: string, seq: number): string {
  const head = `${label} ${String(seq).padStart(10, '0')} `;
  let body = head;
  while (body.length < LINE_BYTES - 1) body += FILL;
  return body.slice(0, LINE_BYTES - 1) + '\n';
}

export class LineStream {
  private seq = 1;
  private pending = new Uint8Array(0);
  private readonly encoder = new TextEncoder();

  constructor(private readonly label: string) {}

  /** The next `n` bytes of the line sequence (lines may be split across calls). */
  next(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      if (this.pending.length === 0)
        this.pending = this.encoder.encode(sourceLine(this.label, this.seq++));
      const k = Math.min(n - at, this.pending.length);
      out.set(this.pending.subarray(0, k), at);
      this.pending = this.pending.subarray(k);
      at += k;
    }
    return out;
  }
}
