/**
 * Group `worker-guest` (issue 18): what host -> guest would reach with the
 * simulated guest on a worker thread beside the device, as QEMU runs vCPUs
 * beside its I/O thread. A measurement, not the product: the engine still
 * runs everything on one event loop.
 *
 * Why: on one thread the lab is the relay plus its own work (about 0.11
 * CPU-s per 256 MiB, a third of it the two 4 KiB copies QEMU and Linux make
 * too), 0.55 to 0.65 of a plain Node relay, short of the 0.7 goal; with two
 * cores and the bench client on one, the guest's half could run on the
 * other.
 *
 * What runs: guest memory in a SharedArrayBuffer (GuestMemory.create with
 * `shared`, GuestMemory.attach in the worker); on this thread a unix socket
 * server whose chunks go into the receive queue 4 KiB at a time through the
 * real device side (SplitDeviceQueue pop, scatter, push), socket paused
 * while no buffer is posted (worker-guest-device.ts); in the worker the
 * real driver side (SplitDriverQueue, GuestAllocator) with 128 page-sized
 * buffers, each used buffer copied into a 64 KiB user buffer (one read(2)
 * each) and posted again, the user buffer written to the guest's unix
 * socket (worker-guest-thread.ts). Counters published with Atomics order
 * the rings between the threads; a side that runs dry sets a flag and is
 * woken by Atomics.notify (to Atomics.waitAsync) or by a MessagePort
 * message, both measured (worker-guest-protocol.ts says why this is sound).
 *
 * Baselines in the same run and process: the plain relay and the
 * single-thread lab of bench/lab.ts, 128 MiB of warm-up each, then 256 MiB
 * timed in turns, ROUNDS of bench/lab.ts (five), the run with the median rate of each.
 * Printed: each rate against the relay's, and CPU seconds per 256 MiB
 * (the main thread's, the whole process's, the worker thread's) against
 * the relay's main thread.
 *
 * Result (seven runs after merging main, 20:45 to 21:05 UTC, load average
 * 1.59, 1.06, 0.97, 1.49, 0.85, 0.74, 1.44 on 2 CPUs; `node --expose-gc
 * dist/bench/main.js worker-guest`; ratios to the relay of the same run,
 * whose own rate swung from 1.2 to 2.3 GB/s):
 * - clients in this process: the split reaches 0.88 to 1.14 of the relay
 *   with Atomics wake-ups in six runs (1.77 in the seventh, whose relay ran
 *   at 1.2 GB/s), 0.80 to 1.16 with MessagePort ones, where the
 *   single-thread lab reaches 0.60 to 1.07 in the same runs; in bytes per
 *   second the split (Atomics) moved 0.89 to 1.66 times what the lab did
 *   in the same run, 1.3 in the middle. The split's main thread costs what
 *   the relay's does (0.12 to 0.16 CPU-s per 256 MiB against 0.11 to 0.18:
 *   the ring work of sixteen 4 KiB pieces per 64 KiB chunk costs about the
 *   socket write it replaces), the lab's 0.16 to 0.21; the worker adds
 *   0.07 to 0.09.
 * - clients in another process: the single-thread lab already reaches 1.0
 *   to 1.41 of the relay (since the chardev reads into reused buffers), and
 *   the split is no better (1.0 to 1.51 with Atomics, 1.09 to 1.39 with a
 *   port) though its main thread costs 0.06 to 0.09 against the relay's
 *   0.11 to 0.15: the client process, the main thread and the worker are
 *   three busy threads on two cores.
 * - Atomics and MessagePort wake-ups cost about the same: either is tens of
 *   microseconds of the waker's time per wake on this busy machine (43 to
 *   53 us per Atomics.notify to a waitAsync, measured around the call at
 *   load 1 to 2.5; 30 % of the main thread's samples in a profile before
 *   the pooled reads). EVENT_IDX suppresses 56 to 71 % of the interrupts
 *   that find the guest halted (those before the woken guest ran): 500 to
 *   1900 are sent per 256 MiB, one per 2.5 to 10 chunks. Polling 50 us
 *   before halting (KVM's halt polling) sends 100 to 580 but costs the
 *   worker 0.02 to 0.04 CPU-s more, for no steady gain in rate (0.80 to
 *   1.12 of the relay in six runs, 1.84 in the seventh).
 * - Shared memory costs copies: V8 copies to and from a SharedArrayBuffer
 *   with relaxed atomic words, 4 KiB in about 300 ns instead of 155 in, 220
 *   instead of 53 out (measured alone).
 * So the guest on a worker would take host -> guest past 0.8 of the relay
 * in one process; across processes one thread is already enough. Not
 * modelled: step mode (the engine would have to run the guest's half one
 * ring operation per step on request, or on the main thread), guest ->
 * host, the control queue, and the rest of the guest (files, programs).
 */
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CpuSample } from './cpu.js';
import { loadAverage, type Report } from './harness.js';
import {
  BULK_BYTES,
  inTempDir,
  measure,
  medianRun,
  relayPair,
  ROUNDS,
  splicePair,
  startLab,
  WARM_BYTES,
  type Measured,
} from './lab.js';
import { connect, transfer } from './socket-transfer.js';
import { runOneWay } from './worker-guest-cross.js';
import type { DeviceStats } from './worker-guest-device.js';
import { policyName, type HaltPolicy } from './worker-guest-protocol.js';
import { startWorkerGuestSplit, type WorkerGuestSplit } from './worker-guest-split.js';

