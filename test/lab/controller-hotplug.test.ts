/**
 * D1, D3, D8, Q2, Q3: a virtio-serial controller hot-plugged while running
 * goes through Machine.controllerAdd, whoever asks (QMP device_add, the
 * app's createDevice), so machine.topology() (export, info qtree,
 * query-chardev...) lists it; device_del takes it and its ports out again,
 * with DEVICE_DELETED. Guest RAM is fixed at start with room for one more
 * default device; beyond that the refusal names the limit.
 */
import { labCommands } from '../../core/api/server/lab-commands.js';
import { VringService } from '../../core/api/server/vring-service.js';
import { isVmchanError } from '../../core/base/error.js';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LabSession } from '../../core/api/server/lab-session.js';
import { DEFAULT_RAM_MIB } from '../../core/machine/guest-ram.js';
import { deviceMemoryBytes, memoryMiBFor } from '../../core/machine/machine.js';
import { defaultDevice, type Topology } from '../../core/machine/topology.js';
import {
  HmpClient,
  eachRecordedRig,
  guestLists,
  socketBackend,
  tempDir,
  waitFor,
  type QmpClient,
  type Rig,
} from '../monitor/helpers.js';

let rig: Rig;
let q: QmpClient;
eachRecordedRig('ctl', (r, c) => ([rig, q] = [r, c]));

describe('D8 Q2 device_add of a second virtio-serial-pci', () => {
  it('the topology lists it, a port on vser1.0 reaches the guest, device_del removes both', async () => {
    expect(
      await q.execute('device_add', { driver: 'virtio-serial-pci', id: 'vser1', max_ports: 4 }),
    ).toMatchObject({ return: {} });
    expect(rig.machine.topology().devices.map((d) => [d.id, d.maxPorts])).toEqual([
      ['vser0', 8],
      ['vser1', 4],
    ]);
    expect(rig.machine.lab.registry.devices.map((d) => d.bus)).toEqual(['vser0.0', 'vser1.0']);

    await q.must('chardev-add', { id: 'c9', backend: socketBackend(path.join(rig.dir, 'c9')) });
    expect(
      await q.execute('device_add', {
        driver: 'virtserialport',
        bus: 'vser1.0',
        chardev: 'c9',
        name: 'org.test.second',
        id: 'p9',
      }),
    ).toMatchObject({ return: {} });
    await waitFor(() => guestLists(rig, 'org.test.second'), 'the guest symlink');
    const ns = rig.machine.lab.guest.namespace;
    expect(ns.readlink('/dev/virtio-ports/org.test.second')).toBe('../vport1p1');
    expect(rig.machine.topology().ports.filter((p) => p.bus === 'vser1.0')).toEqual([
      {
        driver: 'virtserialport',
        bus: 'vser1.0',
        chardev: 'c9',
        name: 'org.test.second',
        id: 'p9',
      },
    ]);
    // The monitors read the topology: info qtree names the new controller and its port.
    const { hmp } = await HmpClient.connect(path.join(rig.dir, 'hmp'));
    const qtree = await hmp.command('info qtree');
    await hmp.close();
    expect(qtree).toContain('id "vser1"');
    expect(qtree).toContain('id "p9"');

    const from = q.lines.length;
    expect(await q.execute('device_del', { id: 'vser1' })).toMatchObject({ return: {} });
    const deleted = await q.event('DEVICE_DELETED', (d) => d.device === 'vser1', from);
    expect(deleted.data).toEqual({ device: 'vser1', path: '/machine/peripheral/vser1' });
    await waitFor(() => !guestLists(rig, 'org.test.second'), 'the symlink to go');
    expect(rig.machine.topology().devices.map((d) => d.id)).toEqual(['vser0']);
    expect(rig.machine.topology().ports.map((p) => p.id)).toEqual(['con0', 'port1']);
    // The chardev is free again, and the id can be used again.
    expect(await q.execute('chardev-remove', { id: 'c9' })).toMatchObject({ return: {} });
    expect(
      await q.execute('device_add', { driver: 'virtio-serial-pci', id: 'vser1' }),
    ).toMatchObject({ return: {} });
  });

  it('refuses in QEMU words: a duplicate id, max_ports out of range, and guest RAM full', async () => {
    const desc = async (args: Record<string, unknown>): Promise<unknown> => {
      const r = await q.execute('device_add', args);
      return (r.error as { desc?: unknown } | undefined)?.desc;
    };
    expect(await desc({ driver: 'virtio-serial-pci', id: 'vser0' })).toBe(
      "Duplicate device ID 'vser0'",
    );
    expect(await desc({ driver: 'virtio-serial-pci', id: 'port1' })).toBe(
      "Duplicate device ID 'port1'",
    );
    expect(await desc({ driver: 'virtio-serial-pci', id: 'big', max_ports: 512 })).toMatch(/511/);
    expect(await desc({ driver: 'virtio-serial-pci', id: 'none', max_ports: 0 })).toMatch(
      /Maximum number of serial ports not specified/,
    );
    expect(rig.machine.topology().devices.map((d) => d.id)).toEqual(['vser0']);

    // D11: QEMU's default 128 MiB of RAM (no -m): three more default devices fit ...
    const mib = Math.max(DEFAULT_RAM_MIB, memoryMiBFor([{ maxPorts: 8 }]));
    expect(rig.machine.lab.memory.layout.reduce((n, r) => n + r.size, 0)).toBe(mib * 1024 * 1024);
    for (const id of ['vser1', 'vser2', 'vser3']) {
      expect(await desc({ driver: 'virtio-serial-pci', id })).toBe(undefined);
    }
    // ... the next is refused, naming what it needs and the fixed size.
    const refused = await desc({ driver: 'virtio-serial-pci', id: 'vser4' });
    expect(refused).toMatch(/^cannot allocate the rings of 'vser4': max_ports=31 needs \d+ MiB/);
    expect(refused).toContain(`of the guest's ${mib} MiB are free`);
    expect(refused).toContain('-m gives the guest more');
    expect(rig.machine.topology().devices.map((d) => d.id)).toEqual([
      'vser0',
      'vser1',
      'vser2',
      'vser3',
    ]);
    // Unplugging gives the room back.
    expect(await q.execute('device_del', { id: 'vser1' })).toMatchObject({ return: {} });
    expect(await desc({ driver: 'virtio-serial-pci', id: 'vser4' })).toBe(undefined);
  });

  it('the rule: 32 MiB, plus what every device can claim, plus one more default device', () => {
    const one = deviceMemoryBytes(31);
    expect(memoryMiBFor([])).toBe(Math.ceil((32 * 1024 * 1024 + one) / (1024 * 1024)));
    expect(memoryMiBFor([{ maxPorts: 31 }, { maxPorts: 31 }])).toBe(
      Math.ceil((32 * 1024 * 1024 + 3 * one) / (1024 * 1024)),
    );
  });
});

