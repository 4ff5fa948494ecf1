/**
 * The capture view through ApiService: windows of rows (never all of
 * them), filters run on the service side and cached, record detail,
 * follow stream, saves (whole and filtered, read back), a growing file.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  CaptureRecordDetail,
  CaptureRows,
  FollowResult,
} from '../../core/api/contract/capture-contract.js';
import type { TopologySnapshot } from '../../core/api/contract/contract.js';
import { CaptureError } from '../../core/capture/error.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { kindOf, writeCapture } from './capture-fixture.js';
import { rig, until, type Rig } from './helpers.js';

const N = 20_000;
let dir: string;
let file: string;
let r: Rig;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-capview-'));
  file = path.join(dir, 'c.pcapng');
  writeCapture(file, N);
  r = await rig();
});
afterAll(async () => {
  await r?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const rows = (from: number, count: number, filter?: string): Promise<CaptureRows> =>
  r.must<CaptureRows>({ cmd: 'getCaptureRows', from, count, ...(filter ? { filter } : {}) });

describe('the capture view', () => {
  it('refuses rows before a capture is open', async () => {
    const a = await r.run({ cmd: 'getCaptureRows', from: 0, count: 10 });
    expect(a).toMatchObject({ ok: false, error: { kind: 'Refused' } });
  });

  it('opens a capture; its count comes with the topology', async () => {
    const opened = await r.must<{ records: number }>({ cmd: 'openCapture', path: file });
    expect(opened.records).toBe(N);
    const t = await r.topology();
    expect(t.capture.view).toEqual({ path: file, records: N, live: false });
    await until(() =>
      r.batches.some((b) => b.topology?.capture.view?.records === N) ? true : undefined,
    );
  });

  it('answers windows of rows, numbered, and no more than asked', async () => {
    const w = await rows(100, 50);
    expect(w).toMatchObject({ total: N, matched: N, from: 100, filter: '' });
    expect(w.rows).toHaveLength(50);
    expect(w.rows[0]).toMatchObject({
      number: 101,
      kind: 'data',
      port: 'test1',
      direction: 'host-to-guest',
      length: 8,
      summary: 'rec 100.',
    });
    expect(w.rows[0]!.rel).toBeCloseTo(100e-6, 9);
    expect((await rows(N - 5, 100)).rows.map((x) => x.number)).toEqual([
      19996, 19997, 19998, 19999, 20000,
    ]);
    expect((await rows(N + 10, 10)).rows).toEqual([]);
    const tooMany = await r.run({ cmd: 'getCaptureRows', from: 0, count: 5000 });
    expect(tooMany).toMatchObject({ ok: false, error: { kind: 'InvalidRequest' } });
  });

  it('filters on the service side: fewer rows, all matching, windows of the filtered list', async () => {
    const f = await rows(0, 1000, 'kind == control');
    expect(f.matched).toBe(N / 1000);
    expect(f.rows.map((x) => x.number)).toEqual(
      Array.from({ length: N / 1000 }, (_, k) => k * 1000 + 999),
    );
    expect(
      f.rows.every((x) => x.kind === 'control' && x.summary.startsWith('PORT_OPEN id=1')),
    ).toBe(true);

    const both = await rows(10, 20, 'port == test2 && dir == g2h');
    const expected: number[] = [];
    for (let i = 0; i < N; i++) if (kindOf(i) === 'data' && i & 1 && i % 3 === 0) expected.push(i);
    expect(both.matched).toBe(expected.length);
    expect(both.rows.map((x) => x.number - 1)).toEqual(expected.slice(10, 30));
    expect(both.rows.every((x) => x.port === 'test2' && x.direction === 'guest-to-host')).toBe(
      true,
    );

    const text = await rows(0, 10, 'contains "rec 1234\\n"');
    expect(text.rows.map((x) => x.number)).toEqual([1235]);
  });

  it('refuses a bad filter with the column', async () => {
    const a = await r.run({ cmd: 'getCaptureRows', from: 0, count: 10, filter: 'len >' });
    expect(a).toMatchObject({
      ok: false,
      error: {
        kind: 'InvalidRequest',
        message: expect.stringMatching(/^filter error at column 6: /),
      },
    });
  });

  it('decodes one record: fields, hex', async () => {
    const d = await r.must<CaptureRecordDetail>({ cmd: 'getCaptureRecord', number: 999 });
    expect(d).toMatchObject({ kind: 'control', direction: 'host-to-guest', length: 8 });
    const field = (name: string) => d.fields.find((f) => f.name === name)?.value;
    expect(field('control.event')).toBe('PORT_OPEN (6)');
    expect(field('control.id')).toBe('1');
    expect(d.hex).toBe('0000  01 00 00 00 06 00 01 00                           ........');
    const ev = await r.must<CaptureRecordDetail>({ cmd: 'getCaptureRecord', number: 1000 });
    expect(ev.fields.find((f) => f.name === 'event')?.value).toBe('guest-open');
    expect(ev.fields.find((f) => f.name === 'event.text')?.value).toMatch(/test2/);
    const data = await r.must<CaptureRecordDetail>({ cmd: 'getCaptureRecord', number: 4 });
    expect(data).toMatchObject({ port: 2, portLabel: 'test2', direction: 'guest-to-host' });
    expect(Buffer.from(data.bytes, 'base64').toString()).toBe('msg 3\n');
    const none = await r.run({ cmd: 'getCaptureRecord', number: N + 1 });
    expect(none).toMatchObject({ ok: false, error: { kind: 'NotFound' } });
  });

  it('follows a port: both directions in order, raw export per direction', async () => {
    const f = await r.must<FollowResult>({ cmd: 'followCapture', port: 'test1' });
    expect(f).toMatchObject({ label: 'test1', device: 'vser0', port: 1, truncated: false });
    expect(f.runs[0]).toEqual({ direction: 'guest-to-host', text: 'rec 0\n', bytes: 6 });
    expect(f.runs[1]).toEqual({ direction: 'host-to-guest', text: 'rec 2\nrec 4\n', bytes: 12 });
    expect(f.hex).toMatch(/^G> 00000000 {2}72 65 63 20 30 0a /m);
    const out = path.join(dir, 'g2h.bin');
    const saved = await r.must<{ bytes: number }>({
      cmd: 'saveFollowRaw',
      port: 1,
      direction: 'guest-to-host',
      path: out,
    });
    expect(saved.bytes).toBe(f.guestToHost);
    expect(fs.readFileSync(out).toString().startsWith('rec 0\nrec 6\nrec 12\n')).toBe(true);
    const missing = await r.run({ cmd: 'followCapture', port: 'nope' });
    expect(missing).toMatchObject({ ok: false, error: { kind: 'NotFound' } });
  });

  it('saves the view whole and filtered; the files read back with the same counts', async () => {
    const whole = path.join(dir, 'whole.pcapng');
    const a = await r.must<{ records: number }>({
      cmd: 'saveCapture',
      path: whole,
      source: 'view',
    });
    expect(a.records).toBe(N);
    const part = path.join(dir, 'part.pcapng');
    const b = await r.must<{ records: number }>({
      cmd: 'saveCapture',
      path: part,
      filter: 'port == test2 || kind == control',
    });
    const matched = (await rows(0, 0, 'port == test2 || kind == control')).matched;
    expect(b.records).toBe(matched);
    const back = openCaptureSync(part);
    if (back instanceof CaptureError) throw new Error(back.message);
    expect(back.count).toBe(matched);
    expect(back.warnings).toEqual([]);
    const first = back.record(0);
    if (first instanceof CaptureError) throw new Error(first.message);
    expect(first).toMatchObject({ kind: 'data', portName: 'test2' });
    back.close();
  });

  it('follows a file that grows, filters extended over the new records', async () => {
    const grow = path.join(dir, 'grow.pcapng');
    writeCapture(grow, 2000);
    await r.must({ cmd: 'openCapture', path: grow });
    expect((await rows(0, 0, 'kind == control')).matched).toBe(2);
    writeCapture(path.join(dir, 'bigger.pcapng'), 5000);
    // the writer wrote a fresh file: append its packets by copying the whole of the longer one
    fs.copyFileSync(path.join(dir, 'bigger.pcapng'), grow);
    await until(async () =>
      (await r.topology()).capture.view?.records === 5000 ? true : undefined,
    );
    expect((await rows(0, 0, 'kind == control')).matched).toBe(5);
    const t: TopologySnapshot = await r.topology();
    expect(t.capture.view?.records).toBe(5000);
    await r.must({ cmd: 'closeCapture' });
    expect((await r.topology()).capture.view).toBeNull();
  });
});
