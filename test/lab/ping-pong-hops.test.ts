/**
 * A 1-byte ping-pong through the echo workload costs the tasks it needs and
 * no more (issue 18): the guest program reads once per byte (no follow-up
 * read(2) that says EAGAIN, no read before its poll that finds nothing: it
 * looks with a poll of timeout 0 first) and the device runs its transmit
 * queue once per chain (no task that pops nothing after the last chain).
 * What the program reads and writes is unchanged: one buffer per read(2).
 */
import type * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { Machine } from '../../core/machine/machine.js';
import {
  isWorkloadError,
  parseWorkload,
  startWorkloads,
  type Workload,
} from '../../core/workloads/index.js';
import { connectUnix, removeTempDirs, startMachine, tempDir } from './helpers.js';

afterAll(removeTempDirs);

function roundTrip(socket: net.Socket, byte: number): Promise<number> {
  return new Promise((resolve) => {
    socket.once('data', (d: Buffer) => resolve(d[0]!));
    socket.write(Buffer.from([byte]));
  });
}

it('L3 D5: one read(2) and one transmit-queue task per echoed byte, the byte unchanged', async () => {
  const dir = tempDir('pingpong');
  const m: Machine = await startMachine(
    [
      '-chardev',
      `socket,path=${path.join(dir, 's')},server=on,wait=off,id=c`,
      '-device',
      'virtio-serial',
      '-device',
      'virtserialport,chardev=c,name=p',
    ],
    dir,
  );
  const spec = parseWorkload('p=echo');
  if (isWorkloadError(spec)) throw new Error(spec.message);
  const w = await startWorkloads(m.lab, [spec]);
  if (isWorkloadError(w)) throw new Error(w.message);
  const workloads: Workload[] = w;
  const socket = await connectUnix(path.join(dir, 's'));
  try {
    // Warm up: the program is parked in its poll once the first echo is back.
    expect(await roundTrip(socket, 1)).toBe(1);
    const labels: string[] = [];
    const off = m.lab.scheduler.onTask((t) => labels.push(`${t.kind}:${t.label}`));
    const trips = 40;
    for (let i = 0; i < trips; i++) expect(await roundTrip(socket, 2 + i)).toBe(2 + i);
    off();
    const reads = labels.filter((l) => /^guest:read fd \d+$/.test(l)).length;
    const transmits = labels.filter((l) => /^device:.*: queue 5$/.test(l)).length;
    // Before: 3 reads (the byte, readSome's follow-up, the read before the poll) and 2 queue tasks.
    expect(reads).toBe(trips);
    expect(transmits).toBe(trips);
  } finally {
    socket.destroy();
    for (const x of workloads) await x.stop();
    await m.close();
  }
});
