/**
 * The QMP client against a real QEMU (7.2 on Debian 12) running the test
 * guest from test/guest/: Q1-Q3, D3, D4, D8 and L2 as the real stack does
 * them. One boot for the whole file (about 5 s under TCG).
 *
 * Without qemu-system-x86_64 or busybox-static these tests are skipped,
 * except under CI=true, where they fail with the install command.
 */
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { QmpClient } from '../../core/qemu/qmp-client.js';
import { QmpError } from '../../core/qemu/qmp-error.js';
import { chardevBackend, parseChardevFilename } from '../../core/qemu/qmp-types.js';
import { isGuestError } from '../guest/guest-shell.js';
import type { Guest } from '../guest/qemu.js';
import {
  bootGuestWithQmp,
  chardevLookup,
  connectUnix,
  describeRealGuest,
  guestShell,
  ok,
  poller,
  requirePrerequisites,
} from './real-guest.js';

describeRealGuest('real QEMU with the test guest', 'real-QEMU tests', () => {
  let guest: Guest;
  let qmp: QmpClient;
  let vserPath: string;

  const sh = guestShell(() => guest);

  async function guestPorts(): Promise<string[]> {
    return (await sh('ls /dev/virtio-ports/')).output.split(/\s+/).filter(Boolean);
  }

  const until = poller(10_000, 100);
  const chardev = chardevLookup(() => qmp);

  beforeAll(async () => {
    requirePrerequisites('the real-QEMU tests');
    ({ guest, qmp } = await bootGuestWithQmp([
      { id: 'port1', name: 'org.test.port.1' },
      { id: 'con0', kind: 'console', name: 'org.test.console.0' },
      // Its own port for the VSERPORT_CHANGE test: QEMU rate-limits that
      // event per port, so other tests' opens must not delay it.
      { id: 'port3', name: 'org.test.port.3' },
    ]));
    console.info(`guest: shell after ${guest.bootMs} ms, ports linked after ${guest.portsMs} ms`);
    const devices = ok(await qmp.xQueryVirtio());
    const vser = devices.find((d) => d.name === 'virtio-serial');
    if (!vser) throw new Error(`no virtio-serial in x-query-virtio: ${JSON.stringify(devices)}`);
    vserPath = vser.path;
  }, 180_000);

  afterAll(async () => {
    await qmp?.close();
    await guest?.stop();
  }, 30_000);

  it('negotiates with QEMU 7.2 and offers the commands vmchan needs (Q1, Q2)', async () => {
    expect(qmp.greeting.version.major * 100 + qmp.greeting.version.minor).toBeGreaterThanOrEqual(
      702,
    );
    expect(qmp.greeting.capabilities).toContain('oob');
    const names = new Set(ok(await qmp.queryCommands()).map((c) => c.name));
    for (const name of [
      'query-chardev',
      'chardev-add',
      'chardev-remove',
      'device_add',
      'device_del',
      'qom-list',
      'qom-get',
      'x-query-virtio',
      'x-query-virtio-status',
      'x-query-virtio-queue-status',
      'x-query-virtio-queue-element',
      'ringbuf-read',
      'ringbuf-write',
      'quit',
    ]) {
      expect(names, name).toContain(name);
    }
  });

  it('a second QMP client is told the socket is taken', async () => {
    const second = await QmpClient.connect(guest.qmpPath, { greetingTimeoutMs: 1_000 });
    expect(second).toBeInstanceOf(QmpError);
    const err = second as QmpError;
    expect(err.kind).toBe('SocketTaken');
    expect(err.message).toBe(
      `the QMP socket ${guest.qmpPath} is taken by another client (QEMU serves one at a time)`,
    );
    // The first client is unharmed.
    expect(ok(await qmp.queryCommands()).length).toBeGreaterThan(0);
  });

  it('query-chardev: frontend-open follows the guest, disconnected: follows the host', async () => {
    const sock = guest.portSocket('port1');
    const before = await chardev('c-port1');
    expect(before).toEqual({
      label: 'c-port1',
      filename: `disconnected:unix:${sock},server=on`,
      'frontend-open': false,
    });
    expect(parseChardevFilename(before.filename).connected).toBe(false);
    // The console port is opened by the guest's hvc driver at boot.
    expect((await chardev('c-con0'))['frontend-open']).toBe(true);

    const host = await connectUnix(sock);
    try {
      const connected = await until(
        'host connect',
        () => chardev('c-port1'),
        (c) => parseChardevFilename(c.filename).connected === true,
      );
      expect(connected.filename).toBe(`unix:${sock},server=on`);

      await sh('exec 3<>/dev/virtio-ports/org.test.port.1');
      await until(
        'guest open',
        () => chardev('c-port1'),
        (c) => c['frontend-open'],
      );
      await sh('exec 3>&-');
      await until(
        'guest close',
        () => chardev('c-port1'),
        (c) => !c['frontend-open'],
      );
    } finally {
      host.destroy();
    }
    await until(
      'host disconnect',
      () => chardev('c-port1'),
      (c) => c.filename.startsWith('disconnected:'),
    );
  });

  it('x-query-virtio-status and queue status of the virtio-serial device', async () => {
    const status = ok(await qmp.xQueryVirtioStatus(vserPath));
    expect(status.name).toBe('virtio-serial');
    expect(status['device-id']).toBe(3);
    expect(status['bus-name']).toBe('vser0.0');
    // Two queues per port plus the control pair: (max_ports 8 + 1) * 2.
    expect(status['num-vqs']).toBe(18);
    expect(status.status.statuses.some((s) => s.startsWith('VIRTIO_CONFIG_S_DRIVER_OK'))).toBe(
      true,
    );
    // L1: the Linux driver takes MULTIPORT but not EMERG_WRITE; QEMU offers both (D1).
    const guestFeatures = status['guest-features']['dev-features'] ?? [];
    const hostFeatures = status['host-features']['dev-features'] ?? [];
    expect(guestFeatures.some((f) => f.startsWith('VIRTIO_CONSOLE_F_MULTIPORT'))).toBe(true);
    expect(guestFeatures.some((f) => f.startsWith('VIRTIO_CONSOLE_F_EMERG_WRITE'))).toBe(false);
    expect(hostFeatures.some((f) => f.startsWith('VIRTIO_CONSOLE_F_EMERG_WRITE'))).toBe(true);

    // D2: data queues 128 entries, control queues 32. Queue 2 is the control receiveq.
    const data = ok(await qmp.xQueryVirtioQueueStatus(vserPath, 0));
    expect(data['vring-num']).toBe(128);
    expect(data['queue-index']).toBe(0);
    const control = ok(await qmp.xQueryVirtioQueueStatus(vserPath, 2));
    expect(control['vring-num']).toBe(32);
    // The guest has consumed control messages by now (DEVICE_READY, PORT_ADD...).
    expect(control['used-idx']).toBeGreaterThan(0);

    // L1: the guest posts page-sized receive buffers; queue 0 is port 0's receiveq.
    const element = ok(await qmp.xQueryVirtioQueueElement(vserPath, 0));
    expect(element.name).toBe('virtio-serial');
    expect(element.descs[0]?.len).toBe(4096);
    expect(element.descs[0]?.flags).toContain('write');

    const bad = await qmp.xQueryVirtioStatus('/machine/no/such/device');
    expect(bad).toBeInstanceOf(QmpError);
    expect((bad as QmpError).kind).toBe('CommandFailed');
  });

  it('qom-list and qom-get of a port: nr, name, chardev', async () => {
    const port = '/machine/peripheral/port1';
    const props = ok(await qmp.qomList(port)).map((p) => p.name);
    expect(props).toEqual(expect.arrayContaining(['nr', 'name', 'chardev']));
    // D3: port 0 belongs to the console, so the first serial port gets 1.
    expect(ok(await qmp.qomGet(port, 'nr'))).toBe(1);
    expect(ok(await qmp.qomGet(port, 'name'))).toBe('org.test.port.1');
    expect(ok(await qmp.qomGet(port, 'chardev'))).toBe('c-port1');
    expect(ok(await qmp.qomGet('/machine/peripheral/con0', 'nr'))).toBe(0);
  });

  it('VSERPORT_CHANGE when the guest opens and closes a port (D4)', async () => {
    const opened = qmp.waitForEvent('VSERPORT_CHANGE', {
      timeoutMs: 10_000,
      match: (e) => e.data.id === 'port3' && e.data.open,
    });
    const closed = qmp.waitForEvent('VSERPORT_CHANGE', {
      timeoutMs: 10_000,
      match: (e) => e.data.id === 'port3' && !e.data.open,
    });
    // Held open for longer than QEMU's 1 s rate limit per port, so the
    // close is reported when it happens rather than at the window's end.
    await sh('exec 3<>/dev/virtio-ports/org.test.port.3; sleep 1.2; exec 3>&-');
    const open = ok(await opened);
    const close = ok(await closed);
    expect(open.data).toEqual({ id: 'port3', open: true });
    expect(close.data).toEqual({ id: 'port3', open: false });
    const heldMs = close.time - open.time;
    expect(heldMs).toBeGreaterThan(1_000);
    expect(heldMs).toBeLessThan(5_000);
    expect(Math.abs(open.time - Date.now())).toBeLessThan(60_000);
  });

  it('hot-plug with chardev-add + device_add, data both ways, device_del and DEVICE_DELETED (D8, L2)', async () => {
    const sock = path.join(guest.runDir, 'hp.sock');
    expect(ok(await qmp.chardevAdd('c-hp', chardevBackend.unixServer(sock)))).toEqual({});
    const added = await qmp.deviceAdd({
      driver: 'virtserialport',
      bus: 'vser0.0',
      chardev: 'c-hp',
      name: 'org.test.hp',
      id: 'hp',
    });
    expect(added).toBeUndefined();
    const ports = await until('hot-plugged port link', guestPorts, (p) =>
      p.includes('org.test.hp'),
    );
    expect(ports).toEqual(expect.arrayContaining(['org.test.port.1', 'org.test.console.0']));
    expect(ok(await qmp.qomGet('/machine/peripheral/hp', 'nr'))).toBe(3);

    // Data: the host is connected before the guest reads, and stays until it has.
    const host = await connectUnix(sock);
    let received = '';
    host.setEncoding('utf8');
    host.on('data', (t: string) => (received += t));
    try {
      await sh('exec 4<>/dev/virtio-ports/org.test.hp');
      host.write('ping-from-host\n');
      const read = await sh('read -r line <&4; echo "guest got: $line"; echo pong-from-guest >&4');
      expect(read.output).toBe('guest got: ping-from-host\n');
      await until(
        'host receives',
        async () => received,
        (r) => r.includes('\n'),
      );
      expect(received).toBe('pong-from-guest\n');
      await sh('exec 4>&-');
    } finally {
      host.destroy();
    }

    // D3 refusals, texts as QEMU 7.2 words them.
    const dupName = await qmp.deviceAdd({
      driver: 'virtserialport',
      bus: 'vser0.0',
      name: 'org.test.hp',
      id: 'x2',
    });
    expect(dupName).toBeInstanceOf(QmpError);
    expect((dupName as QmpError).errorClass).toBe('GenericError');
    expect((dupName as QmpError).desc).toBe(
      'virtio-serial-bus: A port already exists by name org.test.hp',
    );
    const busy = (await qmp.chardevRemove('c-hp')) as QmpError;
    expect(busy.kind).toBe('CommandFailed');
    expect(busy.desc).toBe("Chardev 'c-hp' is busy");

    const deleted = qmp.waitForEvent('DEVICE_DELETED', {
      timeoutMs: 15_000,
      match: (e) => e.data.device === 'hp',
    });
    expect(await qmp.deviceDel('hp')).toBeUndefined();
    const e = ok(await deleted);
    expect(e.data).toEqual({ device: 'hp', path: '/machine/peripheral/hp' });
    await until('unplugged port link gone', guestPorts, (p) => !p.includes('org.test.hp'));
    expect(await qmp.chardevRemove('c-hp')).toBeUndefined();
  });

  it('a console port carries data through hvc0, and refuses open on its vport node (L3)', async () => {
    const refused = await sh('cat /dev/virtio-ports/org.test.console.0');
    expect(refused.exitCode).not.toBe(0);
    expect(refused.output).toContain('No such device or address');

    const host = await connectUnix(guest.portSocket('con0'));
    let received = '';
    host.setEncoding('utf8');
    host.on('data', (t: string) => (received += t));
    try {
      // hvc0 is a tty: raw and without echo, or it would echo the host's
      // bytes back and turn \n into \r\n. hvc resets its settings on every
      // first open, so stty must work on the same open as the reader.
      await sh(
        'rm -f /tmp/hvc.ready /tmp/hvc.in; ' +
          '(stty raw -echo; touch /tmp/hvc.ready; head -n1 > /tmp/hvc.in) <>/dev/hvc0 >/dev/null 2>&1 &',
      );
      await until(
        'guest reader ready',
        () => sh('test -e /tmp/hvc.ready'),
        (r) => r.exitCode === 0,
      );
      await until(
        'host connected to the console',
        () => chardev('c-con0'),
        (c) => !c.filename.startsWith('disconnected:'),
      );
      host.write('ping-hvc\n');
      const got = await until(
        'guest reads hvc0',
        () => sh('cat /tmp/hvc.in'),
        (r) => r.output.includes('\n'),
      );
      expect(got.output).toBe('ping-hvc\n');
      await sh("{ stty raw -echo; printf 'pong-hvc\\n' >&0; } <>/dev/hvc0");
      await until(
        'host receives from hvc0',
        async () => received,
        (r) => r.includes('\n'),
      );
      expect(received).toBe('pong-hvc\n');
    } finally {
      host.destroy();
    }
  });

  it('ringbuf-write and ringbuf-read on a ringbuf chardev', async () => {
    expect(ok(await qmp.chardevAdd('rb-test', chardevBackend.ringbuf(1024)))).toEqual({});
    expect(await qmp.ringbufWrite('rb-test', 'hello vmchan')).toBeUndefined();
    expect(ok(await qmp.ringbufRead('rb-test', 100))).toBe('hello vmchan');
    expect(await qmp.chardevRemove('rb-test')).toBeUndefined();
  });

  it('moves bulk data through a port both ways (throughput, for the record)', async () => {
    const sock = guest.portSocket('port1');
    const size = 4 * 1024 * 1024;
    const host = await connectUnix(sock);
    try {
      // Guest -> host.
      let got = 0;
      let doneAt = 0;
      const t0 = Date.now();
      host.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got >= size && doneAt === 0) doneAt = Date.now();
      });
      await sh(
        `dd if=/dev/zero of=/dev/virtio-ports/org.test.port.1 bs=65536 count=${size / 65536} 2>/dev/null`,
        60_000,
      );
      await until(
        'host got all bytes',
        async () => got,
        (n) => n >= size,
        30_000,
      );
      const outMs = doneAt - t0;
      host.removeAllListeners('data');

      // Host -> guest: the guest must hold the port open before data
      // arrives (L9). frontend-open is the port's state now; a
      // VSERPORT_CHANGE could be a late, rate-limited one from dd's open.
      const reading = guest.shell.run(`head -c ${size} /dev/virtio-ports/org.test.port.1 | wc -c`, {
        timeoutMs: 60_000,
      });
      await until(
        'guest opened',
        () => chardev('c-port1'),
        (c) => c['frontend-open'],
      );
      const t1 = Date.now();
      host.write(Buffer.alloc(size, 0x61));
      const r = await reading;
      if (isGuestError(r)) throw new Error(r.toString());
      const inMs = Date.now() - t1;
      expect(r.output.trim()).toBe(String(size));
      const mibps = (ms: number): string => (size / 1048576 / (ms / 1000)).toFixed(1);
      console.info(
        `virtio-serial throughput under TCG: guest->host ${mibps(outMs)} MiB/s, host->guest ${mibps(inMs)} MiB/s (${size} bytes)`,
      );
    } finally {
      host.destroy();
    }
  }, 90_000);
});
