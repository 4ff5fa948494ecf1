/**
 * The device's control plane, driven by hand: D4 (control flow), C1-C5,
 * and D9 with M10-M12 (malformed guest input ends in NEEDS_RESET naming the
 * rule, never in an exception).
 */
import { describe, expect, it } from 'vitest';
import {
  BAD_PORT_ID,
  ControlEvent,
  controlMessage,
  encodeControl,
} from '../../core/serial/control.js';
import { Feature, bit } from '../../core/virtio/features.js';
import { rxQueueOf, txQueueOf } from '../../core/serial/layout.js';
import { Status } from '../../core/virtio/status.js';
import { describeControl } from '../../core/serial/control.js';
import {
  bootLab,
  caseStudy,
  makeLab,
  must,
  RawDriver,
  readExactly,
  record,
  text,
} from './helpers.js';

const E = ControlEvent;

function rig(options: Parameters<typeof RawDriver.create>[0] = {}) {
  const raw = RawDriver.create({
    chardevs: [{ id: 'c0' }, { id: 'c1' }, { id: 'c2' }],
    ports: [
      { driver: 'virtconsole', id: 'con0', name: 'console.0', chardev: 'c0' },
      { driver: 'virtserialport', id: 'port1', name: 'test1', chardev: 'c1' },
      { driver: 'virtserialport', name: 'test2', chardev: 'c2' },
    ],
    driverOk: false,
    ...options,
  });
  raw.setup(0, 1, 2, 3, 4, 5, 6, 7);
  raw.driverOk();
  return raw;
}

const texts = (raw: RawDriver) => raw.controlReceived().map(describeControl);

describe('D4 control flow', () => {
  it('D4 DEVICE_READY brings PORT_ADD for every port, in plug order', async () => {
    const raw = rig();
    raw.postControlRx(8);
    raw.deviceReady();
    await raw.settle();
    expect(texts(raw)).toEqual([
      'PORT_ADD id=0 value=1',
      'PORT_ADD id=1 value=1',
      'PORT_ADD id=2 value=1',
    ]);
  });

  it('D4 PORT_READY brings CONSOLE_PORT (consoles), PORT_NAME (named), PORT_OPEN 1 (host there)', async () => {
    const raw = rig();
    raw.endpoints.get('c1')!.peer.connect();
    raw.postControlRx(16);
    raw.deviceReady();
    await raw.settle();
    raw.controlReceived();
    for (const id of [0, 1, 2]) raw.sendEvent(id, E.PORT_READY, 1);
    await raw.settle();
    expect(texts(raw)).toEqual([
      'CONSOLE_PORT id=0 value=1',
      'PORT_NAME id=0 "console.0"',
      // a console with a backend counts as host-connected (QEMU's virtconsole_realize)
      'PORT_OPEN id=0 value=1',
      'PORT_NAME id=1 "test1"',
      'PORT_OPEN id=1 value=1',
      'PORT_NAME id=2 "test2"',
    ]);
  });

  it('D4 guest PORT_OPEN sets guest_connected and emits VSERPORT_CHANGE only for ports with an id', async () => {
    const raw = rig();
    const changes = record(raw.events, 'vserport-change');
    const opens = record(raw.events, 'guest-open');
    raw.postControlRx(16);
    raw.deviceReady();
    raw.sendEvent(1, E.PORT_OPEN, 1);
    raw.sendEvent(2, E.PORT_OPEN, 1);
    raw.sendEvent(1, E.PORT_OPEN, 0);
    await raw.settle();
    expect(raw.device.port(2)?.guestConnected).toBe(true);
    expect(raw.device.port(1)?.guestConnected).toBe(false);
    expect(changes).toEqual([
      { id: 'port1', open: true },
      { id: 'port1', open: false },
    ]);
    expect(opens.map((o) => `${o.nr}:${o.open}`)).toEqual(['1:true', '2:true', '1:false']);
    expect(raw.endpoints.get('c2')!.frontendOpen).toBe(true);
  });

  it('D4 without MULTIPORT port 0 is guest-connected at DRIVER_OK', () => {
    const raw = RawDriver.create({
      device: { maxPorts: 1 },
      chardevs: [{ id: 'c0' }],
      ports: [{ driver: 'virtconsole', chardev: 'c0' }],
      driverOk: false,
    });
    expect(raw.device.numQueues).toBe(2);
    expect(raw.device.port(0)?.guestConnected).toBe(false);
    raw.driverOk();
    expect(raw.device.port(0)?.guestConnected).toBe(true);
  });

  it('D4 reset or clearing DRIVER_OK disconnects every port and drops a half-sent element', async () => {
    for (const how of ['clear DRIVER_OK', 'reset'] as const) {
      const raw = rig({ chardevs: [{ id: 'c0' }, { id: 'c1', capacity: 100 }, { id: 'c2' }] });
      const drops = record(raw.events, 'drop');
      const changes = record(raw.events, 'vserport-change');
      raw.endpoints.get('c1')!.peer.connect();
      raw.postControlRx(16);
      raw.deviceReady();
      raw.sendEvent(1, E.PORT_OPEN, 1);
      await raw.settle();
      raw.add(txQueueOf(1), [new Uint8Array(1000)], []);
      await raw.settle();
      const port = raw.device.port(1)!;
      expect(port.throttled).toBe(true);
      expect(port.pendingTxOffset).toBe(100);
      if (how === 'reset') raw.device.writeStatus(0);
      else raw.device.writeStatus(raw.status & ~Status.DRIVER_OK);
      expect(port.guestConnected).toBe(false);
      expect(port.pendingTx).toBe(null);
      expect(port.throttled).toBe(false);
      expect(drops).toEqual([
        {
          device: 'vser0',
          nr: 1,
          side: 'device',
          bytes: 900,
          reason: 'device-reset',
          direction: 'to-host',
        },
      ]);
      expect(changes.at(-1)).toEqual({ id: 'port1', open: false });
    }
  });
});

