/**
 * D1-D3: device properties and port numbering, with every refusal in QEMU
 * 7.2's words and check order (behaviours.md D3, qemu-7.2-samples/scenario.log).
 */
import { describe, expect, it } from 'vitest';
import { isQemuError } from '../../core/base/qemu-error.js';
import { Feature, has } from '../../core/virtio/features.js';
import { makeLab, must, RawDriver } from './helpers.js';

function errorOf(value: unknown): string {
  return isQemuError(value) ? value.message : `no error (${String(value)})`;
}

describe('D1 device properties', () => {
  it('D1 max_ports defaults to 31 and is what the guest reads in max_nr_ports', () => {
    const raw = RawDriver.create();
    expect(raw.device.maxPorts).toBe(31);
    expect(raw.device.readConfig(4, 4)).toBe(31);
  });

  it('D1 511 ports is the largest max_ports; more is refused naming the limit; 0 is refused', () => {
    const lab = makeLab({});
    expect(isQemuError(lab.addDevice({ id: 'big', maxPorts: 511 }))).toBe(false);
    expect(errorOf(lab.addDevice({ id: 'huge', maxPorts: 512 }))).toBe(
      'maximum ports supported: 511',
    );
    expect(errorOf(lab.addDevice({ id: 'none', maxPorts: 0 }))).toBe(
      'Maximum number of serial ports not specified',
    );
  });

  it('D1 MULTIPORT is offered only when max_ports > 1', () => {
    expect(
      has(
        RawDriver.create({ device: { maxPorts: 2 } }).device.hostFeatures,
        Feature.CONSOLE_F_MULTIPORT,
      ),
    ).toBe(true);
    expect(
      has(
        RawDriver.create({ device: { maxPorts: 1 } }).device.hostFeatures,
        Feature.CONSOLE_F_MULTIPORT,
      ),
    ).toBe(false);
  });

  it('D1 EMERG_WRITE is offered by default and can be turned off', () => {
    expect(has(RawDriver.create().device.hostFeatures, Feature.CONSOLE_F_EMERG_WRITE)).toBe(true);
    const off = RawDriver.create({ device: { emergencyWrite: false } });
    expect(has(off.device.hostFeatures, Feature.CONSOLE_F_EMERG_WRITE)).toBe(false);
  });
});

describe('D2 queue sizes', () => {
  it('D2 data queues hold 128 entries and control queues 32', () => {
    const d = RawDriver.create().device;
    expect([d.queueMaxSize(0), d.queueMaxSize(1), d.queueMaxSize(2), d.queueMaxSize(3)]).toEqual([
      128, 128, 32, 32,
    ]);
    expect(d.queueMaxSize(63)).toBe(128);
    expect(d.queueMaxSize(64)).toBe(0);
  });

  it('D2 both sizes are configurable', () => {
    const d = RawDriver.create({ device: { dataQueueSize: 256, controlQueueSize: 64 } }).device;
    expect([d.queueMaxSize(4), d.queueMaxSize(2)]).toEqual([256, 64]);
    const lab = makeLab({});
    expect(errorOf(lab.addDevice({ id: 'odd', dataQueueSize: 100 }))).toMatch(/power of 2/);
  });
});

