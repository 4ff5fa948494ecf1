/**
 * Whole-machine scenarios: the case study (seeds/002) moving 16 MiB each way
 * with matching sha1 on split and packed rings, 31 and 511 ports, two
 * devices at once, and an unplug in the middle of a transfer.
 */
import { describe, expect, it } from 'vitest';
import type { Lab } from '../../core/engine/lab.js';
import { isErrno } from '../../core/serial/guest/errno.js';
import type { GuestFiles } from '../../core/serial/guest/files.js';
import {
  bootLab,
  caseStudy,
  must,
  pattern,
  readExactly,
  record,
  RINGS,
  sha1,
  text,
} from './helpers.js';

const MiB = 1024 * 1024;

/** The guest side of virtserial-guest.c: receive a file and its checksum, send one back. */
async function guestProgram(files: GuestFiles, size: number, outgoing: Uint8Array) {
  const control = must(await files.open('/dev/virtio-ports/test1'));
  const data = must(await files.open('/dev/virtio-ports/test2'));
  const [received] = await Promise.all([
    readExactly(files, data, size),
    files.writeAll(data, outgoing),
  ]);
  const hostSum = text(await readExactly(files, control, 40));
  await files.writeAll(control, sha1(received) === hostSum ? 'PASS\n' : 'FAIL\n');
  await files.writeAll(control, sha1(outgoing));
  return { received, hostSum };
}

async function caseStudyRun(lab: Lab, size: number) {
  const hostFile = pattern(size, 0x1234);
  const guestFile = pattern(size, 0x4321);
  const control = lab.host('test1');
  const data = lab.host('test2');
  const fromGuest: Uint8Array[] = [];
  data.onData((b) => fromGuest.push(b));
  control.connect();
  data.connect();
  // test_host_file_send: the file over test2, its checksum over test1
  data.write(hostFile);
  control.write(sha1(hostFile));
  const guest = await guestProgram(lab.guest.files, size, guestFile);
  await lab.settle();
  // test_guest_file_send: the host checks what came and the checksum the guest sent
  const reply = control.readText();
  return { hostFile, guestFile, fromGuest, reply, guest };
}

describe('the case study (seeds/002): one device, console.0, test1, test2', () => {
  for (const ring of RINGS) {
    it(`moves 16 MiB each way with matching sha1 (${ring} rings)`, async () => {
      const lab = await bootLab(caseStudy(ring));
      expect(lab.device('vser0')!.queueSnapshot(6)?.format).toBe(ring);
      const drops = record(lab.events, 'drop');
      const run = await caseStudyRun(lab, 16 * MiB);
      expect(run.reply).toBe(`PASS\n${sha1(run.guestFile)}`);
      expect(sha1(...run.fromGuest)).toBe(sha1(run.guestFile));
      expect(sha1(run.guest.received)).toBe(sha1(run.hostFile));
      expect(drops).toEqual([]);
      expect(lab.device('vser0')!.fault).toBe(null);
      const port = lab.port('test2')!.port;
      expect([port.stats.toGuest, port.stats.toHost]).toEqual([16 * MiB, 16 * MiB]);
    });
  }

  it('the same inputs give the same sequence of operations', async () => {
    const runOnce = async (): Promise<string[]> => {
      const lab = await bootLab(caseStudy());
      const labels: string[] = [];
      lab.scheduler.onTask((t) => labels.push(`${t.kind} ${t.label}`));
      await caseStudyRun(lab, 256 * 1024);
      return labels;
    };
    const a = await runOnce();
    const b = await runOnce();
    expect(a.length).toBeGreaterThan(100);
    expect(b).toEqual(a);
  });
});