const MiB = 1024 * 1024;
const POLICIES: readonly HaltPolicy[] = [
  { wake: 'atomics', pollUs: 0 },
  { wake: 'port', pollUs: 0 },
  { wake: 'atomics', pollUs: 50 },
];

/** A timed run of the split: rate, main and process CPU, the worker's CPU, the device's counts. */
interface SplitRun extends Measured {
  worker: number;
  stats?: DeviceStats;
}

function statsSince(now: DeviceStats, before: DeviceStats): DeviceStats {
  return {
    interrupts: now.interrupts - before.interrupts,
    wakes: now.wakes - before.wakes,
    suppressed: now.suppressed - before.suppressed,
    pauses: now.pauses - before.pauses,
  };
}

async function measureSplit(
  split: WorkerGuestSplit,
  host: net.Socket,
  guest: net.Socket,
): Promise<SplitRun> {
  const statsBefore = { ...split.stats };
  const workerBefore = split.workerCpu();
  const m = await measure(host, guest, BULK_BYTES);
  const worker = ((split.workerCpu() - workerBefore) * 256 * MiB) / BULK_BYTES;
  return { ...m, worker, stats: statsSince(split.stats, statsBefore) };
}

function reportCpu(report: Report, what: string, cpu: CpuSample, relay: CpuSample): void {
  report(`${what}: CPU s/256 MiB, main thread`, cpu.main, relay.main, 's');
  report(`${what}: CPU s/256 MiB, whole process`, cpu.process, relay.process, 's');
}

function reportSplit(report: Report, what: string, run: SplitRun, relay: Measured): void {
  report(`${what} rate vs relay`, run.rate, relay.rate, 'B/s');
  const name = what.replace(': h->g', '');
  reportCpu(report, `  ${name}`, run.cpu, relay.cpu);
  report(`  ${name}: CPU s/256 MiB, worker thread`, run.worker, relay.cpu.main, 's');
  const st = run.stats;
  if (st === undefined) return;
  const per = (n: number): string => ((n * 256 * MiB) / BULK_BYTES).toFixed(0);
  process.stdout.write(
    `  ${name}, per 256 MiB: ${per(st.interrupts)} used-count publications, ${per(st.wakes)} interrupts to a halted guest (${per(st.suppressed)} more suppressed by EVENT_IDX), ${per(st.pauses)} device pauses for buffers\n`,
  );
}

