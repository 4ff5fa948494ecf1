/**
 * H4 by a refused write: a unix socket host closes while the chardev both
 * holds its unread bytes (the port takes nothing) and writes guest bytes
 * to it. The chardev's next write fails with EPIPE. QEMU (tcp_chr_write)
 * then disconnects when the port cannot read, so the host's bytes are
 * discarded; vmchan reads them only to count them ('hangup-unread'), and
 * the guest bytes it took that never reached the kernel (the refused write
 * whole and what waited behind it) move from bytesOut to 'peer-gone'.
 * Before, Node destroyed the socket on the EPIPE: both went uncounted.
 */
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SocketChardev, type DropReason, type OpenChardev } from '../../core/chardev/index.js';
import { bytesNotInKernel } from '../../core/chardev/unsent.js';
import type { DropDirection } from '../../core/serial/events.js';
import { lab, pattern, spec, tempDir, TestFrontend, waitFor } from './helpers.js';

const opened: OpenChardev[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

describe('a host that closes while the chardev writes to it (EPIPE)', () => {
  it('H4 its unread bytes are counted hangup-unread, the refused guest bytes peer-gone, exactly', async () => {
    const p = path.join(tempDir(), 'r1');
    const drops: [DropReason, number, DropDirection][] = [];
    const { open, notices } = lab({
      onDrop: (_id, reason, bytes, way) => drops.push([reason, bytes, way]),
    });
    const c = await open(
      spec('r1', {
        kind: 'socket',
        address: { type: 'unix', path: p },
        server: true,
        wait: false,
        nodelay: false,
      }),
    );
    opened.push(c);
    if (!(c instanceof SocketChardev)) throw new Error('not a socket chardev');
    const fe = new TestFrontend();
    fe.room = 0; // the port takes nothing: host bytes wait in the chardev, then in the kernel
    c.attach(fe);
    const host = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ path: p }, () => resolve(s));
      s.once('error', reject);
    });
    host.on('error', () => {});
    host.pause(); // the host reads nothing: guest bytes back up into the chardev
    await waitFor(() => fe.events.includes('opened'), 'the chardev to open');

    const hostBytes = pattern(256 * 1024, 3);
    host.write(hostBytes);
    await waitFor(() => c.inputPaused, 'the chardev to pause reading the host');
    // The guest writes until the chardev takes nothing for many turns: its socket is full.
    let taken = 0;
    for (let idle = 0; idle < 200;) {
      const n = c.write(pattern(32 * 1024, taken));
      taken += n;
      idle = n === 0 ? idle + 1 : 0;
      await new Promise((r) => setImmediate(r));
    }
    const unfinished = c.unfinishedToHost;
    expect(unfinished).toBeGreaterThan(0);
    const outBefore = c.counters.bytesOut;
    const hostPut = hostBytes.length - bytesNotInKernel(host);

    host.destroy();
    await waitFor(() => !c.connected, 'the chardev to see the host go');
    await waitFor(() => fe.events.includes('closed'), "the frontend's 'closed'");

    expect(c.failures.last).toContain('EPIPE');
    // host -> guest: every byte the host put in the kernel was read, and counted.
    expect(fe.received).toBe(0);
    expect(c.counters.dropped['hangup-unread']).toBe(hostPut);
    expect(notices).toContain(
      `chardev r1: QEMU discarded ${hostPut} unread bytes when the host hung up`,
    );
    // guest -> host: the writes not finished when the host went are lost whole.
    expect(c.counters.dropped['peer-gone']).toBe(unfinished);
    expect(c.counters.bytesOut).toBe(outBefore - unfinished);
    expect(c.counters.bytesOut + c.counters.dropped['peer-gone']).toBe(taken);
    // And the lab is told each, with its way.
    expect(drops).toEqual(
      expect.arrayContaining([
        ['hangup-unread', hostPut, 'to-guest'],
        ['peer-gone', unfinished, 'to-host'],
      ]),
    );
    expect(drops).toHaveLength(2);
  });
});
