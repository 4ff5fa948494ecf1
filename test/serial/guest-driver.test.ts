/**
 * The Linux-like guest driver: probe and negotiation (L1, C6), consoles
 * (C7), device names (L2), data for closed ports (L9) and hot-unplug as the
 * guest sees it (L10).
 */
import { describe, expect, it, vi } from 'vitest';
import { Feature, featureBits, has } from '../../core/virtio/features.js';
import type { SplitQueueSnapshot } from '../../core/virtio/queue.js';
import { isErrno } from '../../core/serial/guest/errno.js';
import { O_ASYNC, POLLHUP, POLLIN } from '../../core/serial/guest/files.js';
import {
  bootLab,
  caseStudy,
  controlTexts,
  makeLab,
  must,
  pattern,
  record,
  text,
} from './helpers.js';

describe('L1 probe and negotiation', () => {
  it('L1 negotiates SIZE and MULTIPORT but never EMERG_WRITE, and only the modern ring features', async () => {
    const lab = makeLab({
      devices: [{ id: 'vser0', consoleSize: { cols: 80, rows: 25 }, ports: [] }],
    });
    await lab.boot();
    const device = lab.device('vser0')!;
    expect(has(device.hostFeatures, Feature.CONSOLE_F_EMERG_WRITE)).toBe(true);
    // as x-query-virtio-status's guest-features with QEMU 7.2 and Linux 6.1 (plus SIZE, offered here)
    expect(featureBits(device.negotiatedFeatures)).toEqual([0, 1, 28, 29, 32]);
  });

  it('L1 reads max_nr_ports only with MULTIPORT', async () => {
    for (const maxPorts of [4, 1]) {
      const lab = makeLab({ devices: [{ id: 'vser0', maxPorts, ports: [] }] });
      const spy = vi.spyOn(lab.device('vser0')!, 'readConfig');
      await lab.boot();
      const offsets = spy.mock.calls.map(([offset]) => offset);
      expect(offsets.includes(4)).toBe(maxPorts > 1);
      expect(lab.guest.drivers[0]!.maxNrPorts).toBe(maxPorts);
    }
  });

  it('L1 fills control rx and every port rx with page-sized (4096-byte) buffers', async () => {
    const lab = await bootLab(caseStudy());
    const device = lab.device('vser0')!;
    const writable4k = (q: number): number =>
      (device.queueSnapshot(q) as SplitQueueSnapshot).descriptors.filter(
        (d) => d.len === 4096 && d.flagNames.includes('WRITE'),
      ).length;
    expect(writable4k(2)).toBe(32);
    for (const q of [0, 4, 6]) expect(writable4k(q)).toBe(128);
  });

  it('L1 C6 sends DEVICE_READY with id 0xFFFFFFFF first, when MULTIPORT is negotiated', async () => {
    const lab = makeLab(caseStudy());
    const toDevice = controlTexts(lab.events, 'to-device');
    await lab.boot();
    expect(toDevice[0]).toBe('DEVICE_READY id=0xffffffff value=1');
  });

  it('C6 without MULTIPORT there is no DEVICE_READY: port 0 is a console at once', async () => {
    const lab = makeLab({
      devices: [{ id: 'vser0', maxPorts: 1, ports: [{ driver: 'virtconsole', chardev: 'con' }] }],
    });
    const control = record(lab.events, 'control');
    await lab.boot();
    expect(control).toEqual([]);
    expect(lab.guest.namespace.exists('/dev/hvc0')).toBe(true);
    lab.host('con').connect();
    const fd = must(await lab.guest.files.open('/dev/hvc0'));
    lab.host('con').write('login: ');
    expect(text(must(await lab.guest.files.read(fd, 100)))).toBe('login: ');
  });
});