describe('D3 port numbering', () => {
  it('D3 the nr property wins; otherwise the lowest free number; a serial port never gets 0', () => {
    const lab = makeLab({ devices: [{ id: 'vser0' }] });
    expect(must(lab.deviceAdd({ driver: 'virtserialport', id: 'a' })).nr).toBe(1);
    expect(must(lab.deviceAdd({ driver: 'virtserialport', id: 'b', nr: 5 })).nr).toBe(5);
    expect(must(lab.deviceAdd({ driver: 'virtserialport', id: 'c' })).nr).toBe(2);
  });

  it('D3 the first virtconsole without nr takes 0, the next ones the lowest free number', () => {
    const lab = makeLab({ devices: [{ id: 'vser0' }] });
    expect(must(lab.deviceAdd({ driver: 'virtserialport', id: 's1' })).nr).toBe(1);
    expect(must(lab.deviceAdd({ driver: 'virtconsole', id: 'c0' })).nr).toBe(0);
    expect(must(lab.deviceAdd({ driver: 'virtconsole', id: 'c1' })).nr).toBe(2);
  });

  it('D3 after a console at 0 is unplugged, 0 stays reserved for consoles', () => {
    const lab = makeLab({ devices: [{ id: 'vser0' }] });
    must(lab.deviceAdd({ driver: 'virtconsole', id: 'c0' }));
    expect(lab.deviceDel('c0')).toBe(null);
    expect(must(lab.deviceAdd({ driver: 'virtserialport', id: 's' })).nr).toBe(1);
    expect(must(lab.deviceAdd({ driver: 'virtconsole', id: 'c' })).nr).toBe(0);
  });
});

