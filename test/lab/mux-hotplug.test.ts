/**
 * A chardev shared by several ports (H1 mux=on, ctrl-a c), and hot-plug from
 * outside (D8): the topology, query-chardev and the guest directory follow.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { GuestDir, isGuestDirError } from '../../core/guestdir/index.js';
import type { Machine } from '../../core/machine/machine.js';
import {
  Collector,
  connectUnix,
  removeTempDirs,
  startMachine,
  tempDir,
  unixServer,
  waitUntil,
} from './helpers.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close();
});
afterAll(removeTempDirs);

async function withGuestDir(m: Machine, dir: string): Promise<GuestDir> {
  const g = await GuestDir.open(m.lab, path.join(dir, 'guest'));
  if (isGuestDirError(g)) throw new Error(g.message);
  open.push(g);
  return g;
}

describe('H1 mux=on: one socket, two ports', () => {
  it('input goes to the focused port; ctrl-a c switches; output of both reaches the host', async () => {
    const dir = tempDir('mux');
    const m = await startMachine(
      [
        ...unixServer(dir, 'm', ',mux=on'),
        '-device',
        'virtio-serial',
        '-device',
        'virtserialport,chardev=m,name=a',
        '-device',
        'virtserialport,chardev=m,name=b',
      ],
      dir,
    );
    open.push(m);
    expect(m.portsOf('m').map((p) => p.name)).toEqual(['a', 'b']);
    expect(m.chardevs().map((c) => [c.id, c.filename.replace(dir, 'DIR')])).toEqual([
      ['m', 'mux'],
      ['m-base', 'disconnected:unix:DIR/m,server=on'],
    ]);
    const g = await withGuestDir(m, dir);
    const a = new Collector(await connectUnix(path.join(g.dir, 'a')));
    const b = new Collector(await connectUnix(path.join(g.dir, 'b')));
    const host = new Collector(await connectUnix(path.join(dir, 'm')));

    host.socket.write('to the first\n');
    expect(await a.line()).toBe('to the first');
    host.socket.write('\x01c'); // ctrl-a c: the next frontend
    host.socket.write('to the second\n');
    expect(await b.line()).toBe('to the second');
    host.socket.write('\x01cback to the first\n');
    expect(await a.line()).toBe('back to the first');
    expect(b.length).toBe(0);

    a.socket.write('from a\n');
    expect(await host.line()).toBe('from a');
    b.socket.write('from b\n');
    expect(await host.line()).toBe('from b');
    for (const c of [a, b, host]) c.socket.destroy();
  });
});

describe('D8: hot-plug and unplug through the RunningMachine', () => {
  it('a port added with device_add appears in the topology and the guest dir, and goes again', async () => {
    const dir = tempDir('hp');
    const m = await startMachine(
      [...unixServer(dir, 'c1'), '-device', 'virtio-serial,id=vser0'],
      dir,
    );
    open.push(m);
    const g = await withGuestDir(m, dir);
    expect(fs.readdirSync(g.dir)).toEqual([]);

    expect(
      m.deviceAdd({ driver: 'virtserialport', id: 'hp0', name: 'org.test.hp', chardev: 'c1' }),
    ).toBe(null);
    expect(m.topology().ports).toEqual([
      { driver: 'virtserialport', bus: 'vser0.0', id: 'hp0', name: 'org.test.hp', chardev: 'c1' },
    ]);
    await waitUntil(() => fs.existsSync(path.join(g.dir, 'org.test.hp')), 'the hot-plugged socket');
    expect(fs.statSync(path.join(g.dir, 'org.test.hp')).mode & 0o777).toBe(0o600);

    // D3 refusals in QEMU's words; chardev-remove of a chardev in use.
    expect(m.deviceAdd({ driver: 'virtserialport', name: 'org.test.hp' })?.message).toBe(
      'virtio-serial-bus: A port already exists by name org.test.hp',
    );
    expect((await m.chardevRemove('c1'))?.message).toBe("Chardev 'c1' is busy");

    // The guest opens it: query-chardev's frontend-open; a host client: no `disconnected:` prefix.
    const guest = new Collector(await connectUnix(path.join(g.dir, 'org.test.hp')));
    const host = new Collector(await connectUnix(path.join(dir, 'c1')));
    await waitUntil(
      () => m.chardevs()[0]!.frontendOpen && !m.chardevs()[0]!.filename.startsWith('disconnected:'),
      'both ends open',
    );
    host.socket.write('hello hot-plug\n');
    expect(await guest.line()).toBe('hello hot-plug');

    const deleted: unknown[] = [];
    m.lab.events.on('device-deleted', (e) => deleted.push(e));
    expect(m.deviceDel('hp0')).toBe(null);
    expect(deleted).toEqual([{ device: 'hp0', path: '/machine/peripheral/hp0' }]);
    expect(m.topology().ports).toEqual([]);
    await guest.waitFor(() => guest.ended, 'the guest client to see end of file');
    await waitUntil(() => !fs.existsSync(path.join(g.dir, 'org.test.hp')), 'the socket to go');
    expect(await m.chardevRemove('c1')).toBe(null);
    expect(m.topology().chardevs).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'c1'))).toBe(false);
    host.socket.destroy();
  });

  it('chardev-add makes a real backend a later device_add can use', async () => {
    const dir = tempDir('cadd');
    const m = await startMachine(['-device', 'virtio-serial'], dir);
    open.push(m);
    const spec = {
      id: 'late',
      mux: false,
      logappend: false,
      backend: {
        kind: 'socket' as const,
        address: { type: 'unix' as const, path: path.join(dir, 'late') },
        server: true,
        wait: false,
        nodelay: false,
      },
    };
    expect(await m.chardevAdd(spec)).toBe(null);
    expect((await m.chardevAdd(spec))?.message).toBe(
      "attempt to add duplicate property 'late' to object (type 'container')",
    );
    expect(m.deviceAdd({ driver: 'virtconsole', chardev: 'late' })).toBe(null);
    const g = await withGuestDir(m, dir);
    await waitUntil(() => fs.existsSync(path.join(g.dir, 'hvc0')), 'hvc0');
    const guest = new Collector(await connectUnix(path.join(g.dir, 'hvc0')));
    const host = new Collector(await connectUnix(path.join(dir, 'late')));
    guest.socket.write('console out\n');
    expect(await host.line()).toBe('console out');
    guest.socket.destroy();
    host.socket.destroy();
  });
});
