/**
 * Q2: QEMU 7.2's virtqueue introspection answered from the live rings, in
 * the recorded JSON shapes (status.json, qstatus.jsonl), moving while data
 * flows; and ringbuf-write / ringbuf-read on ringbuf chardevs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  QmpClient,
  SocketClient,
  ok,
  recordedMachineArgs,
  removeTempDirs,
  startRig,
  tempDir,
  waitFor,
  type Rig,
} from './helpers.js';

// Recorded from a real QEMU 7.2 (copied from shared/design so the tests never depend on it).
const SAMPLES = path.join(import.meta.dirname, '..', 'fixtures', 'qemu-7.2-samples');
const VSER0 = '/machine/peripheral/vser0/virtio-backend';

let rig: Rig;
let q: QmpClient;

beforeEach(async () => {
  const dir = tempDir('virtio');
  rig = await startRig(recordedMachineArgs(dir), dir);
  q = await QmpClient.connect(path.join(dir, 'qmp'));
});

afterEach(async () => {
  await q.close();
  await rig.close();
  removeTempDirs();
});

type Status = Record<string, unknown>;

/** The keys of the last line, in the order they were written. */
function lastKeys(): string[] {
  return Object.keys((JSON.parse(q.lines.at(-1)!) as { return: object }).return);
}

describe('Q2 x-query-virtio, x-query-virtio-status', () => {
  it('lists the device by its QOM path', async () => {
    expect(await q.must('x-query-virtio')).toEqual([{ path: VSER0, name: 'virtio-serial' }]);
  });

  it("reports status and features in QEMU 7.2's shape and order", async () => {
    const s = (await q.must('x-query-virtio-status', { path: VSER0 })) as Status;
    {
      const recorded = JSON.parse(fs.readFileSync(path.join(SAMPLES, 'status.json'), 'utf8')) as {
        return: object;
      };
      expect(lastKeys()).toEqual(Object.keys(recorded.return));
    }
    expect(s).toMatchObject({
      name: 'virtio-serial',
      'device-id': 3,
      'num-vqs': 18,
      'bus-name': 'vser0.0',
      started: true,
      broken: false,
      'vhost-started': false,
      'device-endian': 'little',
      'queue-sel': 17,
      status: {
        statuses: [
          'VIRTIO_CONFIG_S_ACKNOWLEDGE: Valid virtio device found',
          'VIRTIO_CONFIG_S_DRIVER: Guest OS compatible with device',
          'VIRTIO_CONFIG_S_FEATURES_OK: Feature negotiation complete',
          'VIRTIO_CONFIG_S_DRIVER_OK: Driver setup and ready',
        ],
      },
      'backend-features': { 'dev-features': [], transports: [] },
      'host-features': {
        'dev-features': [
          'VIRTIO_CONSOLE_F_EMERG_WRITE: Emergency write supported',
          'VIRTIO_CONSOLE_F_MULTIPORT: Multiple ports for device supported',
        ],
        transports: [
          'VIRTIO_RING_F_EVENT_IDX: Used & avail. event fields enabled',
          'VIRTIO_RING_F_INDIRECT_DESC: Indirect descriptors supported',
          'VIRTIO_F_VERSION_1: Device compliant for v1 spec (legacy)',
          'VIRTIO_F_ANY_LAYOUT: Device accepts arbitrary desc. layouts',
          'VIRTIO_F_NOTIFY_ON_EMPTY: Notify when device runs out of avail. descs. on VQ',
        ],
      },
      'guest-features': {
        'dev-features': ['VIRTIO_CONSOLE_F_MULTIPORT: Multiple ports for device supported'],
      },
    });
  });

  it('answers a path that is not a virtio device as QEMU does', async () => {
    expect(
      await q.execute('x-query-virtio-status', { path: '/machine/peripheral/port1' }),
    ).toMatchObject({
      error: {
        class: 'GenericError',
        desc: 'Path /machine/peripheral/port1 is not a VirtIODevice',
      },
    });
  });
});

