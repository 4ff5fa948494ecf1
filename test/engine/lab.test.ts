/**
 * The Lab facade: building from a topology, events, step mode (one task, one
 * ring operation per step) and the QEMU-like errors.
 */
import { describe, expect, it } from 'vitest';
import { Lab } from '../../core/engine/lab.js';
import { isQemuError } from '../../core/base/qemu-error.js';
import { isErrno } from '../../core/serial/guest/errno.js';
import type { RingTraceEvent } from '../../core/virtio/trace.js';
import { caseStudy, must, record } from '../serial/helpers.js';

describe('Lab', () => {
  it('refuses a bad topology with a one-line reason, and a refused port in QEMU words', () => {
    const bad = Lab.create({ devices: [{ id: 'vser0', maxPorts: 'many' as unknown as number }] });
    expect(isQemuError(bad) && bad.message).toMatch(/^topology: devices\.0\.maxPorts: /);
    const refused = Lab.create({
      devices: [{ id: 'vser0', ports: [{ driver: 'virtserialport', nr: 0 }] }],
    });
    expect(isQemuError(refused) && refused.message).toMatch(/reserved for virtconsole/);
  });

  it('builds devices, ports and chardevs from the topology and boots the guest', async () => {
    const lab = must(Lab.create(caseStudy()));
    const added = record(lab.events, 'port-added');
    expect(lab.chardevIds).toEqual(['test0', 'test1', 'test2']);
    expect(await lab.boot()).toBe(null);
    expect(added).toEqual([]); // plugged before the events were watched
    expect(lab.guest.namespace.list('/dev/virtio-ports')).toEqual(['console.0', 'test1', 'test2']);
    expect(lab.port('test1')?.port.nr).toBe(1);
    expect(lab.device('vser0.0')?.id).toBe('vser0');
  });

  it('step mode runs one task per step, and a device task is one ring operation', async () => {
    const lab = must(Lab.create({ ...caseStudy(), mode: 'step' }));
    const trace: RingTraceEvent[] = [];
    lab.device('vser0')!.tracer.on((e) => trace.push(e));
    const booting = lab.boot();
    let steps = 0;
    while (lab.scheduler.step() !== null) {
      steps++;
      await new Promise((r) => setImmediate(r));
    }
    expect(await booting).toBe(null);
    expect(steps).toBeGreaterThan(20);
    // every device task pops at most one chain
    const popsPerDeviceTask: number[] = [];
    let running: string | null = null;
    let pops = 0;
    const finish = (): void => {
      if (running === 'device') popsPerDeviceTask.push(pops);
      pops = 0;
    };
    lab.scheduler.onTask((t) => {
      finish();
      running = t.kind;
    });
    lab.device('vser0')!.tracer.on((e) => {
      if (e.op === 'device-pop') pops++;
    });
    const opening = lab.guest.files.open('/dev/virtio-ports/test1');
    lab.host('test1').connect();
    lab.host('test1').write('x'.repeat(10_000));
    while (lab.scheduler.step() !== null) await new Promise((r) => setImmediate(r));
    finish();
    expect(isErrno(await opening)).toBe(false);
    expect(popsPerDeviceTask.length).toBeGreaterThan(0);
    expect(Math.max(...popsPerDeviceTask)).toBe(1);
    expect(trace.some((e) => e.op === 'device-push')).toBe(true);
  });

  it('emits what a person wants to see: ports, opens, control messages, data, drops, NEEDS_RESET', async () => {
    const lab = must(Lab.create(caseStudy()));
    const seen = new Set<string>();
    lab.events.onAny((type) => seen.add(String(type)));
    await lab.boot();
    must(lab.chardevAdd('hp'));
    must(lab.deviceAdd({ driver: 'virtserialport', id: 'x', chardev: 'hp' }));
    const fd = must(await lab.guest.files.open('/dev/virtio-ports/test1'));
    lab.host('test1').connect();
    await lab.guest.files.write(fd, 'x');
    await lab.settle();
    await lab.guest.files.close(fd);
    lab.deviceDel('x');
    lab.device('vser0')!.notify(12345);
    await lab.settle();
    for (const type of [
      'port-added',
      'port-removed',
      'device-deleted',
      'guest-open',
      'host-open',
      'control',
      'data',
      'needs-reset',
      'guest-node',
      'task',
    ]) {
      expect(seen).toContain(type);
    }
  });

  it('a hot-plugged device is probed by the running guest, and can be removed again', async () => {
    const lab = must(Lab.create(caseStudy()));
    await lab.boot();
    must(lab.addDevice({ id: 'vser1', ports: [] }));
    must(lab.chardevAdd('late'));
    must(
      lab.deviceAdd({ driver: 'virtserialport', bus: 'vser1.0', name: 'late', chardev: 'late' }),
    );
    await lab.settle();
    expect(lab.guest.namespace.readlink('/dev/virtio-ports/late')).toBe('../vport1p1');
    const deleted = record(lab.events, 'device-deleted');
    expect(lab.deviceDel('vser1')).toBe(null);
    await lab.settle();
    expect(lab.guest.namespace.exists('/dev/virtio-ports/late')).toBe(false);
    // the port goes first (QEMU unparents children before the parent)
    expect(deleted).toEqual([
      { device: null, path: '/machine/peripheral-anon/device[0]' },
      { device: 'vser1', path: '/machine/peripheral/vser1' },
    ]);
    expect(lab.chardevRemove('late')).toBe(null);
  });
});