describe('D3 refusals, in QEMU words', () => {
  const base = () =>
    makeLab({
      chardevs: [{ id: 'c1' }, { id: 'c2' }],
      devices: [
        {
          id: 'vser0',
          ports: [
            { driver: 'virtconsole', id: 'con0', name: 'org.test.console.0' },
            { driver: 'virtserialport', id: 'port1', name: 'org.test.port.1', chardev: 'c1' },
          ],
        },
        { id: 'vser1', maxPorts: 32 },
      ],
    });

  it('D3 refuses a virtserialport at nr 0 while 0 is free: reserved for virtconsole', () => {
    const lab = makeLab({ devices: [{ id: 'vser0' }] });
    expect(errorOf(lab.deviceAdd({ driver: 'virtserialport', nr: 0 }))).toBe(
      'Port number 0 on virtio-serial devices reserved for virtconsole devices for backward compatibility.',
    );
  });

  it('D3 refuses nr 0 while a console holds it with "already exists" (occupied is checked first)', () => {
    expect(errorOf(base().deviceAdd({ driver: 'virtserialport', bus: 'vser0.0', nr: 0 }))).toBe(
      'virtio-serial-bus: A port already exists at id 0',
    );
  });

  it('D3 refuses a duplicate nr on a device', () => {
    // scenario.log q18
    expect(
      errorOf(base().deviceAdd({ driver: 'virtserialport', bus: 'vser0.0', nr: 1, id: 'x3' })),
    ).toBe('virtio-serial-bus: A port already exists at id 1');
  });

  it('D3 refuses a duplicate name, across all devices', () => {
    const lab = base();
    // scenario.log q17
    expect(
      errorOf(
        lab.deviceAdd({
          driver: 'virtserialport',
          bus: 'vser0.0',
          name: 'org.test.port.1',
          id: 'x2',
        }),
      ),
    ).toBe('virtio-serial-bus: A port already exists by name org.test.port.1');
    expect(
      errorOf(lab.deviceAdd({ driver: 'virtconsole', bus: 'vser1.0', name: 'org.test.console.0' })),
    ).toBe('virtio-serial-bus: A port already exists by name org.test.console.0');
  });

  it('D3 refuses nr >= max_ports naming the largest allowed', () => {
    expect(errorOf(base().deviceAdd({ driver: 'virtserialport', bus: 'vser0.0', nr: 31 }))).toBe(
      'virtio-serial-bus: Out-of-range port id specified, max. allowed: 30',
    );
  });

  it('D3 refuses a port on a full device: "Maximum port limit" when max_ports is a multiple of 32', () => {
    const lab = base();
    for (let i = 1; i < 32; i++) must(lab.deviceAdd({ driver: 'virtserialport', bus: 'vser1.0' }));
    must(lab.deviceAdd({ driver: 'virtconsole', bus: 'vser1.0' }));
    expect(errorOf(lab.deviceAdd({ driver: 'virtserialport', bus: 'vser1.0' }))).toBe(
      'virtio-serial-bus: Maximum port limit for this device reached',
    );
  });

  it('D3 a full device with 31 ports reports the range instead (QEMU map has a spare bit)', () => {
    const lab = base();
    for (let i = 2; i < 31; i++) must(lab.deviceAdd({ driver: 'virtserialport', bus: 'vser0.0' }));
    expect(errorOf(lab.deviceAdd({ driver: 'virtserialport', bus: 'vser0.0' }))).toBe(
      'virtio-serial-bus: Out-of-range port id specified, max. allowed: 30',
    );
  });

  it('D3 refuses a duplicate qdev id, for ports and devices alike', () => {
    const lab = base();
    expect(errorOf(lab.deviceAdd({ driver: 'virtserialport', id: 'port1' }))).toBe(
      "Duplicate device ID 'port1'",
    );
    expect(errorOf(lab.deviceAdd({ driver: 'virtserialport', id: 'vser0' }))).toBe(
      "Duplicate device ID 'vser0'",
    );
    expect(errorOf(lab.addDevice({ id: 'con0' }))).toBe("Duplicate device ID 'con0'");
  });

  it('D3 refuses a chardev in use or unknown, and an unknown bus', () => {
    const lab = base();
    // scenario.log q16
    expect(
      errorOf(
        lab.deviceAdd({
          driver: 'virtserialport',
          bus: 'vser0.0',
          chardev: 'c1',
          name: 'dup',
          id: 'x1',
        }),
      ),
    ).toBe("Property 'virtserialport.chardev' can't take value 'c1': Device 'c1' is in use");
    expect(errorOf(lab.deviceAdd({ driver: 'virtconsole', chardev: 'nope' }))).toBe(
      "Property 'virtconsole.chardev' can't find value 'nope'",
    );
    expect(errorOf(lab.deviceAdd({ driver: 'virtserialport', bus: 'vser9.0' }))).toBe(
      "Bus 'vser9.0' not found",
    );
  });

  it('D3 checks in QEMU order: id, then chardev, then nr, then name, then range', () => {
    const lab = base();
    const all = {
      driver: 'virtserialport',
      bus: 'vser0.0',
      nr: 1,
      name: 'org.test.port.1',
      chardev: 'c1',
    };
    expect(errorOf(lab.deviceAdd({ ...all, id: 'port1' }))).toBe("Duplicate device ID 'port1'");
    expect(errorOf(lab.deviceAdd({ ...all, id: 'n1' }))).toMatch(/Device 'c1' is in use/);
    expect(errorOf(lab.deviceAdd({ ...all, id: 'n1', chardev: 'c2' }))).toBe(
      'virtio-serial-bus: A port already exists at id 1',
    );
    expect(errorOf(lab.deviceAdd({ ...all, id: 'n1', chardev: 'c2', nr: 40 }))).toBe(
      'virtio-serial-bus: A port already exists by name org.test.port.1',
    );
    expect(errorOf(lab.deviceAdd({ ...all, id: 'n1', chardev: 'c2', nr: 40, name: 'fresh' }))).toBe(
      'virtio-serial-bus: Out-of-range port id specified, max. allowed: 30',
    );
    // nothing was taken by the refused attempts
    expect(lab.endpoint('c2')?.attached).toBe(false);
    expect(must(lab.deviceAdd({ ...all, id: 'n1', chardev: 'c2', nr: 3, name: 'fresh' })).nr).toBe(
      3,
    );
  });

  it('D3 chardev-remove of a chardev in use is refused as busy', () => {
    const lab = base();
    // scenario.log q19
    expect(errorOf(lab.chardevRemove('c1'))).toBe("Chardev 'c1' is busy");
    expect(lab.chardevRemove('c2')).toBe(null);
    expect(lab.deviceDel('port1')).toBe(null);
    expect(lab.chardevRemove('c1')).toBe(null);
  });

  it('D3 without bus= the newest virtio-serial bus is used (QEMU finds it first)', () => {
    const lab = base();
    const port = must(lab.deviceAdd({ driver: 'virtserialport', id: 'auto' }));
    expect(lab.port('auto')?.device.bus).toBe('vser1.0');
    expect(port.nr).toBe(1);
  });
});
