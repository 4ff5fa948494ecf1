/**
 * The reader's memory bound (pcapng-reader.ts): 20 bytes of index per
 * record plus fixed windows, payloads left on disk. Measured on a million
 * records with the garbage collector run before each reading.
 */
import { afterAll, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { CaptureError } from '../../core/capture/error.js';
import { parseFilter, FilterError } from '../../core/capture/filter.js';
import {
  INDEX_BYTES_PER_RECORD,
  INDEX_CHUNK_RECORDS,
  openCaptureSync,
} from '../../core/capture/pcapng-reader.js';
import { PcapngWriter } from '../../core/capture/pcapng-writer.js';
import { dataRecord } from '../../core/capture/record.js';
import { T0, tempDir } from './helpers.js';

const N = 1_000_000;
const dir = tempDir('memory');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

function used(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

it('indexes a million records in 20 bytes each (plus fixed windows), payloads on disk', () => {
  const file = path.join(dir, 'million.pcapng');
  const w = PcapngWriter.create(file, { os: false });
  if (w instanceof CaptureError) throw new Error(w.toString());
  w.addInterface({
    device: 'vser0',
    deviceIndex: 0,
    port: 1,
    kind: 'virtserialport',
    name: 'test1',
  });
  w.addInterface({
    device: 'vser0',
    deviceIndex: 0,
    port: 2,
    kind: 'virtserialport',
    name: 'test2',
  });
  const payload = Buffer.alloc(24, 0x2e);
  for (let i = 0; i < N; i++) {
    payload.writeUInt32LE(i, 0);
    w.write(
      dataRecord({
        time: T0 + BigInt(i) * 1000n,
        device: 'vser0',
        port: (i & 1) + 1,
        direction: i % 3 === 0 ? 'guest-to-host' : 'host-to-guest',
        bytes: payload,
      }),
    );
  }
  expect(w.close()).toBeUndefined();
  const fileBytes = fs.statSync(file).size;

  const gc = collector();
  gc();
  gc();
  const before = used();
  const start = performance.now();
  const r = openCaptureSync(file);
  const scanMs = performance.now() - start;
  if (r instanceof CaptureError) throw new Error(r.toString());
  gc();
  gc();
  const delta = used() - before;

  expect(r.count).toBe(N);
  const chunks = Math.ceil(N / INDEX_CHUNK_RECORDS);
  const indexBytes = chunks * INDEX_CHUNK_RECORDS * INDEX_BYTES_PER_RECORD; // 20 B per record, whole chunks
  const windows = 1024 * 1024 + 256 * 1024;
  const bound = indexBytes + windows + 1024 * 1024; // + 1 MiB for interfaces and small objects
  expect(INDEX_BYTES_PER_RECORD).toBe(20);
  expect(delta).toBeLessThan(bound);
  expect(delta).toBeLessThan(fileBytes / 2); // the payloads are not in memory
  expect(scanMs).toBeLessThan(10_000);

  // the index answers without the disk, records come back from it
  expect(r.relativeNs(N - 1)).toBe((N - 1) * 1000);
  expect(r.direction(3)).toBe('guest-to-host');
  expect(r.interfaceOf(1).label).toBe('test2');
  const last = r.payload(N - 1);
  if (last instanceof CaptureError) throw new Error(last.toString());
  expect(Buffer.from(last).readUInt32LE(0)).toBe(N - 1);

  // and a filter runs over all of it from the index
  const f = parseFilter('port == test2 and dir == g2h');
  if (f instanceof FilterError) throw new Error(f.toString());
  const t0 = performance.now();
  const hits = r.select(f.test);
  const filterMs = performance.now() - t0;
  expect(hits.length).toBe(Math.floor(N / 6) + (N % 6 > 3 ? 1 : 0));
  expect(filterMs).toBeLessThan(5_000);
  r.close();
}, 60_000);
