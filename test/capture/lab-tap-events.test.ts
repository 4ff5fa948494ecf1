/**
 * tapLab's records in detail, into a MemorySink: what each engine event
 * becomes, the port switches and the `ports` option, ring operations, and
 * the promise that a tap with capture off for everything costs the engine
 * nothing (it is not subscribed to 'data', tracers are idle). Ring records
 * are also read back by tshark with the Lua dissector.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { CaptureError } from '../../core/capture/error.js';
import { tapLab } from '../../core/capture/lab-tap.js';
import { PcapngWriter } from '../../core/capture/pcapng-writer.js';
import {
  MemorySink,
  type CaptureRecord,
  type DataRecord,
  type EventRecord,
  type RingRecord,
} from '../../core/capture/record.js';
import type { Lab } from '../../core/engine/lab.js';
import { caseStudy, makeLab, must, pattern, readExactly, sha1 } from '../serial/helpers.js';
import { LUA, describeWithTshark, removeTempDirs, tempDir, tshark } from './helpers.js';

afterAll(removeTempDirs);

const events = (s: MemorySink): EventRecord[] =>
  s.records.filter((r): r is EventRecord => r.kind === 'event');
const texts = (s: MemorySink): string[] => events(s).map((r) => r.text);
const data = (s: MemorySink): DataRecord[] =>
  s.records.filter((r): r is DataRecord => r.kind === 'data');

/** Open a port from both ends and move a few bytes each way. */
async function talk(lab: Lab, name: string, chardev = name): Promise<number> {
  const host = lab.host(chardev);
  if (!host.connected) host.connect();
  const node = name.startsWith('vport') ? `/dev/${name}` : `/dev/virtio-ports/${name}`;
  const fd = must(await lab.guest.files.open(node));
  host.write(`to ${name}`);
  expect(Buffer.from(await readExactly(lab.guest.files, fd, 3 + name.length)).toString()).toBe(
    `to ${name}`,
  );
  must(await lab.guest.files.writeAll(fd, `from ${name}`));
  await lab.settle();
  return fd;
}

/** Every tap subscription the engine can see. */
function tapped(lab: Lab): Record<string, boolean> {
  return {
    data: lab.events.has('data'),
    control: lab.events.has('control'),
    // the lab's own drop ledger (core/engine/drop-ledger.ts) always listens: the tap is the second
    drop: lab.events.listenerCount('drop') > 1,
    tracer: lab.device('vser0')!.tracer.active,
  };
}
const NONE = { data: false, control: false, drop: false, tracer: false };
const ALL = { data: true, control: true, drop: true, tracer: true };

