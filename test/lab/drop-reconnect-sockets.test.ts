/**
 * Issue 13 item 14, the host-reconnect case over real sockets ("a host
 * reconnect mid-transfer lost 36,544 bytes and counted 3,776"): a unix
 * socket host client and a guest-dir client stream both ways through a
 * port; with both backed up, the host client closes (a program that exits)
 * and a new one connects and streams on. Per direction, sent - received
 * equals what the lab counts (lab.drops: x-vmchan-query-drops, the app,
 * `vmchan run`'s summary), plus what a kernel buffer of the closed client
 * held, measured at its close, never guessed:
 * - host -> guest: every byte a host client put into the kernel is read by
 *   the chardev (QEMU's H4 hang-up reads the rest only to discard it), so
 *   none stays unknown: the chardev's reads equal what the clients put in;
 * - guest -> host: the bytes the chardev had handed to the kernel that the
 *   first client never read die with its socket (its receive queue and its
 *   stream buffer); that is measured when it closes.
 */
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SocketChardev } from '../../core/chardev/socket-backend.js';
import type { GuestDir } from '../../core/guestdir/index.js';
import type { Machine } from '../../core/machine/machine.js';
import type { DropDirection } from '../../core/serial/events.js';
import { RINGS } from '../serial/helpers.js';
import { connectUnix, removeTempDirs, waitUntil } from './helpers.js';
import { inKernel, stalled, startStreamingPort, stream, streamBothWays } from './socket-streams.js';

let machine: Machine | null = null;
let guestDir: GuestDir | null = null;

afterEach(async () => {
  await guestDir?.close();
  guestDir = null;
  await machine?.close();
  machine = null;
  removeTempDirs();
});

describe('item 14 over real sockets: a host reconnect mid-transfer', () => {
  for (const ring of RINGS) {
    it(`H4 D7 the host client closes backed up both ways and a new one streams on: sent - received == counted (${ring})`, async () => {
      const rig = await startStreamingPort('dropre', ring, (m, g) => {
        machine = m;
        guestDir = g;
      });
      const { dir, chardev: endpoint } = rig;
      const lab = rig.machine.lab;
      if (!(endpoint instanceof SocketChardev)) throw new Error('c2 is not a socket chardev');
      const chardev = endpoint;

      const {
        hostSocket: firstSocket,
        host: first,
        guestSocket,
        guest,
        bridge,
      } = await streamBothWays(rig);

      // Both readers stop, so bytes pile up in the lab each way: host bytes in
      // the chardev (its source paused), guest bytes in the chardev's socket
      // queue. Then the host client goes, with all of that in flight.
      firstSocket.pause();
      guestSocket.pause();
      await waitUntil(() => chardev.inputPaused, 'host bytes to back up into the chardev', 30_000);
      await stalled(() => chardev.counters.bytesOut);
      expect(chardev.queuedToHost).toBeGreaterThan(0);
      first.stop = true;
      // What the first client put into the kernel, and what of the chardev's
      // output it never read (in its kernel queue or its stream's buffer):
      // the chardev's finished writes, and the part of its write in flight
      // the kernel took (`partial`).
      const firstPut = inKernel(firstSocket, first);
      const firstLost = chardev.counters.bytesOut - chardev.unfinishedToHost - first.received;
      const partial = chardev.unfinishedToHost - chardev.queuedToHost;
      firstSocket.destroy();
      guestSocket.resume();
      await waitUntil(() => !chardev.connected, 'the chardev to see its host client go', 30_000);

      // A new host client: the transfer goes on.
      const secondSocket = await connectUnix(path.join(dir, 'c2'));
      const second = stream(secondSocket, 3);
      const g = guest.received;
      await waitUntil(
        () => second.received > 500_000 && guest.received > g + 500_000,
        'half a megabyte each way through the new host client',
        60_000,
      );
      second.stop = true;
      guest.stop = true;
      await waitUntil(
        () => second.acked === second.written && guest.acked === guest.written,
        'the last writes to reach the kernel',
        30_000,
      );
      await waitUntil(
        () => bridge.fromClient === guest.acked,
        'the bridge to read the guest client',
        30_000,
      );
      await stalled(() => guest.received + second.received + chardev.counters.bytesIn);
      await lab.settle();

      const counted = (direction: DropDirection): number =>
        lab.drops.portTotal('vser0', 1, direction);
      const backendToGuest = lab.drops
        .list()
        .filter((d) => d.side === 'backend' && d.direction === 'to-guest')
        .reduce((n, d) => n + d.bytes, 0);
      const hostPut = firstPut + second.acked;
      // How the chardev saw the client go decides who holds `partial`: a
      // refused write (EPIPE) is counted whole, as Node cannot tell how much
      // of it the kernel took; end of file first leaves it the client's.
      const refused = chardev.failures.last?.includes('EPIPE') === true;
      // Every byte the host clients put into the kernel was read by the chardev.
      expect(chardev.counters.bytesIn + chardev.pendingToGuest + backendToGuest).toBe(hostPut);
      expect(firstLost).toBeGreaterThanOrEqual(0);
      expect({
        toGuest: hostPut - guest.received,
        toHost: guest.acked - (first.received + second.received),
      }).toEqual({
        toGuest: counted('to-guest') + chardev.pendingToGuest,
        toHost: counted('to-host') + firstLost + (refused ? 0 : partial),
      });
      // The close took bytes each way, and each is named.
      expect(counted('to-guest')).toBeGreaterThan(0);
      expect(counted('to-host')).toBeGreaterThan(0);
      const reasons = lab.drops.list().map((d) => `${d.direction ?? ''} ${d.reason}`);
      expect(reasons).toContain('to-host host-disconnected');
      // H4: host bytes the port could not take when the client went, read only to be counted.
      expect(reasons).toContain('to-guest hangup-unread');
      // The ledger's backend rows are the chardev's own counters.
      const backendDropped = lab.drops
        .list()
        .filter((d) => d.side === 'backend')
        .reduce((n, d) => n + d.bytes, 0);
      expect(backendDropped).toBe(
        Object.values(chardev.counters.dropped).reduce((n, b) => n + b, 0),
      );
    }, 180_000);
  }
});