describe("the app's createDevice goes through the machine", () => {
  it('lists the device in the topology and the export, and removeDevice takes it out', async () => {
    const dir = tempDir('app');
    const topology: Topology = {
      chardevs: [],
      devices: [defaultDevice('virtio-serial-pci', { id: 'vser0' })],
      ports: [],
      monitors: [],
      ignored: [],
    };
    const built = await LabSession.build('t', topology, {
      runtimeDir: dir,
      onChange: () => {},
      commands: (session) =>
        labCommands(session, {
          vrings: new VringService(),
          changed: () => {},
          engineChanged: () => {},
        }),
    });
    if ('error' in built) throw new Error(built.error.message);
    const s = built.session;
    try {
      const made = s.createDevice({ id: 'vser1', maxPorts: 2 });
      expect(isVmchanError(made) ? made.message : made.bus).toBe('vser1.0');
      expect(s.machine.topology().devices.map((d) => d.id)).toEqual(['vser0', 'vser1']);
      expect(s.exportTopology().devices.map((d) => d.id)).toEqual(['vser0', 'vser1']);
      expect(s.createDevice({ id: 'vser1' })).toMatchObject({
        domain: 'qemu',
        kind: 'GenericError',
        message: "Duplicate device ID 'vser1'",
      });
      expect(s.removeDevice('vser1')).toBe(null);
      expect(s.exportTopology().devices.map((d) => d.id)).toEqual(['vser0']);
    } finally {
      await s.dispose();
    }
  });
});
