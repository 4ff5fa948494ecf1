/**
 * AttachedMachine and the vring view against a stand-in QMP server that
 * answers with the shapes recorded from QEMU 7.2 (shared/design/qemu-7.2-samples):
 * discovery, the merge of VSERPORT_CHANGE with query-chardev polling (and
 * its limits: rate-limited events, ports without an id), DEVICE_DELETED,
 * and the conversion of x-query-virtio-queue-* into the vring view's shape.
 * The same behaviour on a real QEMU is in attach-real.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runAttach } from '../../cli/attach.js';
import { AttachedMachine } from '../../core/qemu/attach.js';
import { isAttachFailure } from '../../core/qemu/attach-error.js';
import { socketSpecOf, type AttachEvent } from '../../core/qemu/attach-model.js';
import { isQmpError } from '../../core/qemu/qmp-error.js';
import type { VirtioQueueElement } from '../../core/qemu/qmp-types.js';
import { elementView, queueSnapshotFromQemu } from '../../core/qemu/vring.js';
import { fakeQemuModel, sampleQueues } from '../api/attach-fake.js';
import { FakeQmpServer, type Handler } from './fake-qmp-server.js';
import { until as waitUntil } from '../until.js';

let server: FakeQmpServer | undefined;
let machine: AttachedMachine | undefined;
afterEach(async () => {
  await machine?.close();
  await server?.close();
  machine = undefined;
  server = undefined;
});

async function attach(handlers: Record<string, Handler>) {
  server = await FakeQmpServer.start({ handlers });
  const m = await AttachedMachine.connect(server.address, { pollIntervalMs: 0 });
  if (isQmpError(m)) throw new Error(m.toString());
  machine = m;
  const events: AttachEvent[] = [];
  m.onEvent((e) => events.push(e));
  return { m, events, server };
}

const until = (what: string, check: () => boolean): Promise<void> =>
  waitUntil(check, what, 3_000).then(() => undefined);

describe('AttachedMachine over a stand-in QEMU 7.2', () => {
  it('reads devices, ports (with and without id) and chardevs', async () => {
    const { m } = await attach(fakeQemuModel().handlers);
    const t = m.topology();
    expect(t.qemu.version).toBe('7.2.22');
    expect(t.devices).toEqual([
      expect.objectContaining({
        name: 'vser0',
        id: 'vser0',
        bus: 'vser0.0',
        maxPorts: 8,
        queues: 18,
        multiport: true,
        eventIdx: true,
        packed: false,
      }),
    ]);
    expect(t.devices[0]!.status).toContain('VIRTIO_CONFIG_S_DRIVER_OK');
    expect(
      t.ports.map((p) => [p.key, p.id, p.name, p.kind, p.chardev, p.guestOpen, p.hostConnected]),
    ).toEqual([
      ['vser0:0', 'con0', 'org.test.console.0', 'virtconsole', 'c0', true, false],
      ['vser0:1', 'port1', 'org.test.port.1', 'virtserialport', 'c1', false, false],
      ['vser0:2', null, 'anon.port', 'virtserialport', 'c2', false, false],
    ]);
    expect(t.ports[1]!.queues).toEqual({ rx: 4, tx: 5 });
    const c1 = t.chardevs.find((c) => c.id === 'c1')!;
    expect(c1).toMatchObject({
      kind: 'unix',
      path: '/tmp/guest/p1',
      connected: false,
      usedBy: { device: 'vser0', nr: 1 },
    });
    expect(m.port('org.test.port.1')?.key).toBe('vser0:1');
    expect(m.port('c2')?.name).toBe('anon.port');
    // Plain data: a copy that survives JSON.
    expect(JSON.parse(JSON.stringify(t))).toEqual(t);
  });

  it('VSERPORT_CHANGE is reported as an event; polling does not report it again', async () => {
    const q = fakeQemuModel();
    const { m, events, server } = await attach(q.handlers);
    server.sendEvent('VSERPORT_CHANGE', { open: true, id: 'port1' }, 1795254502, 268927);
    await until('the event', () => events.length > 0);
    expect(events[0]).toMatchObject({
      kind: 'guest-open',
      source: 'event',
      qmpEvent: 'VSERPORT_CHANGE',
      device: 'vser0',
      nr: 1,
      id: 'port1',
      late: false,
    });
    expect(events[0]!.text).toBe(
      'org.test.port.1 (port1): guest opened the port [VSERPORT_CHANGE]',
    );
    expect(events[0]!.time).toBe(1795254502268.927);
    expect(m.port('port1')?.guestOpen).toBe(true);
    q.chardevs.get('c1')!.open = true;
    await m.pollNow();
    expect(events).toHaveLength(1);
  });

  it('a close the rate limiter held back: polling shows it first, the event comes late', async () => {
    const q = fakeQemuModel();
    const { m, events, server } = await attach(q.handlers);
    server.sendEvent('VSERPORT_CHANGE', { open: true, id: 'port1' });
    await until('open', () => events.length === 1);
    q.chardevs.get('c1')!.open = false;
    await m.pollNow();
    expect(events[1]).toMatchObject({
      kind: 'guest-close',
      source: 'poll',
      id: 'port1',
      late: false,
    });
    expect(events[1]!.text).toBe(
      'org.test.port.1 (port1): guest closed the port (seen by polling query-chardev)',
    );
    server.sendEvent('VSERPORT_CHANGE', { open: false, id: 'port1' }, 1795254503, 0);
    await until('late close', () => events.length === 3);
    expect(events[2]).toMatchObject({ kind: 'guest-close', source: 'event', late: true });
    expect(events[2]!.text).toContain('late: polling showed it first');
  });

  it('ports without an id and the host side are known from polling only', async () => {
    const q = fakeQemuModel();
    const { m, events } = await attach(q.handlers);
    q.chardevs.get('c2')!.open = true;
    q.chardevs.get('c1')!.filename = 'unix:/tmp/guest/p1,server=on';
    await m.pollNow();
    expect(events.map((e) => [e.kind, e.source, e.port, e.id])).toEqual([
      ['host-open', 'poll', 'org.test.port.1', 'port1'],
      ['guest-open', 'poll', 'anon.port', null],
    ]);
    expect(m.port('port1')?.hostConnected).toBe(true);
    expect(m.chardev('c1')?.connected).toBe(true);
  });

  it('DEVICE_DELETED removes the port; a new chardev makes it read the topology again', async () => {
    const q = fakeQemuModel();
    const { m, events, server } = await attach(q.handlers);
    server.sendEvent('DEVICE_DELETED', { device: 'port1', path: '/machine/peripheral/port1' });
    await until('deleted', () => events.length >= 2);
    expect(events.map((e) => [e.kind, e.source, e.id])).toEqual([
      ['device-deleted', 'event', 'port1'],
      ['port-removed', 'event', 'port1'],
    ]);
    expect(m.port('port1')).toBeUndefined();
    // Another monitor hot-plugs a port: a new chardev shows up in query-chardev.
    q.ports.splice(1, 1);
    q.ports.push({
      path: '/machine/peripheral/hp',
      type: 'virtserialport',
      nr: 3,
      name: 'org.test.hp',
      chardev: 'c3',
    });
    q.chardevs.set('c3', { filename: 'disconnected:unix:/tmp/guest/hp,server=on', open: false });
    await m.pollNow();
    expect(events.at(-1)).toMatchObject({ kind: 'port-added', source: 'poll', id: 'hp', nr: 3 });
    expect(m.port('hp')?.key).toBe('vser0:3');
  });

  it('a device that does not exist or is ambiguous is a named error', async () => {
    const { m } = await attach(fakeQemuModel().handlers);
    const e = m.device('vser9');
    expect(isAttachFailure(e) && e.toString()).toBe(
      "NotFound: no virtio-serial device 'vser9' (have: vser0)",
    );
    const p = await m.removePort('nope');
    expect(isAttachFailure(p) && p.kind).toBe('NotFound');
  });
});

describe('vmchan attach over a stand-in QEMU 7.2', () => {
  it('prints events while watching and stops with an error when QEMU goes away', async () => {
    const q = fakeQemuModel();
    server = await FakeQmpServer.start({ handlers: q.handlers });
    let out = '';
    const io = { out: (t: string) => void (out += t), err: (t: string) => void (out += t) };
    const run = runAttach(
      { qmp: server.address, watch: true, poll: '0' },
      io,
      new Promise(() => {}),
    );
    run.catch(() => {});
    await until('watching', () => out.includes('Ctrl-C stops'));
    server.sendEvent('VSERPORT_CHANGE', { open: true, id: 'port1' });
    await until('event line', () => out.includes('guest-open'));
    expect(out).toMatch(
      /\d\d:\d\d:\d\d\.\d{3} {2}\[event\] {2}guest-open {5}org\.test\.port\.1 \(port1\): guest opened the port \[VSERPORT_CHANGE\]\n/,
    );
    server.dropClient();
    await expect(run).rejects.toThrow(
      /closed \(QEMU exited or dropped the monitor\); stopped watching$/,
    );
  });
});

describe('the vring view of a real queue', () => {
  it('puts x-query-virtio-queue-status into the SplitQueueSnapshot shape, marking what QEMU cannot show', () => {
    const status = sampleQueues[4]!; // port 1's receive queue, busy in the sample
    const snap = queueSnapshotFromQemu({ device: 'vser0', status, elements: [], eventIdx: true });
    expect(snap).toMatchObject({
      device: 'vser0',
      queue: 4,
      role: 'rx port 1',
      port: 1,
      direction: 'host-to-guest',
      format: 'split',
      size: 128,
    });
    expect(snap.snapshot.layout).toEqual({
      format: 'split',
      size: 128,
      descAddr: 44691456,
      driverAddr: 44693504,
      deviceAddr: 44693824,
    });
    expect(snap.snapshot.device).toEqual({
      lastAvailIdx: 8708,
      usedIdx: 8708,
      signalledUsed: 8708,
      inFlight: [],
    });
    expect(snap.qemu).toMatchObject({
      lastAvailIdx: 8708,
      shadowAvailIdx: 8835,
      usedIdx: 8708,
      inuse: 0,
    });
    expect(snap.snapshot.avail.idx).toBe(8835);
    expect(snap.snapshot.driver).toBeNull();
    expect(snap.unavailable.join('\n')).toContain('used.ring');
    // signalled-used-valid false: no interrupt yet.
    expect(
      queueSnapshotFromQemu({
        device: 'vser0',
        status: sampleQueues[0]!,
        elements: [],
        eventIdx: true,
      }).snapshot.device?.signalledUsed,
    ).toBeNull();
    expect(
      queueSnapshotFromQemu({
        device: 'vser0',
        status: sampleQueues[3]!,
        elements: [],
        eventIdx: true,
      }).role,
    ).toBe('control tx');
  });

  it('reads elements back into chain order and knows which slots are current', () => {
    // QEMU lists a chain last descriptor first.
    const element: VirtioQueueElement = {
      name: 'virtio-serial',
      index: 7,
      descs: [
        { flags: ['write'], len: 4096, addr: 2000 },
        { flags: ['next'], len: 16, addr: 1000 },
      ],
      avail: { idx: 12, flags: 0, ring: 7 },
      used: { idx: 9, flags: 1 },
    };
    const size = 8;
    const pending = elementView(element, 10, size, 10);
    expect(pending).toMatchObject({ availIdx: 10, slot: 2, head: 7, state: 'pending' });
    expect(pending.descriptors).toEqual([
      { index: 7, addr: 1000, len: 16, flagNames: ['NEXT'] },
      { index: null, addr: 2000, len: 4096, flagNames: ['WRITE'] },
    ]);
    expect(elementView(element, 9, size, 10).state).toBe('consumed');
    expect(elementView(element, 12, size, 12).state).toBe('stale');
    const snap = queueSnapshotFromQemu({
      device: 'vser0',
      status: { ...sampleQueues[4]!, 'vring-num': size },
      elements: [pending],
      rings: { availFlags: 0, availIdx: 12, usedFlags: 1, usedIdx: 9 },
      eventIdx: true,
    });
    expect(snap.snapshot.descriptors).toEqual([
      { index: 7, addr: 1000, len: 16, flags: 1, flagNames: ['NEXT'], next: -1 },
    ]);
    expect(snap.snapshot.avail.ring).toEqual([-1, -1, 7, -1, -1, -1, -1, -1]);
    expect(snap.snapshot.used).toEqual({ flags: 1, idx: 9, ring: [], availEvent: null });
  });

  it('reads socket addresses from query-chardev filenames', () => {
    expect(socketSpecOf('disconnected:unix:/tmp/p1,server=on')).toEqual({
      transport: 'unix',
      path: '/tmp/p1',
      server: true,
    });
    expect(socketSpecOf('unix:/tmp/p1')).toEqual({
      transport: 'unix',
      path: '/tmp/p1',
      server: false,
    });
    expect(socketSpecOf('tcp:127.0.0.1:4444,server=on <-> 127.0.0.1:51234')).toEqual({
      transport: 'tcp',
      host: '127.0.0.1',
      port: 4444,
      server: true,
    });
    expect(socketSpecOf('disconnected:tcp:0.0.0.0:4444,server=on')).toEqual({
      transport: 'tcp',
      host: '127.0.0.1',
      port: 4444,
      server: true,
    });
    expect(socketSpecOf('ringbuf')).toBeUndefined();
  });
});
