/**
 * The record model (control messages, directions, the capture switchboard)
 * and the writer's buffering rules: whole blocks per write, a flush
 * deadline, bounded memory, errors as values.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CaptureError } from '../../core/capture/error.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import {
  FdOutput,
  MemoryOutput,
  PcapngWriter,
  type ByteOutput,
} from '../../core/capture/pcapng-writer.js';
import {
  BAD_PORT_ID,
  CONTROL_EVENT,
  Capture,
  MemorySink,
  controlRecord,
  dataRecord,
  decodeControl,
  encodeControl,
  eventRecord,
  parsePortDescription,
  portDescription,
  ringRecordFromTrace,
  toDirection,
  type CaptureInterface,
  type CaptureRecord,
  type CaptureSink,
} from '../../core/capture/record.js';
import { T0, tempDir, removeTempDirs } from './helpers.js';

afterAll(removeTempDirs);

const port = (n: number, name?: string): CaptureInterface => ({
  device: 'vser0',
  deviceIndex: 0,
  port: n,
  kind: 'virtserialport',
  name,
});
const data = (n: number, text = 'x'): CaptureRecord =>
  dataRecord({
    time: T0,
    device: 'vser0',
    port: n,
    direction: 'host-to-guest',
    bytes: Buffer.from(text),
  });

describe('control messages', () => {
  it('decode the 8-byte header: le32 id, le16 event, le16 value', () => {
    const m = decodeControl(Uint8Array.of(2, 0, 0, 0, 6, 0, 1, 0));
    expect(m).toEqual({ id: 2, event: 6, eventName: 'PORT_OPEN', value: 1 });
  });

  it('decode PORT_NAME with and without a trailing NUL', () => {
    expect(
      decodeControl(encodeControl({ id: 1, event: 7, value: 1, name: 'test1' })),
    ).toMatchObject({ name: 'test1', nul: true });
    expect(
      decodeControl(encodeControl({ id: 1, event: 7, value: 1, name: 'test1', nul: false })),
    ).toMatchObject({ name: 'test1', nul: false });
  });

  it('decode RESIZE in either field order', () => {
    const bytes = encodeControl({ id: 0, event: 5, value: 0, cols: 80, rows: 25 }, 'cols-rows');
    expect(decodeControl(bytes, 'cols-rows')).toMatchObject({ cols: 80, rows: 25 });
    expect(decodeControl(bytes, 'rows-cols')).toMatchObject({ cols: 25, rows: 80 });
    // by default captures use the engine's order, so what a lab sends reads back the same
    const lab = encodeControl({ id: 0, event: 5, value: 0, cols: 80, rows: 25 });
    expect(decodeControl(lab)).toMatchObject({ cols: 80, rows: 25 });
    expect(String(decodeControl(bytes.subarray(0, 10)))).toContain(
      'RESIZE control message of 10 bytes, needs 12',
    );
  });

  it('name unknown events by number and reject short messages as values', () => {
    expect(decodeControl(encodeControl({ id: 0, event: 42, value: 0 }))).toMatchObject({
      eventName: 'EVENT_42',
    });
    const short = decodeControl(Uint8Array.of(1, 2, 3));
    expect(short).toBeInstanceOf(CaptureError);
    expect((short as CaptureError).kind).toBe('MalformedControlMessage');
  });

  it('round-trip every message', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 9 }),
        fc.nat({ max: 0xffff }),
        fc.string(),
        fc.nat({ max: 0xffff }),
        fc.nat({ max: 0xffff }),
        (id, event, value, name, cols, rows) => {
          const m = decodeControl(encodeControl({ id, event, value, name, cols, rows }));
          if (m instanceof CaptureError) throw new Error(m.toString());
          expect([m.id, m.event, m.value]).toEqual([id, event, value]);
          if (event === CONTROL_EVENT.RESIZE) expect([m.cols, m.rows]).toEqual([cols, rows]);
          if (event === CONTROL_EVENT.PORT_NAME) expect(m.name).toBe(Buffer.from(name).toString());
        },
      ),
    );
  });

  it('become records that know their port and direction', () => {
    const r = controlRecord({
      time: T0,
      device: 'vser0',
      direction: 'driver-to-device',
      bytes: encodeControl({ id: 3, event: 6, value: 0 }),
    });
    expect([r.port, r.direction, r.length]).toEqual([3, 'guest-to-host', 8]);
    const ready = controlRecord({
      time: T0,
      device: 'vser0',
      direction: 'driver-to-device',
      bytes: encodeControl({ id: BAD_PORT_ID, event: 0, value: 1 }),
    });
    expect(ready.port).toBeUndefined();
  });
});

describe('vocabulary', () => {
  it('maps virtio directions onto the channel ends', () => {
    expect(toDirection('driver-to-device')).toBe('guest-to-host');
    expect(toDirection('device-to-driver')).toBe('host-to-guest');
    expect(toDirection('tx')).toBe('guest-to-host');
    expect(toDirection('rx')).toBe('host-to-guest');
    expect(toDirection('host-to-guest')).toBe('host-to-guest');
  });

  it('describes ports in a form it parses back', () => {
    const p: CaptureInterface = {
      ...port(2),
      chardev: { id: 'c1', backend: 'unix:/path,server=on' },
    };
    expect(portDescription(p)).toBe(
      'device vser0, port 2, virtserialport, chardev c1 (unix:/path,server=on)',
    );
    expect(parsePortDescription(portDescription(p))).toEqual({
      device: 'vser0',
      port: 2,
      kind: 'virtserialport',
      chardev: p.chardev,
    });
    expect(parsePortDescription('device vser0, port 2, virtconsole, no chardev')).toMatchObject({
      kind: 'virtconsole',
      chardev: undefined,
    });
  });

  it('writes event text from the fields', () => {
    expect(
      eventRecord({
        time: T0,
        device: 'vser0',
        port: 1,
        portName: 'test1',
        event: 'drop',
        count: 10,
        reason: 'host not connected',
      }).text,
    ).toBe('test1: dropped 10 bytes (host not connected)');
    expect(eventRecord({ time: T0, device: 'vser1', event: 'needs-reset', rule: 'S4' }).text).toBe(
      'vser1: NEEDS_RESET (S4)',
    );
  });

  it('turns a vring trace event into a ring record', () => {
    const r = ringRecordFromTrace(T0, 'vser0', 1, {
      op: 'device-pop',
      queue: 5,
      format: 'split',
      head: 3,
      rule: 'S3',
      text: 'popped head 3',
    });
    expect([r.kind, r.queue, r.op, r.text]).toEqual([
      'ring',
      5,
      'device-pop',
      'q5 device-pop: popped head 3 [S3]',
    ]);
  });
});

describe('capture switches', () => {
  it('captures nothing until switched on, then per port or for everything, while running', () => {
    const c = new Capture();
    const sink = new MemorySink();
    c.attach(sink);
    c.addInterface(port(1, 'a'));
    c.addInterface(port(2, 'b'));
    expect(c.active).toBe(false);
    expect(c.write(data(1))).toBe(false);
    c.setPort('vser0', 2, true);
    expect([c.wants('vser0', 1), c.wants('vser0', 2), c.wants('vser0', undefined)]).toEqual([
      false,
      true,
      true,
    ]);
    c.write(data(1, 'one'));
    c.write(data(2, 'two'));
    c.setAll(true);
    c.setPort('vser0', 1, false);
    c.write(data(1, 'three'));
    c.write(data(2, 'four'));
    c.setPort('vser0', 1, undefined);
    c.write(data(1, 'five'));
    c.setAll(false);
    c.setPort('vser0', 2, undefined);
    c.write(data(2, 'six'));
    expect(c.active).toBe(false);
    expect(sink.records.map((r) => Buffer.from(r.bytes).toString())).toEqual([
      'two',
      'four',
      'five',
    ]);
  });

  it('tells a sink attached later about every port, and copies bytes', () => {
    const c = new Capture();
    c.addInterface(port(1, 'a'));
    c.setAll(true);
    expect(c.active).toBe(false); // no sink
    const sink = new MemorySink();
    c.attach(sink);
    expect(sink.interfaces.map((i) => i.name)).toEqual(['a']);
    const bytes = Buffer.from('mutable');
    c.write(dataRecord({ time: T0, device: 'vser0', port: 1, direction: 'guest-to-host', bytes }));
    bytes.fill(0);
    expect(Buffer.from(sink.records[0]!.bytes).toString()).toBe('mutable');
  });

  it('detaches a sink after its first error and reports it', () => {
    const c = new Capture();
    const errors: string[] = [];
    c.onError((e) => errors.push(e.message));
    const failing: CaptureSink = {
      addInterface: () => undefined,
      write: () => new CaptureError('IoError', 'disk full'),
      flush: () => undefined,
      close: () => undefined,
    };
    const good = new MemorySink();
    c.attach(failing);
    c.attach(good);
    c.setAll(true);
    c.addInterface(port(1));
    c.write(data(1));
    c.write(data(1));
    expect(errors).toEqual(['disk full']);
    expect(good.records.length).toBe(2);
  });
});

/** An output that remembers each chunk it was given. */
class Chunks implements ByteOutput {
  chunks: Uint8Array[] = [];
  write(chunk: Uint8Array) {
    this.chunks.push(new Uint8Array(chunk));
    return undefined;
  }
  close() {
    return undefined;
  }
}

