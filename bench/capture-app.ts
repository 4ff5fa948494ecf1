/**
 * The app's capture with Wireshark watching: bytes per CPU second through
 * one port while the app records the lab to a pcapng file ("off"), and the
 * same with a live extcap client of the app's published session on top
 * ("on": the real `vmchan extcap --capture` in a child process, its fifo
 * drained by `cat`). One capture feeds the app's file and Wireshark: the
 * ratio says what the live client adds. Interleaved, fastest of the rounds,
 * this process's CPU only (the extcap runs elsewhere, as under Wireshark).
 * It also prints how many times a record was encoded (PcapngWriter.write
 * calls, counted on a short transfer after the timed ones) per record in
 * the file with the live client attached.
 */
import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { CaptureError } from '../core/capture/error.js';
import { tapLab } from '../core/capture/lab-tap.js';
import { publishSession } from '../core/capture/live-session.js';
import { LiveHub } from '../core/capture/live-server.js';
import { PcapngWriter } from '../core/capture/pcapng-writer.js';
import { recordFromHub } from '../core/api/server/recorder.js';
import { guestToHost } from './capture-lab.js';
import {
  extcapBench,
  reportWays,
  startExtcaps,
  stopExtcaps,
  timedRound,
  TRANSFER,
  until,
} from './capture-extcap.js';
import type { Report } from './harness.js';

const MiB = 1024 * 1024;
const ROUNDS = 3;

export async function benchCaptureApp(report: Report): Promise<void> {
  const { dir, env, m, data, done } = await extcapBench('vmchan-bench-app-');
  type Setting = 'off' | 'on';
  const SETTINGS: Setting[] = ['off', 'on'];
  const times = {
    h2g: { off: [] as number[], on: [] as number[] },
    g2h: { off: [] as number[], on: [] as number[] },
  };
  // As the app (lab-session.ts): the session's live capture and its one
  // encoder published, the recorder writing its file out of that encoder.
  const live = tapLab(m.lab, null);
  const hub = new LiveHub({ source: live.capture, queueBytes: 4 * TRANSFER });
  const published = await publishSession(
    live.capture,
    'lab',
    'bench app',
    () => {},
    undefined,
    hub,
  );
  if (published instanceof CaptureError) throw new Error(published.toString());
  const recorder = recordFromHub(hub, path.join(dir, 'app.pcapng'), {});
  if (recorder instanceof CaptureError) throw new Error(recorder.toString());
  const children: ChildProcess[] = [];
  let perRecord: number;
  try {
    const attach = async (n: number, tag: string): Promise<ChildProcess[]> => {
      const { extcaps, all } = startExtcaps(dir, env, published.entry.id, n, tag);
      children.push(...all);
      await until(() => published.server.hub.size === n, `${n} extcap clients streaming`);
      return extcaps;
    };
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < SETTINGS.length; k++) {
        const setting = SETTINGS[(round + k) % SETTINGS.length]!;
        const extcaps = await attach(setting === 'on' ? 1 : 0, `${round}-${setting}`);
        await timedRound(m, data, times.h2g[setting], times.g2h[setting], extcaps, published);
      }
    }
    // Encodes per record with the client attached, counted on every writer there is.
    const extcaps = await attach(1, 'count');
    const write = PcapngWriter.prototype.write;
    let encodes = 0;
    PcapngWriter.prototype.write = function (this: PcapngWriter, r) {
      encodes++;
      return write.call(this, r);
    };
    const before = recorder.records;
    try {
      await guestToHost(m, data.subarray(0, MiB));
    } finally {
      PcapngWriter.prototype.write = write;
    }
    perRecord = encodes / Math.max(1, recorder.records - before);
    await stopExtcaps(extcaps);
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    recorder.stop();
    live.stop();
    hub.close();
    await published.close();
    done();
  }
  process.stdout.write(
    `app file + live extcap: ${perRecord.toFixed(2)} encodes per record in the file\n`,
  );
  reportWays(
    report,
    times,
    'on',
    'off',
    (way) => `capture-app: ${way}, app file + live extcap vs app file alone`,
  );
}
