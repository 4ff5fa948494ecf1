/**
 * Issue 13 item 14 over real sockets: a unix-socket host client on the
 * port's chardev and a guest-dir client on the guest side stream both ways;
 * mid-transfer the port is hot-unplugged. Per direction, bytes sent minus
 * bytes received equals the drops the lab counts (lab.drops, the numbers
 * x-vmchan-query-drops answers) plus the bytes that never left a kernel
 * socket buffer, which the lab cannot see, so they are measured, not
 * guessed, and named:
 * - host -> guest: bytes the host client handed to its kernel (write
 *   callbacks) that the chardev never read (it stops reading a chardev with
 *   no frontend; QEMU does too), and bytes the chardev read and still holds
 *   for a frontend to come (not lost yet: a new port on it gets them);
 * - guest -> host: bytes the guest-dir client handed to its kernel that the
 *   bridge never read before it closed its end (the kernel discards them).
 * Everything in between (the port's ring, the guest's queues, the bridge,
 * the chardev's outbound queue) is either delivered or counted: this test
 * found two gaps, now fixed: the bridge's chunk that the port refused at
 * unplug went uncounted (now 'unplugged', side guest, to-host), and
 * 'guest-client-gone' (host bytes the bridge read for a client that never
 * took them) was filed as to-host.
 */
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DROP_REASONS } from '../../core/chardev/counters.js';
import type { GuestDir } from '../../core/guestdir/index.js';
import type { Machine } from '../../core/machine/machine.js';
import { RINGS } from '../serial/helpers.js';
import { connectUnix, removeTempDirs, waitUntil } from './helpers.js';
import { stalled, startStreamingPort, stream, streamBothWays } from './socket-streams.js';

let machine: Machine | null = null;
let guestDir: GuestDir | null = null;

afterEach(async () => {
  await guestDir?.close();
  guestDir = null;
  await machine?.close();
  machine = null;
  removeTempDirs();
});

describe('item 14 over real sockets: sent - received == counted drops + kernel-held', () => {
  for (const ring of RINGS) {
    it(`D8 L10 hot-unplug mid-transfer, host unix socket and guest-dir client both streaming (${ring})`, async () => {
      const rig = await startStreamingPort('dropsock', ring, (m, g) => {
        machine = m;
        guestDir = g;
      });
      const { chardev } = rig;
      const lab = rig.machine.lab;

      const { hostSocket, host, guestSocket, guest, bridge } = await streamBothWays(rig);
      // Both clients stop reading, so bytes pile up inside the lab each way:
      // host bytes in the guest's receive queue and the device, guest bytes
      // in the transmit ring. Then the unplug takes them mid-transfer.
      hostSocket.pause();
      guestSocket.pause();
      await waitUntil(() => chardev.inputPaused, 'host bytes to back up into the chardev', 30_000);
      await stalled(() => bridge.fromClient);
      expect(lab.deviceDel('p2')).toBe(null);
      host.stop = true;
      guest.stop = true;
      hostSocket.resume();
      guestSocket.resume();
      // The bridge hangs up its client (ENODEV), the host reads all the chardev sent.
      await waitUntil(() => guest.ended, 'the guest-dir client to get end of file', 30_000);
      await waitUntil(
        () => !rig.guestDir.sockets().some((s) => s.port.name === 'test2'),
        'the socket to go with the port',
      );
      await lab.settle();
      await waitUntil(
        () => chardev.queuedToHost === 0 && host.received === chardev.counters.bytesOut,
        'the host to read every byte the chardev sent',
        30_000,
      );

      const counted = (direction: 'to-guest' | 'to-host'): number =>
        lab.drops.portTotal('vser0', 1, direction);
      const backendDropped = DROP_REASONS.reduce((n, r) => n + chardev.counters.dropped[r], 0);
      // host -> guest: read from the host's socket = handed to the frontend + held + dropped in the backend
      const chardevRead = chardev.counters.bytesIn + chardev.pendingToGuest + backendDropped;
      const inHostKernel = host.acked - chardevRead;
      const heldForNextFrontend = chardev.pendingToGuest;
      // guest -> host: read from the guest-dir client's socket by the bridge
      const inGuestKernel = guest.acked - bridge.fromClient;
      expect(inHostKernel).toBeGreaterThanOrEqual(0);
      expect(inGuestKernel).toBeGreaterThanOrEqual(0);

      expect({
        toGuest: host.acked - guest.received,
        toHost: guest.acked - host.received,
      }).toEqual({
        toGuest: counted('to-guest') + inHostKernel + heldForNextFrontend,
        toHost: counted('to-host') + inGuestKernel,
      });
      // The backend's own drops are in the ledger too (none here: the host stayed).
      expect(backendDropped).toBe(0);
      // The unplug took bytes mid-transfer each way, and each is named.
      expect(counted('to-guest')).toBeGreaterThan(0);
      expect(counted('to-host')).toBeGreaterThan(0);
      const reasons = lab.drops.list().map((d) => `${d.direction ?? ''} ${d.reason}`);
      expect(reasons).toContain('to-host unplugged');
      expect(reasons).toContain('to-guest closed-unread');
    }, 120_000);
  }
});