describe('C1-C5 console rules', () => {
  it('C1 emerg_wr is accepted before the device is configured', async () => {
    const raw = RawDriver.create({
      chardevs: [{ id: 'c0', connected: true }],
      ports: [{ driver: 'virtconsole', chardev: 'c0' }],
      driverOk: false,
    });
    raw.device.writeStatus(0); // not even ACKNOWLEDGE
    const seen = record(raw.events, 'emergency-write');
    expect(raw.device.writeConfig(8, 4, 0x41)).toBe(null);
    await raw.settle();
    expect(text(raw.endpoints.get('c0')!.peer.read())).toBe('A');
    expect(seen).toEqual([{ device: 'vser0', nr: 0, byte: 0x41 }]);
  });

  it('C2 the low byte goes to the console output; with no console to take it, it is counted as dropped', async () => {
    const raw = RawDriver.create({
      chardevs: [{ id: 'c0', connected: true }],
      ports: [{ driver: 'virtconsole', chardev: 'c0' }],
    });
    raw.device.writeConfig(8, 4, 0x1234);
    raw.device.writeConfig(8, 1, 0x0a);
    expect([...raw.endpoints.get('c0')!.peer.read()]).toEqual([0x34, 0x0a]);
    const lonely = RawDriver.create();
    const drops = record(lonely.events, 'drop');
    lonely.device.writeConfig(8, 4, 0x41);
    expect(drops).toEqual([
      { device: 'vser0', nr: null, side: 'device', bytes: 1, reason: 'emergency-no-console' },
    ]);
  });

  it('C3 PORT_ADD is sent once per port (a second DEVICE_READY adds nothing); hot-plug adds one', async () => {
    const raw = rig();
    raw.postControlRx(16);
    raw.deviceReady();
    raw.deviceReady();
    await raw.settle();
    expect(texts(raw)).toEqual([
      'PORT_ADD id=0 value=1',
      'PORT_ADD id=1 value=1',
      'PORT_ADD id=2 value=1',
    ]);
    must(raw.registry!.addPort({ driver: 'virtserialport', bus: 'vser0.0', nr: 30 }, true));
    await raw.settle();
    expect(texts(raw)).toEqual(['PORT_ADD id=30 value=1']);
    // C3's other half: a number >= max_nr_ports never gets that far (D3 refuses it).
    expect(
      raw.registry!.addPort({ driver: 'virtserialport', bus: 'vser0.0', nr: 31 }),
    ).toHaveProperty('message');
  });

  it('C4 PORT_REMOVE only for a port the guest was told about', async () => {
    const raw = rig();
    raw.postControlRx(16);
    // before DEVICE_READY nothing was announced: an unplug sends nothing
    raw.registry!.unplug(raw.device, raw.device.port(2)!);
    raw.deviceReady();
    await raw.settle();
    expect(texts(raw)).toEqual(['PORT_ADD id=0 value=1', 'PORT_ADD id=1 value=1']);
    raw.registry!.unplug(raw.device, raw.device.port(1)!);
    await raw.settle();
    expect(texts(raw)).toEqual(['PORT_REMOVE id=1 value=1']);
  });

  it('C5 (M10) a device-readable buffer in a receive queue is a driver error: NEEDS_RESET, not used', async () => {
    const raw = rig();
    const resets = record(raw.events, 'needs-reset');
    raw.endpoints.get('c1')!.peer.connect();
    raw.postControlRx(8);
    raw.deviceReady();
    raw.sendEvent(1, E.PORT_OPEN, 1);
    await raw.settle();
    raw.add(rxQueueOf(1), [new Uint8Array(16)], [64]);
    raw.endpoints.get('c1')!.peer.write('x');
    await raw.settle();
    expect(raw.needsReset).toBe(true);
    expect(raw.device.fault?.rule).toBe('M10');
    expect(raw.device.fault?.kind).toBe('WrongBufferDirection');
    expect(resets.map((r) => r.rule)).toEqual(['M10']);
    expect(raw.used(rxQueueOf(1))).toEqual([]);
  });

  it('C5 (M10) a device-writable buffer in a transmit queue or the control transmit queue is a driver error', async () => {
    for (const queue of [txQueueOf(2), 3]) {
      const raw = rig();
      raw.endpoints.get('c2')!.peer.connect();
      await raw.settle();
      raw.add(queue, [encodeControl(controlMessage(2, E.PORT_OPEN, 1))], [8]);
      await raw.settle();
      expect(raw.device.fault?.rule).toBe('M10');
    }
  });
});

