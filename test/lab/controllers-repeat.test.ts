/**
 * D11: virtio-serial controllers hot-plugged into a lab started without one,
 * several at once and over and over, as QEMU 7.2 takes them.
 *
 * QEMU: each `device_add virtio-serial-pci` is a new PCI function; nothing
 * limits how many besides the machine's slots and the guest's RAM, and
 * device_del followed by device_add of the same id works any number of
 * times. Linux (drivers/char/virtio_console.c virtcons_remove, remove_vqs;
 * drivers/virtio/virtio_pci_common.c vp_del_vqs) frees every buffer and ring
 * of a removed device. QEMU's default RAM is 128 MiB (hw/i386/pc.c
 * default_ram_size); `-m` sets it (qemu-options.hx).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Machine, deviceMemoryBytes } from '../../core/machine/machine.js';
import { parseQemuArgs } from '../../core/machine/qemu-cmdline.js';
import { defaultDevice } from '../../core/machine/topology.js';
import { isQemuError } from '../../core/base/qemu-error.js';
import { removeTempDirs, tempDir } from './helpers.js';

const machines: Machine[] = [];

async function start(args: string[]): Promise<Machine> {
  const parsed = parseQemuArgs(args);
  if (!parsed.ok) throw new Error(parsed.error.toString());
  const m = await Machine.start(parsed.value, { runtimeDir: tempDir('ctl') });
  if (isQemuError(m)) throw new Error(m.message);
  machines.push(m);
  return m;
}

afterEach(async () => {
  for (const m of machines.splice(0)) await m.close();
  removeTempDirs();
});

const vports = (m: Machine): string[] => {
  const list = m.lab.guest.namespace.list('/dev');
  return Array.isArray(list) ? list.filter((n) => n.startsWith('vport')) : [];
};

describe('D11 controllers hot-plugged repeatedly', () => {
  it('D11 four controllers with 10, 15, 20 and 25 ports, then all unplugged: every byte of guest memory back', async () => {
    const m = await start([]);
    const allocator = m.lab.allocator;
    expect(allocator.allocatedBytes).toBe(0);
    const counts = [10, 15, 20, 25];
    for (const [i, n] of counts.entries()) {
      const id = `vser${i}`;
      expect(m.controllerAdd(defaultDevice('virtio-serial-pci', { id, maxPorts: n + 1 }))).toBe(
        null,
      );
      for (let p = 1; p <= n; p++) {
        expect(m.deviceAdd({ driver: 'virtserialport', bus: `${id}.0`, id: `${id}p${p}` })).toBe(
          null,
        );
      }
    }
    await m.lab.settle();
    expect(m.lab.registry.devices.map((d) => d.ports.length)).toEqual(counts);
    // The guest added every port: vportDpN for each, D the device's virtio index.
    expect(vports(m)).toHaveLength(10 + 15 + 20 + 25);
    expect(vports(m)).toContain('vport3p25');
    expect(allocator.allocatedBytes).toBeGreaterThan(70 * 128 * 4096); // every port's rx pages
    for (const i of [0, 1, 2, 3]) expect(m.deviceDel(`vser${i}`)).toBe(null);
    await m.lab.settle();
    expect(vports(m)).toEqual([]);
    expect(allocator.allocatedBytes).toBe(0);
  });

  it('D11 plug and unplug of one controller 100 times', async () => {
    const m = await start([]);
    const deleted: string[] = [];
    m.lab.events.on('device-deleted', (e) => deleted.push(e.device ?? ''));
    for (let i = 0; i < 100; i++) {
      const refused = m.controllerAdd(defaultDevice('virtio-serial-pci', { id: 'vser1' }));
      expect(refused, `plug ${i}`).toBe(null);
      expect(m.deviceAdd({ driver: 'virtconsole', bus: 'vser1.0', id: 'con' })).toBe(null);
      await m.lab.settle();
      expect(m.lab.guest.drivers).toHaveLength(1);
      expect(m.deviceDel('vser1')).toBe(null);
      await m.lab.settle();
      expect(m.lab.allocator.allocatedBytes, `after unplug ${i}`).toBe(0);
    }
    // QEMU sends DEVICE_DELETED for the port first (it goes with its bus), then the controller.
    expect(deleted.filter((d) => d === 'vser1')).toHaveLength(100);
    expect(deleted.filter((d) => d === 'con')).toHaveLength(100);
    expect(m.topology().devices).toEqual([]);
  });

  it('D11 -m raises the limit; without it the guest has 128 MiB; a bad -m is refused in QEMU words', async () => {
    const plugUntilRefused = (m: Machine): number => {
      for (let i = 0; ; i++) {
        const r = m.controllerAdd(defaultDevice('virtio-serial-pci', { id: `v${i}` }));
        if (r !== null) {
          expect(r.message).toMatch(/-m gives the guest more/);
          return i;
        }
      }
    };
    const plain = await start([]);
    expect(plain.lab.memory.layout[0]!.size).toBe(128 * 1024 * 1024);
    const fourGig = await start(['-m', '1G']);
    expect(fourGig.lab.memory.layout[0]!.size).toBe(1024 * 1024 * 1024);
    const small = plugUntilRefused(plain);
    const large = plugUntilRefused(fourGig);
    // 32 MiB for the guest itself, then what each default controller can claim.
    const each = deviceMemoryBytes(31);
    expect(small).toBe(Math.floor(((128 - 32) * 1024 * 1024) / each));
    expect(large).toBe(Math.floor(((1024 - 32) * 1024 * 1024) / each));

    const parsed = parseQemuArgs(['-m', '12x']);
    if (!parsed.ok) throw new Error(parsed.error.toString());
    const bad = await Machine.start(parsed.value, { runtimeDir: tempDir('ctl') });
    expect(isQemuError(bad) && bad.message).toBe(
      "-m 12x: Parameter 'size' expects a non-negative number below 2^64 (optional suffix k, M, G, T, P or E)",
    );
  });
});
