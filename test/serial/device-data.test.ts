/**
 * The device's data paths with the Linux-like guest on top: D5 (push with
 * throttling), D6 (pull), D7 (discard without a host), D8 (hot-plug).
 */
import { describe, expect, it } from 'vitest';
import { ISR_CONFIG } from '../../core/virtio/device-transport.js';
import { ControlEvent } from '../../core/serial/control.js';
import { txQueueOf } from '../../core/serial/layout.js';
import { isErrno } from '../../core/serial/guest/errno.js';
import { O_NONBLOCK, pollNames } from '../../core/serial/guest/files.js';
import {
  bootLab,
  caseStudy,
  controlTexts,
  must,
  pattern,
  RawDriver,
  readExactly,
  record,
  RINGS,
  sha1,
  text,
} from './helpers.js';

function withCapacity(
  ring: 'split' | 'packed',
  capacity: number,
  consoleBackpressure?: 'drop' | 'throttle',
) {
  const t = caseStudy(ring);
  t.chardevs = [{ id: 'test0', capacity }, { id: 'test1', capacity }, { id: 'test2' }];
  if (consoleBackpressure) t.devices![0]!.consoleBackpressure = consoleBackpressure;
  return t;
}

describe('D5 guest -> host: push with backpressure', () => {
  for (const ring of RINGS) {
    it(`D5 a full backend throttles the port; it resumes inside the half-written element (${ring})`, async () => {
      const lab = await bootLab(withCapacity(ring, 1000));
      const throttles = record(lab.events, 'throttle');
      const host = lab.host('test1');
      host.connect();
      const fd = must(await lab.guest.files.open('/dev/virtio-ports/test1'));
      const data = pattern(32 * 1024, 7);
      expect(await lab.guest.files.write(fd, data)).toBe(32 * 1024); // one element
      await lab.settle();
      const port = lab.port('test1')!.port;
      expect(port.throttled).toBe(true);
      expect(port.pendingTxOffset).toBe(1000);
      const got: Uint8Array[] = [host.read()];
      await lab.settle();
      expect(port.pendingTxOffset).toBe(2000); // same element, further in
      while (got.reduce((n, b) => n + b.length, 0) < data.length) {
        got.push(host.read());
        await lab.settle();
      }
      expect(sha1(...got)).toBe(sha1(data));
      expect(port.throttled).toBe(false);
      expect(throttles.filter((t) => t.on).length).toBe(32);
      expect(throttles.at(-1)).toEqual({ device: 'vser0', nr: 1, on: false });
    });
  }

  it('D5 one throttled port never stalls another', async () => {
    const lab = await bootLab(withCapacity('split', 10));
    lab.host('test1').connect();
    const sink: Uint8Array[] = [];
    lab.host('test2').onData((b) => sink.push(b));
    lab.host('test2').connect();
    const fd1 = must(await lab.guest.files.open('/dev/virtio-ports/test1'));
    const fd2 = must(await lab.guest.files.open('/dev/virtio-ports/test2'));
    await lab.guest.files.write(fd1, pattern(5000));
    const data = pattern(1 << 20, 3);
    expect(await lab.guest.files.writeAll(fd2, data)).toBe(data.length);
    await lab.settle();
    expect(lab.port('test1')!.port.throttled).toBe(true);
    expect(sha1(...sink)).toBe(sha1(data));
  });

  it("D5 console ports drop on backpressure (QEMU's choice), counted; 'throttle' keeps every byte", async () => {
    const dropping = await bootLab(withCapacity('split', 100));
    const drops = record(dropping.events, 'drop');
    dropping.host('test0').connect();
    const fd = must(await dropping.guest.files.open('/dev/hvc0'));
    expect(await dropping.guest.files.write(fd, pattern(1000))).toBe(1000);
    await dropping.settle();
    expect(dropping.host('test0').available).toBe(100);
    expect(drops).toEqual([
      {
        device: 'vser0',
        nr: 0,
        side: 'device',
        bytes: 900,
        reason: 'console-backpressure',
        direction: 'to-host',
      },
    ]);
    expect(dropping.port('console.0')!.port.stats.dropped).toEqual({ 'console-backpressure': 900 });

    const keeping = await bootLab(withCapacity('split', 100, 'throttle'));
    const host = keeping.host('test0');
    host.connect();
    const fd2 = must(await keeping.guest.files.open('/dev/hvc0'));
    const writing = keeping.guest.files.write(fd2, pattern(1000));
    const got: Uint8Array[] = [];
    while (got.reduce((n, b) => n + b.length, 0) < 1000) {
      await keeping.settle();
      got.push(host.read());
    }
    expect(await writing).toBe(1000);
    expect(sha1(...got)).toBe(sha1(pattern(1000)));
  });
});