/** Everything in this process, one event loop for the clients and the device (the lab bench's setting). */
async function inProcess(report: Report, dir: string): Promise<void> {
  const relay = await relayPair(dir, () => {});
  const lab = await startLab(dir, []);
  const labHost = await connect(path.join(dir, 'test2'));
  const labGuest = await connect(path.join(lab.guestDir.dir, 'test2'));
  const splits: { split: WorkerGuestSplit; host: net.Socket; guest: net.Socket }[] = [];
  for (const w of POLICIES) {
    const split = await startWorkerGuestSplit(dir, w);
    splits.push({
      split,
      host: await connect(split.hostPath),
      guest: await connect(split.guestPath),
    });
  }

  await transfer(relay.client, relay.server, WARM_BYTES);
  await transfer(labHost, labGuest, WARM_BYTES);
  for (const s of splits) await transfer(s.host, s.guest, WARM_BYTES);
  const relayRuns: Measured[] = [];
  const labRuns: Measured[] = [];
  const splitRuns: SplitRun[][] = splits.map(() => []);
  for (let i = 0; i < ROUNDS; i++) {
    relayRuns.push(await measure(relay.client, relay.server, BULK_BYTES));
    labRuns.push(await measure(labHost, labGuest, BULK_BYTES));
    for (let k = 0; k < splits.length; k++) {
      const s = splits[k]!;
      splitRuns[k]!.push(await measureSplit(s.split, s.host, s.guest));
    }
  }
  for (const s of splits) {
    s.host.destroy();
    s.guest.destroy();
    await s.split.close();
  }
  labHost.destroy();
  labGuest.destroy();
  await lab.close();
  await relay.close();

  reportMedians(report, '', relayRuns, labRuns, splitRuns);
}

/** The median run of the lab and of each split against the relay's, names prefixed by `prefix`. */
function reportMedians(
  report: Report,
  prefix: string,
  relayRuns: Measured[],
  labRuns: Measured[],
  splitRuns: SplitRun[][],
): void {
  const viaRelay = medianRun(relayRuns);
  const viaLab = medianRun(labRuns);
  report(`${prefix}lab (one thread): h->g rate vs relay`, viaLab.rate, viaRelay.rate, 'B/s');
  reportCpu(report, `  ${prefix}lab (one thread)`, viaLab.cpu, viaRelay.cpu);
  for (let k = 0; k < splitRuns.length; k++) {
    reportSplit(
      report,
      `${prefix}split (${policyName(POLICIES[k]!)}): h->g`,
      medianRun(splitRuns[k]!) as SplitRun,
      viaRelay,
    );
  }
}

/** The clients in a process of their own (bench/lab-client.js, one way); this process holds the path only. */
async function crossProcess(report: Report, dir: string): Promise<void> {
  const lab = await startLab(dir, []);
  const splits: WorkerGuestSplit[] = [];
  for (const w of POLICIES) splits.push(await startWorkerGuestSplit(dir, w));
  const relayRuns: Measured[] = [];
  const labRuns: Measured[] = [];
  const splitRuns: SplitRun[][] = splits.map(() => []);
  for (let i = 0; i < ROUNDS; i++) {
    const relay = await splicePair(dir);
    relayRuns.push(await runOneWay(relay.aPath, relay.bPath, BULK_BYTES, WARM_BYTES));
    await relay.close();
    const labGuestPath = path.join(lab.guestDir.dir, 'test2');
    labRuns.push(await runOneWay(path.join(dir, 'test2'), labGuestPath, BULK_BYTES, WARM_BYTES));
    for (let k = 0; k < splits.length; k++) {
      const s = splits[k]!;
      splitRuns[k]!.push(
        await runOneWay(s.hostPath, s.guestPath, BULK_BYTES, WARM_BYTES, () => s.workerCpu()),
      );
    }
  }
  for (const s of splits) await s.close();
  await lab.close();
  reportMedians(report, 'x-proc ', relayRuns, labRuns, splitRuns);
}

export async function benchWorkerGuest(report: Report): Promise<void> {
  await inTempDir(async (dir) => {
    process.stdout.write(`load average ${loadAverage()} (${os.cpus().length} CPUs)\n`);
    await inProcess(report, dir);
    await crossProcess(report, dir);
  });
}
