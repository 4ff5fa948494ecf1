/**
 * The reader: round trip of the writer's files, rejection messages, a file
 * cut anywhere (a killed writer), damaged and unknown blocks, big-endian
 * and foreign files, blocks larger than the read window, live refresh.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CaptureError } from '../../core/capture/error.js';
import { parseFilter, type Filter } from '../../core/capture/filter.js';
import type { CaptureReader } from '../../core/capture/pcapng-reader.js';
import { openCapture, openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { PcapngWriter } from '../../core/capture/pcapng-writer.js';
import { dataRecord, type CaptureRecord } from '../../core/capture/record.js';
import {
  T0,
  describeWithTshark,
  tempDir,
  writeScenario,
  type Scenario,
  removeTempDirs,
} from './helpers.js';

afterAll(removeTempDirs);

let dir: string;
let sc: Scenario;

beforeAll(() => {
  dir = tempDir('reader');
  sc = writeScenario(path.join(dir, 'scenario.pcapng'));
});

function open(file: string, options = {}): CaptureReader {
  const r = openCaptureSync(file, options);
  if (r instanceof CaptureError) throw new Error(r.toString());
  return r;
}

function must<T>(v: T | CaptureError): T {
  if (v instanceof CaptureError) throw new Error(v.toString());
  return v;
}

function filter(text: string): Filter {
  const f = parseFilter(text);
  if (!('test' in f)) throw new Error(f.toString());
  return f;
}

/** Offsets of every block in a (little-endian) pcapng file. */
function blockOffsets(bytes: Buffer): { offset: number; type: number; length: number }[] {
  const out = [];
  let o = 0;
  while (o + 8 <= bytes.length) {
    const length = bytes.readUInt32LE(o + 4);
    out.push({ offset: o, type: bytes.readUInt32LE(o), length });
    o += length;
  }
  return out;
}

