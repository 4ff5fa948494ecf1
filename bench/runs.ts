/**
 * `npm run bench -- lab --runs 5`: the chosen groups in five fresh processes
 * one after the other, then every figure's ratio run by run and its median.
 * One run of a bench on a shared 2-core machine moves by 15 to 20 %
 * (issue 18's lab figures went from 0.54 to 0.86 on one build in one
 * afternoon), so a goal is judged on the median of several runs, each with
 * the load average it started at. Each run is a process of its own, as a
 * single `npm run bench` is: a second round in the same process would time a
 * warmer JIT and a bigger heap, not the same thing again.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchResult } from './harness.js';

/** Where a child run writes its rows (JSON) when the parent set it. */
export const ROWS_FILE_ENV = 'VMCHAN_BENCH_ROWS_FILE';
export const MAX_RUNS = 50;

export interface BenchRun {
  /** One-minute load average when the run started. */
  load: number;
  rows: BenchResult[];
}

/**
 * `--runs N` taken out of the command line: the count (null when absent) and
 * the other words, or a message naming what is wrong.
 */
export function parseRuns(
  args: readonly string[],
): { runs: number | null; words: string[] } | { error: string } {
  const words: string[] = [];
  let runs: number | null = null;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a !== '--runs' && !a.startsWith('--runs=')) {
      words.push(a);
      continue;
    }
    const text = a === '--runs' ? args[++i] : a.slice('--runs='.length);
    const n = Number(text);
    if (text === undefined || text === '' || !Number.isInteger(n) || n < 1 || n > MAX_RUNS) {
      return {
        error: `--runs needs a whole number of runs from 1 to ${MAX_RUNS}, got ${text === undefined ? 'nothing' : JSON.stringify(text)}`,
      };
    }
    runs = n;
  }
  return { runs, words };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * The summary of several runs: a line per figure, in the order the first run
 * printed them, with each run's ratio and the median. A figure some run did
 * not print shows '-' there and its median is of the runs that did.
 */
export function summarizeRuns(runs: readonly BenchRun[]): string {
  const names: string[] = [];
  const seen = new Set<string>();
  for (const run of runs) {
    for (const row of run.rows) {
      if (!seen.has(row.name)) {
        seen.add(row.name);
        names.push(row.name);
      }
    }
  }
  const width = Math.max(6, ...names.map((n) => n.length));
  const cell = (s: string): string => s.padStart(7);
  const lines = [
    `${'load average at start'.padEnd(width)} ${runs.map((r) => cell(r.load.toFixed(2))).join('')}`,
    `${'ratio per run'.padEnd(width)} ${runs.map((_, i) => cell(`#${i + 1}`)).join('')}  ${cell('median')}`,
  ];
  for (const name of names) {
    const ratios = runs.map((r) => r.rows.find((row) => row.name === name)?.ratio);
    const present = ratios.filter((x): x is number => x !== undefined && Number.isFinite(x));
    const shown = ratios.map((x) => cell(x === undefined ? '-' : x.toFixed(3))).join('');
    const mid = present.length > 0 ? median(present).toFixed(3) : '-';
    lines.push(`${name.padEnd(width)} ${shown}  ${cell(mid)}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Run `script` with `words` `count` times, each in a fresh Node with this
 * one's flags (--expose-gc), its output passed through; then the summary.
 * A run that fails ends the series with its exit code.
 */
export async function runSeries(script: string, words: string[], count: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'vmchan-bench-'));
  const runs: BenchRun[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const file = join(dir, `run-${i + 1}.json`);
      const load = loadavg()[0]!;
      process.stdout.write(`\n#### run ${i + 1} of ${count} (load average ${load.toFixed(2)})\n`);
      const code = await new Promise<number>((resolve) => {
        const child = spawn(process.execPath, [...process.execArgv, script, ...words], {
          stdio: 'inherit',
          env: { ...process.env, [ROWS_FILE_ENV]: file },
        });
        child.on('error', (err) => {
          process.stderr.write(`bench: could not start run ${i + 1}: ${err.message}\n`);
          resolve(1);
        });
        child.on('exit', (c, signal) => resolve(c ?? (signal !== null ? 1 : 0)));
      });
      if (code !== 0) {
        process.stderr.write(`bench: run ${i + 1} of ${count} failed (exit ${code})\n`);
        return code;
      }
      const rows = JSON.parse(readFileSync(file, 'utf8')) as BenchResult[];
      runs.push({ load, rows });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`\n#### ${count} runs\n${summarizeRuns(runs)}`);
  return 0;
}
