/**
 * ApiService on the real engine: the demo lab, hot-plug and its refusals in
 * QEMU's words, a real unix socket client as the host application, import
 * and export, step mode, capture, the terminals' writes, vring snapshots.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PortSnapshot, TopologySnapshot } from '../../core/api/contract/contract.js';
import { isErrno } from '../../core/serial/guest/errno.js';
import { plugOnNewChardev, rig, socketClient, until, type Rig } from './helpers.js';

let r: Rig | null = null;
afterEach(async () => {
  await r?.close();
  r = null;
});

const portByName = (t: TopologySnapshot, name: string): PortSnapshot | undefined =>
  t.ports.find((p) => p.name === name);

describe('the demo lab', () => {
  it('opens alive: the seed-002 case study on unix sockets, with workloads moving bytes', async () => {
    r = await rig({ lab: 'demo' });
    const t = await r.topology();
    expect(t.lab).toBe('demo');
    expect(t.devices.map((d) => [d.name, d.state, d.maxPorts])).toEqual([['vser0', 'running', 31]]);
    expect(t.ports.map((p) => [p.nr, p.kind, p.name, p.guestName])).toEqual([
      [0, 'virtconsole', 'console.0', 'hvc0'],
      [1, 'virtserialport', 'test1', 'vport0p1'],
      [2, 'virtserialport', 'test2', 'vport0p2'],
      [3, 'virtserialport', 'org.qemu.guest_agent.0', 'vport0p3'],
    ]);
    for (const c of t.chardevs) {
      expect(c.kind).toBe('socket');
      expect(c.path).toBe(path.join(t.runtimeDir!, c.id));
      expect(fs.statSync(c.path!).isSocket()).toBe(true);
    }
    // the host programs connect, the guest programs open their ports, bytes flow both ways
    const busy = await until(async () => {
      const now = await r!.topology();
      const ok =
        now.ports.every((p) => p.hostConnected && p.toHost > 0) &&
        ['console.0', 'test1', 'org.qemu.guest_agent.0'].every(
          (n) => portByName(now, n)!.guestOpen,
        ) &&
        portByName(now, 'test2')!.toGuest > 0;
      return ok ? now : undefined;
    }, 15_000);
    expect(portByName(busy, 'test1')!.guestPath).toBe('/dev/virtio-ports/test1');
    expect(portByName(busy, 'test1')!.hostApp).toMatch(/^virtserial-host: commands/);
    expect(portByName(busy, 'org.qemu.guest_agent.0')!.guestApp).toMatch(/qemu-ga/);
    const moving = await until(() => {
      const b = r!.batches.findLast((x) =>
        x.samples.some((s) => s.ports.some((p) => p.toGuest > 0 && p.key === 'vser0:2')),
      );
      return b;
    });
    expect(moving.samples.length).toBeGreaterThan(0);
    // the boot's events reached the screen: the guest made the nodes and opened the ports
    await r.waitEvent((e) => e.kind === 'guest-open' && e.port === 'test1');
    await r.waitEvent((e) => e.kind === 'host-open' && e.port === 'test2');
  });

  it('runs seed 002’s transfers and the guest agent, checked end to end', async () => {
    r = await rig({ lab: 'demo' });
    const t = await until(async () => {
      const now = await r!.topology();
      const test1 = portByName(now, 'test1')!;
      const qga = portByName(now, 'org.qemu.guest_agent.0')!;
      return /[1-9]\d* PASS/.test(test1.hostApp ?? '') && /[1-9]\d* answers/.test(qga.hostApp ?? '')
        ? now
        : undefined;
    }, 15_000);
    expect(portByName(t, 'test1')!.hostApp).not.toMatch(/FAIL/);
    expect(portByName(t, 'test1')!.guestApp).toMatch(/^sha1 service/);
    expect(portByName(t, 'org.qemu.guest_agent.0')!.guestApp).toBe('qemu-ga (running)');
    expect(portByName(t, 'console.0')!.guestApp).toMatch(/^source/);
  });
});

describe('building a lab by hand', () => {
  it('hot-plugs a port with a new unix socket chardev; a socket client flips its host side', async () => {
    r = await rig();
    const port = await plugOnNewChardev(r, {
      name: 'org.fedoraproject.port.0',
      id: 'fp0',
      chardev: 'fp',
    });
    expect(port).toMatchObject({
      nr: 1,
      chardev: 'fp',
      hostConnected: false,
      monitor:
        'device_add virtserialport,bus=vser0.0,id=fp0,nr=1,name=org.fedoraproject.port.0,chardev=fp',
    });
    await r.waitEvent((e) => e.kind === 'port-added' && e.port === 'org.fedoraproject.port.0');
    // it appears in the guest
    const inGuest = await until(
      async () =>
        portByName(await r!.topology(), 'org.fedoraproject.port.0')?.guestPath ?? undefined,
    );
    expect(inGuest).toBe('/dev/virtio-ports/org.fedoraproject.port.0');
    const chardev = (await r.topology()).chardevs.find((c) => c.id === 'fp')!;
    expect(chardev.filename).toBe(`disconnected:unix:${chardev.path},server=on`);

    // a real host application connects
    const client = await socketClient(chardev.path!);
    const opened = await r.waitEvent(
      (e) => e.kind === 'host-open' && e.port === 'org.fedoraproject.port.0',
    );
    expect(opened.text).toBe('org.fedoraproject.port.0: host connected');
    const t = await r.topology();
    expect(portByName(t, 'org.fedoraproject.port.0')).toMatchObject({
      hostConnected: true,
      hostApp: 'socket client',
    });
    expect(t.chardevs.find((c) => c.id === 'fp')!.filename).toBe(`unix:${chardev.path},server=on`);

    // bytes both ways through the guest's file
    const guest = r.service.session.lab.guest.files;
    const fd = await guest.open('/dev/virtio-ports/org.fedoraproject.port.0');
    if (isErrno(fd)) throw new Error(fd.toString());
    client.socket.write('hello guest\n');
    const got = await guest.read(fd, 100);
    expect(new TextDecoder().decode(got as Uint8Array)).toBe('hello guest\n');
    await guest.write(fd, 'hello host\n');
    await until(() => client.received().toString() === 'hello host\n' || undefined);
    const sampled = await until(() =>
      r!.batches
        .flatMap((b) => b.samples)
        .find((s) => s.ports.some((p) => p.key === 'vser0:1' && p.toHost > 0)),
    );
    expect(sampled).toBeDefined();

    // the host application leaves
    client.close();
    await r.waitEvent((e) => e.kind === 'host-close' && e.port === 'org.fedoraproject.port.0');
    await guest.close(fd);

    // hot-unplug: gone from the lab and from the guest
    await r.must({ cmd: 'unplugPort', port: { device: 'vser0', nr: 1 } });
    await r.waitEvent((e) => e.kind === 'port-removed' && e.port === 'org.fedoraproject.port.0');
    await r.waitEvent(
      (e) => e.kind === 'device-deleted' && e.text.includes('/machine/peripheral/fp0'),
    );
    await until(
      () =>
        !r!.service.session.lab.guest.namespace.exists(
          '/dev/virtio-ports/org.fedoraproject.port.0',
        ),
    );
    expect((await r.topology()).ports).toEqual([]);
  });

  it('refuses what QEMU 7.2 refuses, in its words', async () => {
    r = await rig();
    await r.must({ cmd: 'createDevice', device: { id: 'vser0', maxPorts: 4 } });
    await r.must({ cmd: 'createChardev', chardev: { id: 'c1', backend: { kind: 'unix' } } });
    await r.must({
      cmd: 'hotplugPort',
      port: { driver: 'virtserialport', id: 'p1', name: 'org.test.p1', chardev: 'c1' },
    });
    const refusals: [object, string][] = [
      [
        { driver: 'virtserialport', nr: 0 },
        'Port number 0 on virtio-serial devices reserved for virtconsole devices for backward compatibility.',
      ],
      [{ driver: 'virtserialport', nr: 1 }, 'virtio-serial-bus: A port already exists at id 1'],
      [
        { driver: 'virtserialport', name: 'org.test.p1' },
        'virtio-serial-bus: A port already exists by name org.test.p1',
      ],
      [
        { driver: 'virtserialport', nr: 4 },
        'virtio-serial-bus: Out-of-range port id specified, max. allowed: 3',
      ],
      [{ driver: 'virtserialport', id: 'p1' }, "Duplicate device ID 'p1'"],
      [
        { driver: 'virtserialport', chardev: 'c1' },
        "Property 'virtserialport.chardev' can't take value 'c1': Device 'c1' is in use",
      ],
      [
        { driver: 'virtserialport', chardev: 'nope' },
        "Property 'virtserialport.chardev' can't find value 'nope'",
      ],
      [{ driver: 'virtserialport', device: 'vser9' }, "Bus 'vser9' not found"],
    ];
    for (const [port, message] of refusals) {
      expect(await r.run({ cmd: 'hotplugPort', port } as never)).toEqual({
        ok: false,
        error: { kind: 'Refused', message },
      });
    }
    expect(await r.run({ cmd: 'removeChardev', id: 'c1' })).toEqual({
      ok: false,
      error: { kind: 'Refused', message: "Chardev 'c1' is busy" },
    });
    expect(await r.run({ cmd: 'createDevice', device: { maxPorts: 512 } })).toEqual({
      ok: false,
      error: { kind: 'Refused', message: 'maximum ports supported: 511' },
    });
    expect(await r.run({ cmd: 'createDevice', device: { id: 'vser0' } })).toEqual({
      ok: false,
      error: { kind: 'Refused', message: "Duplicate device ID 'vser0'" },
    });
    // a refused port with a new chardev leaves no chardev behind
    const bad = await r.run({
      cmd: 'hotplugPort',
      port: {
        driver: 'virtserialport',
        nr: 1,
        newChardev: { id: 'c2', backend: { kind: 'unix' } },
      },
    });
    expect(bad.ok).toBe(false);
    expect((await r.topology()).chardevs.map((c) => c.id)).toEqual(['c1']);
    // a socket path that is taken
    const taken = (await r.topology()).chardevs[0]!.path!;
    const again = await r.run({
      cmd: 'createChardev',
      chardev: { id: 'c3', backend: { kind: 'unix', path: taken } },
    });
    expect(again).toEqual({
      ok: false,
      error: { kind: 'Refused', message: `socket ${taken} is in use` },
    });
    // malformed input never reaches the engine
    expect(await r.service.execute({ cmd: 'unplugPort', port: { device: 'vser0' } })).toMatchObject(
      {
        ok: false,
        error: {
          kind: 'InvalidRequest',
          message: 'port.nr: missing (expected number)',
        },
      },
    );
    expect(await r.run({ cmd: 'unplugPort', port: { device: 'vser0', nr: 3 } })).toEqual({
      ok: false,
      error: { kind: 'NotFound', message: 'vser0 has no port 3' },
    });
  });

  it('moves a port to another chardev (device_del + device_add) and keeps it on refusal', async () => {
    r = await rig();
    await r.must({ cmd: 'createDevice', device: { id: 'vser0' } });
    await r.must({ cmd: 'createChardev', chardev: { id: 'a', backend: { kind: 'unix' } } });
    await r.must({ cmd: 'createChardev', chardev: { id: 'b', backend: { kind: 'unix' } } });
    await r.must({
      cmd: 'hotplugPort',
      port: { driver: 'virtserialport', id: 'p', name: 'p', chardev: 'a' },
    });
    await r.must({
      cmd: 'hotplugPort',
      port: { driver: 'virtserialport', id: 'q', name: 'q', chardev: 'b' },
    });
    const moved = await r.must<PortSnapshot>({
      cmd: 'connectHost',
      port: { device: 'vser0', nr: 1 },
      newChardev: { id: 'c', backend: { kind: 'null' } },
    });
    expect(moved).toMatchObject({ nr: 1, id: 'p', name: 'p', chardev: 'c' });
    const refused = await r.run({
      cmd: 'connectHost',
      port: { device: 'vser0', nr: 1 },
      chardev: 'b',
    });
    expect(refused).toEqual({
      ok: false,
      error: {
        kind: 'Refused',
        message: "Property 'virtserialport.chardev' can't take value 'b': Device 'b' is in use",
      },
    });
    expect(portByName(await r.topology(), 'p')!.chardev).toBe('c');
    await r.must({ cmd: 'connectHost', port: { device: 'vser0', nr: 1 }, chardev: 'a' });
    expect(portByName(await r.topology(), 'p')!.chardev).toBe('a');
  });
});

describe('configuration', () => {
  const CMDLINE =
    'qemu-system-x86_64 -m 1G -chardev socket,path=/tmp/vmchan-import-test/test1,server=on,wait=off,id=test1 ' +
    '-chardev ringbuf,id=rb,size=4096 -device virtio-serial-pci,id=vser0,max_ports=8 ' +
    '-device virtserialport,chardev=test1,name=test1,id=t1 -device virtconsole,chardev=rb,name=console.0';

  it('imports a QEMU command line and exports it again, both ways', async () => {
    r = await rig();
    const imported = await r.must<{
      topology: TopologySnapshot;
      notes: { kind: string; message: string }[];
    }>({ cmd: 'importConfig', format: 'qemu', text: CMDLINE });
    expect(imported.topology.lab).toBe('imported');
    expect(imported.topology.ports.map((p) => [p.nr, p.kind, p.name])).toEqual([
      [1, 'virtserialport', 'test1'],
      [0, 'virtconsole', 'console.0'],
    ]);
    expect(imported.topology.chardevs.find((c) => c.id === 'rb')).toMatchObject({
      kind: 'ringbuf',
      connected: true,
    });
    const exported = await r.must<{ text: string }>({ cmd: 'exportConfig', format: 'qemu' });
    expect(exported.text).toBe(
      'qemu-system-x86_64 -m 1G -chardev socket,id=test1,path=/tmp/vmchan-import-test/test1,server=on,wait=off ' +
        '-chardev ringbuf,id=rb,size=4096 -device virtio-serial-pci,id=vser0,max_ports=8 ' +
        '-device virtserialport,bus=vser0.0,id=t1,nr=1,name=test1,chardev=test1 -device virtconsole,bus=vser0.0,nr=0,name=console.0,chardev=rb',
    );
    const xml = await r.must<{ text: string; notes: { message: string }[] }>({
      cmd: 'exportConfig',
      format: 'libvirt',
    });
    expect(xml.text).toContain('<controller type="virtio-serial" index="0" ports="8">');
    expect(xml.text).toContain('<target type="virtio" name="test1"/>');
    expect(xml.notes.some((n) => /ringbuf/.test(n.message))).toBe(true);
    fs.rmSync('/tmp/vmchan-import-test', { recursive: true, force: true });
  });

  it('imports libvirt XML', async () => {
    r = await rig();
    const xml = `<devices>
      <controller type='virtio-serial' index='0' ports='16'/>
      <channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    </devices>`;
    const imported = await r.must<{
      topology: TopologySnapshot;
      notes: { kind: string; message: string }[];
    }>({ cmd: 'importConfig', format: 'libvirt', text: xml });
    expect(imported.topology.devices.map((d) => [d.name, d.maxPorts])).toEqual([
      ['virtio-serial0', 16],
    ]);
    expect(imported.topology.ports.map((p) => p.name)).toEqual(['org.qemu.guest_agent.0']);
    // libvirt's default path is taken or absent here: the socket is served in the lab's runtime directory
    const c = imported.topology.chardevs[0]!;
    expect(c.path).not.toBeNull();
    expect(fs.statSync(c.path!).isSocket()).toBe(true);
  });

  it('refuses a configuration QEMU refuses and keeps the running lab', async () => {
    r = await rig({ lab: 'demo' });
    const parse = await r.run({
      cmd: 'importConfig',
      format: 'qemu',
      text: '-chardev socket,id=x,server=maybe,path=/tmp/x',
    });
    expect(parse).toMatchObject({ ok: false, error: { kind: 'ParseError' } });
    if (!parse.ok)
      expect(parse.error.message).toMatch(
        /^-chardev socket,id=x,server=maybe,path=\/tmp\/x: Parameter 'server' expects 'on' or 'off'/,
      );
    const refused = await r.run({
      cmd: 'importConfig',
      format: 'qemu',
      text: '-device virtio-serial,id=v -device virtserialport,nr=0',
    });
    expect(refused).toEqual({
      ok: false,
      error: {
        kind: 'Refused',
        message:
          '-device virtserialport,bus=v.0,nr=0: Port number 0 on virtio-serial devices reserved for virtconsole devices for backward compatibility.',
      },
    });
    const t = await r.topology();
    expect(t.lab).toBe('demo');
    expect(t.ports).toHaveLength(4);
  });
});

describe('engine control, capture, terminals, vrings', () => {
  it('pauses, steps one task at a time and runs again', async () => {
    const lab = (r = await rig({ lab: 'demo' }));
    expect(await r.must({ cmd: 'pause' })).toMatchObject({ mode: 'paused' });
    // Socket traffic piles up as tasks while paused.
    await until(async () => (await lab.topology()).engine.pending > 0 || undefined);
    const step = await r.must<{ ran: string[]; engine: { mode: string; pending: number } }>({
      cmd: 'step',
      count: 3,
    });
    expect(step.ran.length).toBeGreaterThan(0);
    expect(step.ran[0]).toMatch(/^#\d+ (guest|device|backend): /);
    expect(step.engine.mode).toBe('paused');
    expect(await r.must({ cmd: 'run' })).toMatchObject({ mode: 'running' });
  });

  it('captures to pcapng and opens the capture', async () => {
    r = await rig({ lab: 'demo' });
    const started = await r.must<{ on: boolean; path: string }>({ cmd: 'startCapture' });
    expect(started.on).toBe(true);
    await until(async () => ((await r!.topology()).capture.records > 50 ? true : undefined));
    const stopped = await r.must<{ on: boolean; last: string }>({ cmd: 'stopCapture' });
    expect(stopped).toMatchObject({ on: false, last: started.path });
    const opened = await r.must<{ records: number }>({ cmd: 'openCapture', path: started.path });
    expect(opened.records).toBeGreaterThan(50);
    const window = await r.must<{
      rows: { kind: string; direction: string | null; port: string | null }[];
    }>({ cmd: 'getCaptureRows', from: 0, count: 1000 });
    const data = window.rows.filter((x) => x.kind === 'data');
    expect(data.some((x) => x.direction === 'host-to-guest')).toBe(true);
    expect(data.some((x) => x.direction === 'guest-to-host')).toBe(true);
    const copy = path.join(r.service.runtimeDir, 'copy.pcapng');
    expect(await r.must({ cmd: 'saveCapture', path: copy })).toMatchObject({ path: copy });
    expect(fs.statSync(copy).size).toBeGreaterThan(1000);
  });

  it('writes from the host side and from the guest side (the terminals)', async () => {
    r = await rig();
    const port = await plugOnNewChardev(r, { name: 'term', chardev: 't' });
    const ref = { device: 'vser0', nr: port.nr };
    await until(async () => (await r!.topology()).ports[0]!.guestName ?? undefined);
    // the guest-side terminal opens the port; with no host there a write would block (L5)
    const early = await r.run({ cmd: 'writeGuest', port: ref, data: 'x' });
    expect(early).toMatchObject({ ok: false, error: { kind: 'Refused' } });
    if (!early.ok) expect(early.error.message).toMatch(/EAGAIN\): the host side is not connected/);
    await until(async () => (await r!.topology()).ports[0]!.guestOpen || undefined);
    // nobody on the host side: the app's terminal connects to the socket, as socat would
    expect(await r.must({ cmd: 'writeHost', port: ref, data: 'x' })).toEqual({ written: 1 });
    await until(async () => (await r!.topology()).ports[0]!.hostConnected || undefined);
    expect((await r.topology()).ports[0]!.hostApp).toBe('vmchan terminal (socket client)');
    // it hangs up on request; then a real client takes the socket
    await r.must({ cmd: 'disconnectHost', port: ref });
    await until(async () => !(await r!.topology()).ports[0]!.hostConnected || undefined);
    const client = await socketClient((await r.topology()).chardevs[0]!.path!);
    await until(async () => (await r!.topology()).ports[0]!.hostConnected || undefined);
    expect(await r.run({ cmd: 'writeHost', port: ref, data: 'x' })).toEqual({
      ok: false,
      error: {
        kind: 'Refused',
        message: "chardev 't' has a host application already (QEMU takes one client at a time)",
      },
    });
    // an outside client is hung up too (core/chardev hangUp); the socket keeps listening
    await r.must({ cmd: 'disconnectHost', port: ref });
    await until(() => client.socket.destroyed || client.socket.readableEnded || undefined);
    await until(async () => !(await r!.topology()).ports[0]!.hostConnected || undefined);
    const again = await socketClient((await r.topology()).chardevs[0]!.path!);
    await until(async () => (await r!.topology()).ports[0]!.hostConnected || undefined);
    expect(await r.must({ cmd: 'writeGuest', port: ref, data: 'from the guest\n' })).toEqual({
      written: 15,
    });
    await until(() => again.received().toString() === 'from the guest\n' || undefined);
    again.close();
    client.close();
  });

  it('shows a vring: the receive queue of a port', async () => {
    r = await rig({ lab: 'demo' });
    const v = await r.must<{
      role: string;
      format: string;
      size: number;
      snapshot: { descriptors: unknown[] };
    }>({ cmd: 'getVring', device: 'vser0', queue: 4 });
    expect(v).toMatchObject({ role: 'rx port 1', format: 'split', size: 128 });
    expect(v.snapshot.descriptors).toHaveLength(128);
    expect(await r.run({ cmd: 'getVring', device: 'vser0', queue: 100 })).toMatchObject({
      ok: false,
      error: { kind: 'NotFound' },
    });
  });
});