describe('reading the writer’s files back', () => {
  it('gives back every record with its fields', () => {
    const r = open(sc.file);
    expect(r.count).toBe(sc.written.length);
    expect(r.warnings).toEqual([]);
    expect(r.sections[0]!.userAppl).toBe('vmchan 0.1.0');
    expect(r.sections[0]!.os).toBe('Linux test');
    expect(r.sections[0]!.hardware).toBe('x86_64');
    expect(r.firstTime).toBe(sc.written[0]!.time);
    sc.written.forEach((w, n) => {
      const got = must(r.record(n));
      expect(got.kind).toBe(w.kind);
      expect(got.time).toBe(w.time);
      expect(got.device).toBe(w.device);
      expect(got.port).toBe(w.port);
      expect(got.direction).toBe(w.direction);
      expect(r.kind(n)).toBe(w.kind);
      expect(r.direction(n)).toBe(w.direction);
      expect(r.relativeNs(n)).toBe(Number(w.time - sc.written[0]!.time));
      if (w.kind === 'data' || w.kind === 'control') {
        expect(Buffer.from(got.bytes).equals(Buffer.from(w.bytes))).toBe(true);
        expect(got.length).toBe(w.length);
        expect(r.length(n)).toBe(w.length);
      }
      if (w.kind === 'data') {
        const p = sc.interfaces.find((i) => i.device === w.device && i.port === w.port)!;
        expect(got.portName).toBe(p.name ?? `vport${p.deviceIndex}p${p.port}`);
      }
      if (w.kind === 'control' && got.kind === 'control') expect(got.control).toEqual(w.control);
      if (w.kind === 'event' && got.kind === 'event') {
        expect(got.text).toBe(w.text);
        expect(got.event).toBe(w.event);
        expect(got.count).toBe(w.kind === 'event' && w.event === 'drop' ? w.count : undefined);
        expect(got.rule).toBe(w.rule);
        const p = sc.interfaces.find((i) => i.device === w.device && i.port === w.port);
        expect(got.portName).toBe(p ? (p.name ?? `vport${p.deviceIndex}p${p.port}`) : undefined);
      }
      if (w.kind === 'ring' && got.kind === 'ring') {
        expect([got.queue, got.op, got.text]).toEqual([w.queue, w.op, w.text]);
      }
    });
    r.close();
  });

  it('describes interfaces: role, device, port, name, chardev', () => {
    const r = open(sc.file);
    const byLabel = new Map(r.interfaces.map((i) => [i.label, i]));
    expect(byLabel.get('vmchan:events')!.role).toBe('events');
    expect(byLabel.get('vser0:control')).toMatchObject({ role: 'control', device: 'vser0' });
    expect(byLabel.get('test1')).toMatchObject({
      role: 'data',
      device: 'vser0',
      port: 1,
      portName: 'test1',
      portKind: 'virtserialport',
      chardev: { id: 'c1', backend: 'unix:/tmp/vmchan-c1.sock,server=on,wait=off' },
    });
    expect(byLabel.get('vport0p2')).toMatchObject({ role: 'data', port: 2, portName: undefined });
    expect(byLabel.get('vport0p0')).toMatchObject({ portKind: 'virtconsole' });
    r.close();
  });

  it('attributes control messages and events to the port they concern, from the index alone', () => {
    const r = open(sc.file);
    const test1Records = r.select(filter('port == test1').test);
    const kinds = [...test1Records].map((n) => r.kind(n));
    expect(kinds).toContain('control'); // PORT_NAME, PORT_OPEN for id 1
    expect(kinds).toContain('event'); // guest-open, throttle ...
    expect(kinds).toContain('ring');
    const want = sc.written.flatMap((w, n) => (w.device === 'vser0' && w.port === 1 ? [n] : []));
    expect([...test1Records]).toEqual(want);
    r.close();
  });

  it('runs filters over the index, and contains over the bytes on disk', () => {
    const r = open(sc.file);
    const cases: [string, (w: CaptureRecord) => boolean][] = [
      ['kind == data and dir == h2g', (w) => w.kind === 'data' && w.direction === 'host-to-guest'],
      ['len > 10', (w) => r.length(sc.written.indexOf(w)) > 10],
      ['device == vser1', (w) => w.device === 'vser1'],
      [
        'contains "guest"',
        (w) =>
          Buffer.from(w.bytes).includes('guest') ||
          ((w.kind === 'event' || w.kind === 'ring') && w.text.includes('guest')),
      ],
      ['contains ff:00', (w) => Buffer.from(w.bytes).includes(Buffer.from([0xff, 0]))],
      ['time >= 0.02', (w) => Number(w.time - sc.written[0]!.time) / 1e9 >= 0.02],
      ['time < 0.0050006', (w) => Number(w.time - sc.written[0]!.time) / 1e9 < 0.0050006],
    ];
    for (const [text, pred] of cases) {
      const got = [...r.select(filter(text).test)];
      const want = sc.written.flatMap((w, n) => (pred(w) ? [n] : []));
      expect(got, text).toEqual(want);
    }
    r.close();
  });

  it('opens asynchronously with progress, the same as synchronously', async () => {
    const seen: number[] = [];
    const r = await openCapture(sc.file, { onProgress: (done) => seen.push(done) });
    if (r instanceof CaptureError) throw new Error(r.toString());
    expect(r.count).toBe(sc.written.length);
    expect(seen.at(-1)).toBe(fs.statSync(sc.file).size);
    r.close();
  });

  it('returns an error value for a record number out of range', () => {
    const r = open(sc.file);
    const e = r.record(r.count);
    expect(e).toBeInstanceOf(CaptureError);
    expect(String(e)).toContain(`no record ${r.count + 1}: the capture has ${r.count} records`);
    r.close();
  });
});

