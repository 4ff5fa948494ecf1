/**
 * The transmit buffer pool (core/serial/tx-pool.ts): a buffer comes back
 * only through release, once, and only one the pool handed out.
 */
import { describe, expect, it } from 'vitest';
import { TxBufferPool } from '../../core/serial/tx-pool.js';

describe('TxBufferPool', () => {
  it('hands out buffers of the size asked, and reuses a released backing store', () => {
    const pool = new TxBufferPool(64, 4);
    const a = pool.take(32);
    expect(a.length).toBe(32);
    expect(pool.freeCount).toBe(0);
    pool.release(a);
    expect(pool.freeCount).toBe(1);
    const b = pool.take(64);
    expect(b.buffer).toBe(a.buffer);
    expect(pool.freeCount).toBe(0);
  });

  it('ignores a second release, and arrays it never handed out', () => {
    const pool = new TxBufferPool(64, 4);
    const a = pool.take(10);
    pool.release(a);
    pool.release(a);
    pool.release(new Uint8Array(64));
    expect(pool.freeCount).toBe(1);
    // Two takes get two different backing stores: a double release never gave one out twice.
    expect(pool.take(10).buffer).not.toBe(pool.take(10).buffer);
  });

  it('keeps at most maxFree backing stores; larger buffers are never pooled', () => {
    const pool = new TxBufferPool(64, 2);
    const out = [pool.take(64), pool.take(64), pool.take(64)];
    for (const b of out) pool.release(b);
    expect(pool.freeCount).toBe(2);
    const big = pool.take(65);
    expect(big.length).toBe(65);
    pool.release(big);
    expect(pool.freeCount).toBe(2);
  });
});
