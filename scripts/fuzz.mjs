#!/usr/bin/env node
// `npm run fuzz -- --runs N [--seed S]`: the virtio fuzz property at any size,
// with a table of outcomes (which rule stopped the device, how often).
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
let runs = '100000';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--runs' && args[i + 1]) runs = args[++i];
  else if (args[i]?.startsWith('--runs=')) runs = args[i].slice(7);
  else {
    process.stderr.write(`fuzz: unknown argument '${args[i]}' (usage: npm run fuzz -- --runs N)\n`);
    process.exit(2);
  }
}
if (!/^\d+$/.test(runs) || Number(runs) < 1) {
  process.stderr.write(`fuzz: --runs expects a positive whole number, got '${runs}'\n`);
  process.exit(2);
}
const result = spawnSync('npx', ['vitest', 'run', 'test/fuzz', '--reporter=dot'], {
  stdio: 'inherit',
  env: { ...process.env, VMCHAN_FUZZ_RUNS: runs, VMCHAN_FUZZ_REPORT: '1' },
});
process.exit(result.status ?? 1);
