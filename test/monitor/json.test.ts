/**
 * Q1: the monitors' JSON is QEMU's JSON. Every object recorded from a real
 * QEMU 7.2 (qemu-7.2-samples) is read and written back byte for byte, key
 * order included; malformed input gets QEMU's parser errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsonMessageParser, type JsonMessage } from '../../core/monitor/json-lexer.js';
import {
  QDict,
  formatDouble,
  qdictOrder,
  toQemuJson,
  type QObject,
} from '../../core/monitor/qobject.js';

// Recorded from a real QEMU 7.2 (copied from shared/design so the tests never depend on it).
const SAMPLES = path.join(import.meta.dirname, '..', 'fixtures', 'qemu-7.2-samples');
const sample = (name: string): string => fs.readFileSync(path.join(SAMPLES, name), 'utf8');
if (!fs.existsSync(SAMPLES)) throw new Error(`recorded QEMU samples missing at ${SAMPLES}`);

function feed(text: string | Uint8Array): JsonMessage[] {
  const p = new JsonMessageParser();
  return p.feed(typeof text === 'string' ? new TextEncoder().encode(text) : text);
}

/**
 * QEMU writes the member added last first inside a hash bucket, so the text
 * shows insertion order reversed there. Inserting the members in reverse
 * text order rebuilds a dict QEMU would write as the text shows.
 */
function asInserted(v: QObject): QObject {
  if (v instanceof QDict) {
    return new QDict([...v].reverse().map(([k, x]) => [k, asInserted(x)] as [string, QObject]));
  }
  return Array.isArray(v) ? (v as QObject[]).map(asInserted) : v;
}

function roundTrip(line: string): string {
  const [m] = feed(line);
  if (m === undefined || 'error' in m) throw new Error(`not parsed: ${line}`);
  return toQemuJson(asInserted(m.value));
}

/** The first JSON object of every "TAG {...}" line of a transcript, as recorded. */
function recorded(log: string, tags: string[]): string[] {
  const out: string[] = [];
  for (const line of log.split('\n')) {
    const tag = tags.find((t) => line.startsWith(`${t} `));
    if (tag !== undefined) out.push(line.slice(tag.length + 1));
  }
  return out;
}

