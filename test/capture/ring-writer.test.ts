/**
 * Ring buffers and stop conditions as dumpcap has them (-b filesize/files/
 * duration, -a filesize/duration/packets): a long transfer keeps exactly N
 * files, none past the set size, each a whole pcapng that tshark opens.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CaptureError } from '../../core/capture/error.js';
import { parseRingOptions, RingCaptureWriter } from '../../core/capture/ring-writer.js';
import { Capture, dataRecord } from '../../core/capture/record.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { describeWithTshark, removeTempDirs, tempDir, tshark } from './helpers.js';

afterAll(removeTempDirs);

function transfer(
  file: string,
  words: string[],
  stops: string[],
  records: number,
  clock?: () => number,
): { writer: RingCaptureWriter; stopped: string[] } {
  const ring = parseRingOptions(words, stops);
  if (typeof ring === 'string') throw new Error(ring);
  const stopped: string[] = [];
  const w = RingCaptureWriter.create(
    file,
    ring,
    { os: false },
    {
      onStop: (r) => stopped.push(r),
      ...(clock ? { clock } : {}),
    },
  );
  if (w instanceof CaptureError) throw new Error(w.message);
  const capture = new Capture();
  capture.attach(w);
  capture.setAll(true);
  capture.addInterface({
    device: 'vser0',
    deviceIndex: 0,
    port: 1,
    kind: 'virtserialport',
    name: 'test1',
  });
  for (let i = 0; i < records; i++) {
    const bytes = Buffer.alloc(1000, i & 0xff);
    bytes.writeUInt32LE(i, 0);
    capture.write(
      dataRecord({
        time: BigInt(i + 1) * 1000n,
        device: 'vser0',
        port: 1,
        portName: 'test1',
        direction: 'guest-to-host',
        bytes,
      }),
    );
  }
  capture.close();
  return { writer: w, stopped };
}

describe('parseRingOptions', () => {
  it('reads dumpcap words and refuses bad ones in one line', () => {
    expect(parseRingOptions(['filesize:20', 'files:3'], ['packets:5'])).toEqual({
      fileSize: 20000,
      files: 3,
      stopPackets: 5,
    });
    expect(parseRingOptions(['files:3'], [])).toMatch(/needs -b filesize/);
    expect(parseRingOptions(['size:3'], [])).toMatch(/not 'size'/);
    expect(parseRingOptions([], ['packets:x'])).toMatch(/KEY:NUMBER/);
  });
});

describeWithTshark('ring buffer files', () => {
  it('-b filesize:20 -b files:3 over 200 records of 1000 bytes keeps exactly 3 files of at most 20 kB, each opens in tshark', () => {
    const dir = tempDir('ring');
    const { writer } = transfer(path.join(dir, 'long.pcapng'), ['filesize:20', 'files:3'], [], 200);
    const files = fs.readdirSync(dir).sort();
    expect(files).toHaveLength(3);
    expect(files.every((f) => /^long_\d{5}_\d{14}\.pcapng$/.test(f))).toBe(true);
    expect(writer.files.map((f) => path.basename(f))).toEqual(files);
    let last = -1;
    for (const f of files) {
      const p = path.join(dir, f);
      expect(fs.statSync(p).size).toBeLessThanOrEqual(20_000);
      const r = tshark(['-r', p, '-T', 'fields', '-e', 'frame.number']);
      expect(r.status).toBe(0);
      const reader = openCaptureSync(p);
      if (reader instanceof CaptureError) throw new Error(reader.message);
      expect(r.stdout.trim().split('\n')).toHaveLength(reader.count);
      const first = reader.record(0);
      if (first instanceof CaptureError) throw new Error(first.message);
      const n = Buffer.from(first.bytes).readUInt32LE(0);
      expect(n).toBeGreaterThan(last); // files in order, records kept whole
      last = n;
      reader.close();
    }
    // the newest file ends with the last record
    const reader = openCaptureSync(path.join(dir, files[2]!));
    if (reader instanceof CaptureError) throw new Error(reader.message);
    const end = reader.record(reader.count - 1);
    if (end instanceof CaptureError) throw new Error(end.message);
    expect(Buffer.from(end.bytes).readUInt32LE(0)).toBe(199);
    reader.close();
  });
});

describe('stop conditions', () => {
  it('-a packets:N stops after N records', () => {
    const file = path.join(tempDir('stop'), 'p.pcapng');
    const { stopped } = transfer(file, [], ['packets:7'], 50);
    expect(stopped).toEqual(['-a packets:7']);
    const reader = openCaptureSync(file);
    if (reader instanceof CaptureError) throw new Error(reader.message);
    expect(reader.count).toBe(7);
    reader.close();
  });

  it('-a filesize:N stops before the file passes N kB', () => {
    const file = path.join(tempDir('stop'), 's.pcapng');
    const { stopped } = transfer(file, [], ['filesize:10'], 50);
    expect(stopped).toEqual(['-a filesize:10']);
    expect(fs.statSync(file).size).toBeLessThanOrEqual(10_000);
  });

  it('-a duration:S stops once S seconds passed; -b duration:S switches files', () => {
    let now = 0;
    const clock = (): number => (now += 100); // each record 100 ms later
    const dir = tempDir('stop');
    const { stopped, writer } = transfer(
      path.join(dir, 'd.pcapng'),
      ['duration:1'],
      ['duration:3'],
      50,
      clock,
    );
    expect(stopped).toEqual(['-a duration:3']);
    expect(writer.records).toBeLessThan(50);
    expect(writer.files.length).toBeGreaterThanOrEqual(3);
  });
});
