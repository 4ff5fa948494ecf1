/**
 * Issue 13 item 13 (L12): when guest memory runs short the guest's write
 * waits (EAGAIN for the bridge's O_NONBLOCK descriptor, then poll) instead
 * of failing, and the guest-dir bridge keeps its client: a guest-dir client
 * streams to the host, and the host to it, with the guest's memory held
 * nearly full the whole time and the host not reading until the guest's
 * writes have found memory short; the client stays connected and every
 * byte arrives (sha1 on both ends). Checked to fail when PortStream.write
 * treats EAGAIN as fatal.
 */
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GuestDir, isGuestDirError } from '../../core/guestdir/index.js';
import type { Machine } from '../../core/machine/machine.js';
import { VirtioConsoleDriver } from '../../core/serial/guest/console-driver.js';
import { isFault } from '../../core/virtio/fault.js';
import { PatternStream } from '../../core/workloads/index.js';
import {
  caseStudyArgs,
  connectUnix,
  hashIncoming,
  removeTempDirs,
  startMachine,
  tempDir,
  waitUntil,
  writeStream,
} from './helpers.js';

const SIZE = 8 * 1024 * 1024;

let machine: Machine | null = null;
let guestDir: GuestDir | null = null;

afterEach(async () => {
  vi.restoreAllMocks();
  await guestDir?.close();
  guestDir = null;
  await machine?.close();
  machine = null;
  removeTempDirs();
});

/**
 * Take all guest memory (64 KiB pieces, then the smaller spans first fit
 * leaves), then give back about `leave` bytes in 64 KiB pieces.
 */
function hog(m: Machine, leave: number): void {
  const big: number[] = [];
  for (const size of [64 * 1024, 4096, 256, 16]) {
    for (;;) {
      const a = m.lab.allocator.alloc(size, 16);
      if (isFault(a)) break;
      if (size === 64 * 1024) big.push(a);
    }
  }
  for (let room = 0; room < leave && big.length > 0; room += 64 * 1024) {
    m.lab.allocator.release(big.pop()!);
  }
}

describe('L12 the guest-dir bridge keeps its client while guest memory is short', () => {
  for (const ring of ['split', 'packed'] as const) {
    it(`8 MiB each way with guest memory nearly full: connected throughout, sha1 equal (${ring})`, async () => {
      const dir = tempDir('gdmem');
      machine = await startMachine(caseStudyArgs(dir), dir, ring);
      const opened = await GuestDir.open(machine.lab, path.join(dir, 'guest'));
      if (isGuestDirError(opened)) throw new Error(opened.message);
      guestDir = opened;
      const shortages = vi.spyOn(VirtioConsoleDriver.prototype, 'memoryShortage');

      const guest = await connectUnix(path.join(dir, 'guest', 'test2'));
      const host = await connectUnix(path.join(dir, 'test2'));
      let guestEnded = false;
      guest.on('end', () => (guestEnded = true));
      guest.on('close', () => (guestEnded = true));
      // Room for one or two transmit buffers only: the guest's writes keep running out.
      hog(machine, 64 * 1024);

      const toGuest = hashIncoming(guest, SIZE);
      const toHost = hashIncoming(host, SIZE);
      const a = new PatternStream(21);
      const b = new PatternStream(22);
      // The host stops reading: its socket fills, the chardev stops taking
      // bytes, the guest's transmit buffers stay in the ring and its memory
      // runs out under the bridge's writes. Then the host reads again.
      host.pause();
      const streams = Promise.all([
        writeStream(host, SIZE, (n) => a.next(n)),
        writeStream(guest, SIZE, (n) => b.next(n)),
      ]);
      await waitUntil(() => shortages.mock.calls.length > 0, 'guest memory to run short');
      expect(guestEnded).toBe(false);
      host.resume();
      const [sentToGuest, sentToHost] = await streams;
      expect(await toHost).toBe(sentToHost);
      expect(await toGuest).toBe(sentToGuest);
      // Memory did run short (the driver said so) and the client was never hung up.
      expect(shortages).toHaveBeenCalled();
      expect(guestEnded).toBe(false);
      expect(guestDir.sockets().find((s) => s.port.name === 'test2')?.inUse).toBe(true);
      guest.destroy();
      host.destroy();
    }, 120_000);
  }
});
