/**
 * The capture view's filter runs in slices (SCAN_CHUNK records between
 * turns of the event loop) over a large capture (3 M small records): the
 * service answers other commands while it scans, getCaptureRows says how
 * far it got with what matched so far, a new filter stops the scan (the
 * old one resumes from where it was), and the final matches are exactly
 * what a synchronous select over the whole capture gives.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CaptureRows } from '../../core/api/contract/capture-contract.js';
import { CaptureView, SCAN_CHUNK } from '../../core/api/server/capture-view.js';
import { CaptureError } from '../../core/capture/error.js';
import { parseFilter } from '../../core/capture/filter.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { writeCapture } from './capture-fixture.js';
import { rig, type Rig } from './helpers.js';

const N = 3_000_000;
const FILTER = 'port == test2 && dir == g2h';
const OTHER = 'kind == control || len > 10';
let dir: string;
let file: string;
let r: Rig;

/** What a synchronous select over the whole capture gives. */
function syncSelect(text: string): Uint32Array {
  const reader = openCaptureSync(file);
  if (reader instanceof CaptureError) throw new Error(reader.message);
  const f = parseFilter(text);
  if (!('test' in f)) throw new Error(f.toString());
  try {
    return reader.select(f.test);
  } finally {
    reader.close();
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-filter-async-'));
  file = path.join(dir, 'big.pcapng');
  writeCapture(file, N);
  r = await rig();
}, 60_000);
afterAll(async () => {
  await r?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const rows = (from: number, count: number, filter?: string): Promise<CaptureRows> =>
  r.must<CaptureRows>({ cmd: 'getCaptureRows', from, count, ...(filter ? { filter } : {}) });

describe('a filter over a large capture', () => {
  it('does not hold up other commands; the matches come in and equal a synchronous select', async () => {
    expect(N).toBeGreaterThan(4 * SCAN_CHUNK);
    await r.must({ cmd: 'openCapture', path: file });
    const expected = syncSelect(FILTER);

    const first = await rows(0, 50, FILTER);
    expect(first.scanning).toEqual({ scanned: SCAN_CHUNK, records: N });
    expect(first.matched).toBeGreaterThan(0);
    expect(first.matched).toBeLessThan(expected.length);
    expect(first.rows.map((x) => x.number - 1)).toEqual([...expected.subarray(0, 50)]);

    // Another command is answered while the scan goes on.
    const hello = await r.run({ cmd: 'hello' });
    expect(hello).toMatchObject({ ok: true, value: { app: 'vmchan' } });
    const during = await rows(0, 0, FILTER);
    expect(during.scanning).not.toBeNull();
    expect(during.scanning!.scanned).toBeLessThan(N);

    // Progress only moves forward, and so does the count of matches, to the end.
    let last = first;
    let polls = 0;
    while (last.scanning) {
      await turn();
      const now = await rows(0, 0, FILTER);
      expect(now.matched).toBeGreaterThanOrEqual(last.matched);
      expect(now.scanning?.scanned ?? N).toBeGreaterThanOrEqual(last.scanning.scanned);
      last = now;
      polls++;
    }
    expect(polls).toBeGreaterThan(1);
    expect(last.matched).toBe(expected.length);
    const mid = Math.floor(expected.length / 2);
    for (const from of [0, mid, expected.length - 100]) {
      const w = await rows(from, 100, FILTER);
      expect(w.scanning).toBeNull();
      expect(w.rows.map((x) => x.number - 1)).toEqual([...expected.subarray(from, from + 100)]);
    }
  }, 60_000);

  it('stops a scan when the filter changes and resumes it where it stopped', async () => {
    const view = await CaptureView.open(file, 100_000);
    if (!(view instanceof CaptureView)) throw new Error(view.message);
    try {
      const a = view.rows(0, 10, FILTER);
      if (!('rows' in a)) throw new Error(a.message);
      expect(a.scanning).toEqual({ scanned: 100_000, records: N });
      expect(view.scanningFilter).toBe(FILTER);
      await turn();
      await turn();

      const b = view.rows(0, 10, OTHER);
      if (!('rows' in b)) throw new Error(b.message);
      expect(view.scanningFilter).toBe(OTHER);
      const paused = view.rows(0, 0, OTHER); // the same filter again: the scan goes on
      expect('rows' in paused && paused.scanning !== null).toBe(true);
      // FILTER stopped where it was: ask OTHER until done, then look at FILTER's progress.
      let other = b;
      while (other.scanning) {
        await turn();
        const o = view.rows(0, 0, OTHER);
        if (!('rows' in o)) throw new Error(o.message);
        other = o;
      }
      expect(view.scanningFilter).toBeNull();
      expect(other.matched).toBe(syncSelect(OTHER).length);

      const resumed = view.rows(0, 0, FILTER);
      if (!('rows' in resumed)) throw new Error(resumed.message);
      expect(resumed.scanning).not.toBeNull();
      expect(resumed.scanning!.scanned).toBeLessThan(N / 2);
      // no filter: the scan stops too
      view.rows(0, 10, '');
      expect(view.scanningFilter).toBeNull();

      const all = await view.selectAll(FILTER);
      if (all === null || !(all instanceof Uint32Array)) throw new Error('no selection');
      const expected = syncSelect(FILTER);
      expect(all.length).toBe(expected.length);
      const same = Buffer.from(all.buffer, all.byteOffset, all.byteLength).equals(
        Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
      );
      expect(same).toBe(true);
    } finally {
      view.close();
    }
  }, 60_000);
});
