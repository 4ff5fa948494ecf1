import { describe, expect, it } from 'vitest';
import type { BenchResult } from '../../bench/harness.js';
import { MAX_RUNS, parseRuns, summarizeRuns } from '../../bench/runs.js';

const row = (name: string, ratio: number): BenchResult => ({
  name,
  value: ratio,
  baseline: 1,
  unit: 'B/s',
  ratio,
});

describe('bench --runs', () => {
  it('takes --runs N (or --runs=N) out of the words and keeps the rest in order', () => {
    expect(parseRuns(['lab', '--runs', '5', 'ring-v86'])).toEqual({
      runs: 5,
      words: ['lab', 'ring-v86'],
    });
    expect(parseRuns(['--runs=3', 'lab'])).toEqual({ runs: 3, words: ['lab'] });
    expect(parseRuns(['lab'])).toEqual({ runs: null, words: ['lab'] });
  });

  it('names what is wrong with a bad count', () => {
    for (const bad of [['--runs'], ['--runs', 'x'], ['--runs', '0'], ['--runs=2.5'], ['--runs=']]) {
      const r = parseRuns(bad);
      expect(r, bad.join(' ')).toHaveProperty('error');
      expect((r as { error: string }).error).toMatch(
        /--runs needs a whole number of runs from 1 to 50/,
      );
    }
    expect((parseRuns(['--runs', String(MAX_RUNS + 1)]) as { error: string }).error).toContain(
      `"${MAX_RUNS + 1}"`,
    );
    expect((parseRuns(['--runs']) as { error: string }).error).toContain('got nothing');
  });

  it('prints each figure run by run with its median, in first-seen order, - where a run lacks it', () => {
    const text = summarizeRuns([
      { load: 0.5, rows: [row('h2g', 0.7), row('g2h', 0.9)] },
      { load: 1.25, rows: [row('h2g', 0.6), row('g2h', 1.1), row('extra', 2)] },
      { load: 0.75, rows: [row('h2g', 0.8), row('g2h', 0.8)] },
      { load: 1, rows: [row('h2g', 0.9), row('g2h', 1.0)] },
    ]);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^load average at start +0\.50 +1\.25 +0\.75 +1\.00$/);
    expect(lines[1]).toMatch(/^ratio per run +#1 +#2 +#3 +#4 +median$/);
    // Even count: the mean of the middle two (0.7 and 0.8; 0.9 and 1.0).
    expect(lines[2]).toMatch(/^h2g +0\.700 +0\.600 +0\.800 +0\.900 +0\.750$/);
    expect(lines[3]).toMatch(/^g2h +0\.900 +1\.100 +0\.800 +1\.000 +0\.950$/);
    expect(lines[4]).toMatch(/^extra +- +2\.000 +- +- +2\.000$/);
    expect(lines).toHaveLength(5);
  });
});
