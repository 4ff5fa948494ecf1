/**
 * The in-place tap on a real QEMU running the test guest, from the app's
 * API (attach, tapChardev, startCapture): the host application connects to
 * the chardev's own socket path all along, never re-pointed; the sha1
 * transfer of the case study goes both ways through vmchan, every byte in
 * the capture; detach gives QEMU's node back at its path, and the host
 * application reaches QEMU directly again.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { TapState } from '../../core/api/contract/contract.js';
import { TapJournal } from '../../core/qemu/tap-journal.js';
import { rig as apiRig, type Rig } from '../api/helpers.js';
import { isGuestError } from '../guest/guest-shell.js';
import { connectUnix, describeRealGuest } from './real-guest.js';
import {
  expectBothCaptured,
  guestToHost,
  hostToGuest,
  PORT,
  readCapturedStream,
  useTapGuest,
} from './tap-rig.js';

const SIZE = 2 * 1024 * 1024;

describeRealGuest('in-place tap on a real QEMU', 'in-place tap tests on a real QEMU', () => {
  let r: Rig | undefined;
  /** The host application of the reverse chardev: it listens, QEMU connects (server=off). */
  let appServer: net.Server | undefined;
  const appConns: { socket: net.Socket; got: string }[] = [];
  const revPath = (): string => path.join(g.runDir, 'rev-app.sock');
  const appQmp = (): string => path.join(g.runDir, 'app-qmp.sock');

  const g = useTapGuest({
    what: 'the in-place tap tests',
    tmpPrefix: 'vmchan-inplace-real-',
    before: async (dir) => {
      appServer = net.createServer((socket) => {
        const c = { socket, got: '' };
        appConns.push(c);
        socket.on('data', (d: Buffer) => (c.got += d.toString()));
        socket.on('error', () => {});
      });
      await new Promise<void>((res) => appServer!.listen(path.join(dir, 'rev-app.sock'), res));
    },
    // prettier-ignore
    extraArgs: (dir) => [
      '-qmp', `unix:${path.join(dir, 'app-qmp.sock')},server=on,wait=off`,
      '-chardev', `socket,id=rc,path=${path.join(dir, 'rev-app.sock')},server=off`,
      '-device', 'virtserialport,bus=vser0.0,chardev=rc,id=rport,name=org.test.rev',
    ],
    after: async () => {
      for (const c of appConns) c.socket.destroy();
      await new Promise<void>((res) => (appServer ? appServer.close(() => res()) : res()));
    },
  });
  const until = g.until;
  const sh = g.sh;

  // the app's session ends before the guest stops (useTapGuest's afterAll runs after this one)
  afterAll(async () => {
    await r?.close();
  }, 60_000);

  it('sha1 both ways through the tap at QEMU’s own path, every byte captured; detach gives the path back', async () => {
    const portPath = g.guest.portSocket(PORT.id);
    const qemuIno = fs.statSync(portPath).ino;
    const capPath = path.join(g.runDir, 'inplace.pcapng');
    r = await apiRig({
      attach: { pollIntervalMs: 500, journal: new TapJournal(path.join(g.runDir, 'journal')) },
    });
    await r.must({ cmd: 'attach', address: appQmp() });
    await r.must({ cmd: 'startCapture', path: capPath });
    const tap = await r.must<TapState>({ cmd: 'tapChardev', id: PORT.chardev });
    expect(tap).toMatchObject({ mode: 'in-place', address: portPath, waiting: false });
    expect(fs.statSync(portPath).ino).not.toBe(qemuIno);

    // host app -> vmchan -> QEMU -> guest and back, at the path the application always used
    const h2g = await hostToGuest(g, portPath, SIZE);
    const g2h = await guestToHost(g, portPath, SIZE);
    await r.must({ cmd: 'stopCapture' });
    expectBothCaptured(capPath, PORT.name, SIZE, h2g, g2h);

    // detach: QEMU's own node at its path; the application reaches QEMU directly
    await r.must({ cmd: 'detach' });
    expect(fs.statSync(portPath).ino).toBe(qemuIno);
    const direct = await connectUnix(portPath);
    await g.hostSeen(PORT.chardev, true, 'QEMU sees the direct host');
    // a full close: QEMU reads nothing while the guest has the port closed, so it sees
    // a half-close (end) only when it reads again; the hang-up it sees at once
    direct.destroy();
    await g.hostSeen(PORT.chardev, false, 'the direct host gone for QEMU');
  }, 600_000);

  it('reverse tap (QEMU is the client): only with consent, chardev-change to vmchan and back on detach, both directions captured', async () => {
    await until(
      'QEMU connected to the application at start',
      () => appConns.length,
      (n) => n >= 1,
    );
    r ??= await apiRig({ attach: { pollIntervalMs: 500 } });
    await r.must({ cmd: 'attach', address: appQmp() });
    const refused = await r.run({ cmd: 'tapChardev', id: 'rc' });
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error.message).toMatch(/chardev-change.*consent/);
    const capPath = path.join(g.runDir, 'reverse.pcapng');
    await r.must({ cmd: 'startCapture', path: capPath });
    const before = appConns.length;
    const tap = await r.must<TapState>({ cmd: 'tapChardev', id: 'rc', consent: true });
    expect(tap.mode).toBe('reverse');
    // a client chardev's path is not in query-chardev's filename ('unix:'): its QOM addr has it
    const addr = async (): Promise<string> =>
      JSON.stringify(await g.qmp.qomGet('/chardevs/rc', 'addr'));
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
    const reading = g.guest.shell.run('head -c 5 /dev/virtio-ports/org.test.rev', {
      timeoutMs: 30_000,
    });
    await g.guestOpened('rc');
    through.socket.write('ping!');
    const read = await reading;
    if (isGuestError(read)) throw new Error(read.toString());
    expect(read.output).toContain('ping!');
    await r.must({ cmd: 'stopCapture' });
    const rev = readCapturedStream(capPath, 'org.test.rev');
    expect(rev.guestToHost.toString()).toBe('hello-rev');
    expect(rev.hostToGuest.toString()).toBe('ping!');

    // detach: chardev-change back; QEMU connects to the application directly again
    const n = appConns.length;
    await r.must({ cmd: 'detach' });
    await until(
      'QEMU reconnects to the application itself',
      () => appConns.length,
      (k) => k > n,
    );
    expect(await addr()).toContain(revPath());
  }, 600_000);
});
