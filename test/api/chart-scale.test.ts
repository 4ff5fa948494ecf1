/** The throughput chart's scale and units (core/api/browser/chart-scale.ts). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { humanRate, robustScale, significantDigits } from '../../core/api/browser/chart-scale.js';

describe('the robust y maximum', () => {
  it('ignores a single-sample spike and says the chart is clipped', () => {
    const values = [...Array.from({ length: 59 }, (_, i) => 1000 + (i % 7) * 10), 500_000];
    const s = robustScale(values);
    expect(s.clipped).toBe(true);
    expect(s.max).toBeGreaterThan(1060);
    expect(s.max).toBeLessThan(2000);
  });

  it('keeps the chart’s own maximum when no value stands out, or all are zero', () => {
    expect(robustScale([100, 120, 130, 125, 118])).toEqual({ max: undefined, clipped: false });
    expect(robustScale([0, 0, 0])).toEqual({ max: undefined, clipped: false });
  });
});

describe('human units', () => {
  it('writes rates with at most three significant digits', () => {
    expect(humanRate(0)).toBe('0 B/s');
    expect(humanRate(999)).toBe('999 B/s');
    expect(humanRate(1000)).toBe('0.98 KiB/s');
    expect(humanRate(1_000_448)).toBe('977 KiB/s');
    expect(humanRate(1_500_000)).toBe('1.43 MiB/s');
    fc.assert(
      fc.property(fc.double({ min: 0, max: 2 ** 50, noNaN: true }), (v) => {
        const t = humanRate(v);
        expect(t).toMatch(/^\d+(\.\d+)? (B|KiB|MiB|GiB|TiB|PiB)\/s$/);
        expect(significantDigits(t.split(' ')[0]!)).toBeLessThanOrEqual(3);
      }),
    );
  });
});
