/**
 * Record boundaries are the guest's buffers (issue 16): 100,000 bytes the
 * guest writes to a port show as exactly as many data records as the
 * device consumed transmit buffers (used-ring entries of the port's tx
 * queue), with the same sizes, and no throttle events while the host
 * reader keeps up. QEMU hands a whole buffer to the chardev (D5 throttles
 * only when the backend really refuses bytes).
 */
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tapLab } from '../../core/capture/lab-tap.js';
import { MemorySink, type RingRecord } from '../../core/capture/record.js';
import { GuestDir, isGuestDirError } from '../../core/guestdir/index.js';
import {
  caseStudyArgs,
  connectUnix,
  hashIncoming,
  removeTempDirs,
  startMachine,
  tempDir,
  waitUntil,
  writeStream,
} from '../lab/helpers.js';

afterAll(removeTempDirs);

const TOTAL = 100_000;

describe('record boundaries: one record per guest buffer', () => {
  for (const ring of ['split', 'packed'] as const) {
    it(`${ring}: 100,000 guest bytes = one data record per used tx entry, same sizes, no throttle`, async () => {
      const dir = tempDir('bounds');
      const m = await startMachine(caseStudyArgs(dir), dir, ring);
      const g = await GuestDir.open(m.lab, path.join(dir, 'guest'));
      if (isGuestDirError(g)) throw new Error(g.message);
      const sink = new MemorySink();
      const tap = tapLab(m.lab, sink, { ports: ['test2'], ring: true });
      try {
        const host = await connectUnix(path.join(dir, 'test2'));
        const guest = await connectUnix(path.join(g.dir, 'test2'));
        const received = hashIncoming(host, TOTAL);
        let n = 0;
        const sent = await writeStream(
          guest,
          TOTAL,
          (k) => Uint8Array.from({ length: k }, () => n++ & 0xff),
          TOTAL,
        );
        expect(await received).toBe(sent);
        const data = () =>
          sink.records.filter((r) => r.kind === 'data' && r.direction === 'guest-to-host');
        await waitUntil(
          () => data().reduce((s, r) => s + r.length, 0) >= TOTAL,
          'every guest byte in the capture',
        );
        const txQueue = 2 * 2 + 3; // port 2's transmit queue
        const pushes = sink.records.filter(
          (r): r is RingRecord =>
            r.kind === 'ring' && r.queue === txQueue && r.op === 'device-push',
        );
        expect(data().length).toBe(pushes.length);
        expect(data().length).toBeGreaterThan(1); // Linux caps one write at 32 KiB
        expect(data().every((r) => r.length <= 32 * 1024)).toBe(true);
        // same sizes: each record holds what its buffer held (the pop's readable bytes)
        const pops = sink.records.filter(
          (r): r is RingRecord => r.kind === 'ring' && r.queue === txQueue && r.op === 'device-pop',
        );
        const sizes = pops.map((p) =>
          Number(
            /readable, (\d+) byte|(\d+) bytes to read/
              .exec(p.text)
              ?.slice(1)
              .find((x) => x !== undefined),
          ),
        );
        expect(data().map((r) => r.length)).toEqual(sizes);
        expect(sink.records.filter((r) => r.kind === 'event' && r.event === 'throttle-on')).toEqual(
          [],
        );
        host.destroy();
        guest.destroy();
      } finally {
        tap.stop();
        await g.close();
        await m.close();
      }
    }, 60_000);
  }
});
