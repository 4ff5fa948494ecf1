/**
 * `npm run bench -- fuzz`: the virtio-serial device fuzz (serial-fuzz.ts) at
 * 10,000,000 cases (VMCHAN_FUZZ_BENCH_RUNS to change it), in rounds of
 * 100,000 with a new seed each, printing the outcome table and the rate;
 * the baseline is the rate of cases with no operation (a device set up and
 * checked), so the ratio shows what the operations cost. A failure stops
 * the run with fast-check's seed and path.
 */
import { runSerialFuzz, runSerialFuzzCase } from './serial-fuzz.js';

type Report = (name: string, value: number, baseline: number, unit: string) => void;

const ROUND = 100_000;

export async function benchFuzz(report: Report): Promise<void> {
  const total = Number(process.env.VMCHAN_FUZZ_BENCH_RUNS ?? 10_000_000);
  const base = performance.now();
  const emptyRuns = 2000;
  for (let i = 0; i < emptyRuns; i++) {
    runSerialFuzzCase({ packed: i % 2 === 1, eventIdx: false, indirect: false, ops: [] });
  }
  const baseline = emptyRuns / ((performance.now() - base) / 1000);
  const outcomes = new Map<string, number>();
  const started = performance.now();
  let done = 0;
  const seed0 = Date.now() | 0;
  while (done < total) {
    const runs = Math.min(ROUND, total - done);
    const seed = (seed0 + done) | 0;
    let round: Map<string, number>;
    try {
      round = runSerialFuzz(runs, seed);
    } catch (error) {
      throw new Error(
        `fuzz failed in the round with seed ${seed} (replay: npm run fuzz -- --runs ${runs} --seed ${seed}): ${
          error instanceof Error ? error.message.split('\n')[0] : String(error)
        }`,
        { cause: error },
      );
    }
    for (const [k, n] of round) outcomes.set(k, (outcomes.get(k) ?? 0) + n);
    done += runs;
    process.stdout.write(`  ${done} cases\n`);
    await new Promise((r) => setImmediate(r));
  }
  const rate = done / ((performance.now() - started) / 1000);
  for (const [k, n] of [...outcomes].sort((a, b) => b[1] - a[1])) {
    process.stdout.write(`${String(n).padStart(10)}  ${k}\n`);
  }
  report('virtio-serial fuzz cases (vs cases with no operation)', rate, baseline, 'cases/s');
}
