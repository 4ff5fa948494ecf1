/**
 * G3 and M1-M15 under random mutation (see virtio-fuzz.ts). `npm test`
 * runs 100,000 cases under CI=true and 5,000 otherwise; `npm run fuzz --
 * --runs N` runs any number.
 */
import { describe, expect, it } from 'vitest';
import { runFuzz } from './virtio-fuzz.js';

const RUNS = Number(process.env.VMCHAN_FUZZ_RUNS ?? (process.env.CI === 'true' ? 100_000 : 5_000));
// `npm run fuzz -- --seed S` replays what fast-check reported.
const SEED =
  process.env.VMCHAN_FUZZ_SEED === undefined ? undefined : Number(process.env.VMCHAN_FUZZ_SEED);

describe('virtio fuzz', () => {
  it(
    `G3 M1 M2 M3 M4 M5 M7 M8 M10 M13 M14 S6 P2 P6 survive ${RUNS} random ring mutations: no exception, no hang, every failure ends in NEEDS_RESET with a rule id`,
    () => {
      const outcomes = runFuzz(RUNS, SEED);
      const total = [...outcomes.values()].reduce((a, b) => a + b, 0);
      expect(total).toBe(RUNS);
      // The mutations must actually reach the validation paths: a fuzzer whose
      // cases all pass cleanly (or all fail one way) tests nothing.
      const kinds = [...outcomes.keys()].filter((k) => k !== 'ok');
      if (RUNS >= 1000) expect(kinds.length).toBeGreaterThanOrEqual(6);
      if (process.env.VMCHAN_FUZZ_REPORT) {
        const rows = [...outcomes.entries()].sort((a, b) => b[1] - a[1]);
        process.stdout.write(
          rows.map(([k, n]) => `${String(n).padStart(8)}  ${k}`).join('\n') + '\n',
        );
      }
    },
    30 * 60_000,
  );
});