describe('tapLab: cost and switches', () => {
  it('is not subscribed to data (nor tracing rings) while capture is off for everything', async () => {
    const lab = makeLab(caseStudy());
    await lab.boot();
    const sink = new MemorySink();
    const tap = tapLab(lab, sink, { ports: [], ring: true });
    expect(tapped(lab)).toEqual(NONE);
    // the interfaces are known all the same, for when capture is switched on
    expect(sink.interfaces.map((i) => i.name)).toEqual(['console.0', 'test1', 'test2']);
    await talk(lab, 'test1');
    expect(sink.records).toEqual([]);

    tap.setAll(true);
    expect(tapped(lab)).toEqual(ALL);
    tap.setAll(false);
    expect(tapped(lab)).toEqual(NONE);
    // the Capture's own switches work the same way
    tap.capture.setPort('vser0', 2, true);
    expect(tapped(lab)).toEqual(ALL);
    tap.capture.setPort('vser0', 2, undefined);
    expect(tapped(lab)).toEqual(NONE);

    tap.setAll(true);
    tap.stop();
    expect(tapped(lab)).toEqual(NONE);
    expect(lab.events.has('port-added')).toBe(false);
    expect(sink.closed).toBe(true);
  });

  it('turns a port off and on while running; other ports go on being captured', async () => {
    const lab = makeLab(caseStudy('packed'));
    const sink = new MemorySink();
    const tap = tapLab(lab, sink);
    await lab.boot();
    const fd1 = await talk(lab, 'test1');
    const fd2 = await talk(lab, 'test2');
    tap.setPort('vser0', 1, false);
    const before = sink.records.length;
    lab.host('test1').write('not captured');
    await readExactly(lab.guest.files, fd1, 12);
    lab.host('test2').write('captured');
    await readExactly(lab.guest.files, fd2, 8);
    must(await lab.guest.files.close(fd1)); // no event either
    await lab.settle();
    const during = sink.records.slice(before);
    expect(during.filter((r) => r.port === 1)).toEqual([]);
    expect(during.filter((r) => r.kind === 'data').map((r) => r.port)).toEqual([2]);
    tap.setPort('vser0', 1, true);
    await talk(lab, 'test1');
    expect(texts(sink)).toContain('test1: guest opened the port');
    expect(
      data(sink)
        .filter((r) => r.port === 1)
        .map((r) => Buffer.from(r.bytes).toString()),
    ).toEqual(['to test1', 'from test1', 'to test1', 'from test1']);
    tap.stop();
  });

  it('drops a sink that fails, and unsubscribes', async () => {
    const lab = makeLab(caseStudy());
    await lab.boot();
    const failing = new MemorySink();
    failing.write = () => new CaptureError('IoError', 'disk full');
    const tap = tapLab(lab, failing);
    const errors: string[] = [];
    tap.capture.onError((e) => errors.push(e.message));
    expect(tapped(lab).data).toBe(true);
    await talk(lab, 'test1');
    expect(errors).toEqual(['disk full']);
    expect(tapped(lab)).toEqual(NONE);
    tap.stop();
  });
});