describe('many ports, many devices', () => {
  async function portsScenario(maxPorts: number) {
    const ports = Array.from({ length: maxPorts - 1 }, (_, i) => ({
      driver: 'virtserialport' as const,
      name: `org.test.${i + 1}`,
      chardev: `c${i + 1}`,
    }));
    const lab = await bootLab({
      devices: [
        {
          id: 'vser0',
          maxPorts,
          ports: [{ driver: 'virtconsole', name: 'console', chardev: 'c0' }, ...ports],
        },
      ],
    });
    const names = must(lab.guest.namespace.list('/dev/virtio-ports'));
    expect(names).toHaveLength(maxPorts);
    expect(lab.guest.ports()).toHaveLength(maxPorts);
    // first and last port carry data both ways
    for (const n of [1, maxPorts - 1]) {
      const fd = must(await lab.guest.files.open(`/dev/virtio-ports/org.test.${n}`));
      const host = lab.host(`c${n}`);
      host.connect();
      host.write(`to ${n}`);
      expect(text(await readExactly(lab.guest.files, fd, `to ${n}`.length))).toBe(`to ${n}`);
      await lab.guest.files.write(fd, `from ${n}`);
      await lab.settle();
      expect(host.readText()).toBe(`from ${n}`);
    }
    expect(lab.guest.namespace.readlink(`/dev/virtio-ports/org.test.${maxPorts - 1}`)).toBe(
      `../vport0p${maxPorts - 1}`,
    );
  }

  it('31 ports (the default max_ports) all appear and work', async () => {
    await portsScenario(31);
  });

  it('511 ports (the largest max_ports) all appear and work', async () => {
    await portsScenario(511);
  }, 60_000);

  it('two devices at once, addressed by bus, move data side by side', async () => {
    const lab = await bootLab({
      devices: [
        { id: 'vser0', ports: [{ driver: 'virtserialport', name: 'a', chardev: 'ca' }] },
        { id: 'vser1', ports: [{ driver: 'virtserialport', name: 'b', chardev: 'cb' }] },
      ],
    });
    must(lab.chardevAdd('cc'));
    const extra = must(
      lab.deviceAdd({ driver: 'virtserialport', bus: 'vser1.0', name: 'c', chardev: 'cc' }),
    );
    expect(extra.nr).toBe(2);
    await lab.settle();
    const files = lab.guest.files;
    const results = await Promise.all(
      (['a', 'b', 'c'] as const).map(async (name, i) => {
        const fd = must(await files.open(`/dev/virtio-ports/${name}`));
        const host = lab.host(`c${name}`);
        const sink: Uint8Array[] = [];
        host.onData((b) => sink.push(b));
        host.connect();
        const down = pattern(256 * 1024, i + 1);
        const up = pattern(256 * 1024, i + 11);
        host.write(down);
        const [got] = await Promise.all([
          readExactly(files, fd, down.length),
          files.writeAll(fd, up),
        ]);
        await lab.settle();
        return sha1(got) === sha1(down) && sha1(...sink) === sha1(up);
      }),
    );
    expect(results).toEqual([true, true, true]);
    expect(lab.guest.namespace.readlink('/dev/virtio-ports/c')).toBe('../vport1p2');
  });
});

describe('unplug during a transfer', () => {
  for (const ring of RINGS) {
    it(`unplugging a port mid-transfer ends its calls with ENODEV, counts the drops, and spares the others (${ring})`, async () => {
      const t = caseStudy(ring);
      t.devices![0]!.ports![2]!.id = 'p2';
      const lab = await bootLab(t);
      const files = lab.guest.files;
      const drops = record(lab.events, 'drop');
      const data = lab.host('test2');
      const control = lab.host('test1');
      data.connect();
      control.connect();
      data.pause(); // guest -> host stalls: the port throttles with data queued
      const fd = must(await files.open('/dev/virtio-ports/test2'));
      const fd1 = must(await files.open('/dev/virtio-ports/test1'));
      data.write(pattern(4 * MiB));
      let readBytes = 0;
      let readEnd = '';
      const reader = (async () => {
        for (;;) {
          const r = await files.read(fd, 65536);
          if (isErrno(r)) return (readEnd = r.code);
          if (r.length === 0) return (readEnd = 'EOF');
          readBytes += r.length;
          if (readBytes >= MiB && lab.port('p2') !== undefined) lab.deviceDel('p2');
        }
      })();
      const writer = files.writeAll(fd, pattern(8 * MiB, 5)); // more than the queue holds
      const [, w] = await Promise.all([reader, writer]);
      await lab.settle();
      expect(readEnd).toBe('ENODEV');
      expect(isErrno(w) && w.code).toBe('ENODEV');
      expect(readBytes).toBeGreaterThanOrEqual(MiB);
      expect(readBytes).toBeLessThan(4 * MiB);
      const unplugged = drops
        .filter((d) => d.reason === 'unplugged')
        .reduce((n, d) => n + d.bytes, 0);
      expect(unplugged).toBeGreaterThan(0);
      expect(lab.device('vser0')!.fault).toBe(null);
      // the other port still works
      control.write('still here');
      expect(text(await readExactly(files, fd1, 10))).toBe('still here');
      expect(lab.guest.namespace.exists('/dev/virtio-ports/test2')).toBe(false);
    });
  }
});