describe('Q1 QEMU 7.2 JSON, byte for byte', () => {
  it('writes every recorded qstatus and qom reply exactly as QEMU did', () => {
    for (const file of ['qstatus.jsonl', 'qom.jsonl']) {
      for (const line of sample(file)
        .split('\n')
        .filter((l) => l.trim() !== '')) {
        expect(roundTrip(line)).toBe(line);
      }
    }
  });

  it('writes the greeting, replies and events of both scenarios exactly as QEMU did', () => {
    let checked = 0;
    for (const file of ['scenario.log', 'scenario2.log']) {
      for (const text of recorded(sample(file), ['GREETING', 'REPLY', 'EVENT'])) {
        // The recorder glued the first SEND onto the greeting line: compare the object only.
        const [m] = feed(text);
        if (m === undefined || 'error' in m) throw new Error(`not parsed: ${text}`);
        expect(text.startsWith(toQemuJson(asInserted(m.value)))).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(30);
  });

  it('orders x-query-virtio-status members, inserted in QAPI order, as recorded', () => {
    // VirtioStatus's members in qapi/virtio.json order: the order the visitor inserts them.
    const qapi = [
      'name',
      'device-id',
      'vhost-started',
      'device-endian',
      'guest-features',
      'host-features',
      'backend-features',
      'num-vqs',
      'status',
      'isr',
      'queue-sel',
      'vm-running',
      'broken',
      'disabled',
      'use-started',
      'started',
      'start-on-kick',
      'disable-legacy-check',
      'bus-name',
      'use-guest-notifier-mask',
    ];
    const recordedStatus = JSON.parse(sample('status.json')) as { return: object };
    expect(qdictOrder(qapi)).toEqual(Object.keys(recordedStatus.return));
  });
});

describe('Q1 QDict member order (qdict.c tdb_hash buckets)', () => {
  it('puts return before id, id before error, micro before minor before major', () => {
    expect(qdictOrder(['return', 'id'])).toEqual(['return', 'id']);
    expect(qdictOrder(['error', 'id'])).toEqual(['id', 'error']);
    expect(qdictOrder(['major', 'minor', 'micro'])).toEqual(['micro', 'minor', 'major']);
    expect(qdictOrder(['id', 'open'])).toEqual(['open', 'id']);
  });

  it('escapes like quote_str and prints doubles like %.17g', () => {
    expect(toQemuJson('a"b\\c\n\u0001é😀/')).toBe('"a\\"b\\\\c\\n\\u0001\\u00E9\\uD83D\\uDE00/"');
    expect(formatDouble(1.5)).toBe('1.5');
    expect(formatDouble(0.1)).toBe('0.10000000000000001');
    expect(formatDouble(1e20)).toBe('1e+20');
    expect(toQemuJson(12345678901234567890n)).toBe('12345678901234567890');
  });

  it('pretty-prints as QEMU with pretty=on (four spaces, empty objects opened)', () => {
    const v = new QDict([
      ['return', new QDict()],
      ['id', 'q1'],
    ]);
    expect(toQemuJson(v, true)).toBe('{\n    "return": {\n    },\n    "id": "q1"\n}');
    expect(toQemuJson([1, [2]], true)).toBe('[\n    1,\n    [\n        2\n    ]\n]');
  });
});

describe('Q1 malformed input gets QEMU 7.2 parser errors', () => {
  const cases: [string, string[]][] = [
    ['{"execute": }', ['JSON parse error, expecting value']],
    ['{"execute" "x"}', ['JSON parse error, missing : in object pair']],
    ['{"a": 1 "b": 2}', ['JSON parse error, expected separator in dict']],
    ['{1: 2}', ['JSON parse error, key is not a string in object']],
    ['{"a": 1, "a": 2}', ['JSON parse error, duplicate key']],
    ['[1 2]', ['JSON parse error, expected separator in list']],
    ['hello\n', ["JSON parse error, invalid keyword 'hello'"]],
    ['}', ['JSON parse error, expecting value']],
    ['Xyz\n', ["JSON parse error, stray 'X'"]],
    ['01', ["JSON parse error, stray '01'"]],
    ['{"s": "\\q"}', ['JSON parse error, invalid escape sequence in string']],
    ['{"s": "\\u12G4"}', ['JSON parse error, invalid hex escape sequence in string']],
    ['{"s": "\\uD800"}', ['JSON parse error, \\uD800 is not a valid Unicode character']],
    // A lexical error drops the message so far; the '}' it resynchronises on is a message of its own.
    ['{"execute": X}', ["JSON parse error, stray 'X'", 'JSON parse error, expecting value']],
  ];
  for (const [input, errors] of cases) {
    it(`${JSON.stringify(input)} -> ${errors.join(' / ')}`, () => {
      expect(feed(input).map((m) => ('error' in m ? m.error : 'value'))).toEqual(errors);
    });
  }

  it('keeps going after an error and after a 0xFF resync byte', () => {
    const bytes = Buffer.concat([
      Buffer.from('{"a": [1, \x01'),
      Buffer.from([0xff]),
      Buffer.from('{"execute": "query-version"}'),
    ]);
    const out = feed(bytes);
    expect(out.map((m) => ('error' in m ? m.error : toQemuJson(m.value)))).toEqual([
      "JSON parse error, stray '\u0001'",
      "JSON parse error, stray '\uFFFD'",
      '{"execute": "query-version"}',
    ]);
  });

  it('takes single-quoted strings and big integers as QEMU does', () => {
    const [m] = feed("{'id': 18446744073709551615, 'n': -9223372036854775809}");
    expect(m !== undefined && 'value' in m && toQemuJson(m.value)).toBe(
      '{"n": -9.2233720368547758e+18, "id": 18446744073709551615}',
    );
  });

  it('waits for the rest of an object cut across reads', () => {
    const p = new JsonMessageParser();
    expect(p.feed(new TextEncoder().encode('{"execute": "qmp_'))).toEqual([]);
    const out = p.feed(new TextEncoder().encode('capabilities"}'));
    expect(out.length).toBe(1);
  });
});