describe('tapLab: records', () => {
  it('records throttling, drops with bytes and reasons, emergency writes and NEEDS_RESET as events', async () => {
    // test1's host takes at most 4 KiB until it reads: the port throttles (D5)
    const lab = makeLab({ ...caseStudy(), chardevs: [{ id: 'test1', capacity: 4096 }] });
    const sink = new MemorySink();
    const tap = tapLab(lab, sink);
    await lab.boot();
    const host1 = lab.host('test1');
    host1.connect();
    const fd1 = must(await lab.guest.files.open('/dev/virtio-ports/test1'));
    const sent = pattern(20_000, 11);
    const writing = lab.guest.files.writeAll(fd1, sent);
    const got: Uint8Array[] = [];
    let n = 0;
    while (n < sent.length) {
      await lab.settle();
      const chunk = host1.read();
      got.push(chunk);
      n += chunk.length;
      if (chunk.length === 0) await new Promise((r) => setImmediate(r));
    }
    must(await writing);
    expect(sha1(Buffer.concat(got))).toBe(sha1(sent));
    expect(texts(sink)).toContain('test1: throttled');
    expect(texts(sink)).toContain('test1: unthrottled');
    const g2h = data(sink).filter((r) => r.port === 1 && r.direction === 'guest-to-host');
    expect(sha1(Buffer.concat(g2h.map((r) => r.bytes)))).toBe(sha1(sent));

    // host bytes the guest never read, and host bytes the guest never took, are dropped and said so
    const host2 = lab.host('test2');
    const fd2 = must(await lab.guest.files.open('/dev/virtio-ports/test2'));
    host2.connect();
    host2.write('unread');
    await lab.settle();
    must(await lab.guest.files.close(fd2));
    await lab.settle();
    host2.write('queued!');
    await lab.settle();
    host2.disconnect();
    await lab.settle();
    const drops = events(sink).filter((r) => r.event === 'drop' && r.port === 2);
    expect(drops.map((r) => [r.count, r.direction, r.text])).toEqual([
      [6, 'host-to-guest', 'test2: dropped 6 bytes (closed-unread, by the guest)'],
      [7, 'host-to-guest', 'test2: dropped 7 bytes (host-hung-up, in chardev test2)'],
    ]);
    expect(texts(sink)).toContain('test2: guest closed the port');
    expect(texts(sink)).toContain('test2: host disconnected');

    // C1/C2: an emergency write goes to the console; as in QEMU the console
    // offers it to the backend, which has no host peer and drops it (counted).
    lab.device('vser0')!.writeConfig(8, 4, 0x41);
    await lab.settle();
    expect(texts(sink)).toContain("console.0: emergency write 0x41 'A'");
    expect(texts(sink)).toContain(
      'console.0: dropped 1 bytes (host-disconnected, in chardev test0)',
    );

    // G3: a notify for a queue that does not exist puts the device in NEEDS_RESET
    lab.device('vser0')!.notify(12345);
    await lab.settle();
    const reset = events(sink).find((r) => r.event === 'needs-reset')!;
    expect(reset.port).toBe(undefined);
    expect(reset.rule).toMatch(/^[A-Z]+\d+$/);
    expect(reset.text).toMatch(new RegExp(`^vser0: NEEDS_RESET \\(${reset.rule}\\) \\(.+\\)$`));
    tap.stop();
  });

  it('captures the ports named in `ports`, including ones plugged later, and labels unnamed ports vportDpN', async () => {
    const lab = makeLab(caseStudy());
    const sink = new MemorySink();
    const tap = tapLab(lab, sink, { ports: ['test2', 'hp9', 'vser0:5', 'late'] });
    await lab.boot();
    await talk(lab, 'test1');
    await talk(lab, 'test2');
    for (const [args, chardev] of [
      [{ driver: 'virtserialport', name: 'hp9' }, 'c3'], // nr 3, by name
      [{ driver: 'virtserialport', name: 'other' }, 'c4'], // nr 4, not asked for
      [{ driver: 'virtserialport', id: 'anon5', nr: 5 }, 'c5'], // by device:nr, no name
    ] as const) {
      must(lab.chardevAdd(chardev));
      must(lab.deviceAdd({ ...args, chardev }));
    }
    // and a whole device hot-plugged, with a port asked for by name
    must(lab.addDevice({ id: 'vser1', ports: [] }));
    must(lab.chardevAdd('c-late'));
    must(
      lab.deviceAdd({ driver: 'virtserialport', bus: 'vser1.0', name: 'late', chardev: 'c-late' }),
    );
    await lab.settle();
    await talk(lab, 'hp9', 'c3');
    await talk(lab, 'other', 'c4');
    await talk(lab, 'vport0p5', 'c5');
    await talk(lab, 'late', 'c-late');
    const ports = new Set(data(sink).map((r) => `${r.device}:${r.port}`));
    expect(ports).toEqual(new Set(['vser0:2', 'vser0:3', 'vser0:5', 'vser1:1']));
    expect(texts(sink)).toContain('vport0p5: port added (hot-plug, virtserialport)');
    expect(texts(sink)).toContain('vport0p5: guest opened the port');
    expect(texts(sink)).not.toContain('other: port added (hot-plug, virtserialport)');
    // every port has its interface, captured or not
    expect(
      sink.interfaces.map((i) => `${i.device}:${i.port}:${i.name ?? ''}:${i.deviceIndex}`),
    ).toEqual([
      'vser0:0:console.0:0',
      'vser0:1:test1:0',
      'vser0:2:test2:0',
      'vser0:3:hp9:0',
      'vser0:4:other:0',
      'vser0:5::0',
      'vser1:1:late:1',
    ]);
    expect(lab.deviceDel('vser1')).toBe(null);
    await lab.settle();
    expect(texts(sink)).toContain('late: port removed');
    tap.stop();
  });

  it('decodes control records as the device sent them (PORT_NAME with its NUL)', async () => {
    const lab = makeLab(caseStudy());
    const sink = new MemorySink();
    const tap = tapLab(lab, sink);
    await lab.boot();
    const names = sink.records.filter(
      (r) => r.kind === 'control' && !(r.control instanceof CaptureError) && r.control.name,
    );
    expect(names.map((r) => Buffer.from(r.bytes).toString('latin1'))).toEqual([
      '\0\0\0\0\x07\0\x01\0console.0\0',
      '\x01\0\0\0\x07\0\x01\0test1\0',
      '\x02\0\0\0\x07\0\x01\0test2\0',
    ]);
    expect(names.every((r) => r.direction === 'host-to-guest' && r.portName !== undefined)).toBe(
      true,
    );
    const ready = sink.records.find(
      (r) => r.kind === 'control' && !(r.control instanceof CaptureError) && r.control.event === 0,
    )!;
    expect(ready).toMatchObject({ direction: 'guest-to-host', port: undefined });
    tap.stop();
  });
});

