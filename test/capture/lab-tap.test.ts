/**
 * tapLab on the case-study lab (split and packed rings), read back by the
 * real tshark: data moved both ways on test1 and test2, ports opened and
 * closed, a port hot-plugged mid-run and unplugged, test1's capture switched
 * off and on again. The payload bytes per port and direction must be exactly
 * what was sent; tshark, the Lua dissector, and vmchan's own reader and
 * follow must all agree.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as path from 'node:path';
import { CaptureError } from '../../core/capture/error.js';
import { followCapture, followRaw } from '../../core/capture/follow.js';
import { tapLab } from '../../core/capture/lab-tap.js';
import { openCaptureSync, type CaptureReader } from '../../core/capture/pcapng-reader.js';
import { PcapngWriter } from '../../core/capture/pcapng-writer.js';
import type { Direction } from '../../core/capture/record.js';
import type { Lab } from '../../core/engine/lab.js';
import type { MemoryPeer } from '../../core/serial/memory-endpoint.js';
import { RINGS, caseStudy, makeLab, must, pattern, readExactly, sha1 } from '../serial/helpers.js';
import {
  LUA,
  describeWithTshark,
  removeTempDirs,
  tempDir,
  tshark,
  tsharkFields,
} from './helpers.js';

afterAll(removeTempDirs);

const OFF_MARKER = 'capture-is-off-for-test1;';

interface Sent {
  'host-to-guest': Uint8Array[];
  'guest-to-host': Uint8Array[];
}

interface Run {
  file: string;
  /** Bytes that should be in the capture, per port label. */
  captured: Map<string, Sent>;
  /** What the host side received, per port label (everything, captured or not). */
  received: Map<string, Uint8Array[]>;
  /** Everything the guest sent per port label, including while capture was off. */
  sentG2h: Map<string, Uint8Array[]>;
  records: number;
}

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

/** Host -> guest, then guest -> host on one open port; returns when both arrived. */
async function exchange(
  lab: Lab,
  fd: number,
  host: MemoryPeer,
  h2g: Uint8Array,
  g2h: Uint8Array,
): Promise<void> {
  host.write(h2g);
  const got = await readExactly(lab.guest.files, fd, h2g.length);
  expect(sha1(got)).toBe(sha1(h2g));
  must(await lab.guest.files.writeAll(fd, g2h));
  await lab.settle();
}

async function runScenario(ring: 'split' | 'packed', file: string): Promise<Run> {
  const lab = makeLab(caseStudy(ring));
  const writer = must(PcapngWriter.create(file));
  if (writer instanceof CaptureError) throw new Error(writer.toString());
  // The tap starts before boot: the boot's control messages are in the capture.
  const tap = tapLab(lab, writer);
  expect(await lab.boot()).toBe(null);

  const captured = new Map<string, Sent>();
  const received = new Map<string, Uint8Array[]>();
  const sentG2h = new Map<string, Uint8Array[]>();
  const expectCaptured = (label: string, h2g: Uint8Array, g2h: Uint8Array) => {
    const s = captured.get(label) ?? { 'host-to-guest': [], 'guest-to-host': [] };
    s['host-to-guest'].push(h2g);
    s['guest-to-host'].push(g2h);
    captured.set(label, s);
  };
  const connect = (chardev: string, label: string): MemoryPeer => {
    const host = lab.host(chardev);
    const got: Uint8Array[] = [];
    received.set(label, got);
    host.onData((b) => got.push(new Uint8Array(b)));
    host.connect();
    return host;
  };
  const send = async (
    label: string,
    fd: number,
    host: MemoryPeer,
    h2g: Uint8Array,
    g2h: Uint8Array,
  ) => {
    await exchange(lab, fd, host, h2g, g2h);
    sentG2h.set(label, [...(sentG2h.get(label) ?? []), g2h]);
  };

  const host1 = connect('test1', 'test1');
  const host2 = connect('test2', 'test2');
  const fd1 = must(await lab.guest.files.open('/dev/virtio-ports/test1'));
  const fd2 = must(await lab.guest.files.open('/dev/virtio-ports/test2'));
  await lab.settle();

  const a = [pattern(100_000, 1), pattern(70_000, 2)] as const;
  await send('test1', fd1, host1, ...a);
  expectCaptured('test1', ...a);
  const b = [pattern(50_000, 3), pattern(30_001, 4)] as const;
  await send('test2', fd2, host2, ...b);
  expectCaptured('test2', ...b);

  // test1 off: its bytes still flow, but are not captured; test2 still is.
  tap.setPort('vser0', 1, false);
  const off = Buffer.from(OFF_MARKER.repeat(300));
  await send('test1', fd1, host1, off, off);
  const c = [pattern(9_000, 5), pattern(7_000, 6)] as const;
  await send('test2', fd2, host2, ...c);
  expectCaptured('test2', ...c);
  // and on again (its own switch back to following "all")
  tap.setPort('vser0', 1, undefined);
  const d = [pattern(20_000, 7), pattern(10_000, 8)] as const;
  await send('test1', fd1, host1, ...d);
  expectCaptured('test1', ...d);

  // hot-plug a port mid-run, use it, unplug it
  must(lab.chardevAdd('hp'));
  must(lab.deviceAdd({ driver: 'virtserialport', id: 'hp1', name: 'hp1', chardev: 'hp' }));
  await lab.settle();
  const hostHp = connect('hp', 'hp1');
  const fdHp = must(await lab.guest.files.open('/dev/virtio-ports/hp1'));
  const e = [Buffer.from('hello hot-plugged port\n'), pattern(5_000, 9)] as const;
  await send('hp1', fdHp, hostHp, ...e);
  expectCaptured('hp1', ...e);
  must(await lab.guest.files.close(fdHp));
  await lab.settle();
  expect(lab.deviceDel('hp1')).toBe(null);
  await lab.settle();

  // close test2 from both ends
  must(await lab.guest.files.close(fd2));
  host2.disconnect();
  await lab.settle();

  tap.stop();
  return { file, captured, received, sentG2h, records: writer.records };
}

