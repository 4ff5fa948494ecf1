/**
 * Issue 13 item 14: every byte that leaves one side and never reaches the
 * other is counted with a reason. Streams run both ways on a port between
 * a guest program (the port file) and the host (an in-memory chardev
 * whose counters are exact); mid-transfer the port is hot-unplugged, or
 * the host hangs up and comes back. Per direction:
 * sent - received == the bytes the drop events counted.
 */
import { describe, expect, it } from 'vitest';
import type { EngineEvents } from '../../core/serial/events.js';
import { isErrno } from '../../core/serial/guest/errno.js';
import { O_RDWR } from '../../core/serial/guest/files.js';
import { bootLab, caseStudy, must, pattern, RINGS } from '../serial/helpers.js';

const TEST1 = '/dev/virtio-ports/test1';
const CHUNK = 20_000;

type Drop = EngineEvents['drop'];

async function rig(ring: 'split' | 'packed') {
  const t = caseStudy(ring);
  t.devices![0]!.ports![1]!.id = 'port1';
  t.chardevs = [{ id: 'test1', capacity: 256 * 1024 }];
  const lab = await bootLab(t);
  const drops: Drop[] = [];
  lab.events.on('drop', (e) => {
    if (e.nr === 1 || e.chardev === 'test1') drops.push(e);
  });
  const host = lab.host('test1');
  const endpoint = lab.endpoint('test1')!;
  host.connect();
  const files = lab.guest.files;
  const fd = must(await files.open(TEST1, O_RDWR));
  const guest = { sent: 0, received: 0, stop: false };
  // the guest program: write and read until the port goes or it is told to stop
  const writer = (async () => {
    for (let i = 0; !guest.stop; i++) {
      const n = await files.write(fd, pattern(CHUNK, i));
      if (isErrno(n)) return n.code;
      guest.sent += n;
    }
    return 'stopped';
  })();
  const reader = (async () => {
    while (!guest.stop) {
      const r = await files.read(fd, 65536);
      if (isErrno(r)) return r.code;
      if (r.length === 0) {
        if (!host.connected && guest.stop) return 'eof';
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      guest.received += r.length;
    }
    return 'stopped';
  })();
  // the host: writes while the chardev takes, reads everything
  let hostReceived = 0;
  let hostSent = 0;
  host.onData((b) => (hostReceived += b.length));
  const feedHost = (): void => {
    if (host.connected && endpoint.pendingToGuest < 4 * CHUNK) {
      hostSent += host.write(pattern(CHUNK, 7));
    }
  };
  return {
    lab,
    host,
    endpoint,
    drops,
    guest,
    writer,
    reader,
    files,
    fd,
    feedHost,
    hostReceived: () => hostReceived,
    hostSent: () => hostSent,
  };
}

const sum = (drops: Drop[], pred: (d: Drop) => boolean): number =>
  drops.filter(pred).reduce((n, d) => n + d.bytes, 0);

describe('item 14: sent - received == counted drops', () => {
  for (const ring of RINGS) {
    it(`hot-unplug mid-transfer, both ways (${ring})`, async () => {
      const r = await rig(ring);
      while (r.guest.received < 1_000_000 || r.hostReceived() < 1_000_000) {
        r.feedHost();
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(r.lab.deviceDel('port1')).toBe(null);
      await r.lab.settle();
      r.guest.stop = true;
      await r.lab.settle();
      expect(await r.writer).toBe('ENODEV');
      const toGuestSent = r.endpoint.stats.toGuest;
      const toHostReceived = r.endpoint.stats.toHost;
      const toGuest = sum(r.drops, (d) => d.direction === 'to-guest');
      const toHost = sum(r.drops, (d) => d.direction === 'to-host');
      expect({
        toGuest: toGuestSent - r.guest.received,
        toHost: r.guest.sent - toHostReceived,
      }).toEqual({ toGuest, toHost });
      expect(toGuest + toHost).toBeGreaterThan(0);
      // the lab's ledger (app, vmchan run, x-vmchan-query-drops) holds the same counts
      expect(r.lab.drops.portTotal('vser0', 1, 'to-guest')).toBe(toGuest);
      expect(r.lab.drops.portTotal('vser0', 1, 'to-host')).toBe(toHost);
    });

    it(`host hangs up and reconnects mid-transfer, both ways (${ring})`, async () => {
      const r = await rig(ring);
      const until = async (test: () => boolean): Promise<void> => {
        while (!test()) {
          r.feedHost();
          await new Promise((resolve) => setImmediate(resolve));
        }
      };
      await until(() => r.guest.received > 500_000 && r.hostReceived() > 500_000);
      r.host.disconnect();
      await r.lab.settle();
      r.host.connect();
      const [g, h] = [r.guest.received, r.hostReceived()];
      await until(() => r.guest.received > g + 500_000 && r.hostReceived() > h + 500_000);
      // Stop: the guest stops writing and closes the port (unread data is counted at close).
      r.guest.stop = true;
      await r.lab.settle();
      await r.writer;
      await r.files.close(r.fd);
      await r.lab.settle();
      const toGuest = sum(r.drops, (d) => d.direction === 'to-guest');
      const toHost = sum(r.drops, (d) => d.direction === 'to-host');
      expect({
        toGuest: r.hostSent() - r.guest.received,
        toHost: r.guest.sent - r.hostReceived(),
      }).toEqual({ toGuest, toHost });
      expect(r.drops.map((d) => d.reason)).toContain('host-disconnected');
      expect(r.lab.drops.portTotal('vser0', 1, 'to-guest')).toBe(toGuest);
      expect(r.lab.drops.portTotal('vser0', 1, 'to-host')).toBe(toHost);
    });
  }
});
