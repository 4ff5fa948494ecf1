/**
 * A lab capturing to a pcapng file through tapLab, killed with SIGKILL
 * mid-transfer, leaves a file tshark reads, holding every record the child
 * had written by about 250 ms before the kill (the writer's flush deadline).
 *
 * The child is plain `node` running the engine compiled on the fly from the
 * TypeScript sources (typescript's transpileModule, as helpers.ts does for
 * the writer alone), so the test does not depend on a fresh `npm run build`.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { CaptureError } from '../../core/capture/error.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { until } from '../until.js';
import { ROOT, describeWithTshark, removeTempDirs, tempDir, tshark } from './helpers.js';

afterAll(removeTempDirs);

const RELATIVE_IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

/**
 * Transpile `entries` and every source file they import (relative imports,
 * followed transitively) into `dir`, with node_modules linked so bare
 * imports (zod) resolve from there.
 */
function compileClosure(entries: string[], dir: string): void {
  const todo = [...entries];
  const done = new Set<string>();
  while (todo.length > 0) {
    const rel = todo.pop()!;
    if (done.has(rel)) continue;
    done.add(rel);
    const src = fs.readFileSync(path.join(ROOT, rel), 'utf8');
    for (const m of src.matchAll(RELATIVE_IMPORT)) {
      const target = path.posix.join(path.posix.dirname(rel), m[1]!).replace(/\.js$/, '.ts');
      if (fs.existsSync(path.join(ROOT, target))) todo.push(target);
    }
    const out = ts.transpileModule(src, {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
      fileName: rel,
    });
    const dest = path.join(dir, rel.replace(/\.ts$/, '.js'));
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, out.outputText);
  }
  fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n');
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
}

/**
 * The child: the case-study ports, the tap writing to FILE, data streaming
 * both ways on test1 for ever. Every 20 ms it prints `<epoch ms> <records
 * written>`; the parent compares the file with those reports.
 */
const CHILD = `
import { Lab } from './core/engine/lab.js';
import { tapLab } from './core/capture/lab-tap.js';
import { PcapngWriter } from './core/capture/pcapng-writer.js';
const [file] = process.argv.slice(2);
const lab = Lab.create({ devices: [{ id: 'vser0', ports: [
  { driver: 'virtconsole', name: 'console.0', chardev: 'test0' },
  { driver: 'virtserialport', name: 'test1', chardev: 'test1' },
] }] });
const w = PcapngWriter.create(file);
if (!(w instanceof PcapngWriter)) { console.error(String(w)); process.exit(1); }
tapLab(lab, w);
await lab.boot();
const host = lab.host('test1');
host.onData(() => {});
host.connect();
const fd = await lab.guest.files.open('/dev/virtio-ports/test1');
if (typeof fd !== 'number') { console.error(String(fd)); process.exit(1); }
const chunk = new Uint8Array(3000).fill(0x61);
setInterval(() => process.stdout.write(Date.now() + ' ' + w.records + '\\n'), 20);
process.stdout.write('started\\n');
for (let seq = 0; ; seq++) {
  new DataView(chunk.buffer).setUint32(0, seq, true);
  host.write(chunk.slice());
  let got = 0;
  while (got < chunk.length) got += (await lab.guest.files.read(fd, chunk.length - got)).length;
  await lab.guest.files.writeAll(fd, chunk);
}
`;

let dir: string;
beforeAll(() => {
  dir = tempDir('lab-sigkill');
  compileClosure(
    ['core/engine/lab.ts', 'core/capture/lab-tap.ts', 'core/capture/pcapng-writer.ts'],
    dir,
  );
  fs.writeFileSync(path.join(dir, 'child.mjs'), CHILD);
});

interface Report {
  at: number;
  records: number;
}

