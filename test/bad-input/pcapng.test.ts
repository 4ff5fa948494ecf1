/**
 * Bad-input corpus, pcapng files (issue 13): every damaged file is refused
 * or read up to the damage with a warning naming it, through the API too;
 * none is read silently. With tshark: every file tshark calls corrupt gets
 * an error or a warning from us (two used to read silently: an unknown
 * 1.x version and an interface option running past its block).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiService } from '../../core/api/server/service.js';
import { CaptureError } from '../../core/capture/error.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { PcapngWriter } from '../../core/capture/pcapng-writer.js';
import { dataRecord } from '../../core/capture/record.js';
import { describeWithTshark, tshark } from '../capture/helpers.js';
import { PCAPNG_CASES, type Blocks } from './pcapng.cases.js';
import { expectClearLine } from './clear.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-bad-pcapng-'));
let blocks: Blocks;
let service: ApiService;

function goodCapture(): Blocks {
  const file = path.join(dir, 'good.pcapng');
  const w = PcapngWriter.create(file);
  if (w instanceof CaptureError) throw new Error(w.toString());
  for (let i = 0; i < 3; i++) {
    w.write(
      dataRecord({
        time: 1_700_000_000_000_000_000n + BigInt(i),
        device: 'vser0',
        port: 1,
        direction: i % 2 === 0 ? 'host-to-guest' : 'guest-to-host',
        bytes: Buffer.from(`hello ${i}`),
      }),
    );
  }
  w.close();
  const good = fs.readFileSync(file);
  const found: { type: number; off: number; len: number }[] = [];
  for (let off = 0; off < good.length;) {
    const len = good.readUInt32LE(off + 4);
    found.push({ type: good.readUInt32LE(off), off, len });
    off += len;
  }
  const of = (type: number) => found.find((b) => b.type === type)!;
  return { good, shb: of(0x0a0d0d0a), idb: of(1), epb: of(6) };
}

/** Our one line about a file: the error, or the first warning; null when read silently. */
function ourWord(file: string): { line: string; error: boolean } | null {
  const r = openCaptureSync(file);
  if (r instanceof CaptureError) return { line: r.toString(), error: true };
  const w = r.warnings[0];
  r.close();
  return w === undefined ? null : { line: w.toString(), error: false };
}

beforeAll(async () => {
  blocks = goodCapture();
  service = await ApiService.create({ face: 'web', lab: 'empty' });
});
afterAll(async () => {
  await service.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const fileOf = (name: string): string => path.join(dir, `${name.replace(/\W+/g, '-')}.pcapng`);

describe('bad input: pcapng files', () => {
  for (const c of PCAPNG_CASES) {
    it(c.name, async () => {
      const file = fileOf(c.name);
      fs.writeFileSync(file, c.make(blocks));
      const word = ourWord(file);
      expect(word, 'read silently').not.toBeNull();
      expectClearLine(word!.line, new RegExp(`^${file.replace(/[.]/g, '\\.')}: `));
      expect(word!.line).toMatch(c.message);
      if (word!.error) {
        // The app answers the same, and keeps serving.
        const r = await service.execute({ cmd: 'openCapture', path: file });
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.message).toMatch(c.message);
        expect((await service.execute({ cmd: 'hello' })).ok).toBe(true);
      }
    });
  }
});

describeWithTshark('bad input: pcapng files tshark calls corrupt', () => {
  it('are never read silently', () => {
    const silent: string[] = [];
    // Every mutation, and three of the cuts (tshark takes a while per file).
    const cases = PCAPNG_CASES.filter(
      (c) => !c.name.startsWith('cut') || /after (41|301|581) /.test(c.name),
    );
    for (const c of cases) {
      const file = fileOf(c.name);
      fs.writeFileSync(file, c.make(blocks));
      const t = tshark(['-r', file]);
      if (t.status !== 0 && ourWord(file) === null) silent.push(`${c.name}: ${t.stderr.trim()}`);
    }
    expect(silent).toEqual([]);
  }, 120_000);
});
