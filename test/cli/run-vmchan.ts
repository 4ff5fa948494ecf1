/** The built `vmchan` binary as a person runs it: a child process, its output and exit status. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../lab/helpers.js';

export const VMCHAN_BIN = path.join(ROOT, 'bin', 'vmchan.js');

export interface CliResult {
  stdout: string;
  stderr: string;
  /** The exit code; -1 when the child was killed (the timeout). */
  status: number;
}

/** Run `vmchan ARGS` to its end (a minute at most), in `env` when given. */
export function vmchan(args: readonly string[], env?: NodeJS.ProcessEnv): CliResult {
  const r = spawnSync(process.execPath, [VMCHAN_BIN, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    ...(env !== undefined ? { env } : {}),
  });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status ?? -1 };
}

/** Fail at once, naming the fix, when the CLI has not been built. */
export function requireBuiltCli(): void {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  }
}