/** tshark's view: per frame, interface name, direction flags, payload hex, comment. */
interface Frame {
  iface: string;
  flags: string;
  data: string;
  comment: string;
  number: number;
}

function framesOf(file: string): Frame[] {
  return tsharkFields(file, [
    'frame.number',
    'frame.interface_name',
    'frame.packet_flags_direction',
    'data.data',
    'frame.comment',
  ]).map((r) => ({
    number: Number(r[0]),
    iface: r[1] ?? '',
    flags: r[2] ?? '',
    data: (r[3] ?? '').replace(/:/g, ''),
    comment: r[4] ?? '',
  }));
}

const FLAG: Record<Direction, string> = {
  'host-to-guest': '0x00000001',
  'guest-to-host': '0x00000002',
};

for (const ring of RINGS) {
  describeWithTshark(`tapLab on the case-study lab (${ring} rings), read by tshark`, () => {
    let run: Run;
    let frames: Frame[];
    let reader: CaptureReader;

    beforeAll(async () => {
      run = await runScenario(ring, path.join(tempDir(`lab-tap-${ring}`), 'lab.pcapng'));
      frames = framesOf(run.file);
      const r = openCaptureSync(run.file);
      if (r instanceof CaptureError) throw new Error(r.toString());
      reader = r;
    });
    afterAll(() => reader?.close());

    it('moved every byte (the tap does not change the traffic)', () => {
      for (const [label, sent] of run.sentG2h) {
        expect(sha1(concat(run.received.get(label)!)), label).toBe(sha1(concat(sent)));
      }
    });

    it('has one frame per record, the same count for tshark and vmchan, in time order', () => {
      expect(frames.length).toBe(run.records);
      expect(reader.count).toBe(run.records);
      expect(reader.warnings.map(String)).toEqual([]);
      let last = 0n;
      for (let n = 0; n < reader.count; n++) {
        const t = reader.time(n);
        if (t instanceof CaptureError) throw new Error(t.toString());
        expect(t >= last).toBe(true);
        last = t;
      }
      // at least one record per 4 KiB host buffer, plus control and events
      expect(frames.length).toBeGreaterThan(60);
    });

    it('names frames by port; existing ports are there from the start, the hot-plugged one mid-file', () => {
      expect(new Set(frames.map((f) => f.iface))).toEqual(
        new Set(['vmchan:events', 'vser0:control', 'test1', 'test2', 'hp1']),
      );
      const byName = new Map(reader.interfaces.map((i) => [i.label, i]));
      for (const name of ['console.0', 'test1', 'test2', 'hp1'])
        expect(byName.has(name)).toBe(true);
      const firstPacket = reader.offsetOf(0);
      for (const name of ['console.0', 'test1', 'test2']) {
        expect(byName.get(name)!.offset).toBeLessThan(firstPacket);
      }
      // hp1's interface block comes after packets of the others
      const hp = byName.get('hp1')!;
      const firstHp = frames.findIndex((f) => f.iface === 'hp1');
      expect(frames.slice(0, firstHp).filter((f) => f.iface === 'test1').length).toBeGreaterThan(
        10,
      );
      const lastTest1 = frames.slice(0, firstHp).findLastIndex((f) => f.iface === 'test1');
      expect(hp.offset).toBeGreaterThan(reader.offsetOf(lastTest1));
      expect(hp.id).toBe(Math.max(...reader.interfaces.map((i) => i.id)));
      expect(hp.description).toBe('device vser0, port 3, virtserialport, chardev hp (memory:hp)');
      expect(byName.get('test1')!.description).toBe(
        'device vser0, port 1, virtserialport, chardev test1 (memory:test1)',
      );
      expect(byName.get('console.0')!.portKind).toBe('virtconsole');
    });

    it('gives data frames a direction, and the bytes per port and direction are exactly what was sent', () => {
      for (const [label, sent] of run.captured) {
        for (const dir of ['host-to-guest', 'guest-to-host'] as const) {
          const hex = frames
            .filter((f) => f.iface === label && f.flags === FLAG[dir])
            .map((f) => f.data)
            .join('');
          expect(sha1(Buffer.from(hex, 'hex')), `${label} ${dir}`).toBe(sha1(concat(sent[dir])));
        }
      }
      for (const f of frames.filter((f) => ['test1', 'test2', 'hp1'].includes(f.iface))) {
        expect([FLAG['host-to-guest'], FLAG['guest-to-host']]).toContain(f.flags);
      }
    });

    it('left out test1 while its capture was off', () => {
      const marker = Buffer.from(OFF_MARKER).toString('hex');
      expect(frames.some((f) => f.data.includes(marker))).toBe(false);
    });

    it('carries port events as frames with comments', () => {
      const comments = frames.filter((f) => f.iface === 'vmchan:events').map((f) => f.comment);
      for (const line of [
        'test1: host connected',
        'test2: host connected',
        'test1: guest opened the port',
        'test2: guest opened the port',
        'hp1: port added (hot-plug, virtserialport)',
        'hp1: host connected',
        'hp1: guest opened the port',
        'hp1: guest closed the port',
        'hp1: port removed',
        'test2: guest closed the port',
        'test2: host disconnected',
      ]) {
        expect(comments).toContain(line);
      }
      // and no events of test1 while it was off: none happened, but none from test2 were lost
      expect(comments.every((c) => c.length > 0)).toBe(true);
    });

    it('decodes the control messages with the Lua dissector, both directions', () => {
      const r = tshark([
        '-X',
        `lua_script:${LUA}`,
        '-r',
        run.file,
        '-Y',
        'vmchan.kind == "control"',
        '-T',
        'fields',
        '-e',
        '_ws.col.Info',
      ]);
      expect(r.stderr).not.toMatch(/Lua: Error|error/i);
      expect(r.status).toBe(0);
      const infos = r.stdout.split('\n').filter((l) => l);
      for (const line of [
        'vser0 G→H DEVICE_READY id=0xffffffff value=1',
        'vser0 H→G PORT_ADD id=0 value=1',
        'vser0 H→G PORT_ADD id=1 value=1',
        'vser0 G→H PORT_READY id=1 value=1',
        'vser0 H→G CONSOLE_PORT id=0 value=1',
        'vser0 H→G PORT_NAME id=1 name="test1"',
        'vser0 H→G PORT_OPEN id=1 value=1',
        'vser0 G→H PORT_OPEN id=1 value=1',
        'vser0 H→G PORT_ADD id=3 value=1',
        'vser0 H→G PORT_NAME id=3 name="hp1"',
        'vser0 G→H PORT_OPEN id=3 value=0',
        'vser0 H→G PORT_REMOVE id=3 value=1',
        'vser0 G→H PORT_OPEN id=2 value=0',
        'vser0 H→G PORT_OPEN id=2 value=0',
      ]) {
        expect(infos).toContain(line);
      }
    });

    it("gives the same bytes through vmchan's reader and follow", () => {
      for (const [label, sent] of run.captured) {
        const stream = followCapture(reader, { port: label });
        if (stream instanceof CaptureError) throw new Error(stream.toString());
        for (const dir of ['host-to-guest', 'guest-to-host'] as const) {
          expect(sha1(followRaw(stream, dir)), `${label} ${dir}`).toBe(sha1(concat(sent[dir])));
        }
      }
      // records decode back to the kinds the tap wrote
      const kinds = new Set<string>();
      for (let n = 0; n < reader.count; n++) kinds.add(reader.kind(n));
      expect(kinds).toEqual(new Set(['data', 'control', 'event']));
    });
  });
}
