/**
 * Q2 Q6 QMP chardev-change (issue 14 item 8), against QEMU 7.2's
 * qmp_chardev_change (chardev/char.c). Every error text and class below was
 * checked on qemu-system-x86_64 7.2 (Debian 1:7.2+dfsg-7) with -qmp stdio:
 * - an unknown id: "Chardev 'nope' does not exist";
 * - a mux: "Mux device hotswap not supported yet";
 * - a chardev a frontend without be_change holds (virtserialport, a monitor):
 *   "Chardev user does not support chardev hotswap" (hw/char/virtio-console.c
 *   passes no be_change to qemu_chr_fe_set_handlers);
 * - a chardev nothing holds: removed, then added as chardev-add would; when
 *   that add fails the id is gone ("Failed to add chardev 'c2': Failed to
 *   bind socket to ...");
 * - a frontend that supports it (isa-serial on QEMU): a new backend that
 *   fails to open answers chardev_new's error unprefixed and the old one stays.
 * The swap under a port (tests/unit/test-char.c "hotswap": the frontend stays,
 * the old backend closes, the new one takes over) is a vmchan extra, on with
 * the monitors' `chardevChange: 'ports'`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Machine } from '../../core/machine/machine.js';
import { parseQemuArgs } from '../../core/machine/qemu-cmdline.js';
import { attachMonitors } from '../../core/monitor/index.js';
import type { ChardevChangeMode } from '../../core/monitor/hub.js';
import { isQemuError } from '../../core/base/qemu-error.js';
import {
  QmpClient,
  SocketClient,
  ok,
  recordedMachineArgs,
  removeTempDirs,
  socketBackend,
  tempDir,
  waitFor,
} from './helpers.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  removeTempDirs();
});

/** The recorded machine (port1 on the unix socket c1) plus a mux, its monitors in `mode`. */
async function start(
  mode: ChardevChangeMode,
): Promise<{ machine: Machine; q: QmpClient; dir: string }> {
  const dir = tempDir('cc');
  const parsed = parseQemuArgs(recordedMachineArgs(dir, ['-chardev', 'null,id=x1,mux=on']));
  if (!parsed.ok) throw new Error(`parse: ${parsed.error.toString()}`);
  const machine = await Machine.start(parsed.value, { runtimeDir: dir });
  if (isQemuError(machine)) throw new Error(`start: ${machine.message}`);
  const monitors = attachMonitors(machine, { chardevChange: mode, onQuit: () => {} });
  closers.push(async () => {
    monitors.close();
    await machine.close();
  });
  const q = await QmpClient.connect(path.join(dir, 'qmp'));
  closers.push(() => q.close());
  return { machine, q, dir };
}

const nullBackend = { type: 'null', data: {} };

async function filenameOf(q: QmpClient, id: string): Promise<string | undefined> {
  const rows = (await q.must('query-chardev')) as { label: string; filename: string }[];
  return rows.find((r) => r.label === id)?.filename;
}

describe('Q2 Q6 chardev-change as QEMU 7.2 answers it', () => {
  it("Q6 refuses an unknown id, a mux, a port's and a monitor's chardev in QEMU's words", async () => {
    const { q, dir } = await start('qemu');
    const elsewhere = path.join(dir, 'elsewhere');
    expect(await q.execute('chardev-change', { id: 'nope', backend: nullBackend })).toMatchObject({
      error: { class: 'GenericError', desc: "Chardev 'nope' does not exist" },
    });
    expect(await q.execute('chardev-change', { id: 'x1', backend: nullBackend })).toMatchObject({
      error: { class: 'GenericError', desc: 'Mux device hotswap not supported yet' },
    });
    for (const id of ['c1', 'hmp']) {
      expect(
        await q.execute('chardev-change', { id, backend: socketBackend(elsewhere) }),
      ).toMatchObject({
        error: { class: 'GenericError', desc: 'Chardev user does not support chardev hotswap' },
      });
    }
    // QEMU checks the frontend before it opens anything: no socket was bound.
    expect(fs.existsSync(elsewhere)).toBe(false);
    expect(await filenameOf(q, 'c1')).toContain(path.join(dir, 'c1'));
  });

  it('Q6 replaces a chardev nothing holds; a failed add leaves the id gone, as QEMU does', async () => {
    const { q, dir } = await start('qemu');
    await q.must('chardev-add', { id: 'c2', backend: nullBackend });
    expect(await q.execute('chardev-add', { id: 'c2', backend: nullBackend })).toMatchObject({
      error: { class: 'GenericError', desc: "Chardev with id 'c2' already exists" },
    });
    const p2 = path.join(dir, 'p2');
    expect(await q.execute('chardev-change', { id: 'c2', backend: socketBackend(p2) })).toEqual(
      expect.objectContaining({ return: {} }),
    );
    expect(await filenameOf(q, 'c2')).toBe(`disconnected:unix:${p2},server=on`);
    const bad = '/nonexistent/vmchan-cc/x';
    expect(
      await q.execute('chardev-change', { id: 'c2', backend: socketBackend(bad) }),
    ).toMatchObject({
      error: {
        class: 'GenericError',
        desc: `Failed to add chardev 'c2': Failed to bind socket to ${bad}: No such file or directory`,
      },
    });
    expect(await filenameOf(q, 'c2')).toBeUndefined();
    expect(fs.existsSync(p2)).toBe(false);
  });
});