async function ringCapture(sink: MemorySink | PcapngWriter): Promise<void> {
  const lab = makeLab(caseStudy());
  const tap = tapLab(lab, sink, { ring: true });
  await lab.boot();
  await talk(lab, 'test1');
  tap.setAll(false);
  expect(lab.device('vser0')!.tracer.active).toBe(false);
  tap.stop();
}

describe('tapLab: ring operations', () => {
  it('records ring operations of device and driver, by port and direction, with `ring: true`', async () => {
    const sink = new MemorySink();
    await ringCapture(sink);
    const rings = sink.records.filter((r): r is RingRecord => r.kind === 'ring');
    const ops = new Set(rings.map((r) => r.op));
    for (const op of ['driver-add', 'device-pop', 'device-push', 'driver-reclaim']) {
      expect(ops).toContain(op);
    }
    // test1's rx queue is 4, its tx queue 5; control queues 2 and 3 are device-wide
    const q = (n: number) => rings.filter((r) => r.queue === n);
    expect(q(4).every((r) => r.port === 1 && r.direction === 'host-to-guest')).toBe(true);
    expect(q(5).every((r) => r.port === 1 && r.direction === 'guest-to-host')).toBe(true);
    expect(q(2).every((r) => r.port === undefined && r.direction === 'host-to-guest')).toBe(true);
    expect(q(5).length).toBeGreaterThan(0);
    expect(rings[0]!.text).toMatch(/^q\d+ [a-z-]+: /);
    // without `ring`, none
    const plain = new MemorySink();
    const lab = makeLab(caseStudy());
    const tap = tapLab(lab, plain);
    await lab.boot();
    expect(lab.device('vser0')!.tracer.active).toBe(false);
    expect(plain.records.some((r: CaptureRecord) => r.kind === 'ring')).toBe(false);
    tap.stop();
  });
});

describeWithTshark('tapLab ring records read by tshark', () => {
  it('are event-interface frames the Lua dissector calls ring, with the text as comment', async () => {
    const file = path.join(tempDir('lab-tap-ring'), 'ring.pcapng');
    const w = PcapngWriter.create(file);
    if (w instanceof CaptureError) throw new Error(w.toString());
    const mirror = new MemorySink();
    // the same records into both: tee through a second sink on the same Capture
    const lab = makeLab(caseStudy());
    const tap = tapLab(lab, w, { ring: true });
    tap.capture.attach(mirror);
    await lab.boot();
    await talk(lab, 'test1');
    tap.stop();
    const want = mirror.records.filter((r): r is RingRecord => r.kind === 'ring');
    const r = tshark([
      '-X',
      `lua_script:${LUA}`,
      '-r',
      file,
      '-Y',
      'vmchan.kind == "ring"',
      '-T',
      'fields',
      '-e',
      'frame.comment',
    ]);
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/Lua: Error|error/i);
    expect(r.stdout.split('\n').filter((l) => l)).toEqual(want.map((x) => x.text));
    expect(want.length).toBeGreaterThan(20);
  });
});
