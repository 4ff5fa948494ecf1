/**
 * The filter language: what it accepts, what each condition means, the
 * error values (column and caret), and properties checked with fast-check:
 * printing and parsing round-trip, parsing never throws, the compiled
 * predicate agrees with a plain interpreter.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  FilterError,
  caretLine,
  filterRecords,
  formatFilter,
  indexOfBytes,
  parseFilter,
  type Filter,
  type FilterNode,
  type FilterSubject,
} from '../../core/capture/filter.js';
import {
  controlRecord,
  dataRecord,
  encodeControl,
  eventRecord,
  type CaptureRecord,
  type Direction,
  type RecordKind,
} from '../../core/capture/record.js';

function ok(text: string): Filter {
  const f = parseFilter(text);
  if (f instanceof FilterError) throw new Error(`${f}\n${f.caret()}`);
  return f;
}

function err(text: string): FilterError {
  const f = parseFilter(text);
  if (!(f instanceof FilterError)) throw new Error(`expected an error for ${text}`);
  return f;
}

function subject(
  over: Partial<FilterSubject> & { bytes?: Uint8Array; note?: string } = {},
): FilterSubject {
  const bytes = over.bytes ?? new Uint8Array(0);
  return {
    kind: 'data',
    direction: 'host-to-guest',
    length: bytes.length,
    device: 'vser0',
    port: 1,
    portName: 'test1',
    portLabel: 'test1',
    relTime: 0,
    payload: () => bytes,
    text: () => over.note,
    ...over,
  };
}

describe('filter conditions', () => {
  const s = subject({
    bytes: Buffer.from('hello\x01\x02\xff world', 'latin1'),
    length: 15,
    relTime: 2.5,
  });
  const cases: [string, boolean][] = [
    ['', true],
    ['port == test1', true],
    ['port == 1', true],
    ['port == vport0p1', false],
    ['port != test1', false],
    ['port == "1"', false], // a quoted 1 is a name
    ['port > 0', true],
    ['port <= 0', false],
    ['dir == h2g', true],
    ['dir == host-to-guest', true],
    ['dir == in', true],
    ['dir == g2h', false],
    ['dir != guest-to-host', true],
    ['DIRECTION == H2G', true],
    ['kind == data', true],
    ['kind == control', false],
    ['len > 10', true],
    ['len >= 15 && len <= 15', true],
    ['len < 15', false],
    ['len == 15', true],
    ['len ne 15', false],
    ['len gt 14 and len lt 16', true],
    ['time >= 1.5', true],
    ['time < 2.5', false],
    ['time > .5e1', false],
    ['device == vser0', true],
    ['dev == vser1', false],
    ['contains "hello"', true],
    ['contains "o\\x01\\x02"', true],
    ['contains 01:02:ff', true],
    ['contains 0102ff', true],
    ['contains 01-02-FF', true],
    ['contains 02:01', false],
    ['contains "HELLO"', false],
    ['not kind == event', true],
    ['!(kind == event) && !(port == 2)', true],
    ['kind == event or port == 1', true],
    ['kind == event || port == 2', false],
    ['kind == event or port == 1 and dir == g2h', false],
    ['(kind == event or port == 1) and dir == h2g', true],
    ['not not port == 1', true],
    ['NOT port == 1 OR len > 1', true],
  ];
  for (const [text, want] of cases) {
    it(`${text || '(empty)'} → ${want}`, () => {
      expect(ok(text).test(s)).toBe(want);
    });
  }

  it('matches unnamed ports by their guest node name', () => {
    const u = subject({ port: 2, portName: undefined, portLabel: 'vport0p2' });
    expect(ok('port == vport0p2').test(u)).toBe(true);
    expect(ok('port == 2').test(u)).toBe(true);
  });

  it('treats records without a port or direction as not equal', () => {
    const ev = subject({
      kind: 'event',
      port: undefined,
      portName: undefined,
      portLabel: undefined,
      direction: undefined,
    });
    expect(ok('port == 1').test(ev)).toBe(false);
    expect(ok('port != 1').test(ev)).toBe(true);
    expect(ok('port < 5').test(ev)).toBe(false);
    expect(ok('dir == h2g').test(ev)).toBe(false);
    expect(ok('dir != h2g').test(ev)).toBe(true);
  });

  it('searches event text with contains "text", not with hex bytes', () => {
    const ev = subject({ kind: 'event', note: 'test1: guest opened the port' });
    expect(ok('contains "opened"').test(ev)).toBe(true);
    expect(ok('contains 6f:70:65:6e').test(ev)).toBe(false);
  });

  it('says whether a filter needs the payload', () => {
    expect(ok('port == 1 and len > 3').needsPayload).toBe(false);
    expect(ok('port == 1 and not contains "x"').needsPayload).toBe(true);
  });

  it('keeps UTF-8 strings as their bytes', () => {
    expect(ok('contains "é"').test(subject({ bytes: Buffer.from('café') }))).toBe(true);
  });
});

describe('filter errors', () => {
  const cases: [string, number, string][] = [
    ['port == ', 9, "expected a value after '=='"],
    ['port ==', 8, "expected a value after '=='"],
    ['len > 100 and port ==', 22, "expected a value after '=='"],
    [
      'prot == 1',
      1,
      'unknown field \'prot\' (fields: port, dir, kind, len, time, device; or contains "...")',
    ],
    ['port = 1', 6, "a single '=' is not an operator: use '=='"],
    ['port == 1 & len > 2', 11, "a single '&' is not an operator: use '&&'"],
    ['port test1', 6, "expected an operator (==, !=, <, <=, >, >=) after 'port', found 'test1'"],
    ['port', 5, "expected an operator (==, !=, <, <=, >, >=) after 'port'"],
    ['len > abc', 7, "expected a number after '>', found 'abc'"],
    ['len > 1.5', 7, "a length is a whole number of bytes, not '1.5'"],
    ['port > test1', 6, "'>' needs a port number; port names compare with == or !="],
    ['dir == sideways', 8, "unknown direction 'sideways' (h2g, g2h, host-to-guest, guest-to-host)"],
    ['dir < h2g', 5, "directions compare with == or !=, not '<'"],
    ['kind == packet', 9, "unknown kind 'packet' (data, control, event, ring)"],
    ['(port == 1', 11, "expected ')' to close the '(' at column 1"],
    ['(port == 1 len > 1', 12, "expected ')' to close the '(' at column 1, found 'len'"],
    ['port == 1)', 10, "unexpected ')' without a matching '('"],
    [
      'port == 1 len > 2',
      11,
      "unexpected 'len' after a complete condition: join conditions with 'and' or 'or'",
    ],
    ['port == 1 and', 14, "expected a condition after 'and'"],
    ['not', 4, "expected a condition after 'not'"],
    ['()', 2, "expected a condition after '('"],
    ['contains', 9, "expected a quoted text or hex bytes like 01:02:ff after 'contains'"],
    [
      'contains hello',
      10,
      "expected a quoted text or hex bytes like 01:02:ff after 'contains', found 'hello' (quote text: \"hello\")",
    ],
    ['contains "abc', 10, 'unterminated string: add the closing "'],
    [
      'contains "a\\qb"',
      12,
      "unknown escape '\\q' in a string (use \\\" \\\\ \\n \\r \\t \\0 or \\xNN)",
    ],
    ['contains ""', 10, 'contains needs at least one byte'],
    ['== 1', 1, "expected a condition here, found '=='"],
  ];
  for (const [text, column, message] of cases) {
    it(`${text} → column ${column}`, () => {
      const e = err(text);
      expect(e.message).toBe(message);
      expect(e.column).toBe(column);
      expect(e.toString()).toBe(`filter error at column ${column}: ${message}`);
    });
  }

  it('draws a caret under the column', () => {
    const e = err('len > 100 and port ==');
    expect(e.caret()).toBe('len > 100 and port ==\n                     ^');
    expect(caretLine('a\tb', 3)).toBe('a b\n  ^');
  });
});

// ---------------------------------------------------------------------------
// properties

const word = fc.stringMatching(/^[a-z][a-z0-9_.-]{0,8}$/);
const anyName = fc.oneof(word, fc.string({ minLength: 1, maxLength: 6 }));
const leaf: fc.Arbitrary<FilterNode> = fc.oneof(
  fc.record({
    type: fc.constant('compare' as const),
    field: fc.constant('port' as const),
    op: fc.constantFrom('==' as const, '!=' as const),
    value: anyName,
  }),
  fc.record({
    type: fc.constant('compare' as const),
    field: fc.constantFrom('port' as const, 'len' as const),
    op: fc.constantFrom(
      '==' as const,
      '!=' as const,
      '<' as const,
      '<=' as const,
      '>' as const,
      '>=' as const,
    ),
    value: fc.nat({ max: 600 }),
  }),
  fc.record({
    type: fc.constant('compare' as const),
    field: fc.constant('time' as const),
    op: fc.constantFrom('<' as const, '>=' as const),
    value: fc.double({ min: 0, max: 100, noNaN: true }),
  }),
  fc.record({
    type: fc.constant('compare' as const),
    field: fc.constant('dir' as const),
    op: fc.constantFrom('==' as const, '!=' as const),
    value: fc.constantFrom<Direction>('host-to-guest', 'guest-to-host'),
  }),
  fc.record({
    type: fc.constant('compare' as const),
    field: fc.constant('kind' as const),
    op: fc.constantFrom('==' as const, '!=' as const),
    value: fc.constantFrom<RecordKind>('data', 'control', 'event', 'ring'),
  }),
  fc.record({
    type: fc.constant('compare' as const),
    field: fc.constant('device' as const),
    op: fc.constantFrom('==' as const, '!=' as const),
    value: fc.constantFrom('vser0', 'vser1', 'and', 'a b'),
  }),
  fc
    .uint8Array({ minLength: 1, maxLength: 3 })
    .map((bytes) => ({ type: 'contains' as const, bytes, text: undefined })),
);
const tree: fc.Arbitrary<FilterNode> = fc.letrec<{ node: FilterNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({ type: fc.constant('and' as const), left: tie('node'), right: tie('node') }),
    fc.record({ type: fc.constant('or' as const), left: tie('node'), right: tie('node') }),
    fc.record({ type: fc.constant('not' as const), expr: tie('node') }),
  ),
})).node;

const subjects = fc.record({
  kind: fc.constantFrom<RecordKind>('data', 'control', 'event', 'ring'),
  direction: fc.constantFrom<Direction | undefined>('host-to-guest', 'guest-to-host', undefined),
  length: fc.nat({ max: 600 }),
  device: fc.constantFrom('vser0', 'vser1', undefined),
  port: fc.option(fc.nat({ max: 600 }), { nil: undefined }),
  portName: fc.option(word, { nil: undefined }),
  relTime: fc.double({ min: 0, max: 100, noNaN: true }),
  bytes: fc.uint8Array({ maxLength: 12 }),
});

/** The meaning of a tree, written as plainly as possible. */
function evaluate(node: FilterNode, s: FilterSubject): boolean {
  switch (node.type) {
    case 'all':
      return true;
    case 'and':
      return evaluate(node.left, s) && evaluate(node.right, s);
    case 'or':
      return evaluate(node.left, s) || evaluate(node.right, s);
    case 'not':
      return !evaluate(node.expr, s);
    case 'decoded':
      throw new Error('decoded fields are not generated here (see protocols.test.ts)');
    case 'contains':
      return Buffer.from(s.payload()).includes(Buffer.from(node.bytes));
    case 'compare': {
      const values: Record<string, unknown> = {
        port: typeof node.value === 'string' ? [s.portName, s.portLabel] : s.port,
        dir: s.direction,
        kind: s.kind,
        len: s.length,
        time: s.relTime,
        device: s.device,
      };
      const x = values[node.field];
      const equal = Array.isArray(x) ? x.includes(node.value) : x === node.value;
      if (node.op === '==') return equal;
      if (node.op === '!=') return !equal;
      if (typeof x !== 'number') return false;
      const v = node.value as number;
      return node.op === '<' ? x < v : node.op === '<=' ? x <= v : node.op === '>' ? x > v : x >= v;
    }
  }
}