describe('Q2 x-query-virtio-queue-status from the real rings', () => {
  it('answers every queue in the recorded shape', async () => {
    const recorded = fs
      .readFileSync(path.join(SAMPLES, 'qstatus.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => Object.keys((JSON.parse(l) as { return: object }).return));
    expect(recorded.length).toBe(18);
    for (let queue = 0; queue < 18; queue++) {
      const s = (await q.must('x-query-virtio-queue-status', { path: VSER0, queue })) as Status;
      if (recorded[queue] !== undefined) expect(lastKeys()).toEqual(recorded[queue]);
      expect(s['queue-index']).toBe(queue);
      expect(s['vring-num-default']).toBe(queue === 2 || queue === 3 ? 32 : 128);
      expect(s['vring-align']).toBe(4096);
    }
    // The guest posted 128 receive buffers for the console (port 0, queue 0), none used yet.
    const rx0 = (await q.must('x-query-virtio-queue-status', { path: VSER0, queue: 0 })) as Status;
    expect(rx0).toMatchObject({ 'last-avail-idx': 0, 'shadow-avail-idx': 128, 'used-idx': 0 });
    expect(rx0['vring-desc']).toBeGreaterThan(0);
    expect(
      await q.execute('x-query-virtio-queue-status', { path: VSER0, queue: 18 }),
    ).toMatchObject({
      error: { desc: 'Invalid virtqueue number 18' },
    });
    expect(
      await q.execute('x-query-virtio-queue-status', { path: VSER0, queue: 70000 }),
    ).toMatchObject({
      error: { desc: "Parameter 'queue' expects uint16_t" },
    });
  });

  it('moves during a transfer: transmit queue indices advance, inuse returns to 0', async () => {
    const host = await SocketClient.connect(path.join(rig.dir, 'c1'));
    const files = rig.machine.lab.guest.files;
    const fd = ok(await files.open('/dev/virtio-ports/org.test.port.1'));
    await waitFor(() => rig.machine.lab.port('port1')?.port.hostConnected === true, 'host side');
    // Port 1 transmits on queue 5 and receives on queue 4.
    const tx = async (): Promise<Status> =>
      (await q.must('x-query-virtio-queue-status', { path: VSER0, queue: 5 })) as Status;
    const before = await tx();
    const payload = new Uint8Array(100_000).fill(0x61);
    const writing = files.writeAll(fd, payload);
    const samples: number[] = [];
    while (host.received.length < payload.length) {
      samples.push((await tx())['used-idx'] as number); // a QMP round trip: the engine runs meanwhile
    }
    ok(await writing);
    const after = await tx();
    expect(after['used-idx']).toBeGreaterThan(before['used-idx'] as number);
    expect(after['last-avail-idx']).toBe(after['used-idx']);
    expect(after.inuse).toBe(0);
    // Sampled while bytes moved: never backwards, never past the end.
    for (let i = 1; i < samples.length; i++)
      expect(samples[i]).toBeGreaterThanOrEqual(samples[i - 1]!);
    for (const s of samples) expect(s).toBeLessThanOrEqual(after['used-idx'] as number);

    const rxBefore = (await q.must('x-query-virtio-queue-status', {
      path: VSER0,
      queue: 4,
    })) as Status;
    host.write('to the guest');
    expect(Buffer.from(ok(await files.read(fd, 100))).toString()).toBe('to the guest');
    const rxAfter = (await q.must('x-query-virtio-queue-status', {
      path: VSER0,
      queue: 4,
    })) as Status;
    expect(rxAfter['used-idx']).toBe((rxBefore['used-idx'] as number) + 1);
    await host.close();
  });

  it('x-query-virtio-queue-element shows the next receive buffer', async () => {
    const e = (await q.must('x-query-virtio-queue-element', { path: VSER0, queue: 4 })) as Status;
    expect(e).toMatchObject({
      name: 'virtio-serial',
      descs: [{ len: 4096, flags: ['write'] }],
      avail: { idx: 128 },
      used: { idx: 0 },
    });
    expect(e.index).toBe((e.avail as Status).ring);
    expect(await q.execute('x-query-virtio-queue-element', { path: '/x', queue: 4 })).toMatchObject(
      {
        error: { desc: 'Path /x is not a VirtIO device' },
      },
    );
  });
});

describe('Q2 ringbuf-write and ringbuf-read', () => {
  it("writes then reads back, utf8 and base64, with QEMU's refusals", async () => {
    await q.must('chardev-add', { id: 'rb', backend: { type: 'ringbuf', data: { size: 1024 } } });
    expect(await q.execute('ringbuf-write', { device: 'rb', data: 'hello world' })).toMatchObject({
      return: {},
    });
    expect(await q.must('ringbuf-read', { device: 'rb', size: 5 })).toBe('hello');
    expect(await q.must('ringbuf-read', { device: 'rb', size: 100, format: 'base64' })).toBe(
      Buffer.from(' world').toString('base64'),
    );
    await q.must('ringbuf-write', {
      device: 'rb',
      data: Buffer.from([0xc3, 0xa9]).toString('base64'),
      format: 'base64',
    });
    expect(await q.must('ringbuf-read', { device: 'rb', size: 10 })).toBe('é');
    const err = async (command: string, args: Record<string, unknown>): Promise<unknown> =>
      ((await q.execute(command, args)) as { error?: unknown }).error;
    expect(await err('ringbuf-read', { device: 'nope', size: 1 })).toEqual({
      class: 'GenericError',
      desc: "Device 'nope' not found",
    });
    expect(await err('ringbuf-read', { device: 'c1', size: 1 })).toEqual({
      class: 'GenericError',
      desc: 'c1 is not a ringbuf device',
    });
    expect(await err('ringbuf-read', { device: 'rb', size: 0 })).toEqual({
      class: 'GenericError',
      desc: 'size must be greater than zero',
    });
    expect(await err('ringbuf-write', { device: 'rb', data: '!!', format: 'base64' })).toEqual({
      class: 'GenericError',
      desc: 'Base64 data contains invalid characters',
    });
    expect(await err('ringbuf-read', { device: 'rb', size: 1, format: 'hex' })).toEqual({
      class: 'GenericError',
      desc: "Parameter 'format' does not accept value 'hex'",
    });
    expect(
      await err('chardev-add', { id: 'rb2', backend: { type: 'ringbuf', data: { size: 1000 } } }),
    ).toEqual({ class: 'GenericError', desc: 'size of ringbuf chardev must be power of two' });
  });

  it('keeps what a guest program writes to a port on a ringbuf', async () => {
    await q.must('chardev-add', { id: 'rb', backend: { type: 'ringbuf', data: {} } });
    await q.must('device_add', {
      driver: 'virtserialport',
      chardev: 'rb',
      name: 'logport',
      id: 'lp',
    });
    await waitFor(
      () => rig.machine.lab.guest.namespace.exists('/dev/virtio-ports/logport'),
      'link',
    );
    const files = rig.machine.lab.guest.files;
    const fd = ok(await files.open('/dev/virtio-ports/logport'));
    ok(await files.writeAll(fd, 'guest log line\n'));
    await waitFor(() => {
      const c = rig.machine.chardevs().find((x) => x.id === 'rb');
      return c !== undefined;
    }, 'rb');
    let got = '';
    await waitFor(() => {
      const r = rig.machine.ringbufRead('rb', 0x1000);
      if (r instanceof Uint8Array) got += Buffer.from(r).toString();
      return got === 'guest log line\n';
    }, 'the guest bytes in the ring');
  });
});