describe('files that are not captures', () => {
  const cases: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /not a pcapng file: the file is empty/],
    [
      'text',
      Buffer.from('hello world, not a capture'),
      /not a pcapng file: starts with 0x68656c6c, a pcapng file starts with 0x0a0d0d0a/,
    ],
    [
      'classic pcap',
      Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex'),
      /not a pcapng file: starts with 0xd4c3b2a1 \(a classic pcap file; convert it with `editcap -F pcapng IN OUT`\)/,
    ],
    [
      'short',
      Buffer.from('0a0d0d0a1c000000', 'hex'),
      /not a pcapng file: only 8 bytes, a section header needs 28/,
    ],
    ['two bytes', Buffer.from('0a0d', 'hex'), /not a pcapng file: starts with 0x0a0d/],
    [
      'bad magic',
      Buffer.from('0a0d0d0a1c00000011223344010000000000000000000000000000001c000000', 'hex'),
      /bad byte-order magic 0x44332211/,
    ],
    [
      'cut header',
      Buffer.from('0a0d0d0a400000004d3c2b1a01000000ffffffffffffffff00000000', 'hex'),
      /truncated block at offset 0: the block says 64 bytes, the file has 28 left/,
    ],
    [
      'version 2',
      Buffer.from('0a0d0d0a1c0000004d3c2b1a02000000ffffffffffffffff1c000000', 'hex'),
      /pcapng version 2\.0; only 1\.0 \(and 1\.2\) is understood/,
    ],
  ];
  for (const [name, bytes, message] of cases) {
    it(`rejects ${name} with a message naming what is wrong`, () => {
      const file = path.join(dir, `bad-${name.replace(/ /g, '-')}`);
      fs.writeFileSync(file, bytes);
      const r = openCaptureSync(file);
      expect(r).toBeInstanceOf(CaptureError);
      expect(String(r)).toMatch(message);
      expect(String(r)).toContain(file);
    });
  }

  it('names a missing file', () => {
    const r = openCaptureSync(path.join(dir, 'nope.pcapng'));
    expect(String(r)).toMatch(/cannot open capture: ENOENT/);
  });
});

describe('damaged files', () => {
  it('reads everything before a cut, wherever the cut is, and warns about the cut block', () => {
    const bytes = fs.readFileSync(sc.file);
    const blocks = blockOffsets(bytes);
    const firstPacket = blocks.find((b) => b.type === 6)!.offset;
    for (let cut = firstPacket; cut <= bytes.length; cut++) {
      const file = path.join(dir, 'cut.pcapng');
      fs.writeFileSync(file, bytes.subarray(0, cut));
      const r = openCaptureSync(file, { windowBytes: 64 * 1024 });
      if (r instanceof CaptureError) throw new Error(`cut ${cut}: ${r}`);
      const complete = blocks.filter((b) => b.type === 6 && b.offset + b.length <= cut).length;
      expect(r.count).toBe(complete);
      const partial = blocks.find((b) => b.offset < cut && b.offset + b.length > cut);
      if (partial) {
        expect(r.warnings.length).toBe(1);
        expect(r.warnings[0]!.toString()).toMatch(
          new RegExp(`truncated block at offset ${partial.offset}\\b`),
        );
      } else expect(r.warnings).toEqual([]);
      r.close();
    }
  });

  it('stops at a block whose trailing length disagrees, keeping what came before', () => {
    const bytes = Buffer.from(fs.readFileSync(sc.file));
    const packets = blockOffsets(bytes).filter((b) => b.type === 6);
    const victim = packets[10]!;
    bytes.writeUInt32LE(victim.length + 4, victim.offset + victim.length - 4);
    const file = path.join(dir, 'damaged.pcapng');
    fs.writeFileSync(file, bytes);
    const r = open(file);
    expect(r.count).toBe(10);
    expect(r.warnings[0]!.toString()).toContain(
      `block at offset ${victim.offset}: trailing length ${victim.length + 4} does not match leading length ${victim.length}`,
    );
    r.close();
  });

  it('skips blocks it does not know (name resolution, custom, statistics)', () => {
    const bytes = fs.readFileSync(sc.file);
    const packets = blockOffsets(bytes).filter((b) => b.type === 6);
    const at = packets[3]!.offset;
    const custom = Buffer.alloc(20);
    custom.writeUInt32LE(0x00000bad, 0);
    custom.writeUInt32LE(20, 4);
    custom.writeUInt32LE(32473, 8); // private enterprise number
    custom.writeUInt32LE(0xdeadbeef, 12);
    custom.writeUInt32LE(20, 16);
    const nrb = Buffer.alloc(16);
    nrb.writeUInt32LE(4, 0);
    nrb.writeUInt32LE(16, 4);
    nrb.writeUInt32LE(0, 8); // nrb_record_end
    nrb.writeUInt32LE(16, 12);
    const file = path.join(dir, 'unknown-blocks.pcapng');
    fs.writeFileSync(file, Buffer.concat([bytes.subarray(0, at), custom, nrb, bytes.subarray(at)]));
    const r = open(file);
    expect(r.count).toBe(sc.written.length);
    expect(Buffer.from(must(r.payload(3))).equals(Buffer.from(sc.written[3]!.bytes))).toBe(true);
    r.close();
  });
});

