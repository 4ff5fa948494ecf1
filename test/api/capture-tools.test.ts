/**
 * The capture tools through ApiService (issue 17): Find in Follow stream over
 * reassembled bytes (a match split across one-byte records names each of
 * them), the IO graph (one series per filter, bytes or records per interval,
 * from the file), and Save as… "selected" (Export Specified Packets).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  FollowFindResult,
  IoGraph,
  SortColumn,
} from '../../core/api/contract/capture-contract.js';
import { CaptureError } from '../../core/capture/error.js';
import { findInStream } from '../../core/capture/follow-find.js';
import type { FollowStream } from '../../core/capture/follow.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { writeCapture, writeTyped } from './capture-fixture.js';
import { rig, until, type Rig } from './helpers.js';

let dir: string;
let r: Rig;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-captools-'));
  r = await rig();
});
afterAll(async () => {
  await r?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('Find in Follow stream', () => {
  it('finds text typed one byte per buffer and names the records holding it', async () => {
    const file = path.join(dir, 'typed.pcapng');
    writeTyped(file);
    await r.must({ cmd: 'openCapture', path: file });
    // no single record contains it
    const rows = await r.must<{ matched: number }>({
      cmd: 'getCaptureRows',
      from: 0,
      count: 10,
      filter: 'contains "hello"',
    });
    expect(rows.matched).toBe(0);
    const found = await r.must<FollowFindResult>({
      cmd: 'findInFollow',
      port: 'test1',
      text: 'hello',
    });
    expect(found.more).toBe(false);
    expect(found.matches).toHaveLength(2);
    // 'xx hello': g2h records are the odd numbers 1,3,5,...; 'h' is the 4th g2h byte: record 7
    expect(found.matches[0]).toEqual({
      direction: 'guest-to-host',
      offset: 3,
      records: [7, 9, 11, 13, 15],
    });
    expect(found.matches[1]!.offset).toBe(9);
    const none = await r.must<FollowFindResult>({
      cmd: 'findInFollow',
      port: 'test1',
      text: 'hello',
      direction: 'host-to-guest',
    });
    expect(none.matches).toEqual([]);
  });

  it('stops at the bound and says there were more', () => {
    const seg = (record: number, s: string) => ({
      record,
      time: 0n,
      direction: 'host-to-guest' as const,
      bytes: new TextEncoder().encode(s),
    });
    const stream: FollowStream = {
      device: 'vser0',
      port: 1,
      label: 'test1',
      segments: [seg(0, 'aaaa'), seg(1, 'aa')],
      hostToGuest: 6,
      guestToHost: 0,
      truncated: false,
    };
    const f = findInStream(stream, new TextEncoder().encode('aa'), 2);
    expect(f.matches.map((m) => [m.offset, m.records])).toEqual([
      [0, [0]],
      [2, [0]],
    ]);
    expect(f.more).toBe(true);
    const across = findInStream(stream, new TextEncoder().encode('aaa'), 10);
    expect(across.matches.map((m) => m.records)).toEqual([[0], [0, 1]]);
  });
});

describe('the IO graph', () => {
  const N = 5000;
  let file: string;
  beforeAll(async () => {
    file = path.join(dir, 'io.pcapng');
    writeCapture(file, N); // one record per microsecond
    await r.must({ cmd: 'openCapture', path: file });
  });

  it('draws one series per filter, from the file; records per interval add up to each filter’s count', async () => {
    const g = await r.must<IoGraph>({
      cmd: 'captureIoGraph',
      interval: 0.001,
      metric: 'records',
      filters: ['', 'port == test1', 'kind == event'],
    });
    expect(g.series.map((s) => s.filter)).toEqual(['', 'port == test1', 'kind == event']);
    expect(g.buckets).toBe(5); // 5000 µs in 1 ms intervals
    expect(g.series[0]!.values).toEqual([1000, 1000, 1000, 1000, 1000]);
    expect(g.series[0]!.total).toBe(N);
    // the same records the list shows with that filter
    await until(async () => {
      const again = await r.must<{ matched: number; scanning: unknown }>({
        cmd: 'getCaptureRows',
        from: 0,
        count: 0,
        filter: 'port == test1',
      });
      return again.scanning === null ? true : undefined;
    });
    const test1 = (
      await r.must<{ matched: number }>({
        cmd: 'getCaptureRows',
        from: 0,
        count: 0,
        filter: 'port == test1',
      })
    ).matched;
    expect(g.series[1]!.total).toBe(test1);
    expect(g.series[2]!.values).toEqual([1, 1, 1, 1, 1]);
  });

  it('sums record lengths for bytes, and widens an interval too fine for the capture', async () => {
    const bytes = await r.must<IoGraph>({
      cmd: 'captureIoGraph',
      interval: 1,
      metric: 'bytes',
      filters: ['kind == event'],
    });
    expect(bytes.buckets).toBe(1);
    expect(bytes.series[0]!.total).toBeGreaterThan(0);
    const fine = await r.must<IoGraph>({
      cmd: 'captureIoGraph',
      interval: 0.001,
      metric: 'records',
      filters: [''],
    });
    expect(fine.buckets).toBeLessThanOrEqual(2000);
    const tooFine = await r.must<IoGraph>({
      cmd: 'captureIoGraph',
      interval: 0.001,
      metric: 'records',
      filters: [''],
    });
    expect(tooFine.interval).toBeGreaterThanOrEqual(0.001);
  });

  it('names a bad filter', async () => {
    const a = await r.run({
      cmd: 'captureIoGraph',
      interval: 1,
      metric: 'bytes',
      filters: ['port =='],
    });
    expect(a).toMatchObject({ ok: false, error: { kind: 'InvalidRequest' } });
  });
});

describe('Save as… selected', () => {
  it('writes the chosen records only, in file order, and refuses a number past the end', async () => {
    const file = path.join(dir, 'sel-src.pcapng');
    writeCapture(file, 100);
    await r.must({ cmd: 'openCapture', path: file });
    const out = path.join(dir, 'sel.pcapng');
    const saved = await r.must<{ records: number }>({
      cmd: 'saveCapture',
      path: out,
      source: 'view',
      records: [40, 3, 40],
    });
    expect(saved.records).toBe(2);
    const back = openCaptureSync(out);
    if (back instanceof CaptureError) throw new Error(back.message);
    expect(back.count).toBe(2);
    const bad = await r.run({ cmd: 'saveCapture', path: out, source: 'view', records: [101] });
    expect(bad).toMatchObject({
      ok: false,
      error: { kind: 'Refused', message: expect.stringMatching(/record 101/) },
    });
  });
});

describe('sortable columns', () => {
  interface Row {
    number: number;
    length: number;
    port: string | null;
  }
  const rowsOf = (sort: { column: SortColumn; descending: boolean }, filter?: string) =>
    r.must<{ rows: Row[]; matched: number }>({
      cmd: 'getCaptureRows',
      from: 0,
      count: 1000,
      sort,
      ...(filter ? { filter } : {}),
    });

  it('orders by number either way, and by a column with ties in number order', async () => {
    const file = path.join(dir, 'sort.pcapng');
    writeCapture(file, 300);
    await r.must({ cmd: 'openCapture', path: file });
    const desc = await rowsOf({ column: 'number', descending: true });
    expect(desc.rows.map((x) => x.number)).toEqual(Array.from({ length: 300 }, (_, i) => 300 - i));
    const byLen = await rowsOf({ column: 'length', descending: false });
    for (let i = 1; i < byLen.rows.length; i++) {
      const a = byLen.rows[i - 1]!;
      const b = byLen.rows[i]!;
      expect(a.length < b.length || (a.length === b.length && a.number < b.number)).toBe(true);
    }
    const byPortDesc = await rowsOf({ column: 'port', descending: true }, 'kind == data');
    expect(byPortDesc.rows[0]!.port).toBe('test2');
    expect(byPortDesc.rows.at(-1)!.port).toBe('test1');
    expect(byPortDesc.rows).toHaveLength(byPortDesc.matched);
  });
});