/**
 * Where the over-count the test above found now and then came from (36,544
 * bytes host to guest, seen on the packed ring only by timing): bytes the
 * guest-dir bridge handed to a client's socket when the port went. The
 * bridge destroys the socket then; what the kernel already holds still
 * reaches the client, the rest is 'guest-client-gone'. It counted the whole
 * write in flight, including the part already in the kernel (see
 * core/chardev/unsent.ts; test/lab/guestdir-unsent.test.ts makes that half
 * write happen every time). Here the client reads nothing until the unplug,
 * so its socket is full then; every byte the bridge handed it is read by the
 * client or counted, exactly, and so is the whole direction.
 */
describe('a guest-dir client not reading when its port is unplugged', () => {
  for (const ring of RINGS) {
    it(`D8 L10 bytes the bridge handed to the client: read by it or counted as guest-client-gone (${ring})`, async () => {
      const rig = await startStreamingPort('dropgone', ring, (m, g) => {
        machine = m;
        guestDir = g;
      });
      const { dir, chardev } = rig;
      const lab = rig.machine.lab;

      const guestSocket = await connectUnix(path.join(dir, 'guest', 'test2'));
      guestSocket.pause();
      let received = 0;
      let ended = false;
      guestSocket.on('data', (d: Buffer) => (received += d.length));
      guestSocket.on('end', () => (ended = true));
      guestSocket.on('error', () => {});
      await waitUntil(
        () => rig.guestDir.sockets().some((s) => s.port.name === 'test2' && s.client !== null),
        'the guest-dir bridge',
      );
      const bridge = rig.guestDir.sockets().find((s) => s.port.name === 'test2')!.client!;
      const hostSocket = await connectUnix(path.join(dir, 'c2'));
      const host = stream(hostSocket, 1);

      // Everything backs up: the client's socket, the guest's queue, the device, the chardev.
      await waitUntil(() => chardev.inputPaused, 'host bytes to back up into the chardev', 30_000);
      await stalled(() => bridge.toClient);
      expect(received).toBe(0);
      expect(lab.deviceDel('p2')).toBe(null);
      host.stop = true;
      guestSocket.resume();
      await waitUntil(() => ended, 'the guest-dir client to read to end of file', 30_000);
      await lab.settle();

      const gone = lab.drops
        .list()
        .filter((d) => d.reason === 'guest-client-gone')
        .reduce((n, d) => n + d.bytes, 0);
      // Some of what the bridge handed over was still queued in this process, and the kernel's part arrived.
      expect(gone).toBeGreaterThan(0);
      expect(received).toBeGreaterThan(0);
      expect(received + gone).toBe(bridge.toClient);
      // And the whole direction: sent - received == counted + in the host's kernel + held by the chardev.
      const chardevRead = chardev.counters.bytesIn + chardev.pendingToGuest;
      expect(host.acked - received).toBe(
        lab.drops.portTotal('vser0', 1, 'to-guest') +
          (host.acked - chardevRead) +
          chardev.pendingToGuest,
      );
    }, 120_000);
  }
});