/** A big-endian pcapng with one USER0 interface and two packets, built by hand. */
function bigEndianCapture(): Buffer {
  const opt = (code: number, value: Buffer) => {
    const b = Buffer.alloc(4 + ((value.length + 3) & ~3));
    b.writeUInt16BE(code, 0);
    b.writeUInt16BE(value.length, 2);
    value.copy(b, 4);
    return b;
  };
  const block = (type: number, body: Buffer) => {
    const total = 12 + body.length;
    const b = Buffer.alloc(total);
    b.writeUInt32BE(type, 0);
    b.writeUInt32BE(total, 4);
    body.copy(b, 8);
    b.writeUInt32BE(total, total - 4);
    return b;
  };
  const shbBody = Buffer.alloc(16);
  shbBody.writeUInt32BE(0x1a2b3c4d, 0);
  shbBody.writeUInt16BE(1, 4);
  shbBody.writeInt32BE(-1, 8);
  shbBody.writeInt32BE(-1, 12);
  const idbHead = Buffer.alloc(8);
  idbHead.writeUInt16BE(147, 0);
  const idb = Buffer.concat([
    idbHead,
    opt(2, Buffer.from('bigport')),
    opt(3, Buffer.from('device vserBE, port 4, virtserialport, no chardev')),
    opt(9, Buffer.from([9])),
    Buffer.alloc(4),
  ]);
  const epb = (ts: bigint, data: Buffer, flags: number) => {
    const head = Buffer.alloc(20);
    head.writeUInt32BE(0, 0);
    head.writeUInt32BE(Number(ts >> 32n), 4);
    head.writeUInt32BE(Number(ts & 0xffffffffn), 8);
    head.writeUInt32BE(data.length, 12);
    head.writeUInt32BE(data.length, 16);
    const flagsValue = Buffer.alloc(4);
    flagsValue.writeUInt32BE(flags, 0);
    return Buffer.concat([
      head,
      data,
      Buffer.alloc(((data.length + 3) & ~3) - data.length),
      opt(2, flagsValue),
      Buffer.alloc(4),
    ]);
  };
  return Buffer.concat([
    block(0x0a0d0d0a, shbBody),
    block(1, idb),
    block(6, epb(T0, Buffer.from('big-endian h2g'), 1)),
    block(6, epb(T0 + 1500n, Buffer.from('g2h'), 2)),
  ]);
}