function normalise(node: FilterNode): unknown {
  // contains keeps its bytes; compare ASTs structurally
  return JSON.parse(
    JSON.stringify(node, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v)),
  );
}

describe('filter properties', () => {
  it('prints and parses back to the same tree', () => {
    fc.assert(
      fc.property(tree, (t) => {
        const text = formatFilter(t);
        const f = ok(text);
        expect(normalise(f.ast)).toEqual(normalise(t));
      }),
      { numRuns: 500 },
    );
  });

  it('never throws, and errors point inside the text (or just past it)', () => {
    const alphabet = fc.constantFrom(
      ...'port len dir kind time device contains and or not ==!=<>=()!&|"\\ 01:ff 1.5 test1 h2g x'.split(
        '',
      ),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 30 }),
          fc.array(alphabet, { maxLength: 40 }).map((a) => a.join('')),
        ),
        (text) => {
          const f = parseFilter(text);
          if (f instanceof FilterError) {
            expect(f.column).toBeGreaterThanOrEqual(1);
            expect(f.column).toBeLessThanOrEqual(text.length + 1);
            expect(f.caret().split('\n')[1]!.length).toBe(f.column);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('compiles to a predicate that agrees with the plain interpreter', () => {
    fc.assert(
      fc.property(tree, subjects, (t, sv) => {
        const s = subject({ ...sv, portLabel: sv.portName, bytes: sv.bytes });
        const f = ok(formatFilter(t));
        expect(f.test(s)).toBe(evaluate(t, s));
      }),
      { numRuns: 1000 },
    );
  });

  it('obeys De Morgan', () => {
    fc.assert(
      fc.property(tree, tree, subjects, (a, b, sv) => {
        const s = subject({ ...sv, portLabel: sv.portName });
        const x = formatFilter(a);
        const y = formatFilter(b);
        expect(ok(`not ((${x}) and (${y}))`).test(s)).toBe(ok(`not (${x}) or not (${y})`).test(s));
      }),
      { numRuns: 300 },
    );
  });

  it('finds byte strings where Buffer.indexOf does', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ minLength: 1, maxLength: 4 }),
        (hay, needle) => {
          expect(indexOfBytes(hay, needle)).toBe(Buffer.from(hay).indexOf(Buffer.from(needle)));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('filters over records in memory', () => {
  const t = 1_000_000_000_000n;
  const records: CaptureRecord[] = [
    dataRecord({
      time: t,
      device: 'vser0',
      port: 1,
      portName: 'test1',
      direction: 'host-to-guest',
      bytes: Buffer.from('abc'),
    }),
    controlRecord({
      time: t + 1_000_000_000n,
      device: 'vser0',
      direction: 'driver-to-device',
      bytes: encodeControl({ id: 1, event: 6, value: 1 }),
      portName: 'test1',
    }),
    eventRecord({ time: t + 2_000_000_000n, device: 'vser0', port: 2, event: 'guest-open' }),
  ];
  it('selects by the same language', () => {
    expect(filterRecords(ok('time >= 1'), records)).toEqual([1, 2]);
    expect(filterRecords(ok('port == test1'), records)).toEqual([0, 1]);
    expect(filterRecords(ok('dir == g2h'), records)).toEqual([1]);
    expect(filterRecords(ok('contains "guest opened"'), records)).toEqual([2]);
  });

  it('runs a million subjects quickly', () => {
    const f = ok('(port == test1 or port == 7) and dir == h2g and len > 100 and not kind == event');
    const s = subject({ length: 200 });
    const start = performance.now();
    let hits = 0;
    for (let i = 0; i < 1_000_000; i++) {
      s.length = i & 511;
      if (f.test(s)) hits++;
    }
    const ms = performance.now() - start;
    expect(hits).toBeGreaterThan(0);
    expect(ms).toBeLessThan(1000); // 10 M records in well under 10 s
  });
});
