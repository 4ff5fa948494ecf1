/**
 * PortStream's waits (core/workloads/port-stream.ts): a read that finds
 * nothing (EAGAIN) polls, and close() abandons a poll in progress with
 * EBADF. Each poll used to hang a reaction on one promise that lived as
 * long as the stream, so a guest-dir client or workload kept every poll's
 * closures until it closed: memory grew with the bytes moved (about 2 MiB
 * per 256 MiB through the lab). A stream's memory must not grow with the
 * number of waits.
 *
 * The driver side is a stand-in GuestFiles: every read first says EAGAIN,
 * its poll answers at once, and the read after it returns one byte.
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { expect, it } from 'vitest';
import { errno, isErrno, type Errno } from '../../core/serial/guest/errno.js';
import { POLLIN, type GuestFiles } from '../../core/serial/guest/files.js';
import { PortStream } from '../../core/workloads/port-stream.js';

function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** Files whose reads alternate EAGAIN and one byte; `pollHangs` makes polls wait forever. */
function files(options: { pollHangs: boolean }): { files: GuestFiles; polls: () => number } {
  let ready = false;
  let polls = 0;
  const one = new Uint8Array([0x2a]);
  const fake = {
    open: async () => 3,
    setOwner: () => {},
    setFlags: async () => 0,
    readNow: () => null,
    writeNow: () => null,
    read: async (): Promise<Uint8Array | Errno> => {
      if (!ready) return errno('EAGAIN', 'read');
      ready = false;
      return one;
    },
    poll: (): Promise<number> => {
      polls++;
      if (options.pollHangs) return new Promise<number>(() => {});
      ready = true;
      return Promise.resolve(POLLIN);
    },
    close: async () => 0,
  };
  return { files: fake as unknown as GuestFiles, polls: () => polls };
}

it('a stream that waited 20,000 times holds no more memory than after 1,000', async () => {
  const { files: f, polls } = files({ pollHangs: false });
  const stream = await PortStream.open(f, '/dev/vport0p2');
  if (isErrno(stream)) throw new Error(stream.toString());
  const readMany = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const r = await stream.read(1);
      if (!(r instanceof Uint8Array)) throw new Error(`read ${i}: ${String(r)}`);
    }
  };
  const gc = collector();
  await readMany(1000);
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  await readMany(20_000);
  gc();
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  expect(polls()).toBe(21_000);
  // Kept per wait it was about 500 bytes (10 MB here); nothing is kept now.
  expect(grown).toBeLessThan(1024 * 1024);
  await stream.close();
});

it('close() ends a read waiting in poll with EBADF', async () => {
  const { files: f, polls } = files({ pollHangs: true });
  const stream = await PortStream.open(f, '/dev/vport0p2');
  if (isErrno(stream)) throw new Error(stream.toString());
  const reading = stream.read(1);
  // The read is parked once its poll was made.
  while (polls() === 0) await Promise.resolve();
  await stream.close();
  const r = await reading;
  expect(isErrno(r) && r.code).toBe('EBADF');
});