describe('C7 consoles', () => {
  it('C7 on CONSOLE_PORT the driver hooks the port to hvc and answers PORT_OPEN 1', async () => {
    const lab = makeLab(caseStudy());
    const control = record(lab.events, 'control');
    await lab.boot();
    const seq = control.filter((c) => c.message.id === 0).map((c) => `${c.direction} ${c.text}`);
    const consolePort = seq.indexOf('to-guest CONSOLE_PORT id=0 value=1');
    expect(consolePort).toBeGreaterThan(-1);
    expect(seq.indexOf('to-device PORT_OPEN id=0 value=1')).toBeGreaterThan(consolePort);
    const port = lab.guest.drivers[0]!.port(0)!;
    expect(port.console?.hvc).toBe(0);
    expect(port.guestConnected).toBe(true);
    expect(lab.port('console.0')!.port.guestConnected).toBe(true);
  });

  it('C7 console data flows both ways through /dev/hvc0', async () => {
    const lab = await bootLab(caseStudy());
    const host = lab.host('test0');
    host.connect();
    const fd = must(await lab.guest.files.open('/dev/hvc0'));
    expect(await lab.guest.files.write(fd, 'hello console\n')).toBe(14);
    await lab.settle();
    expect(host.readText()).toBe('hello console\n');
    host.write('ls\n');
    expect(text(must(await lab.guest.files.read(fd, 100)))).toBe('ls\n');
  });

  it('C7 RESIZE reaches the console in the order the options agree on', async () => {
    for (const [device, guest, expected] of [
      ['rows-cols', 'rows-cols', { cols: 132, rows: 43 }],
      ['cols-rows', 'cols-rows', { cols: 132, rows: 43 }],
      ['cols-rows', 'rows-cols', { cols: 43, rows: 132 }], // a spec-order device, a Linux guest
    ] as const) {
      const t = caseStudy();
      t.devices![0]!.resizeOrder = device;
      t.guest = { resizeOrder: guest };
      const lab = await bootLab(t);
      lab.device('vser0')!.resizeConsole(0, 132, 43);
      await lab.settle();
      expect(lab.guest.drivers[0]!.port(0)!.console).toMatchObject(expected);
    }
  });
});

describe('L2 names', () => {
  it('L2 port N of device D is vportDpN, with its name in sysfs and a /dev/virtio-ports link', async () => {
    const lab = await bootLab(caseStudy());
    const ns = lab.guest.namespace;
    expect(ns.list('/dev/virtio-ports')).toEqual(['console.0', 'test1', 'test2']);
    expect(ns.readlink('/dev/virtio-ports/test1')).toBe('../vport0p1');
    expect(ns.readFile('/sys/class/virtio-ports/vport0p1/name')).toBe('test1\n');
    expect(ns.list('/sys/class/virtio-ports')).toEqual(['vport0p0', 'vport0p1', 'vport0p2']);
    expect(ns.exists('/dev/hvc0')).toBe(true);
    expect(ns.resolve('/dev/virtio-ports/test2')).toBe('/dev/vport0p2');
  });

  it('L2 the sysfs name file can be opened and read like a file', async () => {
    const lab = await bootLab(caseStudy());
    const fd = must(await lab.guest.files.open('/sys/class/virtio-ports/vport0p2/name'));
    expect(text(must(await lab.guest.files.read(fd, 100)))).toBe('test2\n');
  });

  it('L2 D is the virtio device index: the case study guest had another virtio device first (vport1pN)', async () => {
    const t = caseStudy();
    t.guest = { firstVirtioIndex: 1 };
    const lab = await bootLab(t);
    expect(lab.guest.namespace.readlink('/dev/virtio-ports/console.0')).toBe('../vport1p0');
    expect(lab.guest.namespace.readlink('/dev/virtio-ports/test2')).toBe('../vport1p2');
  });

  it('L2 two devices get their own D; consoles of both get hvc numbers', async () => {
    const lab = await bootLab({
      devices: [
        {
          id: 'vser0',
          ports: [
            { driver: 'virtconsole', name: 'a0' },
            { driver: 'virtserialport', name: 'a1' },
          ],
        },
        {
          id: 'vser1',
          ports: [
            { driver: 'virtconsole', name: 'b0' },
            { driver: 'virtserialport', name: 'b1' },
          ],
        },
      ],
    });
    const ns = lab.guest.namespace;
    expect(ns.readlink('/dev/virtio-ports/a1')).toBe('../vport0p1');
    expect(ns.readlink('/dev/virtio-ports/b1')).toBe('../vport1p1');
    expect(ns.list('/dev')).toEqual(
      expect.arrayContaining(['hvc0', 'hvc1', 'vport0p0', 'vport0p1', 'vport1p0', 'vport1p1']),
    );
  });
});

