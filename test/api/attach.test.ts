/**
 * The app's API over an attached QEMU (core/api/server/attach-session.ts), against
 * the fake QMP server with QEMU 7.2's recorded shapes: attach and detach,
 * topology snapshots with what QEMU cannot tell marked unknown, events with
 * their source (VSERPORT_CHANGE, polling, DEVICE_DELETED), hot-plug and
 * unplug, the vring poller's state, the lab-only commands refused, and the
 * one-line message for a QMP socket another client holds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type {
  ChardevSnapshot,
  PortSnapshot,
  TopologySnapshot,
  VringSnapshot,
} from '../../core/api/contract/contract.js';
import { FakeQmpServer } from '../qemu/fake-qmp-server.js';
import { startFakeQemu, type FakeQemu } from './attach-fake.js';
import { rig, type Rig } from './helpers.js';

let r: Rig | undefined;
let fake: FakeQemu | undefined;
let other: FakeQmpServer | undefined;
afterEach(async () => {
  await r?.close();
  await fake?.server.close();
  await other?.close();
  r = fake = other = undefined;
});

async function attached(
  pollIntervalMs = 0,
): Promise<{ r: Rig; fake: FakeQemu; t: TopologySnapshot }> {
  fake = await startFakeQemu();
  r = await rig({ attach: { pollIntervalMs, greetingTimeoutMs: 500, unplugTimeoutMs: 2000 } });
  const t = await r.must<TopologySnapshot>({ cmd: 'attach', address: fake.server.address });
  return { r, fake, t };
}

describe('the API over an attached QEMU (fake QMP, recorded shapes)', () => {
  it('serves the topology of the real QEMU; what it cannot tell is unknown, not invented', async () => {
    const { r, fake, t } = await attached();
    expect(t.attached).toMatchObject({
      qmp: fake.server.address,
      qemu: expect.stringMatching(/^QEMU 7\.2\.22/),
    });
    expect(t.attached!.notes.join(' ')).toMatch(/one per second per port/);
    expect(t.attached!.notes.join(' ')).toMatch(/without an id/);
    expect(t.engine.mode).toBe('running');
    expect(t.devices).toEqual([
      expect.objectContaining({
        name: 'vser0',
        bus: 'vser0.0',
        maxPorts: 8,
        queues: 18,
        multiport: true,
      }),
    ]);
    expect(t.devices[0]!.unknown).toContain('guestIndex');
    expect(
      t.ports.map((p) => [
        p.key,
        p.nr,
        p.id,
        p.name,
        p.kind,
        p.chardev,
        p.guestOpen,
        p.hostConnected,
      ]),
    ).toEqual([
      ['vser0:0', 0, 'con0', 'org.test.console.0', 'virtconsole', 'c0', true, false],
      ['vser0:1', 1, 'port1', 'org.test.port.1', 'virtserialport', 'c1', false, false],
      ['vser0:2', 2, null, 'anon.port', 'virtserialport', 'c2', false, false],
    ]);
    const p1 = t.ports[1]!;
    expect(p1.unknown).toEqual(
      expect.arrayContaining(['guestName', 'throttled', 'toGuest', 'toHost', 'dropped']),
    );
    expect(p1.unknown).not.toContain('guestOpen');
    expect(p1.guestName).toBeNull();
    expect(p1.monitor).toBe(
      'device_add virtserialport,bus=vser0.0,id=port1,nr=1,name=org.test.port.1,chardev=c1',
    );
    expect(t.chardevs.find((c) => c.id === 'c1')).toMatchObject({
      filename: 'disconnected:unix:/tmp/guest/p1,server=on',
      path: '/tmp/guest/p1',
      connected: false,
      usedBy: { device: 'vser0', nr: 1 },
    });
    // the screens get it too, and the note on VSERPORT_CHANGE's limits
    await r.waitEvent((e) => e.kind === 'note' && /rate-limited/.test(e.text));
    await expect.poll(() => r.batches.at(-1)?.engine.mode).toBe('running');
  });

  it('VSERPORT_CHANGE becomes a guest-open event marked event; polling fills in a port without an id, marked poll', async () => {
    const { r, fake } = await attached(100);
    fake.server.sendEvent('VSERPORT_CHANGE', { open: true, id: 'port1' });
    const e = await r.waitEvent((x) => x.kind === 'guest-open' && x.nr === 1);
    expect(e).toMatchObject({
      source: 'event',
      device: 'vser0',
      port: 'org.test.port.1',
      late: false,
    });
    expect(e.text).toContain('[VSERPORT_CHANGE]');
    expect((await r.topology()).ports[1]!.guestOpen).toBe(true);
    // no event for a port without an id: polling query-chardev sees it
    fake.chardevs.get('c2')!.open = true;
    const polled = await r.waitEvent((x) => x.kind === 'guest-open' && x.nr === 2);
    expect(polled.source).toBe('poll');
    // the host side has no event at all
    fake.chardevs.get('c1')!.filename = 'unix:/tmp/guest/p1,server=on';
    const host = await r.waitEvent((x) => x.kind === 'host-open' && x.nr === 1);
    expect(host.source).toBe('poll');
    expect((await r.topology()).ports[1]!.hostConnected).toBe(true);
  });

  it('an event carries the time QEMU stamped it; one older than events already shown is marked late', async () => {
    const { r, fake } = await attached();
    const now = Date.now();
    fake.server.sendEvent(
      'VSERPORT_CHANGE',
      { open: true, id: 'port1' },
      Math.floor(now / 1000),
      0,
    );
    const first = await r.waitEvent((x) => x.kind === 'guest-open' && x.nr === 1);
    expect(first.time).toBe(Math.floor(now / 1000) * 1000);
    // QEMU rate-limits VSERPORT_CHANGE: the close comes later, stamped 5 s before the open
    fake.server.sendEvent(
      'VSERPORT_CHANGE',
      { open: false, id: 'port1' },
      Math.floor(now / 1000) - 5,
      250_000,
    );
    const late = await r.waitEvent((x) => x.kind === 'guest-close' && x.nr === 1);
    expect(late.time).toBe((Math.floor(now / 1000) - 5) * 1000 + 250);
    expect(late.late).toBe(true);
    expect(late.seq).toBeGreaterThan(first.seq);
  });

  it('hot-plugs a port with a new chardev (chardev-add + device_add) and unplugs it (device_del, DEVICE_DELETED)', async () => {
    const { r, fake } = await attached();
    const port = await r.must<PortSnapshot>({
      cmd: 'hotplugPort',
      port: {
        driver: 'virtserialport',
        device: 'vser0',
        id: 'app1',
        name: 'org.vmchan.app.1',
        newChardev: { id: 'chapp1', backend: { kind: 'unix' } },
      },
    });
    expect(port).toMatchObject({
      key: 'vser0:3',
      nr: 3,
      id: 'app1',
      name: 'org.vmchan.app.1',
      chardev: 'chapp1',
    });
    const add = fake.server.commands('chardev-add')[0]!.arguments!;
    expect(add['id']).toBe('chapp1');
    // a fresh socket in the attach mode's runtime directory, never wait=on (QEMU would stall)
    expect(JSON.stringify(add['backend'])).toMatch(/chapp1\.sock.*"server":true,"wait":false/);
    expect(fake.server.commands('device_add')[0]!.arguments).toMatchObject({
      driver: 'virtserialport',
      bus: 'vser0.0',
      id: 'app1',
      chardev: 'chapp1',
      name: 'org.vmchan.app.1',
    });
    const added = await r.waitEvent((e) => e.kind === 'port-added' && e.nr === 3);
    expect(added.source).toBe('command');
    expect((await r.topology()).ports.map((p) => p.nr)).toEqual([0, 1, 2, 3]);

    // QEMU's own words for a refusal
    const dup = await r.run({
      cmd: 'hotplugPort',
      port: { driver: 'virtserialport', device: 'vser0', nr: 1, chardev: 'chapp1' },
    });
    expect(dup).toEqual({
      ok: false,
      error: { kind: 'Refused', message: 'virtio-serial-bus: A port already exists at id 1' },
    });

    await r.must({ cmd: 'unplugPort', port: { device: 'vser0', nr: 3 } });
    expect(fake.server.commands('device_del')[0]!.arguments).toEqual({ id: 'app1' });
    const deleted = await r.waitEvent((e) => e.kind === 'device-deleted');
    expect(deleted.source).toBe('event');
    expect((await r.topology()).ports.map((p) => p.nr)).toEqual([0, 1, 2]);
    // the chardev stays, free; then it goes
    const c = (await r.topology()).chardevs.find((x) => x.id === 'chapp1') as ChardevSnapshot;
    expect(c.usedBy).toBeNull();
    await r.must({ cmd: 'removeChardev', id: 'chapp1' });
    expect((await r.topology()).chardevs.some((x) => x.id === 'chapp1')).toBe(false);
  });

  it('unplug waits for DEVICE_DELETED and says so when the guest does not let go', async () => {
    const { r, fake } = await attached();
    fake.holdDeletes = true;
    const res = await r.run({ cmd: 'unplugPort', port: { device: 'vser0', nr: 1 } });
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.error.message).toMatch(/no DEVICE_DELETED within 2000 ms/);
    expect((await r.topology()).ports.some((p) => p.nr === 1)).toBe(true);
  });

  it('getVring answers the vring poller’s state, with what QEMU cannot show listed as unavailable', async () => {
    const { r } = await attached();
    const v = await r.must<VringSnapshot>({ cmd: 'getVring', device: 'vser0', queue: 4 });
    expect(v).toMatchObject({ device: 'vser0', queue: 4, role: 'rx port 1', format: 'split' });
    expect(v.size).toBeGreaterThan(0);
    expect(v.unavailable!.join('\n')).toMatch(/used\.ring: QEMU does not show used elements/);
    expect(v.qemu).toHaveProperty('inuse');
    expect((v.snapshot['driver'] as unknown) ?? null).toBeNull();
    const missing = await r.run({ cmd: 'getVring', device: 'vser9', queue: 0 });
    expect(missing.ok).toBe(false);
  });

  it('refuses what only the emulated lab has, with the reason', async () => {
    const { r } = await attached();
    for (const cmd of [
      { cmd: 'step' },
      { cmd: 'pause' },
      { cmd: 'writeGuest', port: { device: 'vser0', nr: 1 }, data: 'x' },
      { cmd: 'writeHost', port: { device: 'vser0', nr: 1 }, data: 'x' },
      { cmd: 'createDevice', device: {} },
    ] as const) {
      const res = await r.run(cmd);
      expect(res.ok, cmd.cmd).toBe(false);
      if (!res.ok) expect(res.error.kind).toBe('Unsupported');
    }
    const step = await r.run({ cmd: 'step' });
    if (!step.ok) expect(step.error.message).toMatch(/step mode needs the emulated lab/);
  });

  it('detach returns to the lab, which was paused and waited', async () => {
    const { r, fake } = await attached();
    const back = await r.must<TopologySnapshot>({ cmd: 'detach' });
    expect(back.attached ?? null).toBeNull();
    expect(back.lab).toBe('empty');
    expect(back.engine.mode).toBe('running');
    // the QMP socket is free again: QEMU serves the next client
    const again = await r.must<TopologySnapshot>({ cmd: 'attach', address: fake.server.address });
    expect(again.ports).toHaveLength(3);
    // loading a lab detaches too
    const lab = await r.must<TopologySnapshot>({ cmd: 'loadLab', lab: 'empty' });
    expect(lab.attached ?? null).toBeNull();
    expect((await r.run({ cmd: 'detach' })).ok).toBe(false);
  });

  it('a taken QMP socket is one line, and the lab stays as it was', async () => {
    other = await FakeQmpServer.start({ mode: 'silent' });
    r = await rig({ attach: { greetingTimeoutMs: 300 } });
    const res = await r.run({ cmd: 'attach', address: other.address });
    expect(res).toEqual({
      ok: false,
      error: {
        kind: 'Refused',
        message: `the QMP socket ${other.address} is taken by another client (QEMU serves one at a time)`,
      },
    });
    const nowhere = await r.run({ cmd: 'attach', address: '/nonexistent/qmp.sock' });
    expect(nowhere.ok).toBe(false);
    if (!nowhere.ok) expect(nowhere.error.message).not.toContain('\n');
    expect((await r.topology()).attached ?? null).toBeNull();
  });
});
