/**
 * The benchmark harness: every figure is printed next to a baseline measured
 * in the same process, as a ratio, so results compare across machines and
 * runs (an absolute number from a shared CI machine means little).
 */

import { loadavg } from 'node:os';

/** The 1, 5 and 15 minute load averages, as every bench prints them beside its figures. */
export function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

export type Report = (name: string, value: number, baseline: number, unit: string) => void;

export interface BenchResult {
  name: string;
  value: number;
  baseline: number;
  unit: string;
  ratio: number;
}

/**
 * Run `op` repeatedly for about `seconds` and return operations per second.
 * `op` returns how many operations it did (a batch), so tight loops are not
 * dominated by the harness's own clock reads.
 */
export function rate(op: () => number, seconds = 0.5): number {
  // warm up so the JIT has compiled the hot path before we time it
  const warmEnd = performance.now() + Math.min(200, seconds * 300);
  while (performance.now() < warmEnd) op();
  let count = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    count += op();
    now = performance.now();
  }
  return count / ((now - start) / 1000);
}

/**
 * rate() for an op that needs setup which must not be timed (filling a ring
 * before the device side empties it): `prepare` runs before every call of
 * `op`, outside the clock, and only op's own time counts, until op has run
 * for `seconds` in total. Operations per second of op's time.
 */
export function rateOf(prepare: () => void, op: () => number, seconds = 0.5): number {
  const warmEnd = performance.now() + Math.min(200, seconds * 300);
  while (performance.now() < warmEnd) {
    prepare();
    op();
  }
  let count = 0;
  let timed = 0;
  const budget = seconds * 1000;
  while (timed < budget) {
    prepare();
    const start = performance.now();
    count += op();
    timed += performance.now() - start;
  }
  return count / (timed / 1000);
}

/**
 * Two rates measured in alternating rounds (a b, b a, a b, ...) so that
 * neither side always runs first or last; the median of each side.
 */
export function alternating(
  a: () => number,
  b: () => number,
  rounds = 5,
): { a: number; b: number } {
  const as: number[] = [];
  const bs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      as.push(a());
      bs.push(b());
    } else {
      bs.push(b());
      as.push(a());
    }
  }
  const median = (xs: number[]): number => xs.sort((x, y) => x - y)[xs.length >> 1]!;
  return { a: median(as), b: median(bs) };
}

export async function rateAsync(op: () => Promise<number>, seconds = 0.5): Promise<number> {
  await op();
  let count = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    count += await op();
    now = performance.now();
  }
  return count / ((now - start) / 1000);
}

export function formatValue(value: number, unit: string): string {
  const abs = Math.abs(value);
  const scaled =
    abs >= 1e9
      ? `${(value / 1e9).toFixed(2)} G`
      : abs >= 1e6
        ? `${(value / 1e6).toFixed(2)} M`
        : abs >= 1e3
          ? `${(value / 1e3).toFixed(2)} k`
          : `${value.toFixed(2)} `;
  return `${scaled}${unit}`;
}

export class ResultTable {
  readonly rows: BenchResult[] = [];

  readonly report: Report = (name, value, baseline, unit) => {
    const row = { name, value, baseline, unit, ratio: value / baseline };
    this.rows.push(row);
    process.stdout.write(
      `${name.padEnd(58)} ${formatValue(value, unit).padStart(16)}  baseline ${formatValue(baseline, unit).padStart(16)}  ratio ${row.ratio.toFixed(3)}\n`,
    );
  };
}

/**
 * Bytes of JavaScript heap `op` allocates per operation, for benches that
 * promise an allocation-free steady state. After 1000 warm-up calls,
 * measured in many short windows
 * (heapUsed before and after one call of `op`, with `prepare` run
 * before each window, outside it); a window in which a
 * scavenge ran shows a drop and is discarded, the median of the rest is
 * taken, and the same measurement of an empty op (what reading heapUsed
 * costs by itself) is subtracted. NaN without --expose-gc.
 */
export function allocatedPerOp(
  op: () => number,
  prepare: () => void = () => {},
  windows = 301,
): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return NaN;
  const median = (f: () => number, before: () => void): { bytes: number; ops: number } => {
    // Warm up until compiled and shapes settled: after 50 calls a fresh
    // rig's pop and push still allocated 32 to 64 B per chain in the first
    // windows (not yet optimised) and nothing once they were.
    for (let i = 0; i < 1000; i++) {
      before();
      f();
    }
    gc();
    const deltas: number[] = [];
    let ops = 0;
    for (let w = 0; w < windows; w++) {
      before();
      const heapBefore = process.memoryUsage().heapUsed;
      const n = f();
      const after = process.memoryUsage().heapUsed;
      if (after >= heapBefore) deltas.push(after - heapBefore);
      ops = n;
    }
    deltas.sort((a, b) => a - b);
    return { bytes: deltas[deltas.length >> 1] ?? NaN, ops };
  };
  const empty = median(
    () => 1,
    () => {},
  ).bytes;
  const measured = median(op, prepare);
  return Math.max(0, measured.bytes - empty) / measured.ops;
}