describe('D6 host -> guest: pull', () => {
  it('D6 nothing is pulled while the guest has the port closed', async () => {
    const lab = await bootLab(caseStudy());
    const host = lab.host('test1');
    host.connect();
    host.write(pattern(10_000));
    await lab.settle();
    expect(lab.endpoint('test1')!.pendingToGuest).toBe(10_000);
    expect(lab.port('test1')!.port.stats.toGuest).toBe(0);
    const fd = must(await lab.guest.files.open('/dev/virtio-ports/test1'));
    expect(sha1(await readExactly(lab.guest.files, fd, 10_000))).toBe(sha1(pattern(10_000)));
  });

  for (const ring of RINGS) {
    it(`D6 the backend reads only as many bytes as the guest has receive buffers for (${ring})`, async () => {
      const lab = await bootLab(caseStudy(ring));
      const reads = record(lab.events, 'data');
      const fd = must(await lab.guest.files.open('/dev/virtio-ports/test1'));
      const host = lab.host('test1');
      host.connect();
      host.write(pattern(1 << 20));
      await lab.settle();
      // 128 page-sized buffers posted, none read back by the app yet
      expect(lab.port('test1')!.port.stats.toGuest).toBe(128 * 4096);
      expect(lab.endpoint('test1')!.pendingToGuest).toBe((1 << 20) - 128 * 4096);
      expect(Math.max(...reads.map((r) => r.bytes.length))).toBe(4096);
      // reading frees buffers, which lets exactly that much more in
      await readExactly(lab.guest.files, fd, 8192);
      await lab.settle();
      expect(lab.port('test1')!.port.stats.toGuest).toBe(130 * 4096);
    });
  }
});

describe('D7 transmit buffers while no host is connected', () => {
  it('D7 host bytes still queued in the backend when the host hangs up are counted and shown', async () => {
    const lab = await bootLab(caseStudy());
    const drops = record(lab.events, 'drop');
    const host = lab.host('test1');
    host.connect();
    host.write(pattern(777)); // the guest has the port closed: nothing is pulled (D6)
    await lab.settle();
    host.disconnect();
    expect(drops).toEqual([
      {
        device: 'vser0',
        nr: 1,
        side: 'backend',
        bytes: 777,
        reason: 'host-hung-up',
        direction: 'to-guest',
        chardev: 'test1',
      },
    ]);
  });

  it('D7 are used with len 0 and their bytes counted as dropped', async () => {
    const raw = RawDriver.create({
      chardevs: [{ id: 'c1' }],
      ports: [{ driver: 'virtserialport', name: 'p', chardev: 'c1' }],
    });
    const drops = record(raw.events, 'drop');
    raw.postControlRx(4);
    raw.deviceReady();
    raw.sendEvent(1, ControlEvent.PORT_OPEN, 1);
    await raw.settle();
    const token = raw.add(txQueueOf(1), [pattern(100), pattern(23)], []);
    await raw.settle();
    expect(raw.used(txQueueOf(1))).toEqual([{ token, len: 0, bytes: new Uint8Array(0) }]);
    expect(drops).toEqual([
      {
        device: 'vser0',
        nr: 1,
        side: 'device',
        bytes: 123,
        reason: 'host-disconnected',
        direction: 'to-host',
      },
    ]);
  });

  it('D7 a host disconnect discards pending guest data (counted) and sends PORT_OPEN 0', async () => {
    const lab = await bootLab(withCapacity('split', 1000));
    const drops = record(lab.events, 'drop');
    const toGuest = controlTexts(lab.events, 'to-guest');
    const host = lab.host('test1');
    host.connect();
    const fd = must(await lab.guest.files.open('/dev/virtio-ports/test1'));
    for (let i = 0; i < 3; i++)
      expect(await lab.guest.files.write(fd, pattern(10_000))).toBe(10_000);
    await lab.settle();
    host.disconnect();
    await lab.settle();
    const dropped = drops
      .filter((d) => d.reason === 'host-disconnected')
      .reduce((n, d) => n + d.bytes, 0);
    expect(dropped + host.receivedTotal).toBe(30_000);
    expect(host.receivedTotal).toBe(1000);
    expect(toGuest).toContain('PORT_OPEN id=1 value=0');
    expect(pollNames(must(lab.guest.files.pollNow(fd)))).toBe('IN|HUP');
    await lab.guest.files.setFlags(fd, O_NONBLOCK);
    expect(await lab.guest.files.write(fd, 'x')).toHaveProperty('code', 'EAGAIN');
  });
});

