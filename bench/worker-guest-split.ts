/**
 * Start the worker-guest split for bench/worker-guest.ts: guest memory in
 * SharedArrayBuffers, the guest (driver and reader) in a worker
 * (worker-guest-thread.ts), the device half on this thread
 * (worker-guest-device.ts) behind a unix socket server. The bench's clients
 * connect to the two paths: one writes to the device's socket (the
 * chardev's), one reads the guest's (the guest-dir side's).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import { isFault } from '../core/virtio/fault.js';
import { GuestMemory } from '../core/virtio/memory.js';
import { SplitDeviceQueue } from '../core/virtio/split-queue.js';
import { DeviceHalf, type DeviceStats } from './worker-guest-device.js';
import {
  CTL_BYTES,
  GUEST_MEMORY_BYTES,
  RING_FEATURES,
  RX_QUEUE_INDEX,
  type HaltPolicy,
  type ReadyMessage,
  type WorkerGuestData,
  type WorkerMessage,
} from './worker-guest-protocol.js';

export interface WorkerGuestSplit {
  /** The device's (chardev's) socket, for the client that writes. */
  hostPath: string;
  /** The guest's (guest-dir side's) socket, for the client that reads. */
  guestPath: string;
  /** CPU seconds the worker thread has used so far (NaN where /proc has no schedstat). */
  workerCpu(): number;
  readonly stats: DeviceStats;
  close(): Promise<void>;
}

function threadCpu(tid: number): number {
  try {
    const text = fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8');
    return Number(text.split(' ')[0]) / 1e9;
  } catch {
    return NaN;
  }
}

function listen(server: net.Server, p: string): Promise<void> {
  return new Promise((resolve) => server.listen(p, () => resolve()));
}

export async function startWorkerGuestSplit(
  dir: string,
  policy: HaltPolicy,
): Promise<WorkerGuestSplit> {
  const { wake, pollUs } = policy;
  const memory = GuestMemory.create([{ base: 0, size: GUEST_MEMORY_BYTES }], { shared: true });
  if (isFault(memory)) throw new Error(memory.toString());
  const ctl = new SharedArrayBuffer(CTL_BYTES);
  const channel = wake === 'port' ? new MessageChannel() : null;
  const data: WorkerGuestData = {
    memory: memory.shared!,
    ctl,
    guestPath: path.join(dir, `guest-${wake}-${pollUs}`),
    wake,
    pollUs,
    port: channel?.port2 ?? null,
  };
  const worker = new Worker(new URL('./worker-guest-thread.js', import.meta.url), {
    workerData: data,
    transferList: channel === null ? [] : [channel.port2],
  });
  const ready = await new Promise<ReadyMessage>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: WorkerMessage) => {
      if (m.type === 'ready') resolve(m);
      else reject(new Error(`worker guest: ${m.message}`));
    });
  });
  worker.on('error', (err) => {
    process.stderr.write(`worker guest failed: ${err.message}\n`);
    process.exitCode = 1;
  });

  const queue = SplitDeviceQueue.create(
    { index: RX_QUEUE_INDEX, layout: ready.layout, features: RING_FEATURES },
    memory,
  );
  if (isFault(queue)) throw new Error(queue.toString());
  const device = new DeviceHalf(memory, queue, ctl, channel?.port1 ?? null);
  const hostPath = path.join(dir, `host-${wake}-${pollUs}`);
  const server = net.createServer((s) => device.attach(s));
  await listen(server, hostPath);
  return {
    hostPath,
    guestPath: data.guestPath,
    workerCpu: () => threadCpu(ready.tid),
    stats: device.stats,
    close: async () => {
      channel?.port1.close();
      await new Promise((r) => server.close(r));
      await worker.terminate();
    },
  };
}
