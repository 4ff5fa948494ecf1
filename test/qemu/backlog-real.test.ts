/**
 * Issue 14 item 2 (H3), on the real test guest under QEMU 7.2 and on the
 * lab, the same scenario, compared: a second host client of a server
 * socket chardev is not closed while the first is connected; it waits
 * (QEMU stops accepting while a client is connected: chardev/char-socket.c
 * tcp_chr_new_client removes the listener's accept handler and
 * tcp_chr_disconnect restores it, so the kernel's listen backlog holds the
 * second connection and its bytes), and it is served, with what it already
 * sent, when the first leaves. The guest echoes the port (cat on the port
 * opened read-write), so what the guest read comes back to whichever
 * client is served.
 */
import path from 'node:path';
import type net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isWorkloadError, parseWorkload, startWorkloads } from '../../core/workloads/index.js';
import { startGuest, type Guest } from '../guest/qemu.js';
import { isGuestError } from '../guest/guest-shell.js';
import { Collector, caseStudyArgs, removeTempDirs, startMachine, tempDir } from '../lab/helpers.js';
import { connectUnix, describeRealGuest, guestShell, requirePrerequisites } from './real-guest.js';

/** The scenario on one server socket; returns what each client saw, in order. */
async function scenario(connect: () => Promise<net.Socket>): Promise<string[]> {
  const seen: string[] = [];
  const first = new Collector(await connect());
  first.socket.write('first\n');
  seen.push(`first got ${await first.line()}`);
  const second = new Collector(await connect());
  second.socket.write('second\n');
  // A round trip on the first client after the second wrote: proves the
  // second's bytes did not reach the guest and the second is still there.
  first.socket.write('again\n');
  seen.push(`first got ${await first.line()}`);
  seen.push(`second ended: ${second.ended}, got ${second.length} bytes`);
  first.socket.destroy();
  seen.push(`second got ${await second.line()}`);
  second.socket.destroy();
  return seen;
}

const expected = [
  'first got first',
  'first got again',
  'second ended: false, got 0 bytes',
  'second got second',
];

describeRealGuest(
  'H3 a second client waits in the backlog (real QEMU vs the lab)',
  'H3 backlog',
  () => {
    let guest: Guest;
    const sh = guestShell(() => guest);

    beforeAll(async () => {
      requirePrerequisites('the H3 backlog comparison');
      const g = await startGuest({ ports: [{ id: 'port1', name: 'org.test.backlog' }] });
      if (isGuestError(g)) throw new Error(g.toString());
      guest = g;
      await sh('cat <>/dev/virtio-ports/org.test.backlog >&0 2>/dev/null &');
    }, 180_000);

    afterAll(async () => {
      await guest?.stop();
      removeTempDirs();
    });

    it('H3 QEMU and the lab serve the waiting client with what it sent when the first leaves', async () => {
      const onQemu = await scenario(() => connectUnix(guest.portSocket('port1')));
      expect(onQemu).toEqual(expected);

      const dir = tempDir('backlog');
      const m = await startMachine(caseStudyArgs(dir), dir);
      try {
        const spec = parseWorkload('test1=echo');
        if (isWorkloadError(spec)) throw new Error(spec.message);
        const w = await startWorkloads(m.lab, [spec]);
        if (isWorkloadError(w)) throw new Error(w.message);
        const onLab = await scenario(() => connectUnix(path.join(dir, 'test1')));
        await Promise.all(w.map((x) => x.stop()));
        expect(onLab).toEqual(onQemu);
      } finally {
        await m.close();
      }
    }, 120_000);
  },
);