describe('other pcapng files', () => {
  it('reads big-endian sections', () => {
    const file = path.join(dir, 'be.pcapng');
    fs.writeFileSync(file, bigEndianCapture());
    const r = open(file);
    expect(r.count).toBe(2);
    expect(r.sections[0]!.littleEndian).toBe(false);
    const a = must(r.record(0));
    const b = must(r.record(1));
    expect([a.kind, a.device, a.port, a.portName, a.direction, a.time]).toEqual([
      'data',
      'vserBE',
      4,
      'bigport',
      'host-to-guest',
      T0,
    ]);
    expect(Buffer.from(a.bytes).toString()).toBe('big-endian h2g');
    expect([b.direction, b.time, Buffer.from(b.bytes).toString()]).toEqual([
      'guest-to-host',
      T0 + 1500n,
      'g2h',
    ]);
    expect(r.relativeNs(1)).toBe(1500);
    r.close();
  });

  it('reads several sections, each with its own interfaces', () => {
    const one = fs.readFileSync(sc.file);
    const file = path.join(dir, 'two-sections.pcapng');
    fs.writeFileSync(file, Buffer.concat([one, bigEndianCapture(), one]));
    const r = open(file);
    expect(r.sections.length).toBe(3);
    expect(r.count).toBe(2 * sc.written.length + 2);
    const be = must(r.record(sc.written.length));
    expect(be.portName).toBe('bigport');
    const again = must(r.record(sc.written.length + 2 + 5));
    expect(again.time).toBe(sc.written[5]!.time);
    expect(again.portName).toBe(must(r.record(5)).portName);
    r.close();
  });

  it('reads a packet larger than the read window', () => {
    const file = path.join(dir, 'big.pcapng');
    const w = must(PcapngWriter.create(file, { bufferBytes: 4096 }));
    const big = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff);
    w.write(
      dataRecord({
        time: T0,
        device: 'vser0',
        port: 1,
        direction: 'guest-to-host',
        bytes: Uint8Array.of(1),
      }),
    );
    w.write(
      dataRecord({
        time: T0 + 1n,
        device: 'vser0',
        port: 1,
        direction: 'host-to-guest',
        bytes: big,
      }),
    );
    w.write(
      dataRecord({
        time: T0 + 2n,
        device: 'vser0',
        port: 1,
        direction: 'guest-to-host',
        bytes: Uint8Array.of(2),
      }),
    );
    w.close();
    const r = open(file, { windowBytes: 64 * 1024 });
    expect(r.count).toBe(3);
    expect(r.direction(1)).toBe('host-to-guest');
    expect(Buffer.from(must(r.payload(1))).equals(Buffer.from(big))).toBe(true);
    expect(must(r.payload(2))[0]).toBe(2);
    r.close();
  });

  it('follows a capture while it is being written (refresh)', () => {
    const file = path.join(dir, 'live.pcapng');
    const w = must(PcapngWriter.create(file));
    const rec = (i: number) =>
      dataRecord({
        time: T0 + BigInt(i),
        device: 'vser0',
        port: 1,
        direction: 'host-to-guest',
        bytes: Buffer.from(`rec ${i}`),
      });
    for (let i = 0; i < 5; i++) w.write(rec(i));
    w.flush();
    const r = open(file);
    expect(r.count).toBe(5);
    for (let i = 5; i < 12; i++) w.write(rec(i));
    w.flush();
    expect(r.refresh()).toBe(7);
    expect(Buffer.from(must(r.payload(11))).toString()).toBe('rec 11');
    expect(r.refresh()).toBe(0);
    w.close();
    r.close();
  });
});

describeWithTshark('files written by other tools', () => {
  it('reads a pcapng text2pcap made (microsecond timestamps, Ethernet)', () => {
    const txt = path.join(dir, 'frames.txt');
    fs.writeFileSync(txt, '0000 ff ff ff ff ff ff 00 11 22 33 44 55 08 00 45 00\n0010 00 14\n');
    const file = path.join(dir, 'foreign.pcapng');
    execFileSync('text2pcap', ['-n', '-t', '%s.', txt, file], { stdio: 'ignore' });
    const r = open(file);
    expect(r.count).toBe(1);
    expect(r.interfaces[0]!.role).toBe('foreign');
    expect(r.interfaces[0]!.linkType).toBe(1);
    const rec = must(r.record(0));
    expect(rec.kind).toBe('data');
    expect(rec.length).toBe(18);
    r.close();
  });

  it('reads our capture after editcap rewrote it', () => {
    const file = path.join(dir, 'editcap.pcapng');
    execFileSync('editcap', ['-F', 'pcapng', sc.file, file], { stdio: 'ignore' });
    const r = open(file);
    expect(r.count).toBe(sc.written.length);
    sc.written.forEach((w, n) => {
      const got = must(r.record(n));
      expect([got.kind, got.time, got.direction, got.port]).toEqual([
        w.kind,
        w.time,
        w.direction,
        w.port,
      ]);
    });
    r.close();
  });
});
