/**
 * Follow stream (raw per direction, hex with markers, text) and the
 * tshark-like summary lines and hex dump.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { CaptureError } from '../../core/capture/error.js';
import {
  followCapture,
  followHex,
  followRaw,
  followRecords,
  followText,
  type FollowStream,
} from '../../core/capture/follow.js';
import {
  directionArrow,
  hexDump,
  printable,
  recordSummary,
  summaryLine,
} from '../../core/capture/format.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import {
  controlRecord,
  dataRecord,
  encodeControl,
  eventRecord,
  type CaptureRecord,
} from '../../core/capture/record.js';
import {
  BINARY,
  describeWithTshark,
  tempDir,
  tshark,
  writeScenario,
  type Scenario,
  removeTempDirs,
} from './helpers.js';

afterAll(removeTempDirs);

const t = 1_700_000_000_000_000_000n;
const d = (
  i: number,
  direction: 'host-to-guest' | 'guest-to-host',
  text: string | Uint8Array,
  port = 1,
): CaptureRecord =>
  dataRecord({
    time: t + BigInt(i),
    device: 'vser0',
    port,
    portName: port === 1 ? 'test1' : undefined,
    direction,
    bytes: typeof text === 'string' ? Buffer.from(text) : text,
  });

const conversation: CaptureRecord[] = [
  d(0, 'host-to-guest', 'hello '),
  d(1, 'host-to-guest', 'guest\n'),
  eventRecord({ time: t + 2n, device: 'vser0', port: 1, portName: 'test1', event: 'guest-open' }),
  d(3, 'guest-to-host', 'hi\x01host\n'),
  d(4, 'host-to-guest', 'other port', 2),
  d(5, 'host-to-guest', 'bye'),
];

function must(s: FollowStream | CaptureError): FollowStream {
  if (s instanceof CaptureError) throw new Error(s.toString());
  return s;
}

describe('follow stream', () => {
  it('keeps one port, both directions, in time order', () => {
    const s = must(followRecords(conversation, { port: 'test1' }));
    expect(s.segments.map((x) => [x.record, x.direction])).toEqual([
      [0, 'host-to-guest'],
      [1, 'host-to-guest'],
      [3, 'guest-to-host'],
      [5, 'host-to-guest'],
    ]);
    expect([s.hostToGuest, s.guestToHost, s.label]).toEqual([15, 8, 'test1']);
    expect(Buffer.from(followRaw(s, 'host-to-guest')).toString()).toBe('hello guest\nbye');
    expect(Buffer.from(followRaw(s, 'guest-to-host')).toString()).toBe('hi\x01host\n');
    expect(must(followRecords(conversation, { device: 'vser0', port: 1 })).segments.length).toBe(4);
  });

  it('renders a hex dump with direction markers and per-direction offsets', () => {
    const s = must(followRecords(conversation, { port: 1 }));
    expect(followHex(s)).toBe(
      [
        '='.repeat(67),
        'Follow: vmchan,hex',
        'Port: test1 (vser0 port 1)',
        'H> host-to-guest: 15 bytes',
        'G> guest-to-host: 8 bytes',
        'H> 00000000  68 65 6c 6c 6f 20 67 75  65 73 74 0a              hello guest.',
        'G> 00000000  68 69 01 68 6f 73 74 0a                           hi.host.',
        'H> 0000000c  62 79 65                                          bye',
        '='.repeat(67),
      ].join('\n'),
    );
  });

  it('renders text with markers, non-printables as dots', () => {
    const s = must(followRecords(conversation, { port: 'test1' }));
    expect(followText(s).split('\n').slice(5)).toEqual([
      'H> hello guest',
      'G> hi.host',
      'H> bye',
      '='.repeat(67),
    ]);
  });

  it('says when the port has no data', () => {
    const e = followRecords(conversation, { port: 'nope' });
    expect(String(e)).toBe('no data for port nope in this capture');
  });

  it('stops at a size limit and says so', () => {
    const s = must(followRecords(conversation, { port: 1 }, { maxBytes: 13 }));
    expect(s.truncated).toBe(true);
    expect(s.segments.length).toBe(2);
    expect(followText(s)).toContain('(stopped early: size limit)');
  });
});

describe('follow stream from a capture file', () => {
  let sc: Scenario;
  beforeAll(() => {
    sc = writeScenario(path.join(tempDir('follow'), 'scenario.pcapng'));
  });

  it('gives the same stream as the records in memory', () => {
    const r = openCaptureSync(sc.file);
    if (r instanceof CaptureError) throw new Error(r.toString());
    for (const port of ['test1', 'vport0p2', 'org.qemu.guest_agent.0', 'hp1']) {
      const fromFile = must(followCapture(r, { port }));
      const expected = sc.written.filter(
        (w) =>
          w.kind === 'data' && (w.portName ?? `vport0p${w.port}`) === port && w.bytes.length > 0,
      );
      expect(
        fromFile.segments
          .filter((x) => x.bytes.length > 0)
          .map((x) => Buffer.from(x.bytes).toString('hex')),
      ).toEqual(expected.map((w) => Buffer.from(w.bytes).toString('hex')));
    }
    const binary = must(followCapture(r, { device: 'vser0', port: 2 }));
    expect(Buffer.from(followRaw(binary, 'host-to-guest')).equals(Buffer.from(BINARY))).toBe(true);
    expect(String(followCapture(r, { port: 'nope' }))).toContain('no port nope in this capture');
    r.close();
  });

  describeWithTshark('next to tshark', () => {
    it('shows the same bytes as tshark -x for each frame of the port', () => {
      const r = openCaptureSync(sc.file);
      if (r instanceof CaptureError) throw new Error(r.toString());
      const s = must(followCapture(r, { port: 'test1' }));
      const frames = s.segments.filter((x) => x.bytes.length > 0).map((x) => x.record + 1);
      const out = tshark([
        '-r',
        sc.file,
        '-x',
        '-Y',
        frames.map((f) => `frame.number == ${f}`).join(' || '),
      ]).stdout;
      const ours = s.segments
        .filter((x) => x.bytes.length > 0)
        .map((x) => hexDump(x.bytes))
        .join('\n\n');
      expect(out.trim()).toBe(ours);
      r.close();
    });
  });
});

describe('summary lines', () => {
  const ctl = controlRecord({
    time: t,
    device: 'vser0',
    direction: 'device-to-driver',
    bytes: encodeControl({ id: 2, event: 6, value: 1 }),
  });
  it('formats control messages, events and data like tshark', () => {
    expect(summaryLine(1, 0, ctl)).toBe(
      '    1  0.000000000 vser0/p2     H→G      8 PORT_OPEN id=2 value=1',
    );
    expect(summaryLine(12, 1.5, conversation[3]!)).toBe(
      '   12  1.500000000 test1        G→H      8 hi.host.',
    );
    expect(summaryLine(3, 0.25, conversation[2]!, { ascii: true })).toBe(
      '    3  0.250000000 test1         .        0 test1: guest opened the port',
    );
  });

  it('summarises control messages by their fields', () => {
    const name = controlRecord({
      time: t,
      device: 'vser0',
      direction: 'device-to-driver',
      bytes: encodeControl({ id: 1, event: 7, value: 1, name: 'test1' }),
    });
    const resize = controlRecord({
      time: t,
      device: 'vser0',
      direction: 'device-to-driver',
      bytes: encodeControl({ id: 0, event: 5, value: 0, cols: 132, rows: 43 }),
    });
    const ready = controlRecord({
      time: t,
      device: 'vser0',
      direction: 'driver-to-device',
      bytes: encodeControl({ id: 0xffffffff, event: 0, value: 1 }),
    });
    const short = controlRecord({
      time: t,
      device: 'vser0',
      direction: 'driver-to-device',
      bytes: Uint8Array.of(1, 2, 3),
    });
    expect(recordSummary(name)).toBe('PORT_NAME id=1 name="test1"');
    expect(recordSummary(resize)).toBe('RESIZE id=0 cols=132 rows=43');
    expect(recordSummary(ready)).toBe('DEVICE_READY id=0xffffffff value=1');
    expect(recordSummary(short)).toBe(
      'malformed control message: control message of 3 bytes, shorter than its 8-byte header',
    );
  });

  it('shows data as text, cut after a width', () => {
    expect(printable(Buffer.from('abc\n\x00é'))).toBe('abc.....'.slice(0, 7));
    expect(recordSummary(d(0, 'host-to-guest', 'x'.repeat(60)), { textWidth: 10 })).toBe(
      'xxxxxxxxxx…',
    );
    expect(recordSummary(d(0, 'host-to-guest', ''))).toBe('(empty)');
    expect(directionArrow(undefined)).toBe(' · ');
  });

  it('dumps bytes like tshark -x', () => {
    expect(hexDump(Buffer.from('hello guest\n'))).toBe(
      '0000  68 65 6c 6c 6f 20 67 75 65 73 74 0a               hello guest.',
    );
    const lines = hexDump(BINARY).split('\n');
    expect(lines.length).toBe(16);
    expect(lines[1]).toBe(
      '0010  10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f   ................',
    );
    expect(lines[2]).toBe(
      '0020  20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f    !"#$%&\'()*+,-./',
    );
  });
});
