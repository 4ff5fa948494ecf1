/**
 * A writer killed with SIGKILL leaves a readable file holding everything
 * written up to about 250 ms before the kill: once with an engine that
 * yields to the event loop (the flush timer), once with one that never
 * does (the deadline check on each write).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CaptureError } from '../../core/capture/error.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { until } from '../until.js';
import {
  compileCaptureTo,
  describeWithTshark,
  tempDir,
  tshark,
  removeTempDirs,
} from './helpers.js';

afterAll(removeTempDirs);

const CHILD = `
import { PcapngWriter } from './core/capture/pcapng-writer.js';
import { dataRecord, nowNs } from './core/capture/record.js';
const [file, mode] = process.argv.slice(2);
const w = PcapngWriter.create(file);
if (!(w instanceof PcapngWriter)) { console.error(String(w)); process.exit(1); }
w.addInterface({ device: 'vser0', deviceIndex: 0, port: 1, kind: 'virtserialport', name: 'test1' });
let seq = 0;
const payload = Buffer.alloc(64, 0x61);
function one() {
  payload.writeUInt32LE(seq, 0);
  w.write(dataRecord({ time: nowNs(), device: 'vser0', port: 1,
    direction: seq % 2 ? 'guest-to-host' : 'host-to-guest', bytes: payload }));
  seq++;
}
one();
process.stdout.write('started\\n');
if (mode === 'timer') {
  const tick = () => { one(); setTimeout(tick, 1); };
  tick();
} else {
  // never yields: only the per-write deadline can flush
  for (;;) { one(); const until = performance.now() + 0.2; while (performance.now() < until); }
}
`;

let dir: string;
beforeAll(() => {
  dir = tempDir('sigkill');
  compileCaptureTo(dir);
  fs.writeFileSync(path.join(dir, 'child.mjs'), CHILD);
});

async function killedCapture(
  mode: 'timer' | 'busy',
): Promise<{ file: string; killedAtMs: number }> {
  const file = path.join(dir, `${mode}.pcapng`);
  const child = spawn(process.execPath, ['child.mjs', file, mode], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) =>
      reject(new Error(`child exited (${code}) before writing: ${stderr}`)),
    );
  });
  // Kill once well over the records the test wants are on disk (flushed).
  const wanted = mode === 'timer' ? 400 : 1500;
  await until(
    () => {
      const r = openCaptureSync(file);
      if (r instanceof CaptureError) return false;
      const n = r.count;
      r.close();
      return n >= wanted;
    },
    `${wanted} records flushed to ${file}`,
    20_000,
  );
  const exited = new Promise((r) => child.once('exit', r));
  const killedAtMs = Date.now();
  child.kill('SIGKILL');
  await exited;
  return { file, killedAtMs };
}

describeWithTshark('a capture killed with SIGKILL', () => {
  for (const mode of ['timer', 'busy'] as const) {
    it(`is readable up to the last 250 ms (${mode === 'timer' ? 'engine yields' : 'engine never yields'})`, async () => {
      const { file, killedAtMs } = await killedCapture(mode);
      const r = openCaptureSync(file);
      if (r instanceof CaptureError) throw new Error(r.toString());
      // whole blocks only: the file ends on a block boundary
      expect(r.warnings.map(String)).toEqual([]);
      expect(r.count).toBeGreaterThan(mode === 'timer' ? 300 : 1000);
      // no gaps: records 0..n-1 in order
      for (const n of [0, Math.floor(r.count / 2), r.count - 1]) {
        const p = r.payload(n);
        if (p instanceof CaptureError) throw new Error(p.toString());
        expect(Buffer.from(p).readUInt32LE(0)).toBe(n);
      }
      const last = r.time(r.count - 1);
      if (last instanceof CaptureError) throw new Error(last.toString());
      const lagMs = killedAtMs - Number(last / 1_000_000n);
      // "readable up to the last second" (the writer flushes every 250 ms; the margin
      // is for a loaded machine that starves the child before the kill)
      expect(lagMs).toBeLessThan(1000);
      // and tshark reads the same frames without complaint
      const t = tshark(['-r', file, '-T', 'fields', '-e', 'frame.number']);
      expect(t.status).toBe(0);
      expect(t.stderr).not.toMatch(/cut short|appears to be damaged/);
      expect(t.stdout.trim().split('\n').length).toBe(r.count);
      r.close();
    });
  }
});
