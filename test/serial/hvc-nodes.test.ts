/**
 * L11: the hvc tty nodes, as Linux 6.1 makes them.
 *
 * drivers/tty/hvc/hvc_console.c: the first hvc_alloc() runs hvc_init(),
 * which registers a tty driver of HVC_ALLOC_TTY_ADAPTERS (8) minors; the
 * kernel (devtmpfs) creates /dev/hvc0 to /dev/hvc7 for them at once. An open
 * of a minor with no console behind it fails in hvc_install
 * (hvc_get_by_index() finds nothing) with ENODEV. hvc_remove() leaves the
 * node in place. A guest with no console never registers the driver.
 */
import { describe, expect, it } from 'vitest';
import { isErrno } from '../../core/serial/guest/errno.js';
import { bootLab, caseStudy, must } from './helpers.js';

const hvcNodes = (list: string[] | unknown): string[] =>
  Array.isArray(list) ? (list as string[]).filter((n) => n.startsWith('hvc')).sort() : [];

describe('L11 /dev/hvc0 to /dev/hvc7', () => {
  it('L11 with a console the guest has hvc0 to hvc7; an index without a console is ENODEV', async () => {
    const lab = await bootLab(caseStudy());
    expect(hvcNodes(lab.guest.namespace.list('/dev'))).toEqual(
      [0, 1, 2, 3, 4, 5, 6, 7].map((k) => `hvc${k}`).sort(),
    );
    const fd = await lab.guest.files.open('/dev/hvc0');
    expect(isErrno(fd)).toBe(false);
    for (const k of [1, 7]) {
      const r = await lab.guest.files.open(`/dev/hvc${k}`);
      expect(isErrno(r) && r.code).toBe('ENODEV');
    }
    // Beyond the 8 minors there is no node at all.
    const none = await lab.guest.files.open('/dev/hvc8');
    expect(isErrno(none) && none.code).toBe('ENOENT');
  });

  it('L11 the node of an unplugged console stays and opens ENODEV; a new console takes it again', async () => {
    const lab = await bootLab(caseStudy());
    const device = lab.device('vser0')!;
    device.unplugPort(device.ports.find((p) => p.isConsole)!);
    await lab.settle();
    expect(lab.guest.namespace.exists('/dev/hvc0')).toBe(true);
    const r = await lab.guest.files.open('/dev/hvc0');
    expect(isErrno(r) && r.code).toBe('ENODEV');

    must(lab.deviceAdd({ driver: 'virtconsole', name: 'console.again', chardev: 'test0' }));
    await lab.settle();
    expect(isErrno(await lab.guest.files.open('/dev/hvc0'))).toBe(false);
  });

  it('L11 a guest with no console port has no hvc node (the hvc driver never registered)', async () => {
    const lab = await bootLab({
      devices: [
        { id: 'vser0', ports: [{ driver: 'virtserialport', name: 'only', chardev: 'c1' }] },
      ],
    });
    expect(hvcNodes(lab.guest.namespace.list('/dev'))).toEqual([]);
    const r = await lab.guest.files.open('/dev/hvc0');
    expect(isErrno(r) && r.code).toBe('ENOENT');
  });
});
