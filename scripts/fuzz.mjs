#!/usr/bin/env node
// `npm run fuzz -- [--runs N] [--seed S]`: the virtio ring fuzz and the
// virtio-serial device fuzz at any size, with a table of outcomes (which
// rule stopped the device, how often). A failure prints fast-check's seed
// and path; `--seed S` replays the same cases.
import { spawnSync } from 'node:child_process';

const usage = 'usage: npm run fuzz -- [--runs N] [--seed S]';
const args = process.argv.slice(2);
const options = { runs: '100000', seed: undefined };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const m = /^--(runs|seed)(?:=(.*))?$/.exec(a ?? '');
  if (m === null) {
    process.stderr.write(`fuzz: unknown argument '${a}' (${usage})\n`);
    process.exit(2);
  }
  const value = m[2] ?? args[++i];
  if (value === undefined) {
    process.stderr.write(`fuzz: --${m[1]} needs a value (${usage})\n`);
    process.exit(2);
  }
  options[m[1]] = value;
}
if (!/^\d+$/.test(options.runs) || Number(options.runs) < 1) {
  process.stderr.write(`fuzz: --runs expects a positive whole number, got '${options.runs}'\n`);
  process.exit(2);
}
if (options.seed !== undefined && !/^-?\d+$/.test(options.seed)) {
  process.stderr.write(
    `fuzz: --seed expects a whole number (fast-check's seed), got '${options.seed}'\n`,
  );
  process.exit(2);
}
const result = spawnSync('npx', ['vitest', 'run', 'test/fuzz', '--reporter=dot'], {
  stdio: 'inherit',
  env: {
    ...process.env,
    VMCHAN_FUZZ_RUNS: options.runs,
    VMCHAN_FUZZ_REPORT: '1',
    ...(options.seed === undefined ? {} : { VMCHAN_FUZZ_SEED: options.seed }),
  },
});
process.exit(result.status ?? 1);