describe('L9 data for a port the guest has not opened', () => {
  it('L9 is dropped by the guest driver and counted, and the buffer goes back to the device', async () => {
    const lab = await bootLab(caseStudy());
    const drops = record(lab.events, 'drop');
    const { device, port } = lab.port('test1')!;
    // A device that does not wait for the guest to open (QEMU's guest_ready
    // check would hold it back): push straight into the receive queue.
    port.hostConnected = true;
    device.writeToGuest(port, pattern(300));
    await lab.settle();
    expect(drops).toEqual([
      {
        device: 'vser0',
        nr: 1,
        side: 'guest',
        bytes: 300,
        reason: 'port-not-open',
        direction: 'to-guest',
      },
    ]);
    expect(lab.guest.drivers[0]!.port(1)!.stats.bytesDiscarded).toBe(300);
    expect(device.queueStatus(4)?.lastAvailIdx).toBe(1);
    expect((device.queueSnapshot(4) as SplitQueueSnapshot).avail.idx).toBe(129); // re-posted
  });
});

describe('L10 hot-unplug seen from the guest', () => {
  it('L10 wakes every waiter, clears both flags, SIGIO, and removes the nodes', async () => {
    const t = caseStudy();
    t.devices![0]!.ports = [
      { driver: 'virtconsole', id: 'con0', name: 'console.0', chardev: 'test0' },
      { driver: 'virtserialport', id: 'p1', name: 'test1', chardev: 'test1' },
      { driver: 'virtserialport', id: 'p2', name: 'test2', chardev: 'test2' },
    ];
    const lab = await bootLab(t);
    const files = lab.guest.files;
    lab.host('test1').connect();
    const reader = must(await files.open('/dev/virtio-ports/test1'));
    const writer = must(await files.open('/dev/virtio-ports/test2'));
    await files.setFlags(reader, O_ASYNC);
    const signals: number[] = [];
    files.setOwner(reader, (s) => signals.push(s.fd));
    await lab.settle();
    const blockedRead = files.read(reader, 10);
    const blockedWrite = files.write(writer, 'x');
    const polling = files.poll(reader, POLLIN);
    await lab.settle();
    expect(lab.guest.drivers[0]!.port(1)!.waitq.size).toBeGreaterThan(0);

    expect(lab.deviceDel('p1')).toBe(null);
    expect(lab.deviceDel('p2')).toBe(null);
    expect(lab.deviceDel('con0')).toBe(null);
    expect((await blockedRead) as unknown).toHaveProperty('code', 'ENODEV');
    expect((await blockedWrite) as unknown).toHaveProperty('code', 'ENODEV');
    expect(await polling).toBe(POLLHUP);
    expect(signals).toEqual([reader]);
    expect(files.pollNow(reader)).toBe(POLLHUP); // after unplug: HUP only
    const gone = lab.guest.drivers[0]!;
    expect(gone.port(1)).toBe(undefined);
    const ns = lab.guest.namespace;
    for (const p of [
      '/dev/vport0p1',
      '/dev/virtio-ports/test1',
      '/sys/class/virtio-ports/vport0p1',
    ]) {
      expect(ns.exists(p)).toBe(false);
    }
    // L11: hvc0 is a static tty minor; it stays, and opens ENODEV now.
    const hvc = await files.open('/dev/hvc0');
    expect(isErrno(hvc) && hvc.code).toBe('ENODEV');
    expect(ns.list('/dev/virtio-ports')).toEqual([]);
    const reopen = await files.open('/dev/virtio-ports/test2');
    expect(isErrno(reopen) && reopen.code).toBe('ENOENT');
    expect(await files.close(reader)).toBe(0); // no device left to tell
  });
});
