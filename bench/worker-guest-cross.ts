/**
 * The cross-process part of the worker-guest bench (bench/worker-guest.ts):
 * the bench's clients in a process of their own (bench/lab-client.js,
 * one way: a -> b), as a real host program and guest-side program are, so
 * this process holds only the path under test: the relay, the lab, or the
 * worker-guest split. CPU is this process's, read at the client's lines.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuNow, cpuPer, cpuSince } from './cpu.js';
import { eachLine } from './lines.js';
import type { Measured } from './lab.js';

const MiB = 1024 * 1024;

/** One timed a -> b run: rate, this process's CPU and (if given) one thread's CPU, per 256 MiB. */
export interface CrossRun extends Measured {
  worker: number;
}

/** Run bench/lab-client.js one way from `aPath` to `bPath`. */
export function runOneWay(
  aPath: string,
  bPath: string,
  bytes: number,
  warm: number,
  workerCpu: () => number = () => NaN,
): Promise<CrossRun> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lab-client.js');
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [script, aPath, bPath, String(bytes), String(warm), 'one-way'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    let mark = cpuNow();
    let workerMark = workerCpu();
    let got: CrossRun | null = null;
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    eachLine(child.stdout, (line) => {
      const [tag, secs] = line.split(' ');
      const cpu = cpuSince(mark);
      const worker = workerCpu() - workerMark;
      mark = cpuNow();
      workerMark = workerCpu();
      if (tag !== 'a->b') return;
      got = {
        rate: bytes / Number(secs),
        cpu: cpuPer(cpu, bytes, 256 * MiB),
        worker: (worker * 256 * MiB) / bytes,
      };
    });
    child.once('exit', (code) => {
      if (got !== null) resolve(got);
      else reject(new Error(`lab-client exited with ${code}: ${err.trim()}`));
    });
  });
}
