/**
 * Issue 16: the app's own labs are Wireshark interfaces. `vmchan serve`
 * (dist/) registers its running lab in the session registry as `vmchan run`
 * does; `vmchan extcap --extcap-interfaces` lists it, `vmchan extcap
 * --capture ... --fifo F` streams its records live, and once the app's lab
 * is replaced or the app stops, the entry is gone.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiProtocols } from '../../core/api/browser/client.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { CaptureError } from '../../core/capture/error.js';
import { removeTempDirs, ROOT, tempDir, waitUntil } from '../lab/helpers.js';
import { VMCHAN_BIN, vmchan } from './run-vmchan.js';

const BIN = VMCHAN_BIN;

let dir = '';
let env: NodeJS.ProcessEnv = {};
let serve: ChildProcess | undefined;
let serveOut = '';
let ws: WebSocket | undefined;
let nextId = 1;

/** The interface lines `vmchan extcap --extcap-interfaces` prints for running sessions. */
function sessionInterfaces(): string[] {
  const r = vmchan(['extcap', '--extcap-interfaces'], env);
  expect(r.stderr).toBe('');
  return r.stdout.split('\n').filter((l) => /\{value=vmchan-(lab|attach)-/.test(l));
}

/** One API command over the served WebSocket. */
function call(command: Record<string, unknown>): Promise<{ ok: boolean; value?: unknown }> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const onMessage = (data: WebSocket.RawData): void => {
      const msg = JSON.parse(data.toString()) as { t: string; id?: number; result?: unknown };
      if (msg.t !== 'res' || msg.id !== id) return;
      ws!.off('message', onMessage);
      resolve(msg.result as { ok: boolean; value?: unknown });
    };
    ws!.on('message', onMessage);
    ws!.send(JSON.stringify({ t: 'req', id, command }), (err) => err && reject(err));
  });
}

beforeAll(async () => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'serve.js')))
    throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  dir = tempDir('extcap-serve');
  // The registry goes under $XDG_RUNTIME_DIR: this test's own, never the user's.
  env = { ...process.env, HOME: dir, TMPDIR: dir, XDG_RUNTIME_DIR: dir };
  serve = spawn(process.execPath, [BIN, 'serve', '--no-demo'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  serve.stdout!.on('data', (c: Buffer) => (serveOut += c.toString()));
  serve.stderr!.on('data', (c: Buffer) => (serveOut += c.toString()));
  await waitUntil(
    () => /serving the app at /.test(serveOut),
    'vmchan serve to print its URL',
    60_000,
  );
  const m = /at http:\/\/127\.0\.0\.1:(\d+)\/#token=([0-9a-f]+)/.exec(serveOut)!;
  ws = new WebSocket(`ws://127.0.0.1:${m[1]}/api`, apiProtocols(m[2]!), {
    headers: { origin: `http://127.0.0.1:${m[1]}` },
  });
  await new Promise<void>((resolve, reject) => {
    ws!.once('open', () => resolve());
    ws!.once('error', reject);
  });
}, 90_000);

afterAll(async () => {
  ws?.close();
  if (serve && serve.exitCode === null) {
    const gone = new Promise((r) => serve!.once('exit', r));
    serve.kill('SIGTERM');
    await gone;
  }
  removeTempDirs();
});

describe('vmchan serve publishes its labs for vmchan extcap', () => {
  let demoId = '';

  it('a lab opened through the API is listed by vmchan extcap --extcap-interfaces', async () => {
    const loaded = await call({ cmd: 'loadLab', lab: 'demo' });
    expect(loaded.ok).toBe(true);
    // Registration finishes right after the lab is adopted: wait for the entry.
    await waitUntil(
      () => sessionInterfaces().some((l) => l.includes('display=vmchan lab: app lab demo')),
      'the demo lab in vmchan extcap --extcap-interfaces',
      30_000,
    );
    const lines = sessionInterfaces();
    expect(lines).toHaveLength(1); // the empty lab it started with is gone
    const m = new RegExp(`value=(vmchan-lab-${serve!.pid}(?:-\\d+)?)`).exec(lines[0]!);
    expect(m).not.toBeNull();
    demoId = m![1]!;
    // The registry is private: 0700 under the runtime dir.
    const reg = path.join(dir, 'vmchan', 'sessions');
    expect(fs.statSync(reg).mode & 0o777).toBe(0o700);
  }, 60_000);

  it("a live capture through vmchan extcap --capture --fifo gets the app's lab's records", async () => {
    const fifo = path.join(dir, 'live.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const chunks: Buffer[] = [];
    const reader = fs.createReadStream(fifo);
    reader.on('data', (c) => chunks.push(c as Buffer));
    const extcap = spawn(
      process.execPath,
      [BIN, 'extcap', '--capture', '--extcap-interface', demoId, '--fifo', fifo],
      { env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let extcapErr = '';
    extcap.stderr!.on('data', (c: Buffer) => (extcapErr += c.toString()));
    const file = path.join(dir, 'live.pcapng');
    /** Data records of the demo's ports in what the fifo carried so far. */
    const dataRecords = (): number => {
      fs.writeFileSync(file, Buffer.concat(chunks));
      const r = openCaptureSync(file);
      if (r instanceof CaptureError) return 0;
      let n = 0;
      for (let i = 0; i < r.count; i++) if (r.kind(i) === 'data') n++;
      r.close();
      return n;
    };
    // The demo's guest programs talk on their own (paced): records arrive without us.
    await waitUntil(
      () => dataRecords() >= 3,
      `3 data records from ${demoId} through the fifo`,
      60_000,
    );
    const names = new Set<string>();
    const r = openCaptureSync(file);
    if (r instanceof CaptureError) throw new Error(r.message);
    for (let i = 0; i < r.count; i++)
      if (r.kind(i) === 'data') names.add(r.interfaceOf(i).name ?? '');
    r.close();
    expect(
      [...names].some((n) => ['test1', 'test2', 'console.0', 'org.qemu.guest_agent.0'].includes(n)),
    ).toBe(true);
    const exited = new Promise<number | null>((res) => extcap.once('exit', res));
    extcap.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(extcapErr).toBe('');
    reader.destroy();
  }, 120_000);

  it("after the app's lab is closed it is gone from the list", async () => {
    const loaded = await call({ cmd: 'loadLab', lab: 'empty' });
    expect(loaded.ok).toBe(true);
    await waitUntil(
      () => !sessionInterfaces().some((l) => l.includes(`value=${demoId}}`)),
      `${demoId} to leave vmchan extcap --extcap-interfaces`,
      30_000,
    );
    ws?.close();
    const gone = new Promise((r) => serve!.once('exit', r));
    serve!.kill('SIGTERM');
    await gone;
    expect(sessionInterfaces()).toEqual([]);
  }, 60_000);
});
