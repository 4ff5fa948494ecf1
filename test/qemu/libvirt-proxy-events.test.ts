/**
 * QMP events as virt-qemu-qmp-proxy (libvirt 9.0, Debian's
 * libvirt-clients-qemu) forwards them: libvirt's monitor event API gives the
 * proxy an event's details as JSON text, and the proxy writes that text as
 * the event's `data`, a string: `"data": "{\"device\": ...}"`. Seen on the
 * real proxy (test/qemu/libvirt-real.test.ts: DEVICE_DELETED of a
 * hot-unplugged channel). The QMP client reads the text as the object QEMU
 * sent, so typed subscribers (DEVICE_DELETED, VSERPORT_CHANGE) get it; a
 * string that is not a JSON object stays refused by the event schema.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { QmpClient } from '../../core/qemu/qmp-client.js';
import type { QmpEvent } from '../../core/qemu/qmp-types.js';
import { isQmpError } from '../../core/qemu/qmp-error.js';
import { FakeQmpServer } from './fake-qmp-server.js';
import { poller } from './real-guest.js';

const until = poller(5000, 10);
let server: FakeQmpServer | undefined;
let client: QmpClient | undefined;
afterEach(async () => {
  await client?.close();
  await server?.close();
  client = server = undefined;
});

/** The line the proxy writes for an event (handle_qmp_event: json.dumps, then "\r\n"). */
const proxyLine = (event: string, details: string): string =>
  JSON.stringify({ event, timestamp: { seconds: 1765000000, microseconds: 5 }, data: details }) +
  '\r\n';

describe('events through virt-qemu-qmp-proxy (data as JSON text)', () => {
  it('DEVICE_DELETED and VSERPORT_CHANGE reach their typed subscribers with the object', async () => {
    server = await FakeQmpServer.start();
    const c = await QmpClient.connect(server.address);
    if (isQmpError(c)) throw new Error(c.toString());
    client = c;
    const deleted: QmpEvent[] = [];
    const changed: QmpEvent[] = [];
    const all: string[] = [];
    c.on('DEVICE_DELETED', (e) => deleted.push(e as QmpEvent));
    c.on('VSERPORT_CHANGE', (e) => changed.push(e as QmpEvent));
    c.on('*', (e) => all.push(e.event));
    server.sendRaw(
      proxyLine(
        'DEVICE_DELETED',
        '{"device": "vmchanhot", "path": "/machine/peripheral/vmchanhot"}',
      ),
    );
    server.sendRaw(proxyLine('VSERPORT_CHANGE', '{"open": true, "id": "channel1"}'));
    // not an object: refused, as any malformed event
    server.sendRaw(proxyLine('DEVICE_DELETED', '"vmchanhot"'));
    server.sendEvent('STOP');
    await until(
      'the events after them',
      () => all,
      (a) => a.includes('STOP'),
    );
    expect(deleted.map((e) => e.data)).toEqual([
      { device: 'vmchanhot', path: '/machine/peripheral/vmchanhot' },
    ]);
    expect(changed.map((e) => e.data)).toEqual([{ open: true, id: 'channel1' }]);
    expect(all).toEqual(['DEVICE_DELETED', 'VSERPORT_CHANGE', 'STOP']);
  });
});
