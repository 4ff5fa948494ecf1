/**
 * attachMonitor / attachMonitors: a monitor takes its chardev as a
 * frontend (refused when a port holds it, as QEMU refuses), shows up as
 * frontend-open and busy, and shares a mux chardev with a console.
 */
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { attachMonitor } from '../../core/monitor/index.js';
import { QemuError } from '../../core/base/qemu-error.js';
import {
  HmpClient,
  QmpClient,
  recordedMachineArgs,
  removeTempDirs,
  startRig,
  tempDir,
  unixServer,
  type Rig,
} from './helpers.js';

let rig: Rig | null = null;

afterEach(async () => {
  await rig?.close();
  rig = null;
  removeTempDirs();
});

describe('Q1 Q4 attachMonitor on one chardev', () => {
  it('refuses a chardev a port holds, takes a free one, and makes it busy', async () => {
    const dir = tempDir('att');
    rig = await startRig(recordedMachineArgs(dir), dir);
    const m = rig.machine;
    const refused = attachMonitor(m, m.chardev('c1')!, 'control');
    expect(refused).toBeInstanceOf(QemuError);
    expect((refused as QemuError).message).toBe("Device 'c1' is in use");

    expect(
      await m.chardevAdd({
        id: 'extra',
        backend: {
          kind: 'socket',
          address: { type: 'unix', path: path.join(dir, 'extra') },
          server: true,
          wait: false,
          nodelay: false,
        },
        mux: false,
        logappend: false,
      }),
    ).toBe(null);
    const mon = attachMonitor(m, m.chardev('extra')!, 'control', { pretty: false });
    expect(mon).not.toBeInstanceOf(QemuError);
    const q = await QmpClient.connect(path.join(dir, 'extra'));
    const rows = (await q.must('query-chardev')) as { label: string; 'frontend-open': boolean }[];
    expect(rows.find((r) => r.label === 'extra')?.['frontend-open']).toBe(true);
    expect(await q.execute('chardev-remove', { id: 'extra' })).toMatchObject({
      error: { desc: "Chardev 'extra' is busy" },
    });
    await q.close();
    (mon as { close(): void }).close();
    expect(await m.chardevRemove('extra')).toBe(null);
  });

  it('shares a mux chardev with a console: the monitor has the first frontend', async () => {
    const dir = tempDir('mux');
    const mux = unixServer(dir, 'mx');
    mux[1] += ',mux=on';
    rig = await startRig(
      [
        ...mux,
        '-mon',
        'chardev=mx,mode=readline',
        '-device',
        'virtio-serial-pci,id=vser0',
        '-device',
        'virtconsole,chardev=mx,name=console.0',
      ],
      dir,
    );
    const { hmp, banner } = await HmpClient.connect(path.join(dir, 'mx'));
    expect(banner).toContain("QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ");
    // The console attached last has the input focus; ctrl-a c moves it to the monitor.
    hmp.client.write('\x01c');
    expect(await hmp.command('info status')).toBe('VM status: running\r\n');
    await hmp.close();
  });
});
