/**
 * What makes the throughput chart readable: a y scale that a single spike
 * does not flatten (a robust maximum over the window; what lies above it is
 * drawn clipped and marked), and rates in human units with at most three
 * significant digits.
 */

/** Share of the samples the robust maximum covers. */
const ROBUST_QUANTILE = 0.98;
/** A peak this many times the robust maximum counts as a spike. */
const SPIKE_FACTOR = 1.5;
/** Headroom above the robust maximum. */
const HEADROOM = 1.15;

export interface RobustScale {
  /** The y axis maximum; undefined: every value is 0 (the chart picks its own). */
  max: number | undefined;
  /** Values above `max` exist: they are drawn at `max` and marked. */
  clipped: boolean;
}

/**
 * The y maximum for these samples: the largest value, unless it stands far
 * above nearly all the others (above SPIKE_FACTOR x the 98th percentile of
 * the non-zero values): then that percentile with some headroom.
 */
export function robustScale(values: Iterable<number>): RobustScale {
  const v: number[] = [];
  for (const x of values) if (x > 0 && Number.isFinite(x)) v.push(x);
  if (v.length === 0) return { max: undefined, clipped: false };
  v.sort((a, b) => a - b);
  const peak = v[v.length - 1]!;
  const q = v[Math.min(v.length - 1, Math.floor(ROBUST_QUANTILE * (v.length - 1)))]!;
  if (peak <= q * SPIKE_FACTOR) return { max: undefined, clipped: false };
  return { max: q * HEADROOM, clipped: true };
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `977 KiB/s`, `1.43 MiB/s`, `0 B/s`: at most three significant digits. */
export function humanRate(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond < 0.5) return '0 B/s';
  let v = bytesPerSecond;
  let i = 0;
  // 1000 and more would take four digits: the next unit instead (0.98 KiB)
  while (v >= 999.5 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const text =
    i === 0
      ? String(Math.round(v))
      : v < 9.995
        ? v.toFixed(2)
        : v < 99.95
          ? v.toFixed(1)
          : v.toFixed(0);
  return `${text} ${UNITS[i]}/s`;
}

/** Significant digits of a number as written (`0.98` 2, `1.43` 3, `977` 3, `120` 3). */
export function significantDigits(text: string): number {
  const digits = text.replace(/[^\d]/g, '').replace(/^0+/, '');
  return digits.length === 0 ? 1 : digits.length;
}
