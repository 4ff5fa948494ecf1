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
 * timed in turns, three rounds, the run with the median rate of each.
 * Printed: each rate against the relay's, and CPU seconds per 256 MiB
 * (the main thread's, the whole process's, the worker thread's) against
 * the relay's main thread.
 *
 * Result (RESULTS)
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type { Report } from './harness.js';
import type { CpuSample } from './cpu.js';
import {
  BULK_BYTES,
  inTempDir,
  measure,
  medianRun,
  relayPair,
  ROUNDS,
  startLab,
  WARM_BYTES,
  type Measured,
} from './lab.js';
import { connect, transfer } from './socket-transfer.js';
import type { DeviceStats } from './worker-guest-device.js';
import type { WakeKind } from './worker-guest-protocol.js';
import { startWorkerGuestSplit, type WorkerGuestSplit } from './worker-guest-split.js';

const MiB = 1024 * 1024;

/** A timed run of the split: the rate and main/process CPU, the worker's CPU, the device's counts. */
interface SplitRun extends Measured {
  worker: number;
  stats: DeviceStats;
}

async function measureSplit(split: WorkerGuestSplit, total: number): Promise<SplitRun> {
  const statsBefore = { ...split.stats };
  const workerBefore = split.workerCpu();
  const m = await measure(split.host, split.guest, total);
  const worker = ((split.workerCpu() - workerBefore) * 256 * MiB) / total;
  const s = split.stats;
  return {
    ...m,
    worker,
    stats: {
      interrupts: s.interrupts - statsBefore.interrupts,
      wakes: s.wakes - statsBefore.wakes,
      suppressed: s.suppressed - statsBefore.suppressed,
      pauses: s.pauses - statsBefore.pauses,
    },
  };
}

function reportCpu(report: Report, what: string, cpu: CpuSample, relay: CpuSample): void {
  report(`${what} CPU s per 256 MiB, main thread`, cpu.main, relay.main, 's');
  report(`${what} CPU s per 256 MiB, whole process`, cpu.process, relay.process, 's');
}

export async function benchWorkerGuest(report: Report): Promise<void> {
  await inTempDir(async (dir) => {
    const load = os.loadavg().map((l) => l.toFixed(2));
    process.stdout.write(`load average ${load.join(' ')} (${os.cpus().length} CPUs)\n`);
    const relay = await relayPair(dir, () => {});
    const lab = await startLab(dir, []);
    const labHost = await connect(path.join(dir, 'test2'));
    const labGuest = await connect(path.join(lab.guestDir.dir, 'test2'));
    const wakes: WakeKind[] = ['atomics', 'port'];
    const splits: WorkerGuestSplit[] = [];
    for (const w of wakes) splits.push(await startWorkerGuestSplit(dir, w));

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
        splitRuns[k]!.push(await measureSplit(splits[k]!, BULK_BYTES));
      }
    }
    for (const s of splits) await s.close();
    labHost.destroy();
    labGuest.destroy();
    await lab.close();
    await relay.close();

    const viaRelay = medianRun(relayRuns);
    const viaLab = medianRun(labRuns);
    report('single-thread lab host->guest vs relay', viaLab.rate, viaRelay.rate, 'B/s');
    reportCpu(report, '  single-thread lab', viaLab.cpu, viaRelay.cpu);
    for (let k = 0; k < splits.length; k++) {
      const run = medianRun(splitRuns[k]!) as SplitRun;
      report(
        `worker-split (${wakes[k]} wake) host->guest vs relay`,
        run.rate,
        viaRelay.rate,
        'B/s',
      );
      reportCpu(report, `  worker-split (${wakes[k]})`, run.cpu, viaRelay.cpu);
      report(
        `  worker-split (${wakes[k]}) CPU s per 256 MiB, worker thread`,
        run.worker,
        viaRelay.cpu.main,
        's',
      );
      const per = (n: number): string => ((n * 256 * MiB) / BULK_BYTES).toFixed(0);
      const st = run.stats;
      process.stdout.write(
        `  worker-split (${wakes[k]}) per 256 MiB: ${per(st.interrupts)} used-count publications, ${per(st.wakes)} interrupts to a halted guest (${per(st.suppressed)} more suppressed by EVENT_IDX), ${per(st.pauses)} device pauses for buffers\n`,
      );
    }
  });
}
