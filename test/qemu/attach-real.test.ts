/**
 * AttachedMachine and `vmchan attach` against a real QEMU 7.2 running the
 * test guest (test/guest): the ports as QEMU reports them, guest open and
 * close as VSERPORT_CHANGE and as polled changes (for a port without id),
 * hot-plug from vmchan seen in the guest, and the vring indices of the real
 * device moving during a transfer. One boot for the file.
 *
 * Without qemu-system-x86_64 or busybox-static these tests are skipped,
 * except under CI=true, where they fail with the install command.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runAttach } from '../../cli/attach.js';
import { AttachedMachine } from '../../core/qemu/attach.js';
import { isAttachFailure } from '../../core/qemu/attach-error.js';
import type { AttachEvent } from '../../core/qemu/attach-model.js';
import { isQmpError } from '../../core/qemu/qmp-error.js';
import { chardevBackend } from '../../core/qemu/qmp-types.js';
import type { AttachedQueueSnapshot } from '../../core/qemu/vring.js';
import { isGuestError } from '../guest/guest-shell.js';
import { startGuest, type Guest } from '../guest/qemu.js';
import {
  connectUnix,
  describeRealGuest,
  guestShell,
  poller,
  requirePrerequisites,
} from './real-guest.js';

describeRealGuest('attach to a real QEMU', 'attach tests on a real QEMU', () => {
  let guest: Guest;
  let machine: AttachedMachine;
  let runDir: string;
  let cliQmp: string;
  const events: AttachEvent[] = [];

  const sh = guestShell(() => guest);
  const until = poller(10_000, 50);

  beforeAll(async () => {
    requirePrerequisites('the attach tests');
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-attach-'));
    cliQmp = path.join(runDir, 'cli-qmp.sock');
    const g = await startGuest({
      runDir,
      ports: [
        { id: 'con0', kind: 'console', name: 'org.test.console.0' },
        { id: 'port1', name: 'org.test.port.1' },
        // Its own port for VSERPORT_CHANGE: QEMU rate-limits the event per port.
        { id: 'port3', name: 'org.test.port.3' },
      ],
      extraArgs: [
        // A port without id: no VSERPORT_CHANGE for it, only polling sees it.
        '-chardev',
        `socket,id=c-anon,path=${path.join(runDir, 'anon.sock')},server=on,wait=off`,
        '-device',
        'virtserialport,bus=vser0.0,chardev=c-anon,name=org.test.anon',
        // A second QMP monitor for the CLI (QEMU serves one client per socket).
        '-qmp',
        `unix:${cliQmp},server=on,wait=off`,
      ],
    });
    if (isGuestError(g)) throw new Error(g.toString());
    guest = g;
    const m = await AttachedMachine.connect(guest.qmpPath, {
      pollIntervalMs: 250,
      qmp: { greetingTimeoutMs: 15_000 },
    });
    if (isQmpError(m)) throw new Error(`${m.toString()}\nqemu stderr: ${guest.stderr()}`);
    machine = m;
    machine.onEvent((e) => events.push(e));
  }, 120_000);

  afterAll(async () => {
    await machine?.close();
    await guest?.stop();
    if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
  }, 30_000);

  it('lists the ports with the nr, name, kind and chardev QEMU was started with', () => {
    const t = machine.topology();
    expect(t.qemu.version).toMatch(/^7\.2\./);
    expect(t.devices.map((d) => [d.name, d.bus, d.maxPorts, d.queues, d.multiport])).toEqual([
      ['vser0', 'vser0.0', 8, 18, true],
    ]);
    expect(t.ports.map((p) => [p.nr, p.id, p.name, p.kind, p.chardev])).toEqual([
      [0, 'con0', 'org.test.console.0', 'virtconsole', 'c-con0'],
      [1, 'port1', 'org.test.port.1', 'virtserialport', 'c-port1'],
      [2, 'port3', 'org.test.port.3', 'virtserialport', 'c-port3'],
      [3, null, 'org.test.anon', 'virtserialport', 'c-anon'],
    ]);
    // The guest's hvc driver opens the console at boot; nobody is on the host side.
    expect(t.ports.map((p) => [p.guestOpen, p.hostConnected])).toEqual([
      [true, false],
      [false, false],
      [false, false],
      [false, false],
    ]);
    expect(machine.chardev('c-port1')?.path).toBe(guest.portSocket('port1'));
  });

  it('vmchan attach prints the table; a socket in use is a one-line error', async () => {
    let out = '';
    const io = { out: (t: string) => void (out += t), err: (t: string) => void (out += t) };
    await runAttach({ qmp: cliQmp }, io, Promise.resolve());
    const lines = out.split('\n');
    const header = lines.findIndex((l) => l.startsWith('DEVICE'));
    expect(lines[header]).toMatch(
      /^DEVICE +NR +ID +NAME +KIND +CHARDEV +GUEST OPEN +HOST CONNECTED +BACKEND$/,
    );
    expect(lines.slice(header + 1, header + 5).map((l) => l.split(/ +/).slice(0, 8))).toEqual([
      ['vser0', '0', 'con0', 'org.test.console.0', 'virtconsole', 'c-con0', 'yes', 'no'],
      ['vser0', '1', 'port1', 'org.test.port.1', 'virtserialport', 'c-port1', 'no', 'no'],
      ['vser0', '2', 'port3', 'org.test.port.3', 'virtserialport', 'c-port3', 'no', 'no'],
      ['vser0', '3', '-', 'org.test.anon', 'virtserialport', 'c-anon', 'no', 'no'],
    ]);
    // The test's machine holds guest.qmpPath.
    await expect(runAttach({ qmp: guest.qmpPath }, io, Promise.resolve())).rejects.toThrow(
      new Error(
        `the QMP socket ${guest.qmpPath} is taken by another client (QEMU serves one at a time)`,
      ),
    );
  });

  it('guest open and close: VSERPORT_CHANGE for a port with an id, polling for one without', async () => {
    const from = events.length;
    // Held longer than QEMU's 1 s per-port event window.
    await sh('exec 3<>/dev/virtio-ports/org.test.port.3; sleep 1.3; exec 3>&-');
    await sh('exec 4<>/dev/virtio-ports/org.test.anon; sleep 1.3; exec 4>&-');
    const mine = await until(
      'four guest events',
      () => events.slice(from).filter((e) => e.kind.startsWith('guest-') && !e.late),
      (es) => es.length >= 4,
    );
    const port3 = mine.filter((e) => e.id === 'port3');
    expect(port3.map((e) => [e.kind, e.source, e.qmpEvent])).toEqual([
      ['guest-open', 'event', 'VSERPORT_CHANGE'],
      ['guest-close', 'event', 'VSERPORT_CHANGE'],
    ]);
    expect(port3[1]!.time - port3[0]!.time).toBeGreaterThan(1_000);
    const anon = mine.filter((e) => e.port === 'org.test.anon');
    expect(anon.map((e) => [e.kind, e.source, e.id])).toEqual([
      ['guest-open', 'poll', null],
      ['guest-close', 'poll', null],
    ]);
  });

  it('hot-plugs a port from vmchan: the guest sees it; unplug waits for DEVICE_DELETED', async () => {
    const sock = path.join(runDir, 'hp.sock');
    const port = await machine.addPort({
      name: 'org.test.hp',
      id: 'hp',
      chardev: { id: 'c-hp', backend: chardevBackend.unixServer(sock) },
    });
    if (isAttachFailure(port)) throw new Error(port.toString());
    expect(port).toMatchObject({
      key: 'vser0:4',
      nr: 4,
      id: 'hp',
      name: 'org.test.hp',
      chardev: 'c-hp',
      guestOpen: false,
    });
    expect(events.find((e) => e.kind === 'port-added' && e.id === 'hp')?.source).toBe('command');
    await until(
      'guest link',
      async () => (await sh('ls /dev/virtio-ports')).output,
      (o) => o.split(/\s+/).includes('org.test.hp'),
    );

    const dup = await machine.addPort({
      name: 'org.test.hp',
      chardev: { backend: chardevBackend.null() },
    });
    expect(isQmpError(dup) && dup.desc).toBe(
      'virtio-serial-bus: A port already exists by name org.test.hp',
    );
    // The chardev made for the refused port was removed again.
    expect(machine.chardevs.some((c) => c.kind === 'null')).toBe(false);

    expect(await machine.removePort('hp', { removeChardev: true })).toBeUndefined();
    expect(events.filter((e) => e.id === 'hp').map((e) => [e.kind, e.source])).toEqual([
      ['port-added', 'command'],
      ['device-deleted', 'event'],
      ['port-removed', 'event'],
    ]);
    expect(machine.port('hp')).toBeUndefined();
    expect(machine.chardev('c-hp')).toBeUndefined();
    await until(
      'guest link gone',
      async () => (await sh('ls /dev/virtio-ports')).output,
      (o) => !o.includes('org.test.hp'),
    );
  });

  it('reads the vring indices of the real device, moving during a transfer', async () => {
    const poller = machine.vring('vser0', { intervalMs: 50, queues: [4, 5], elements: 3 });
    if (isAttachFailure(poller)) throw new Error(poller.toString());
    const seen: AttachedQueueSnapshot[][] = [];
    poller.onSnapshot((s) => seen.push(s));
    const first = await poller.pollOnce();
    if (isQmpError(first)) throw new Error(first.toString());
    const rx0 = first.find((q) => q.queue === 4)!;
    expect(rx0).toMatchObject({
      role: 'rx port 1',
      direction: 'host-to-guest',
      size: 128,
      format: 'split',
    });
    // The guest keeps page-sized receive buffers posted on an open port.
    const tx0 = first.find((q) => q.queue === 5)!;

    const size = 2 * 1024 * 1024;
    const host = await connectUnix(guest.portSocket('port1'));
    try {
      poller.start();
      const reading = guest.shell.run(`head -c ${size} /dev/virtio-ports/org.test.port.1 | wc -c`, {
        timeoutMs: 60_000,
      });
      await until(
        'guest opened port1',
        () => machine.port('port1')?.guestOpen,
        (o) => o === true,
      );
      host.write(Buffer.alloc(size, 0x5a));
      const r = await reading;
      if (isGuestError(r)) throw new Error(r.toString());
      expect(r.output.trim()).toBe(String(size));
      // Guest -> host as well.
      let got = 0;
      host.on('data', (b: Buffer) => (got += b.length));
      await sh(`dd if=/dev/zero of=/dev/virtio-ports/org.test.port.1 bs=4096 count=64 2>/dev/null`);
      await until(
        'host got it',
        () => got,
        (n) => n >= 64 * 4096,
      );
      // Two more vring samples after the transfer, so the last one shows its end.
      const samples = seen.length;
      await until(
        'two vring snapshots after the transfer',
        () => seen.length,
        (n) => n >= samples + 2,
      );
    } finally {
      poller.stop();
      host.destroy();
    }
    const rxUsed = seen
      .map((s) => s.find((q) => q.queue === 4)?.qemu.usedIdx)
      .filter((n): n is number => n !== undefined);
    const distinct = new Set(rxUsed);
    // Sampled while the bytes went through: it moved.
    expect(distinct.size).toBeGreaterThanOrEqual(2);
    const grew = (a: number, b: number): number => (b - a + 0x10000) % 0x10000;
    // 2 MiB in 4 KiB guest buffers: at least 512 buffers used.
    expect(grew(rx0.qemu.usedIdx, rxUsed.at(-1)!)).toBeGreaterThanOrEqual(size / 4096);
    const txLast = poller.latest().find((q) => q.queue === 5)!;
    expect(grew(tx0.qemu.usedIdx, txLast.qemu.usedIdx)).toBeGreaterThan(0);
    // The element view: chains of one write-only page each, in the emulated shape.
    const rxLast = poller.latest().find((q) => q.queue === 4)!;
    expect(rxLast.elements.length).toBeGreaterThan(0);
    expect(rxLast.elements[0]!.descriptors[0]).toMatchObject({ len: 4096, flagNames: ['WRITE'] });
    expect(rxLast.snapshot.descriptors.length).toBeGreaterThan(0);
    expect(rxLast.snapshot.device?.usedIdx).toBe(rxLast.qemu.usedIdx);
    console.info(
      `vring q4 used-idx samples during 2 MiB host->guest: ${[...distinct].join(', ')}; poller round ${poller.lastRoundMs.toFixed(1)} ms, interval ${poller.intervalMs} ms`,
    );
  }, 60_000);
});
