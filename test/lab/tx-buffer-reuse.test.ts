/**
 * Transmit buffers are reused once the host socket took them (core/serial/
 * tx-pool.ts), never while anyone can still see them: the host gets every
 * byte intact, and bytes given to 'data' listeners (capture, the UI) never
 * change afterwards.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { Machine } from '../../core/machine/machine.js';
import { GuestDir, isGuestDirError } from '../../core/guestdir/index.js';
import { PatternStream, patternSha1 } from '../../core/workloads/index.js';
import {
  caseStudyArgs,
  connectUnix,
  hashIncoming,
  removeTempDirs,
  startMachine,
  tempDir,
  writeStream,
} from './helpers.js';

const MiB = 1024 * 1024;

let machine: Machine | null = null;
let guestDir: GuestDir | null = null;

afterEach(async () => {
  await guestDir?.close();
  guestDir = null;
  await machine?.close();
  machine = null;
});
afterAll(removeTempDirs);

async function open(prefix: string) {
  const dir = tempDir(prefix);
  machine = await startMachine(caseStudyArgs(dir), dir);
  const opened = await GuestDir.open(machine.lab, path.join(dir, 'guest'));
  if (isGuestDirError(opened)) throw new Error(opened.message);
  guestDir = opened;
  const guest = await connectUnix(path.join(dir, 'guest', 'test1'));
  const host = await connectUnix(path.join(dir, 'test1'));
  return { machine, guest, host };
}

describe('D5 transmit buffers reused after the host socket took them', () => {
  it('D5 a slow host reader (writes wait in the socket) still gets every byte in order', async () => {
    const { guest, host } = await open('txreuse');
    const size = 16 * MiB;
    // The host reads in bursts with pauses, so writes go asynchronous and
    // the port throttles: buffers are out for longer than one tick.
    let paused = false;
    const flip = setInterval(() => {
      paused = !paused;
      if (paused) host.pause();
      else host.resume();
    }, 5);
    const received = hashIncoming(host, size);
    const p = new PatternStream(21);
    await writeStream(guest, size, (n) => p.next(n));
    const got = await received.finally(() => clearInterval(flip));
    expect(got).toBe(patternSha1(size, 21));
    guest.destroy();
    host.destroy();
  }, 30_000);

  it("D5 bytes given to 'data' listeners never change afterwards (no pooled buffer reaches them)", async () => {
    const { machine, guest, host } = await open('txdata');
    const size = 4 * MiB;
    const seen: Uint8Array[] = [];
    const off = machine.lab.events.on('data', (e) => {
      if (e.direction === 'to-host') seen.push(e.bytes);
    });
    const received = hashIncoming(host, size);
    const p = new PatternStream(22);
    await writeStream(guest, size, (n) => p.next(n));
    expect(await received).toBe(patternSha1(size, 22));
    off();
    // More traffic after the listener left: pooled buffers from here on.
    const more = hashIncoming(host, size);
    const q = new PatternStream(23);
    await writeStream(guest, size, (n) => q.next(n));
    expect(await more).toBe(patternSha1(size, 23));
    const hash = createHash('sha1');
    for (const b of seen) hash.update(b);
    expect(hash.digest('hex')).toBe(patternSha1(size, 22));
    guest.destroy();
    host.destroy();
  }, 30_000);
});