describeWithTshark('a lab capture killed with SIGKILL', () => {
  it('leaves a file tshark reads, with what the child had written ~250 ms before the kill', async () => {
    const file = path.join(dir, 'killed.pcapng');
    const child = spawn(process.execPath, ['child.mjs', file], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('started\n')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`child exited (${code}): ${stderr}`)));
    });
    // Kill once the child has reported over 200 records more than 450 ms ago
    // (flushes come every 250 ms; the test below allows 200 ms of slack).
    await until(
      () => {
        const rs = [...stdout.matchAll(/^(\d+) (\d+)$/gm)].map((m) => [Number(m[1]), Number(m[2])]);
        const due = rs.find(([, records]) => records! > 200);
        return rs.length > 10 && due !== undefined && rs.at(-1)![0]! - due[0]! > 450 + 50;
      },
      'the child reporting 200 records, 500 ms ago',
      20_000,
    );
    const exited = new Promise((r) => child.once('exit', r));
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await exited;

    const reports: Report[] = stdout
      .split('\n')
      .filter((l) => /^\d+ \d+$/.test(l))
      .map((l) => {
        const [at, records] = l.split(' ').map(Number);
        return { at: at!, records: records! };
      });
    expect(reports.length, `the child's event loop turned (stderr: ${stderr})`).toBeGreaterThan(10);
    const last = reports[reports.length - 1]!;
    // Everything written by 250 ms before the kill is in the file; the slack is for a loaded
    // machine, where the child may not run at all for a while before the kill.
    const SLACK_MS = 200;
    const due = reports.filter((r) => r.at <= killedAt - 250 - SLACK_MS).at(-1)!;
    expect(due.records).toBeGreaterThan(200);

    const r = openCaptureSync(file);
    if (r instanceof CaptureError) throw new Error(r.toString());
    // Ends on a block boundary, or, when the kill landed inside the writer's
    // write(2) (Linux stops a regular-file write on a fatal signal, leaving it
    // short), in a truncated last block that the reader reports and skips.
    const warnings = r.warnings.map(String);
    const cutInWrite = warnings.length === 1;
    expect(warnings.length).toBeLessThanOrEqual(1);
    if (warnings.length === 1) {
      const size = fs.statSync(file).size;
      const m =
        /truncated block at offset (\d+): the block says (\d+) bytes, the file has (\d+) left/.exec(
          warnings[0]!,
        );
      expect(m, warnings[0]).not.toBeNull();
      expect(Number(m![1]) + Number(m![3])).toBe(size); // the last block, nothing after it
    }
    expect(r.count).toBeGreaterThanOrEqual(due.records);
    // and nothing the child had not written by the kill: the last report plus the records its
    // rate allows in the time left (a report is at most ~20 ms old, or late by a busy loop)
    const first = reports[0]!;
    const perMs = (last.records - first.records) / Math.max(1, last.at - first.at);
    expect(r.count).toBeLessThanOrEqual(last.records + perMs * (killedAt - last.at + 100));
    const lastTime = r.time(r.count - 1);
    if (lastTime instanceof CaptureError) throw new Error(lastTime.toString());
    // The promise is "readable up to the last second"; the writer flushes every
    // 250 ms, and a loaded machine may starve the child for a while before the kill.
    expect(killedAt - Number(lastTime / 1_000_000n)).toBeLessThan(1000);
    expect(new Set(r.interfaces.map((i) => i.label))).toEqual(
      new Set(['vmchan:events', 'vser0:control', 'console.0', 'test1']),
    );
    r.close();

    const t = tshark(['-r', file, '-T', 'fields', '-e', 'frame.interface_name']);
    if (cutInWrite) {
      // tshark reads every whole block, then says the last one was cut short.
      expect(t.stderr).toMatch(/cut short/);
    } else {
      expect(t.status).toBe(0);
      expect(t.stderr).not.toMatch(/cut short|appears to be damaged/);
    }
    const names = t.stdout.trim().split('\n');
    expect(names.length).toBe(r.count);
    expect(names.filter((n) => n === 'test1').length).toBeGreaterThan(due.records / 2);
  });
});
