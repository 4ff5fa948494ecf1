/**
 * What capturing a running lab costs: bytes per second through one port of
 * a whole emulated machine (in-memory chardev, device, rings, Linux-like
 * guest driver and port file), each way, with a tapLab writing every buffer
 * to a pcapng file in a temp directory, as a ratio to the same lab with the
 * tap switched off, measured in the same run.
 *
 * Four settings per round, interleaved so that JIT warm-up and machine
 * noise fall on all of them alike, one 32 MiB transfer each way per setting:
 *   - "no tap": the lab alone;
 *   - "off": a tap attached, capture off for everything (it must cost
 *     nothing: it is not subscribed to data events);
 *   - "null": capture on, into a sink that keeps nothing (the tap's own
 *     cost: records built, no file);
 *   - "on": capture on for everything, to a pcapng file.
 * Transfers are timed in process CPU seconds (see cpuSeconds), so the
 * figures are bytes per CPU second. Each is the fastest of the rounds (the
 * order rotates from round to round). About 3-6 s in all.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CaptureError } from '../core/capture/error.js';
import { tapLab, type LabTap } from '../core/capture/lab-tap.js';
import { PcapngWriter } from '../core/capture/pcapng-writer.js';
import type { CaptureSink } from '../core/capture/record.js';
import { Lab } from '../core/engine/lab.js';
import { isErrno } from '../core/serial/guest/errno.js';
import { isQemuError } from '../core/base/qemu-error.js';

type Report = (name: string, value: number, baseline: number, unit: string) => void;

const MiB = 1024 * 1024;
const TRANSFER = 32 * MiB;
const ROUNDS = 4;

type Setting = 'no tap' | 'off' | 'null' | 'on';

export interface Machine {
  lab: Lab;
  fd: number;
  received: () => number;
}

export async function machine(): Promise<Machine> {
  const lab = Lab.create({
    devices: [{ id: 'vser0', ports: [{ driver: 'virtserialport', name: 'bench', chardev: 'c' }] }],
  });
  if (isQemuError(lab)) throw new Error(lab.message);
  await lab.boot();
  const fd = await lab.guest.files.open('/dev/virtio-ports/bench');
  if (isErrno(fd)) throw new Error(fd.toString());
  const host = lab.host('c');
  let received = 0;
  host.onData((b) => (received += b.length));
  host.connect();
  await lab.settle();
  return { lab, fd, received: () => received };
}

export function pattern(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 131 + (i >> 9)) & 0xff;
  return out;
}

/**
 * The process's CPU seconds (user + system, all threads) since `since`.
 * Transfers are timed in CPU time, not wall time: the whole machine runs in
 * this one process, so the two agree on a quiet machine, and on a shared
 * one (CI, other builds) wall time mostly measures the neighbours.
 */
function cpuSeconds(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

/** CPU seconds to move `data` host -> guest (the guest reads it all). */
export async function hostToGuest(m: Machine, data: Uint8Array): Promise<number> {
  const start = process.cpuUsage();
  m.lab.host('c').write(data);
  let got = 0;
  while (got < data.length) {
    const r = await m.lab.guest.files.read(m.fd, 65536);
    if (isErrno(r) || r.length === 0) throw new Error('read failed');
    got += r.length;
  }
  return cpuSeconds(start);
}

/** CPU seconds to move `data` guest -> host (the host has it all). */
export async function guestToHost(m: Machine, data: Uint8Array): Promise<number> {
  const before = m.received();
  const start = process.cpuUsage();
  const w = await m.lab.guest.files.writeAll(m.fd, data);
  if (isErrno(w)) throw new Error(w.toString());
  await m.lab.settle();
  if (m.received() - before !== data.length) throw new Error('guest -> host lost bytes');
  return cpuSeconds(start);
}

/** Collect garbage between timed transfers when node runs with --expose-gc (npm run bench does). */
export function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export async function benchCaptureLab(report: Report): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-bench-capture-lab-'));
  const m = await machine();
  const data = pattern(TRANSFER);
  const times: Record<'h2g' | 'g2h', Record<Setting, number[]>> = {
    h2g: { 'no tap': [], off: [], null: [], on: [] },
    g2h: { 'no tap': [], off: [], null: [], on: [] },
  };
  let captured = 0;
  try {
    // warm up the engine's paths and the tap's before timing
    const warm = data.subarray(0, 4 * MiB);
    const warmTap = start(dir, m.lab, 'on');
    await hostToGuest(m, warm);
    await guestToHost(m, warm);
    finish(warmTap);
    const settings: Setting[] = ['no tap', 'off', 'null', 'on'];
    for (let round = 0; round < ROUNDS; round++) {
      // rotate the order so that no setting always follows the one that made the most garbage
      for (let k = 0; k < settings.length; k++) {
        const setting = settings[(round + k) % settings.length]!;
        const tap = setting === 'no tap' ? undefined : start(dir, m.lab, setting);
        gc();
        times.h2g[setting].push(await hostToGuest(m, data));
        gc();
        times.g2h[setting].push(await guestToHost(m, data));
        if (tap) captured += finish(tap);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (captured === 0) throw new Error('capture wrote nothing');
  // The fastest round: noise (cache misses, page-cache writeback) only ever adds time.
  const rate = (xs: number[]): number => TRANSFER / Math.min(...xs);
  for (const [way, label] of [
    ['h2g', 'host -> guest'],
    ['g2h', 'guest -> host'],
  ] as const) {
    const t = times[way];
    report(
      `capture-lab: ${label}, capture on vs off (bytes per CPU s)`,
      rate(t.on),
      rate(t.off),
      'B/s',
    );
    report(
      `capture-lab: ${label}, tap off vs no tap (bytes per CPU s)`,
      rate(t.off),
      rate(t['no tap']),
      'B/s',
    );
    report(
      `capture-lab: ${label}, on to a null sink vs off (bytes per CPU s)`,
      rate(t.null),
      rate(t.off),
      'B/s',
    );
  }
}

function start(dir: string, lab: Lab, setting: Exclude<Setting, 'no tap'>): LabTap {
  if (setting === 'null') return tapLab(lab, new NullSink());
  const w = PcapngWriter.create(path.join(dir, 'lab.pcapng'));
  if (w instanceof CaptureError) throw new Error(w.toString());
  return tapLab(lab, w, { ports: setting === 'on' ? 'all' : [] });
}

/** Takes every record and keeps nothing: what the tap itself costs, without the file. */
class NullSink implements CaptureSink {
  addInterface(): undefined {
    return undefined;
  }
  write(): undefined {
    return undefined;
  }
  flush(): undefined {
    return undefined;
  }
  close(): undefined {
    return undefined;
  }
}

/** Stop the tap (flushing and closing its file); returns how many records it wrote. */
function finish(tap: LabTap): number {
  tap.stop();
  return tap.capture.written;
}
