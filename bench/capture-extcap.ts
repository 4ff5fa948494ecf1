/**
 * What a live Wireshark capture costs a running lab: bytes per CPU second
 * through one port with the lab captured to a pcapng file ("off"), and the
 * same with a live extcap client on top ("on": the session's live socket,
 * the real `vmchan extcap --capture` in a child process writing to a fifo
 * that `cat` drains, as dumpcap would). Both settings in the same run,
 * interleaved, fastest of the rounds; the CPU is this process's only (the
 * extcap and its reader run elsewhere, as they do under Wireshark).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CaptureError } from '../core/capture/error.js';
import { tapLab, type LabTap } from '../core/capture/lab-tap.js';
import { publishSession } from '../core/capture/live-session.js';
import { PcapngWriter } from '../core/capture/pcapng-writer.js';
import { gc, guestToHost, hostToGuest, machine, pattern } from './capture-lab.js';
import type { Report } from './harness.js';

const MiB = 1024 * 1024;
const TRANSFER = 16 * MiB;
const ROUNDS = 3;
const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'vmchan.js');

async function until(test: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function benchCaptureExtcap(report: Report): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-bench-extcap-'));
  const env = { ...process.env, TMPDIR: dir, XDG_RUNTIME_DIR: '' };
  process.env['TMPDIR'] = dir; // the registry goes where the child looks
  delete process.env['XDG_RUNTIME_DIR'];
  const m = await machine();
  const data = pattern(TRANSFER);
  const times = {
    h2g: { off: [] as number[], on: [] as number[] },
    g2h: { off: [] as number[], on: [] as number[] },
  };
  const w = PcapngWriter.create(path.join(dir, 'lab.pcapng'));
  if (w instanceof CaptureError) throw new Error(w.toString());
  const tap: LabTap = tapLab(m.lab, w);
  const published = await publishSession(tap.capture, 'lab', 'bench');
  if (published instanceof CaptureError) throw new Error(published.toString());
  const children: ChildProcess[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const setting of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
        let extcap: ChildProcess | undefined;
        let drain: ChildProcess | undefined;
        if (setting === 'on') {
          const fifo = path.join(dir, `fifo${round}`);
          spawnSync('mkfifo', [fifo]);
          drain = spawn('sh', ['-c', 'cat "$1" > /dev/null', 'sh', fifo], { stdio: 'ignore' });
          extcap = spawn(
            process.execPath,
            [BIN, 'extcap', '--capture', '--extcap-interface', published.entry.id, '--fifo', fifo],
            { env, stdio: 'ignore' },
          );
          children.push(drain, extcap);
          await until(
            () => published.server.clients === 1 && tap.capture.written >= 0,
            'the extcap client',
          );
        }
        gc();
        times.h2g[setting].push(await hostToGuest(m, data));
        gc();
        times.g2h[setting].push(await guestToHost(m, data));
        if (extcap) {
          const gone = new Promise((r) => extcap!.once('exit', r));
          extcap.kill('SIGTERM');
          await gone;
          await until(() => published.server.clients === 0, 'the extcap client to leave');
        }
      }
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    tap.stop();
    await published.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const rate = (xs: number[]): number => TRANSFER / Math.min(...xs);
  for (const [way, label] of [
    ['h2g', 'host -> guest'],
    ['g2h', 'guest -> host'],
  ] as const) {
    report(
      `capture-extcap: ${label}, live extcap on vs off (bytes per CPU s)`,
      rate(times[way].on),
      rate(times[way].off),
      'B/s',
    );
  }
}
