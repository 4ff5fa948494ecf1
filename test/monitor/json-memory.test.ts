/**
 * Q1 (limits): QEMU's JSON streamer bounds a message (token size 64 MiB,
 * 2 million tokens, nesting 1024: qobject/json-streamer.c) and answers
 * with its own texts; the lab's streamer does the same with memory
 * proportional to the input, given back when the message is done. Memory
 * is measured in a child process: peak growth while a large line is fed
 * in 64 KiB chunks (as a socket delivers it) and what is left afterwards.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonMessageParser } from '../../core/monitor/json-lexer.js';
import { runChild, transpileTo } from './child-modules.js';

const MiB = 1024 * 1024;

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmm-jsonmem-'));
  transpileTo(dir, [
    'core/monitor/json-lexer.ts',
    'core/monitor/json-parser.ts',
    'core/monitor/qobject.ts',
  ]);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Figures {
  messages: string[];
  inputBytes: number;
  peakGrowth: number;
  leftAfter: number;
}

/** Feed a generated line (kind) of `size` bytes; peak and remaining memory growth. */
const CHILD = `
import { JsonMessageParser } from './core/monitor/json-lexer.js';
const [kind, sizeText] = process.argv.slice(2);
const size = Number(sizeText);
const CHUNK = 65536;
function chunkAt(offset) {
  const n = Math.min(CHUNK, size - offset);
  const c = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    const at = offset + i;
    if (kind === 'string') c[i] = at === 0 ? 0x22 : at === size - 1 ? 0x22 : 0x61;
    else if (kind === 'tokens') c[i] = at === 0 ? 0x5b : at % 2 ? 0x31 : 0x2c;
    else if (kind === 'nesting') c[i] = 0x5b;
    else if (kind === 'nesting') c[i] = 0x5b;
  }
  return c;
}
const used = () => { const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers; };
globalThis.gc(); globalThis.gc();
const base = used();
let peak = 0;
const t0 = performance.now();
const p = new JsonMessageParser();
const messages = [];
let count = 0;
// in a function, so no stack slot of the module keeps the last message alive
function feedAll() {
  for (let off = 0; off < size; off += CHUNK) {
    for (const m of p.feed(chunkAt(off))) {
      if (count++ < 3) messages.push('error' in m ? m.error : 'value:' + (typeof m.value === 'string' ? 'string ' + m.value.length : typeof m.value));
    }
    if ((off / CHUNK) % 16 === 0) peak = Math.max(peak, used() - base);
  }
  peak = Math.max(peak, used() - base);
}
feedAll();
globalThis.gc(); globalThis.gc();
const leftAfter = used() - base;
// the parser is still alive: what it keeps between messages counts
console.log(JSON.stringify({ messages, count, ms: Math.round(performance.now() - t0), inputBytes: size, peakGrowth: peak, leftAfter, alive: p !== null }));
`;

const feedInChild = (kind: string, size: number): Promise<Figures> =>
  runChild<Figures>(dir, CHILD, [kind, String(size)]);

describe('Q1 JSON streamer limits and memory (QEMU json-streamer.c)', () => {
  it('a 10 MiB string costs about its size while read and nothing after', async () => {
    const f = await feedInChild('string', 10 * MiB);
    expect(f.messages).toEqual([`value:string ${10 * MiB - 2}`]);
    // the token buffer (<= 1.5x), the decoded copy and the JS string: a few times the input
    expect(f.peakGrowth).toBeLessThan(5 * f.inputBytes);
    expect(f.leftAfter).toBeLessThan(2 * MiB);
  }, 60_000);

  it('2M one-byte tokens: "JSON token count limit exceeded", bounded memory', async () => {
    // "[1,1,1,..." just past 2M tokens (what follows the refusal is bare numbers, each a message)
    const f = await feedInChild('tokens', 2 * 1024 * 1024 + 4096);
    expect(f.messages[0]).toBe('JSON token count limit exceeded');
    // 1 byte of input per token, 5 bytes of bookkeeping grown by halves, one copy while growing
    expect(f.peakGrowth).toBeLessThan(20 * f.inputBytes);
    expect(f.leftAfter).toBeLessThan(2 * MiB);
  }, 60_000);

  it('a 65 MiB string: "JSON token size limit exceeded", memory about the limit', async () => {
    const f = await feedInChild('string', 65 * MiB);
    expect(f.messages[0]).toBe('JSON token size limit exceeded');
    // the buffer grows by halves: at most 1.5x the limit, plus the copy while growing
    expect(f.peakGrowth).toBeLessThan(2.5 * f.inputBytes);
    expect(f.leftAfter).toBeLessThan(2 * MiB);
  }, 120_000);

  it('nesting past 1024 answers "JSON nesting depth limit exceeded"', () => {
    const p = new JsonMessageParser();
    const deep = p.feed(new TextEncoder().encode('['.repeat(1025)));
    expect(deep).toEqual([{ error: 'JSON nesting depth limit exceeded' }]);
    // 1024 levels are fine
    const ok = new JsonMessageParser().feed(
      new TextEncoder().encode('['.repeat(1024) + ']'.repeat(1024)),
    );
    expect(ok).toHaveLength(1);
    expect('value' in ok[0]!).toBe(true);
  });

  it('the next message after a refused one is read normally', () => {
    const p = new JsonMessageParser();
    const out = p.feed(new TextEncoder().encode(`${'['.repeat(1025)} {"execute": "x"}`));
    expect(out[0]).toEqual({ error: 'JSON nesting depth limit exceeded' });
    expect(out.at(-1)).toMatchObject({ value: expect.anything() });
  });
});
