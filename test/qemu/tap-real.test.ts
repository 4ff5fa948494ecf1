/**
 * The tap on a real QEMU running the test guest, driven through
 * `vmchan attach --tap CHARDEV=LISTEN -w FILE`: the sha1 transfer of the
 * case study (seeds/002) both ways, host app -> tap -> QEMU -> guest
 * (`head -c N > file; sha1sum`) and guest -> QEMU -> tap -> host app, with
 * the capture holding every byte of each direction; and the guest seeing
 * the host come and go exactly as the application does.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runAttach } from '../../cli/attach.js';
import { CaptureError } from '../../core/capture/error.js';
import { followCapture, followRaw } from '../../core/capture/follow.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { QmpClient } from '../../core/qemu/qmp-client.js';
import { isQmpError } from '../../core/qemu/qmp-error.js';
import { isGuestError } from '../guest/guest-shell.js';
import { startGuest, type Guest } from '../guest/qemu.js';
import {
  chardevLookup,
  connectUnix,
  describeRealGuest,
  guestShell,
  poller,
  requirePrerequisites,
} from './real-guest.js';

const sha1 = (b: Uint8Array): string => createHash('sha1').update(b).digest('hex');
const SIZE = 3 * 1024 * 1024;

describeRealGuest('tap on a real QEMU', 'tap tests on a real QEMU', () => {
  let guest: Guest;
  let qmp: QmpClient;
  let runDir: string;
  let cliQmp: string;

  const sh = guestShell(() => guest);
  const until = poller(15_000, 50);
  const chardev = chardevLookup(() => qmp);

  beforeAll(async () => {
    requirePrerequisites('the tap tests');
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-tap-real-'));
    cliQmp = path.join(runDir, 'cli-qmp.sock');
    const g = await startGuest({
      runDir,
      ports: [{ id: 'port1', name: 'org.test.port.1' }],
      extraArgs: ['-qmp', `unix:${cliQmp},server=on,wait=off`],
    });
    if (isGuestError(g)) throw new Error(g.toString());
    guest = g;
    console.info(`guest: shell after ${guest.bootMs} ms, ports linked after ${guest.portsMs} ms`);
    const c = await QmpClient.connect(guest.qmpPath, { greetingTimeoutMs: 15_000 });
    if (isQmpError(c)) throw new Error(c.toString());
    qmp = c;
  }, 120_000);

  afterAll(async () => {
    const t = Date.now();
    await qmp?.close();
    await guest?.stop();
    console.info(`stop took ${Date.now() - t} ms`);
    if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
  }, 30_000);

  it("moves the case study's files both ways through the tap, sha1 intact, every byte captured", async () => {
    const tapPath = path.join(runDir, 'port1-tapped.sock');
    const capPath = path.join(runDir, 'port1.pcapng');
    let out = '';
    const io = { out: (t: string) => void (out += t), err: (t: string) => void (out += t) };
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const cli = runAttach(
      { qmp: cliQmp, tap: [`c-port1=${tapPath}`], write: capPath, poll: '500' },
      io,
      stopped,
    );
    cli.catch(() => {});
    await until(
      'tap listening',
      () => out,
      (o) => o.includes(`point the host application at ${tapPath}`),
    );
    expect(fs.statSync(tapPath).mode & 0o777).toBe(0o600);
    // Nobody on the tap yet: QEMU sees no host (the tap connects only for an application).
    expect((await chardev('c-port1')).filename.startsWith('disconnected:')).toBe(true);

    // test_host_file_send: host app -> tap -> QEMU -> guest.
    const hostFile = randomBytes(SIZE);
    const app1 = await connectUnix(tapPath);
    await until(
      'QEMU sees the host',
      () => chardev('c-port1'),
      (c) => !c.filename.startsWith('disconnected:'),
    );
    const received = guest.shell.run(
      `head -c ${SIZE} /dev/virtio-ports/org.test.port.1 > /tmp/host-big-file; sha1sum /tmp/host-big-file`,
      { timeoutMs: 60_000 },
    );
    await until(
      'guest opened the port',
      () => chardev('c-port1'),
      (c) => c['frontend-open'],
    );
    const t0 = Date.now();
    app1.write(hostFile);
    const r = await received;
    if (isGuestError(r)) throw new Error(r.toString());
    const h2gMs = Date.now() - t0;
    expect(r.output.split(/\s+/)[0]).toBe(sha1(hostFile));
    // The application leaves: the tap mirrors it, QEMU (and so the guest) sees no host.
    app1.end();
    await until(
      'host gone for QEMU',
      () => chardev('c-port1'),
      (c) => c.filename.startsWith('disconnected:'),
    );

    // test_guest_file_send: guest -> QEMU -> tap -> host app (a new session).
    const guestSum = (
      await sh(
        `head -c ${SIZE} /dev/urandom > /tmp/guest-big-file; sha1sum /tmp/guest-big-file`,
        30_000,
      )
    ).output.split(/\s+/)[0];
    const app2 = await connectUnix(tapPath);
    const fromGuest: Buffer[] = [];
    let got = 0;
    app2.on('data', (b: Buffer) => {
      fromGuest.push(b);
      got += b.length;
    });
    await until(
      'QEMU sees the next host',
      () => chardev('c-port1'),
      (c) => !c.filename.startsWith('disconnected:'),
    );
    const t1 = Date.now();
    await sh('cat /tmp/guest-big-file > /dev/virtio-ports/org.test.port.1', 60_000);
    await until(
      'host app got the file',
      () => got,
      (n) => n >= SIZE,
      30_000,
    );
    const g2hMs = Date.now() - t1;
    expect(got).toBe(SIZE);
    expect(sha1(Buffer.concat(fromGuest))).toBe(guestSum);
    app2.end();
    await until(
      'second session over',
      () => out,
      (o) => o.includes('session 2: the application disconnected'),
    );

    stop();
    await cli;
    expect(out).toMatch(/capture: \d+ records written to /);

    const reader = openCaptureSync(capPath);
    if (reader instanceof CaptureError) throw new Error(reader.toString());
    try {
      const stream = followCapture(reader, { port: 'org.test.port.1' });
      if (stream instanceof CaptureError) throw new Error(stream.toString());
      expect([stream.hostToGuest, stream.guestToHost]).toEqual([SIZE, SIZE]);
      expect(sha1(followRaw(stream, 'host-to-guest'))).toBe(sha1(hostFile));
      expect(sha1(followRaw(stream, 'guest-to-host'))).toBe(guestSum);
      const tapEvents: string[] = [];
      for (let n = 0; n < reader.count; n++) {
        const rec = reader.record(n);
        if (!(rec instanceof CaptureError) && rec.kind === 'event' && rec.event.startsWith('host-'))
          tapEvents.push(rec.event);
      }
      expect(tapEvents).toEqual(['host-open', 'host-close', 'host-open', 'host-close']);
    } finally {
      reader.close();
    }
    const mibps = (ms: number): string => (SIZE / 1048576 / (ms / 1000)).toFixed(1);
    console.info(
      `through the tap under TCG: host->guest ${mibps(h2gMs)} MiB/s, guest->host ${mibps(g2hMs)} MiB/s (${SIZE} bytes)`,
    );
  }, 90_000);
});