describe('Q6 chardev-change under a running port (vmchan extra, test-char.c "hotswap")', () => {
  it('Q6 the port keeps running: the old backend closes, a client on the new path talks to the guest', async () => {
    const { machine, q, dir } = await start('ports');
    const files = machine.lab.guest.files;
    await waitFor(() => {
      const names = machine.lab.guest.namespace.list('/dev/virtio-ports');
      return Array.isArray(names) && names.includes('org.test.port.1');
    }, 'the guest symlink of port1');
    const fd = ok(await files.open('/dev/virtio-ports/org.test.port.1'));
    const oldHost = await SocketClient.connect(path.join(dir, 'c1'));
    oldHost.write('before\n');
    expect(Buffer.from(ok(await files.read(fd, 100))).toString()).toBe('before\n');

    const next = path.join(dir, 'c1-next');
    expect(await q.execute('chardev-change', { id: 'c1', backend: socketBackend(next) })).toEqual(
      expect.objectContaining({ return: {} }),
    );
    // The old backend is closed: its client sees end-of-file, its socket file is gone.
    await waitFor(() => oldHost.ended, "the old backend's client to see end-of-file");
    expect(fs.existsSync(path.join(dir, 'c1'))).toBe(false);
    expect(await filenameOf(q, 'c1')).toBe(`disconnected:unix:${next},server=on`);
    // The guest still holds the same port, and the new backend learnt it is open.
    expect(machine.lab.device('vser0')?.port(1)?.guestConnected).toBe(true);
    const rows = (await q.must('query-chardev')) as { label: string; 'frontend-open': boolean }[];
    expect(rows.find((r) => r.label === 'c1')?.['frontend-open']).toBe(true);

    const newHost = await SocketClient.connect(next);
    newHost.write('after\n');
    expect(Buffer.from(ok(await files.read(fd, 100))).toString()).toBe('after\n');
    ok(await files.write(fd, 'from-guest\n'));
    await newHost.until((b) => b.toString() === 'from-guest\n', 'guest bytes on the new backend');
    ok(await files.close(fd));
    await newHost.close();
  });

  it('Q6 a new backend that fails to open leaves the old one in place, error unprefixed', async () => {
    const { machine, q, dir } = await start('ports');
    const bad = '/nonexistent/vmchan-cc/x';
    expect(
      await q.execute('chardev-change', { id: 'c1', backend: socketBackend(bad) }),
    ).toMatchObject({
      error: {
        class: 'GenericError',
        desc: `Failed to bind socket to ${bad}: No such file or directory`,
      },
    });
    expect(await filenameOf(q, 'c1')).toBe(`disconnected:unix:${path.join(dir, 'c1')},server=on`);
    // The monitor's chardev is still refused: only ports take a new backend.
    expect(await q.execute('chardev-change', { id: 'hmp', backend: nullBackend })).toMatchObject({
      error: { class: 'GenericError', desc: 'Chardev user does not support chardev hotswap' },
    });
    // The old backend still carries the port.
    await waitFor(() => {
      const names = machine.lab.guest.namespace.list('/dev/virtio-ports');
      return Array.isArray(names) && names.includes('org.test.port.1');
    }, 'the guest symlink of port1');
    const files = machine.lab.guest.files;
    const fd = ok(await files.open('/dev/virtio-ports/org.test.port.1'));
    const host = await SocketClient.connect(path.join(dir, 'c1'));
    host.write('still here\n');
    expect(Buffer.from(ok(await files.read(fd, 100))).toString()).toBe('still here\n');
    ok(await files.close(fd));
    await host.close();
  });
});
