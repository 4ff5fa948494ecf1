/**
 * The in-place tap on a real QEMU running the test guest, from the app's
 * API (attach, tapChardev, startCapture): the host application connects to
 * the chardev's own socket path all along, never re-pointed; the sha1
 * transfer of the case study goes both ways through vmchan, every byte in
 * the capture; detach gives QEMU's node back at its path, and the host
 * application reaches QEMU directly again.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TapState } from '../../core/api/contract/contract.js';
import { CaptureError } from '../../core/capture/error.js';
import { followCapture, followRaw } from '../../core/capture/follow.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { QmpClient } from '../../core/qemu/qmp-client.js';
import { isQmpError } from '../../core/qemu/qmp-error.js';
import { TapJournal } from '../../core/qemu/tap-journal.js';
import { rig, type Rig } from '../api/helpers.js';
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
const SIZE = 2 * 1024 * 1024;

describeRealGuest('in-place tap on a real QEMU', 'in-place tap tests on a real QEMU', () => {
  let guest: Guest;
  let qmp: QmpClient;
  let runDir: string;
  let appQmp: string;
  let r: Rig | undefined;
  /** The host application of the reverse chardev: it listens, QEMU connects (server=off). */
  let appServer: net.Server;
  const appConns: { socket: net.Socket; got: string }[] = [];
  let revPath: string;

  const sh = guestShell(() => guest);
  const until = poller(15_000, 50);
  const chardev = chardevLookup(() => qmp);

  beforeAll(async () => {
    requirePrerequisites('the in-place tap tests');
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-inplace-real-'));
    appQmp = path.join(runDir, 'app-qmp.sock');
    revPath = path.join(runDir, 'rev-app.sock');
    appServer = net.createServer((socket) => {
      const c = { socket, got: '' };
      appConns.push(c);
      socket.on('data', (d: Buffer) => (c.got += d.toString()));
      socket.on('error', () => {});
    });
    await new Promise<void>((res) => appServer.listen(revPath, res));
    // prettier-ignore
    const g = await startGuest({
      runDir,
      ports: [{ id: 'port1', name: 'org.test.port.1' }],
      extraArgs: [
        '-qmp', `unix:${appQmp},server=on,wait=off`,
        '-chardev', `socket,id=rc,path=${revPath},server=off`,
        '-device', 'virtserialport,bus=vser0.0,chardev=rc,id=rport,name=org.test.rev',
      ],
    });
    if (isGuestError(g)) throw new Error(g.toString());
    guest = g;
    const c = await QmpClient.connect(guest.qmpPath, { greetingTimeoutMs: 15_000 });
    if (isQmpError(c)) throw new Error(c.toString());
    qmp = c;
  }, 120_000);

  afterAll(async () => {
    await r?.close();
    for (const c of appConns) c.socket.destroy();
    await new Promise<void>((res) => (appServer ? appServer.close(() => res()) : res()));
    await qmp?.close();
    await guest?.stop();
    if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
  }, 30_000);

  it('sha1 both ways through the tap at QEMU’s own path, every byte captured; detach gives the path back', async () => {
    const portPath = guest.portSocket('port1');
    const qemuIno = fs.statSync(portPath).ino;
    const capPath = path.join(runDir, 'inplace.pcapng');
    r = await rig({
      attach: { pollIntervalMs: 500, journal: new TapJournal(path.join(runDir, 'journal')) },
    });
    await r.must({ cmd: 'attach', address: appQmp });
    await r.must({ cmd: 'startCapture', path: capPath });
    const tap = await r.must<TapState>({ cmd: 'tapChardev', id: 'c-port1' });
    expect(tap).toMatchObject({ mode: 'in-place', address: portPath, waiting: false });
    expect(fs.statSync(portPath).ino).not.toBe(qemuIno);

    // host app -> vmchan -> QEMU -> guest, at the path the application always used
    const hostFile = randomBytes(SIZE);
    const app1 = await connectUnix(portPath);
    await until(
      'QEMU sees the host',
      () => chardev('c-port1'),
      (c) => !c.filename.startsWith('disconnected:'),
    );
    const received = guest.shell.run(
      `head -c ${SIZE} /dev/virtio-ports/org.test.port.1 > /tmp/h; sha1sum /tmp/h`,
      { timeoutMs: 60_000 },
    );
    await until(
      'guest opened the port',
      () => chardev('c-port1'),
      (c) => c['frontend-open'],
    );
    app1.write(hostFile);
    const got1 = await received;
    if (isGuestError(got1)) throw new Error(got1.toString());
    expect(got1.output.split(/\s+/)[0]).toBe(sha1(hostFile));
    app1.end();
    await until(
      'host gone for QEMU',
      () => chardev('c-port1'),
      (c) => c.filename.startsWith('disconnected:'),
    );

    // guest -> QEMU -> vmchan -> host app
    const guestSum = (
      await sh(`head -c ${SIZE} /dev/urandom > /tmp/g; sha1sum /tmp/g`, 30_000)
    ).output.split(/\s+/)[0];
    const app2 = await connectUnix(portPath);
    const chunks: Buffer[] = [];
    let got = 0;
    app2.on('data', (b: Buffer) => {
      chunks.push(b);
      got += b.length;
    });
    await until(
      'QEMU sees the next host',
      () => chardev('c-port1'),
      (c) => !c.filename.startsWith('disconnected:'),
    );
    await sh('cat /tmp/g > /dev/virtio-ports/org.test.port.1', 60_000);
    await until(
      'the host app has the file',
      () => got,
      (n) => n >= SIZE,
      30_000,
    );
    expect(sha1(Buffer.concat(chunks))).toBe(guestSum);
    app2.end();
    await until(
      'host gone for QEMU again',
      () => chardev('c-port1'),
      (c) => c.filename.startsWith('disconnected:'),
    );
    await r.must({ cmd: 'stopCapture' });

    const reader = openCaptureSync(capPath);
    if (reader instanceof CaptureError) throw new Error(reader.toString());
    try {
      const stream = followCapture(reader, { port: 'org.test.port.1' });
      if (stream instanceof CaptureError) throw new Error(stream.toString());
      expect([stream.hostToGuest, stream.guestToHost]).toEqual([SIZE, SIZE]);
      expect(sha1(followRaw(stream, 'host-to-guest'))).toBe(sha1(hostFile));
      expect(sha1(followRaw(stream, 'guest-to-host'))).toBe(guestSum);
    } finally {
      reader.close();
    }

    // detach: QEMU's own node at its path; the application reaches QEMU directly
    await r.must({ cmd: 'detach' });
    expect(fs.statSync(portPath).ino).toBe(qemuIno);
    const direct = await connectUnix(portPath);
    await until(
      'QEMU sees the direct host',
      () => chardev('c-port1'),
      (c) => !c.filename.startsWith('disconnected:'),
    );
    direct.end();
  }, 120_000);

  it('reverse tap (QEMU is the client): only with consent, chardev-change to vmchan and back on detach, both directions captured', async () => {
    await until(
      'QEMU connected to the application at start',
      () => appConns.length,
      (n) => n >= 1,
    );
    r ??= await rig({ attach: { pollIntervalMs: 500 } });
    await r.must({ cmd: 'attach', address: appQmp });
    const refused = await r.run({ cmd: 'tapChardev', id: 'rc' });
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error.message).toMatch(/chardev-change.*consent/);
    const capPath = path.join(runDir, 'reverse.pcapng');
    await r.must({ cmd: 'startCapture', path: capPath });
    const before = appConns.length;
    const tap = await r.must<TapState>({ cmd: 'tapChardev', id: 'rc', consent: true });
    expect(tap.mode).toBe('reverse');
    // a client chardev's path is not in query-chardev's filename ('unix:'): its QOM addr has it
    const addr = async (): Promise<string> =>
      JSON.stringify(await qmp.qomGet('/chardevs/rc', 'addr'));
    expect(await addr()).toContain(tap.address);
    // QEMU connects to vmchan, vmchan on to the application: a new connection arrives
    await until(
      'vmchan connects to the application',
      () => appConns.length,
      (n) => n > before,
    );
    const through = appConns[appConns.length - 1]!;

    await sh('printf hello-rev > /dev/virtio-ports/org.test.rev', 30_000);
    await until(
      'the application reads the guest',
      () => through.got,
      (v) => v === 'hello-rev',
    );
    const reading = guest.shell.run('head -c 5 /dev/virtio-ports/org.test.rev', {
      timeoutMs: 30_000,
    });
    await until(
      'guest opened the port',
      () => chardev('rc'),
      (c) => c['frontend-open'],
    );
    through.socket.write('ping!');
    const read = await reading;
    if (isGuestError(read)) throw new Error(read.toString());
    expect(read.output).toContain('ping!');
    await r.must({ cmd: 'stopCapture' });
    const reader = openCaptureSync(capPath);
    if (reader instanceof CaptureError) throw new Error(reader.toString());
    try {
      const stream = followCapture(reader, { port: 'org.test.rev' });
      if (stream instanceof CaptureError) throw new Error(stream.toString());
      expect(Buffer.from(followRaw(stream, 'guest-to-host')).toString()).toBe('hello-rev');
      expect(Buffer.from(followRaw(stream, 'host-to-guest')).toString()).toBe('ping!');
    } finally {
      reader.close();
    }

    // detach: chardev-change back; QEMU connects to the application directly again
    const n = appConns.length;
    await r.must({ cmd: 'detach' });
    await until(
      'QEMU reconnects to the application itself',
      () => appConns.length,
      (k) => k > n,
    );
    expect(await addr()).toContain(revPath);
  }, 120_000);
});