function blocksIn(chunk: Uint8Array): boolean {
  const b = Buffer.from(chunk);
  let o = 0;
  while (o < b.length) {
    if (o + 8 > b.length) return false;
    const len = b.readUInt32LE(o + 4);
    if (o + len > b.length || b.readUInt32LE(o + len - 4) !== len) return false;
    o += len;
  }
  return true;
}

describe('the writer', () => {
  it('hands the output whole blocks only, whatever the record sizes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 9000 }), { maxLength: 60 }),
        fc.constantFrom(4096, 5000, 8192),
        (sizes, bufferBytes) => {
          const out = new Chunks();
          const w = PcapngWriter.to(out, { bufferBytes, flushIntervalMs: 0, os: false });
          if (w instanceof CaptureError) throw new Error(w.toString());
          w.addInterface(port(1));
          for (const n of sizes)
            w.write(
              dataRecord({
                time: T0,
                device: 'vser0',
                port: 1,
                direction: 'host-to-guest',
                bytes: new Uint8Array(n),
              }),
            );
          w.close();
          for (const c of out.chunks) {
            expect(blocksIn(c)).toBe(true);
            expect(c.length <= bufferBytes || out.chunks.length > 0).toBe(true);
          }
          expect(w.records).toBe(sizes.length);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('flushes when a record arrives after the deadline, even if the event loop never runs', () => {
    let now = 0;
    const out = new Chunks();
    const w = PcapngWriter.to(out, { clock: () => now, flushIntervalMs: 250 });
    if (w instanceof CaptureError) throw new Error(w.toString());
    w.addInterface(port(1));
    w.write(data(1));
    expect(out.chunks.length).toBe(0);
    now = 249;
    w.write(data(1));
    expect(out.chunks.length).toBe(0);
    now = 250;
    w.write(data(1));
    expect(out.chunks.length).toBe(1);
    w.close();
  });

  it('flushes from its timer when the engine is idle', () => {
    vi.useFakeTimers();
    try {
      const out = new Chunks();
      const w = PcapngWriter.to(out, { flushIntervalMs: 20 });
      if (w instanceof CaptureError) throw new Error(w.toString());
      w.write(data(1));
      vi.advanceTimersByTime(19);
      expect(out.chunks.length).toBe(0);
      vi.advanceTimersByTime(1);
      expect(out.chunks.length).toBe(1);
      w.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('cuts packets at a snap length and keeps the original length', () => {
    const out = new MemoryOutput();
    const w = PcapngWriter.to(out, { snaplen: 4 });
    if (w instanceof CaptureError) throw new Error(w.toString());
    w.write(data(1, 'abcdefgh'));
    w.close();
    const file = path.join(tempDir('snap'), 'snap.pcapng');
    fs.writeFileSync(file, out.bytes());
    const r = openCaptureSync(file);
    if (r instanceof CaptureError) throw new Error(r.toString());
    const rec = r.record(0);
    if (rec instanceof CaptureError) throw new Error(rec.toString());
    expect([Buffer.from(rec.bytes).toString(), rec.length]).toEqual(['abcd', 8]);
    r.close();
  });

  it('returns errors as values: a file it cannot create, a write after close, a failing disk', () => {
    const bad = PcapngWriter.create('/nonexistent-dir/x.pcapng');
    expect(bad).toBeInstanceOf(CaptureError);
    expect(String(bad)).toMatch(
      /^\/nonexistent-dir\/x\.pcapng: cannot create capture file: ENOENT/,
    );

    const file = path.join(tempDir('closed'), 'c.pcapng');
    const w = PcapngWriter.create(file);
    if (w instanceof CaptureError) throw new Error(w.toString());
    expect(w.close()).toBeUndefined();
    expect(w.write(data(1))?.kind).toBe('SinkClosed');

    const fd = fs.openSync(file, 'r'); // read-only: writes fail
    const ro = PcapngWriter.to(new FdOutput(fd, file, false), { bufferBytes: 4096 });
    if (ro instanceof CaptureError) throw new Error(ro.toString());
    const err = ro.flush();
    expect(err?.kind).toBe('IoError');
    expect(String(err)).toMatch(/cannot write capture: EBADF/);
    expect(ro.write(data(1))).toBe(err);
    ro.close();
    fs.closeSync(fd);
  });
});
