/**
 * Issue 13 item 14: a backend's own drops reach the lab's ledger
 * (lab.drops: x-vmchan-query-drops, the app, `vmchan run`'s summary) with
 * a reason and a way, not only the chardev's counters. One test per path
 * BackendEndpoint counts on its own: no host peer (D7 on a console, which
 * QEMU offers the backend anyway), a write the OS refuses (disk full), and
 * host bytes the chardev still held when it was closed. Each checks
 * sent - received == counted, in the backend's counters and in the ledger.
 */
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendEndpoint } from '../../core/chardev/backend-endpoint.js';
import type { Machine } from '../../core/machine/machine.js';
import { isErrno } from '../../core/serial/guest/errno.js';
import { O_RDWR } from '../../core/serial/guest/files.js';
import {
  connectUnix,
  removeTempDirs,
  startMachine,
  tempDir,
  unixServer,
  waitUntil,
} from './helpers.js';

let machine: Machine | null = null;

afterEach(async () => {
  await machine?.close();
  machine = null;
  removeTempDirs();
});

function backend(m: Machine, id: string): BackendEndpoint {
  const c = m.lab.chardev(id);
  if (!(c instanceof BackendEndpoint)) throw new Error(`${id} is not a real backend`);
  return c;
}

/** A guest program writes `total` bytes to a port file; returns what write() took. */
async function guestWrites(m: Machine, file: string, total: number): Promise<number> {
  const files = m.lab.guest.files;
  const fd = await files.open(file, O_RDWR);
  if (isErrno(fd)) throw new Error(`open ${file}: ${fd.toString()}`);
  let sent = 0;
  while (sent < total) {
    const n = await files.write(fd, new Uint8Array(Math.min(4000, total - sent)).fill(0x61));
    if (isErrno(n)) throw new Error(`write ${file}: ${n.toString()}`);
    sent += n;
  }
  return sent;
}

/** The ledger's rows for one reason, as `way reason bytes side`. */
function ledger(m: Machine, reason: string): string[] {
  return m.lab.drops
    .list()
    .filter((d) => d.reason === reason)
    .map((d) => `${d.direction ?? ''} ${d.reason} ${d.bytes} ${d.side}`);
}

describe('a backend drop is in the lab ledger with its reason', () => {
  it('D7 no peer: a console writes to a socket chardev nobody is connected to (host-disconnected)', async () => {
    const dir = tempDir('bdrop');
    machine = await startMachine(
      [
        ...unixServer(dir, 'c0'),
        '-device',
        'virtio-serial,id=vser0',
        '-device',
        'virtconsole,chardev=c0,name=console.0',
      ],
      dir,
    );
    const c0 = backend(machine, 'c0');
    const sent = await guestWrites(machine, '/dev/hvc0', 10_000);
    await waitUntil(() => c0.counters.dropped['no-peer'] === sent, 'the console bytes to reach c0');
    await machine.lab.settle();
    const received = c0.counters.bytesOut;
    expect(received).toBe(0);
    expect(sent - received).toBe(machine.lab.drops.portTotal('vser0', 0, 'to-host'));
    expect(ledger(machine, 'host-disconnected')).toEqual([
      `to-host host-disconnected ${sent} backend`,
    ]);
  });

  it('a write the OS refuses: a file chardev on /dev/full (host-send-failed)', async () => {
    const dir = tempDir('bdrop');
    machine = await startMachine(
      [
        '-chardev',
        'file,path=/dev/full,id=c1',
        '-device',
        'virtio-serial,id=vser0',
        '-device',
        'virtserialport,chardev=c1,name=full',
      ],
      dir,
    );
    const c1 = backend(machine, 'c1');
    const sent = await guestWrites(machine, '/dev/virtio-ports/full', 10_000);
    await waitUntil(() => c1.counters.dropped['send-failed'] === sent, 'the bytes to reach c1');
    await machine.lab.settle();
    expect(c1.counters.bytesOut).toBe(0);
    expect(c1.failures.count).toBeGreaterThan(0);
    expect(sent - c1.counters.bytesOut).toBe(machine.lab.drops.portTotal('vser0', 1, 'to-host'));
    expect(ledger(machine, 'host-send-failed')).toEqual([
      `to-host host-send-failed ${sent} backend`,
    ]);
  });

  it('closed: host bytes a chardev held for a frontend when it was removed (chardev-closed)', async () => {
    const dir = tempDir('bdrop');
    machine = await startMachine(
      [...unixServer(dir, 'c2'), '-device', 'virtio-serial,id=vser0'],
      dir,
    );
    const c2 = backend(machine, 'c2');
    const host = await connectUnix(path.join(dir, 'c2'));
    const sent = 5000;
    await new Promise<void>((resolve) =>
      host.write(new Uint8Array(sent).fill(0x62), () => resolve()),
    );
    // No port holds c2: the bytes wait in the chardev for a frontend to come.
    await waitUntil(() => c2.pendingToGuest === sent, 'c2 to read the host bytes');
    expect(await machine.chardevRemove('c2')).toBe(null);
    host.destroy();
    expect(c2.counters.dropped.closed).toBe(sent);
    expect(machine.lab.drops.total).toBe(sent);
    expect(ledger(machine, 'chardev-closed')).toEqual([`to-guest chardev-closed ${sent} backend`]);
    // No port holds c2: the summary names the chardev.
    expect(machine.lab.drops.summary()).toBe(
      `dropped ${sent} bytes: chardev c2 to-guest chardev-closed ${sent}`,
    );
  });
});
