/**
 * D3, D4, D8, Q2, Q3 through QMP on a real socket, replaying the QEMU 7.2
 * recording (qemu-7.2-samples/scenario.log): chardev-add of a unix socket
 * backend and device_add of a port, the guest seeing it, VSERPORT_CHANGE
 * as a guest program opens and closes it, data both ways, device_del with
 * DEVICE_DELETED, a hot-plugged console, every refusal in QEMU's words.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isErrno } from '../../core/serial/guest/errno.js';
import {
  SocketClient,
  eachRecordedRig,
  guestLists,
  ok,
  socketBackend,
  waitFor,
  type QmpClient,
  type Rig,
} from './helpers.js';

let rig: Rig;
let q: QmpClient;
eachRecordedRig('hp', (r, c) => ([rig, q] = [r, c]));

describe('D8 Q2 hot-plug through chardev-add and device_add', () => {
  it('adds a socket chardev and a port the guest sees, with QOM properties as recorded', async () => {
    const p2 = path.join(rig.dir, 'p2');
    expect(await q.execute('chardev-add', { id: 'c2', backend: socketBackend(p2) })).toMatchObject({
      return: {},
    });
    const added = await q.execute('device_add', {
      driver: 'virtserialport',
      bus: 'vser0.0',
      chardev: 'c2',
      name: 'org.test.port.2',
      id: 'port2',
    });
    expect(q.lines.at(-1)).toBe(`{"return": {}, "id": "${added.id as string}"}`);
    await waitFor(() => guestLists(rig, 'org.test.port.2'), 'the guest symlink');
    const ns = rig.machine.lab.guest.namespace;
    expect(ns.readlink('/dev/virtio-ports/org.test.port.2')).toBe('../vport0p2');
    expect(await q.must('qom-get', { path: '/machine/peripheral/port2', property: 'nr' })).toBe(2);
    expect(await q.must('qom-get', { path: '/machine/peripheral/port2', property: 'name' })).toBe(
      'org.test.port.2',
    );
    expect(
      await q.must('qom-get', { path: '/machine/peripheral/port2', property: 'chardev' }),
    ).toBe('c2');
    expect(await q.must('qom-get', { path: 'port2', property: 'hotplugged' })).toBe(true);
    expect(await q.must('qom-list', { path: '/machine/peripheral/port2' })).toEqual([
      { name: 'type', type: 'string' },
      { name: 'parent_bus', type: 'link<bus>' },
      { name: 'realized', type: 'bool' },
      { name: 'hotplugged', type: 'bool' },
      { name: 'hotpluggable', type: 'bool' },
      { name: 'nr', type: 'uint32' },
      { name: 'name', type: 'str' },
      { name: 'chardev', type: 'str' },
    ]);
    expect(
      await q.execute('qom-get', { path: '/machine/peripheral/port2', property: 'x' }),
    ).toMatchObject({
      error: { class: 'GenericError', desc: "Property 'virtserialport.x' not found" },
    });
    expect(
      await q.execute('qom-get', { path: '/machine/peripheral/nope', property: 'nr' }),
    ).toMatchObject({
      error: { class: 'DeviceNotFound', desc: "Device '/machine/peripheral/nope' not found" },
    });
    // The topology the CLI and the app see follows.
    expect(rig.machine.topology().ports.map((p) => p.id)).toContain('port2');
  });

  it('Q3 VSERPORT_CHANGE as a guest program opens and closes the port; data both ways', async () => {
    const p2 = path.join(rig.dir, 'p2');
    await q.must('chardev-add', { id: 'c2', backend: socketBackend(p2) });
    await q.must('device_add', {
      driver: 'virtserialport',
      chardev: 'c2',
      name: 'org.test.port.2',
      id: 'port2',
    });
    await waitFor(() => guestLists(rig, 'org.test.port.2'), 'the guest symlink');
    const host = await SocketClient.connect(p2);
    const files = rig.machine.lab.guest.files;
    const from = q.lines.length;
    const fd = ok(await files.open('/dev/virtio-ports/org.test.port.2'));
    const opened = await q.event('VSERPORT_CHANGE', (d) => d.id === 'port2', from);
    expect(q.lines.find((l) => l.includes('VSERPORT_CHANGE'))).toMatch(
      /^\{"timestamp": \{"seconds": \d+, "microseconds": \d+\}, "event": "VSERPORT_CHANGE", "data": \{"open": true, "id": "port2"\}\}$/,
    );
    expect(opened.data).toEqual({ open: true, id: 'port2' });

    host.write('ping-from-host\n');
    const got = ok(await files.read(fd, 100));
    expect(Buffer.from(got).toString()).toBe('ping-from-host\n');
    ok(await files.write(fd, 'pong-from-guest\n'));
    await host.until((b) => b.toString() === 'pong-from-guest\n', 'guest bytes');

    const before = q.lines.length;
    ok(await files.close(fd));
    const closed = await q.event('VSERPORT_CHANGE', (d) => d.open === false, before);
    expect(closed.data).toEqual({ open: false, id: 'port2' });
    await host.close();
  });

  it('device_del removes the port the guest holds open: DEVICE_DELETED, ENODEV, chardev-remove', async () => {
    const p2 = path.join(rig.dir, 'p2');
    await q.must('chardev-add', { id: 'c2', backend: socketBackend(p2) });
    await q.must('device_add', {
      driver: 'virtserialport',
      chardev: 'c2',
      name: 'org.test.port.2',
      id: 'port2',
    });
    await waitFor(() => guestLists(rig, 'org.test.port.2'), 'the guest symlink');
    const files = rig.machine.lab.guest.files;
    const fd = ok(await files.open('/dev/virtio-ports/org.test.port.2'));
    expect(await q.execute('chardev-remove', { id: 'c2' })).toMatchObject({
      error: { class: 'GenericError', desc: "Chardev 'c2' is busy" },
    });
    const from = q.lines.length;
    expect(await q.execute('device_del', { id: 'port2' })).toMatchObject({ return: {} });
    const deleted = await q.event('DEVICE_DELETED', () => true, from);
    expect(deleted.data).toEqual({ device: 'port2', path: '/machine/peripheral/port2' });
    // As recorded: the reply, then the event (QEMU sends it once the port is finalized).
    expect(q.lines.slice(from).map((l) => (l.includes('"return"') ? 'reply' : 'event'))).toEqual([
      'reply',
      'event',
    ]);
    expect(q.lines.find((l) => l.includes('DEVICE_DELETED'))).toContain(
      '"event": "DEVICE_DELETED", "data": {"device": "port2", "path": "/machine/peripheral/port2"}}',
    );
    await waitFor(() => !guestLists(rig, 'org.test.port.2'), 'the symlink to go');
    const r = await files.read(fd, 10);
    expect(isErrno(r) && r.code).toBe('ENODEV');
    await files.close(fd);
    expect(await q.execute('chardev-remove', { id: 'c2' })).toMatchObject({ return: {} });
    expect(await q.execute('chardev-remove', { id: 'c2' })).toMatchObject({
      error: { desc: "Chardev 'c2' not found" },
    });
  });

  it('hot-plugs a virtconsole: the guest gets an hvc, VSERPORT_CHANGE open, then DEVICE_DELETED', async () => {
    await q.must('chardev-add', { id: 'c3', backend: socketBackend(path.join(rig.dir, 'con1')) });
    const from = q.lines.length;
    await q.must('device_add', {
      driver: 'virtconsole',
      bus: 'vser0.0',
      chardev: 'c3',
      name: 'org.test.console.1',
      id: 'con1',
    });
    const opened = await q.event('VSERPORT_CHANGE', (d) => d.id === 'con1', from);
    expect(opened.data).toEqual({ open: true, id: 'con1' });
    await waitFor(() => guestLists(rig, 'org.test.console.1'), 'the console link');
    await q.must('device_del', { id: 'con1' });
    await q.event('DEVICE_DELETED', (d) => d.device === 'con1', from);
    await q.must('chardev-remove', { id: 'c3' });
  });

  it('hot-plugs a virtio-serial-pci controller and a port on its bus', async () => {
    await q.must('device_add', { driver: 'virtio-serial-pci', id: 'vser1', max_ports: 4 });
    await q.must('chardev-add', { id: 'c5', backend: socketBackend(path.join(rig.dir, 'p5')) });
    await q.must('device_add', {
      driver: 'virtserialport',
      bus: 'vser1.0',
      chardev: 'c5',
      name: 'second',
      id: 'p5',
    });
    await waitFor(() => guestLists(rig, 'second'), 'the port on the second controller');
    expect(rig.machine.lab.guest.namespace.readlink('/dev/virtio-ports/second')).toBe(
      '../vport1p1',
    );
    expect(await q.must('x-query-virtio')).toEqual([
      { path: '/machine/peripheral/vser0/virtio-backend', name: 'virtio-serial' },
      { path: '/machine/peripheral/vser1/virtio-backend', name: 'virtio-serial' },
    ]);
    expect(
      await q.execute('device_add', { driver: 'virtio-serial-pci', max_ports: 600 }),
    ).toMatchObject({
      error: { desc: 'maximum ports supported: 511' },
    });
  });
});

describe("D3 refusals in QEMU 7.2's words", () => {
  it('answers the recorded error cases exactly as QEMU did', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [
        { driver: 'virtserialport', bus: 'vser0.0', chardev: 'c1', name: 'dup', id: 'x1' },
        '{"id": "ID", "error": {"class": "GenericError", "desc": "Property \'virtserialport.chardev\' can\'t take value \'c1\': Device \'c1\' is in use"}}',
      ],
      [
        { driver: 'virtserialport', bus: 'vser0.0', name: 'org.test.port.1', id: 'x2' },
        '{"id": "ID", "error": {"class": "GenericError", "desc": "virtio-serial-bus: A port already exists by name org.test.port.1"}}',
      ],
      [
        { driver: 'virtserialport', bus: 'vser0.0', nr: 1, id: 'x3' },
        '{"id": "ID", "error": {"class": "GenericError", "desc": "virtio-serial-bus: A port already exists at id 1"}}',
      ],
    ];
    for (const [args, line] of cases) {
      const r = await q.execute('device_add', args);
      expect(q.lines.at(-1)).toBe(line.replace('ID', r.id as string));
    }
    await q.execute('chardev-remove', { id: 'c1' });
    expect(q.lines.at(-1)).toMatch(
      /^\{"id": "t\d+", "error": \{"class": "GenericError", "desc": "Chardev 'c1' is busy"\}\}$/,
    );
  });

  it('refuses the other D3 cases, the driver and the properties as QEMU does', async () => {
    const desc = async (args: Record<string, unknown>): Promise<string> => {
      const r = (await q.execute('device_add', args)) as { error?: { desc: string } };
      return r.error?.desc ?? 'accepted';
    };
    // nr 0 is free on vser1 only: vser0's console holds 0.
    await q.must('device_add', { driver: 'virtio-serial-pci', id: 'vser1', max_ports: 4 });
    expect(await desc({ driver: 'virtserialport', bus: 'vser0.0', nr: 0 })).toBe(
      'virtio-serial-bus: A port already exists at id 0',
    );
    expect(await desc({ driver: 'virtserialport', bus: 'vser1.0', nr: 0 })).toBe(
      'Port number 0 on virtio-serial devices reserved for virtconsole devices for backward compatibility.',
    );
    expect(await desc({ driver: 'virtserialport', bus: 'vser1.0', nr: 4 })).toBe(
      'virtio-serial-bus: Out-of-range port id specified, max. allowed: 3',
    );
    expect(await desc({ driver: 'virtserialport', id: 'port1' })).toBe(
      "Duplicate device ID 'port1'",
    );
    expect(await desc({ driver: 'virtserialport', id: '1bad' })).toBe(
      "Parameter 'id' expects an identifier",
    );
    expect(await desc({ driver: 'virtserialport', bus: 'nope.0' })).toBe("Bus 'nope.0' not found");
    expect(await desc({ driver: 'virtserialport', chardev: 'nope' })).toBe(
      "Property 'virtserialport.chardev' can't find value 'nope'",
    );
    expect(await desc({ driver: 'virtserialport', nr: 'x' })).toBe(
      "Parameter 'nr' expects integer",
    );
    expect(await desc({ driver: 'virtserialport', foo: 1 })).toBe(
      "Property 'virtserialport.foo' not found",
    );
    expect(await desc({ driver: 'virtserialprot' })).toBe(
      "'virtserialprot' is not a valid device model name",
    );
    expect(await desc({ id: 'x' })).toBe("Parameter 'driver' is missing");
    // QMP device_add in 7.2 takes numbers as strings too (QemuOpts): "nr": "2" works.
    expect(await desc({ driver: 'virtserialport', bus: 'vser1.0', nr: '2', id: 'ok2' })).toBe(
      'accepted',
    );
  });
});