describe('D8 hot-plug and hot-unplug', () => {
  it('D8 hot-plug sends PORT_ADD and a configuration change; the guest makes the nodes', async () => {
    const lab = await bootLab(caseStudy());
    const toGuest = controlTexts(lab.events, 'to-guest');
    const added = record(lab.events, 'port-added');
    const device = lab.device('vser0')!;
    device.readIsr(); // clear
    must(lab.chardevAdd('c2'));
    const gen = device.readConfigGeneration();
    must(
      lab.deviceAdd({
        driver: 'virtserialport',
        bus: 'vser0.0',
        chardev: 'c2',
        name: 'org.test.port.2',
        id: 'port2',
      }),
    );
    expect(device.readConfigGeneration()).toBe(gen + 1);
    expect(device.readIsr() & ISR_CONFIG).toBe(ISR_CONFIG);
    await lab.settle();
    expect(toGuest.slice(0, 3)).toEqual([
      'PORT_ADD id=3 value=1',
      'PORT_NAME id=3 "org.test.port.2"',
    ]);
    expect(added).toMatchObject([
      { nr: 3, id: 'port2', name: 'org.test.port.2', hotplug: true, bus: 'vser0.0' },
    ]);
    expect(lab.guest.namespace.readlink('/dev/virtio-ports/org.test.port.2')).toBe('../vport0p3');
    // and it carries data (scenario.log section 5)
    const fd = must(await lab.guest.files.open('/dev/virtio-ports/org.test.port.2'));
    lab.host('c2').connect();
    lab.host('c2').write('ping-from-host\n');
    expect(text(await readExactly(lab.guest.files, fd, 15))).toBe('ping-from-host\n');
    await lab.guest.files.write(fd, 'pong-from-guest\n');
    await lab.settle();
    expect(lab.host('c2').readText()).toBe('pong-from-guest\n');
  });

  it('D8 hot-plugging a virtconsole gives the guest another hvc, which it opens at once', async () => {
    const lab = await bootLab(caseStudy());
    const changes = record(lab.events, 'vserport-change');
    must(lab.chardevAdd('c3'));
    must(
      lab.deviceAdd({
        driver: 'virtconsole',
        bus: 'vser0.0',
        chardev: 'c3',
        name: 'org.test.console.1',
        id: 'con1',
      }),
    );
    await lab.settle();
    expect(lab.guest.namespace.exists('/dev/hvc1')).toBe(true);
    expect(changes).toEqual([{ id: 'con1', open: true }]);
    expect(isErrno(await lab.guest.files.open('/dev/hvc1'))).toBe(false);
    expect(lab.deviceDel('con1')).toBe(null);
    await lab.settle();
    // L11: the node stays (a static tty minor); with no console behind it, ENODEV.
    const after = await lab.guest.files.open('/dev/hvc1');
    expect(isErrno(after) && after.code).toBe('ENODEV');
  });

  it('D8 hot-unplug discards queued guest data, sends PORT_REMOVE and DEVICE_DELETED', async () => {
    const lab = await bootLab(withCapacity('split', 10));
    const drops = record(lab.events, 'drop');
    const deleted = record(lab.events, 'device-deleted');
    const toGuest = controlTexts(lab.events, 'to-guest');
    must(lab.chardevAdd('c2', { capacity: 10 }));
    must(lab.deviceAdd({ driver: 'virtserialport', chardev: 'c2', name: 'hp', id: 'port2' }));
    await lab.settle();
    lab.host('c2').connect();
    const fd = must(await lab.guest.files.open('/dev/virtio-ports/hp'));
    await lab.guest.files.write(fd, pattern(1000));
    await lab.guest.files.write(fd, pattern(500));
    await lab.settle();
    expect(lab.deviceDel('port2')).toBe(null);
    await lab.settle();
    expect(drops.filter((d) => d.reason === 'unplugged').reduce((n, d) => n + d.bytes, 0)).toBe(
      1490,
    );
    expect(toGuest).toContain('PORT_REMOVE id=3 value=1');
    expect(deleted).toEqual([{ device: 'port2', path: '/machine/peripheral/port2' }]);
    expect(lab.guest.namespace.exists('/dev/virtio-ports/hp')).toBe(false);
    expect(lab.guest.namespace.exists('/dev/vport0p3')).toBe(false);
    const r = await lab.guest.files.read(fd, 10);
    expect(isErrno(r) && r.code).toBe('ENODEV');
    expect(lab.chardevRemove('c2')).toBe(null); // no longer busy
  });
});
