/**
 * What a live Wireshark capture costs a running lab: bytes per CPU second
 * through one port with the lab captured to a pcapng file ("off"), and the
 * same with a live extcap client on top ("on": the session's live socket,
 * the real `vmchan extcap --capture` in a child process writing to a fifo
 * that `cat` drains, as dumpcap would), and with three such clients at
 * once ("on3": all fed from one encoding, so three should cost about what
 * one does). All settings in the same run, interleaved, fastest of the rounds; the CPU is this process's only (the
 * extcap and its reader run elsewhere, as they do under Wireshark).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CaptureError } from '../core/capture/error.js';
import { tapLab, type LabTap } from '../core/capture/lab-tap.js';
import { publishSession, type PublishedSession } from '../core/capture/live-session.js';
import { LiveHub } from '../core/capture/live-server.js';
import { SharedCaptureFile } from '../core/capture/shared-file.js';
import { gc, guestToHost, hostToGuest, machine, pattern, type Machine } from './capture-lab.js';
import type { Report } from './harness.js';

const MiB = 1024 * 1024;
export const TRANSFER = 16 * MiB;
const ROUNDS = 3;
const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'vmchan.js');

export async function until(test: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * `n` real `vmchan extcap --capture` children of the session `id`, each
 * writing to a fifo that `cat` drains, as dumpcap would; `all` has the
 * drains too, so that a failed bench can kill everything.
 */
export function startExtcaps(
  dir: string,
  env: NodeJS.ProcessEnv,
  id: string,
  n: number,
  tag: string,
): { extcaps: ChildProcess[]; all: ChildProcess[] } {
  const extcaps: ChildProcess[] = [];
  const all: ChildProcess[] = [];
  for (let c = 0; c < n; c++) {
    const fifo = path.join(dir, `fifo${tag}-${c}`);
    spawnSync('mkfifo', [fifo]);
    const drain = spawn('sh', ['-c', 'cat "$1" > /dev/null', 'sh', fifo], { stdio: 'ignore' });
    const extcap = spawn(
      process.execPath,
      [BIN, 'extcap', '--capture', '--extcap-interface', id, '--fifo', fifo],
      { env, stdio: 'ignore' },
    );
    extcaps.push(extcap);
    all.push(extcap, drain);
  }
  return { extcaps, all };
}

/** SIGTERM the extcap children (as Wireshark stops a capture) and wait for them to exit; the drains follow. */
export async function stopExtcaps(extcaps: readonly ChildProcess[]): Promise<void> {
  for (const child of extcaps) {
    const gone =
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
}

/**
 * What an extcap bench starts with: a temp directory where this process's
 * session registry and the extcap children's meet, the bench lab, and one
 * transfer's bytes. The registry is found through TMPDIR, so this process's
 * TMPDIR points into the directory until `done()` puts it back and removes
 * the directory: a group that left it pointing at a removed directory made
 * the next group's mkdtemp fail (ENOENT), which ended a whole `npm run bench`.
 */
export async function extcapBench(prefix: string): Promise<{
  dir: string;
  env: NodeJS.ProcessEnv;
  m: Machine;
  data: Uint8Array;
  done: () => void;
}> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const env = { ...process.env, TMPDIR: dir, XDG_RUNTIME_DIR: '' };
  const saved = { TMPDIR: process.env['TMPDIR'], XDG_RUNTIME_DIR: process.env['XDG_RUNTIME_DIR'] };
  process.env['TMPDIR'] = dir; // the registry goes where the child looks
  delete process.env['XDG_RUNTIME_DIR'];
  const done = (): void => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { dir, env, m: await machine(), data: pattern(TRANSFER), done };
}

/**
 * One timed transfer each way (garbage collected first), then the extcap
 * children stopped and gone from the session's live server.
 */
export async function timedRound(
  m: Machine,
  data: Uint8Array,
  h2g: number[],
  g2h: number[],
  extcaps: readonly ChildProcess[],
  published: PublishedSession,
): Promise<void> {
  gc();
  h2g.push(await hostToGuest(m, data));
  gc();
  g2h.push(await guestToHost(m, data));
  await stopExtcaps(extcaps);
  await until(() => published.server.clients === 0, 'the extcap clients to leave');
}

/**
 * A figure each way: the fastest round of setting `value` against the
 * fastest of `baseline`, in bytes per CPU second (noise only ever adds time).
 */
export function reportWays<S extends string>(
  report: Report,
  times: Record<'h2g' | 'g2h', Record<S, number[]>>,
  value: S,
  baseline: S,
  name: (way: string) => string,
): void {
  const rate = (xs: number[]): number => TRANSFER / Math.min(...xs);
  for (const [way, label] of [
    ['h2g', 'host -> guest'],
    ['g2h', 'guest -> host'],
  ] as const) {
    report(
      `${name(label)} (bytes per CPU s)`,
      rate(times[way][value]),
      rate(times[way][baseline]),
      'B/s',
    );
  }
}

export async function benchCaptureExtcap(report: Report): Promise<void> {
  const { dir, env, m, data, done } = await extcapBench('vmchan-bench-extcap-');
  /** Live extcap clients per setting: off, one Wireshark, three at once (one encoding for all). */
  const CLIENTS = { off: 0, on: 1, on3: 3 } as const;
  type Setting = keyof typeof CLIENTS;
  const SETTINGS: Setting[] = ['off', 'on', 'on3'];
  const times = {
    h2g: { off: [] as number[], on: [] as number[], on3: [] as number[] },
    g2h: { off: [] as number[], on: [] as number[], on3: [] as number[] },
  };
  // As `vmchan run -w`: the file and the live clients share one encoder (the hub).
  // A queue bound above one transfer: the bench measures the lab's cost with a
  // reader that is never dropped (on a loaded machine the extcap child lags a
  // whole 16 MiB burst behind, and the default 16 MiB bound would drop it).
  const hub = new LiveHub({ queueBytes: 4 * TRANSFER });
  const w = SharedCaptureFile.open(hub, path.join(dir, 'lab.pcapng'));
  if (w instanceof CaptureError) throw new Error(w.toString());
  const tap: LabTap = tapLab(m.lab, hub);
  const published = await publishSession(tap.capture, 'lab', 'bench', () => {}, undefined, hub);
  if (published instanceof CaptureError) throw new Error(published.toString());
  const children: ChildProcess[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // rotate the order so that no setting always follows the same one
      for (let k = 0; k < SETTINGS.length; k++) {
        const setting = SETTINGS[(round + k) % SETTINGS.length]!;
        const { extcaps, all } = startExtcaps(
          dir,
          env,
          published.entry.id,
          CLIENTS[setting],
          `${round}-${setting}`,
        );
        children.push(...all);
        await until(
          () => published.server.hub.size === CLIENTS[setting],
          `${CLIENTS[setting]} extcap clients`,
        );
        await timedRound(m, data, times.h2g[setting], times.g2h[setting], extcaps, published);
      }
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    tap.stop();
    w.close();
    await published.close();
    done();
  }
  // One encoding for the file and every client: these two counts agree.
  process.stdout.write(`records in the file: ${w.records}, records encoded: ${hub.encoded}\n`);
  if (published.server.dropped > 0)
    process.stdout.write(`live clients dropped for falling behind: ${published.server.dropped}\n`);
  reportWays(report, times, 'on', 'off', (way) => `capture-extcap: ${way}, live extcap on vs off`);
  reportWays(
    report,
    times,
    'on3',
    'on',
    (way) => `capture-extcap: ${way}, three live extcap clients vs one`,
  );
}
