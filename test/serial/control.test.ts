/**
 * C0: the console's numbers (device id, queues, feature bits, config layout,
 * control messages), and the two open points as options (RESIZE order,
 * PORT_NAME NUL).
 */
import { describe, expect, it } from 'vitest';
import {
  BAD_PORT_ID,
  ControlEvent,
  controlMessage,
  decodeControl,
  describeControl,
  encodeControl,
} from '../../core/serial/control.js';
import {
  CONFIG_EMERG_WR,
  CONFIG_MAX_NR_PORTS,
  consoleQueueCount,
  queueRole,
  rxQueueOf,
  txQueueOf,
  VIRTIO_ID_CONSOLE,
} from '../../core/serial/layout.js';
import { isFault } from '../../core/virtio/fault.js';
import { Feature } from '../../core/virtio/features.js';
import { RawDriver } from './helpers.js';

describe('C0 console numbers', () => {
  it('C0 device id 3, feature bits SIZE 0, MULTIPORT 1, EMERG_WRITE 2', () => {
    expect(VIRTIO_ID_CONSOLE).toBe(3);
    expect([
      Feature.CONSOLE_F_SIZE,
      Feature.CONSOLE_F_MULTIPORT,
      Feature.CONSOLE_F_EMERG_WRITE,
    ]).toEqual([0, 1, 2]);
    expect(RawDriver.create().device.deviceId).toBe(3);
  });

  it('C0 queues: 0/1 for port 0, 2/3 control, 2n+2/2n+3 for port n; 2 queues without MULTIPORT', () => {
    expect([rxQueueOf(0), txQueueOf(0)]).toEqual([0, 1]);
    expect([rxQueueOf(1), txQueueOf(1)]).toEqual([4, 5]);
    expect([rxQueueOf(30), txQueueOf(30)]).toEqual([62, 63]);
    expect(queueRole(2)).toEqual({ role: 'control-rx' });
    expect(queueRole(3)).toEqual({ role: 'control-tx' });
    expect(queueRole(63)).toEqual({ role: 'tx', port: 30 });
    expect(consoleQueueCount(31, true)).toBe(64);
    expect(consoleQueueCount(31, false)).toBe(2);
  });

  it('C0 config: le16 cols @0, le16 rows @2, le32 max_nr_ports @4, le32 emerg_wr @8', () => {
    const raw = RawDriver.create({ device: { maxPorts: 5, consoleSize: { cols: 80, rows: 25 } } });
    const d = raw.device;
    expect(d.readConfig(0, 2)).toBe(80);
    expect(d.readConfig(2, 2)).toBe(25);
    expect(d.readConfig(CONFIG_MAX_NR_PORTS, 4)).toBe(5);
    expect(d.readConfig(CONFIG_EMERG_WR, 4)).toBe(0);
  });

  it('C0 control messages are le32 id, le16 event, le16 value; events 0..7; bad id 0xFFFFFFFF', () => {
    expect(ControlEvent).toEqual({
      DEVICE_READY: 0,
      PORT_ADD: 1,
      PORT_REMOVE: 2,
      PORT_READY: 3,
      CONSOLE_PORT: 4,
      RESIZE: 5,
      PORT_OPEN: 6,
      PORT_NAME: 7,
    });
    const bytes = encodeControl(controlMessage(BAD_PORT_ID, ControlEvent.DEVICE_READY, 1));
    expect([...bytes]).toEqual([0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0]);
    const open = encodeControl(controlMessage(0x01020304, ControlEvent.PORT_OPEN, 1));
    expect([...open]).toEqual([4, 3, 2, 1, 6, 0, 1, 0]);
    const back = decodeControl(open);
    expect(!isFault(back) && describeControl(back)).toBe('PORT_OPEN id=16909060 value=1');
  });

  it('C0 (M11) a control message shorter than 8 bytes does not decode', () => {
    const r = decodeControl(new Uint8Array(7));
    expect(isFault(r) && r.rule).toBe('M11');
  });
});

describe('C0 open points as options', () => {
  it('C0 RESIZE payload order: rows-cols (Linux, default) or cols-rows (spec)', () => {
    const msg = controlMessage(0, ControlEvent.RESIZE, 0, { cols: 80, rows: 24 });
    const linux = encodeControl(msg);
    expect([...linux.subarray(8)]).toEqual([24, 0, 80, 0]);
    const spec = encodeControl(msg, { resizeOrder: 'cols-rows', portNameNul: true });
    expect([...spec.subarray(8)]).toEqual([80, 0, 24, 0]);
    const misread = decodeControl(spec); // a Linux guest reading a spec-order device
    expect(!isFault(misread) && [misread.rows, misread.cols]).toEqual([80, 24]);
  });

  it('C0 PORT_NAME carries a trailing NUL by default (QEMU), none as an option (crosvm); both decode', () => {
    const msg = controlMessage(1, ControlEvent.PORT_NAME, 1, { name: 'test1' });
    const qemu = encodeControl(msg);
    const crosvm = encodeControl(msg, { resizeOrder: 'rows-cols', portNameNul: false });
    expect(qemu.length).toBe(8 + 6);
    expect(qemu[13]).toBe(0);
    expect(crosvm.length).toBe(8 + 5);
    for (const b of [qemu, crosvm]) {
      const d = decodeControl(b);
      expect(!isFault(d) && d.name).toBe('test1');
    }
  });
});