describe('D9 malformed guest input (M11, M12)', () => {
  const malformed: [string, Uint8Array][] = [
    ['a message shorter than 8 bytes', new Uint8Array([1, 0, 0, 0, 6, 0])],
    ['an unknown port id', encodeControl(controlMessage(17, E.PORT_OPEN, 1))],
    ['the bad id on a port event', encodeControl(controlMessage(BAD_PORT_ID, E.PORT_READY, 1))],
    ['an event only the device sends', encodeControl(controlMessage(1, E.PORT_ADD, 1))],
    ['an unknown event', encodeControl(controlMessage(1, 42, 1))],
    ['DEVICE_READY with value 0', encodeControl(controlMessage(BAD_PORT_ID, E.DEVICE_READY, 0))],
    ['PORT_READY with value 0', encodeControl(controlMessage(1, E.PORT_READY, 0))],
  ];

  for (const [what, bytes] of malformed) {
    it(`D9 M11 with malformedControl 'needs-reset' (a vmchan extra) ${what} ends in NEEDS_RESET naming M11`, async () => {
      const raw = rig({ device: { malformedControl: 'needs-reset' } });
      const resets = record(raw.events, 'needs-reset');
      raw.postControlRx(8);
      raw.sendControl(bytes);
      await raw.settle();
      expect(raw.needsReset).toBe(true);
      expect(raw.device.fault?.rule).toBe('M11');
      expect(raw.device.fault?.kind).toBe('MalformedControlMessage');
      expect(resets).toHaveLength(1);
      expect(raw.interrupts).toContainEqual({ kind: 'config' }); // G3: DRIVER_OK was set
      // stopped: a good message afterwards is not served
      raw.deviceReady();
      await raw.settle();
      expect(raw.controlReceived()).toEqual([]);
    });
  }

  it('D10 M11 by default the device does as QEMU: reports, counts it and goes on', async () => {
    // QEMU 7.2 hw/char/virtio-serial-bus.c handle_control_message: a short
    // packet returns silently; DEVICE_READY 0, an unknown port id and
    // PORT_READY 0 are error_report()ed and returned from; an unknown event
    // falls through the switch. Nothing sets NEEDS_RESET.
    const raw = rig();
    const ignored = record(raw.events, 'control-ignored');
    raw.postControlRx(8);
    for (const [, bytes] of malformed) raw.sendControl(bytes);
    raw.deviceReady();
    await raw.settle();
    expect(raw.needsReset).toBe(false);
    expect(raw.device.stats.controlIgnored).toBe(malformed.length);
    expect(texts(raw)).toHaveLength(3);
    expect(ignored.map((e) => e.qemuReport)).toEqual([
      null,
      'virtio-serial-bus: Unexpected port id 17 for device vser0.0',
      `virtio-serial-bus: Unexpected port id ${BAD_PORT_ID} for device vser0.0`,
      null,
      null,
      'virtio-serial-bus: Guest failure in adding device vser0.0',
      'virtio-serial-bus: Guest failure in adding port 1 for device vser0.0',
    ]);
    expect(ignored.every((e) => e.rule === 'M11')).toBe(true);
  });

  it('D9 M12 a control receive buffer smaller than the message (CVE-2015-5745) ends in NEEDS_RESET', async () => {
    const raw = rig();
    raw.add(2, [], [4]); // PORT_ADD needs 8 bytes
    const before = raw.buffers.get(1)!;
    const guard = must(raw.memory.readBytes(before.addr, 16));
    raw.deviceReady();
    await raw.settle();
    expect(raw.device.fault?.rule).toBe('M12');
    expect(raw.device.fault?.kind).toBe('ControlBufferTooSmall');
    expect(must(raw.memory.readBytes(before.addr, 16))).toEqual(guard); // nothing written
  });

  it('D9 M12 a PORT_NAME longer than the buffer is refused the same way', async () => {
    const raw = rig();
    raw.postControlRx(3);
    raw.deviceReady();
    await raw.settle();
    raw.add(2, [], [4096]); // for CONSOLE_PORT
    raw.add(2, [], [12]); // "console.0" needs 8 + 10
    raw.sendEvent(0, E.PORT_READY, 1);
    await raw.settle();
    expect(raw.device.fault?.rule).toBe('M12');
    // CONSOLE_PORT (8 bytes) fitted and was delivered before
    expect(texts(raw).at(-1)).toBe('CONSOLE_PORT id=0 value=1');
  });

  it("D9 M12 no control receive buffer posted: 'wait' (default) delivers later, 'drop' counts, 'needs-reset' faults", async () => {
    const waiting = rig();
    waiting.deviceReady();
    await waiting.settle();
    expect(waiting.device.pendingControl).toHaveLength(3);
    waiting.postControlRx(8);
    await waiting.settle();
    expect(texts(waiting)).toHaveLength(3);

    const dropping = rig({ device: { controlRxExhausted: 'drop' } });
    const drops = record(dropping.events, 'drop');
    dropping.deviceReady();
    await dropping.settle();
    expect(drops.map((d) => [d.reason, d.bytes])).toEqual([
      ['control-undelivered', 8],
      ['control-undelivered', 8],
      ['control-undelivered', 8],
    ]);

    const strict = rig({ device: { controlRxExhausted: 'needs-reset' } });
    strict.deviceReady();
    await strict.settle();
    expect(strict.device.fault?.rule).toBe('M12');
  });

  it('D9 a broken device stops alone: the other device of the machine keeps moving data', async () => {
    const lab = makeLab({
      devices: [
        ...caseStudy().devices!,
        {
          id: 'vser1',
          malformedControl: 'needs-reset',
          ports: [{ driver: 'virtserialport', name: 'other' }],
        },
      ],
    });
    const vser0 = lab.device('vser0')!;
    const vser1 = lab.device('vser1')!;
    const probe = lab.guest.probe(vser0, { label: 'vser0' });
    const raw = RawDriver.attach(vser1, lab);
    raw.postControlRx(4);
    raw.sendControl(new Uint8Array(3));
    await probe;
    await lab.settle();
    expect(vser1.fault?.rule).toBe('M11');
    expect(vser0.fault).toBe(null);
    const fd = must(await lab.guest.files.open('/dev/virtio-ports/test1'));
    lab.host('test1').connect();
    lab.host('test1').write('still alive');
    expect(text(await readExactly(lab.guest.files, fd, 11))).toBe('still alive');
  });

  it('D9 a Linux-like guest sees the broken device as EIO instead of hanging', async () => {
    const lab = await bootLab(caseStudy());
    const fd = must(await lab.guest.files.open('/dev/virtio-ports/test1'));
    lab.host('test1').connect();
    await lab.settle();
    const reading = lab.guest.files.read(fd, 10);
    lab.device('vser0')!.notify(999); // M13 from "the guest"
    const r = await reading;
    expect(r).toHaveProperty('code', 'EIO');
    expect(lab.device('vser0')!.readStatus() & Status.DEVICE_NEEDS_RESET).toBeTruthy();
    expect(bit(Feature.VERSION_1)).toBe(1n << 32n);
  });
});
