/**
 * Issue 13 item 10: the filter parser overflowed the stack at about 4,000
 * nested parentheses or 30,000 `not`s. Nesting and the number of joined
 * conditions are bounded, with a message that says so and where.
 */
import { describe, expect, it } from 'vitest';
import {
  FilterError,
  MAX_FILTER_CONDITIONS,
  MAX_FILTER_NESTING,
  formatFilter,
  parseFilter,
} from '../../core/capture/filter.js';

function error(source: string): FilterError {
  const f = parseFilter(source);
  if (!(f instanceof FilterError))
    throw new Error(`expected a filter error for ${source.slice(0, 40)}`);
  return f;
}

describe('item 10: filter depth is bounded with a clear message', () => {
  it('refuses 4,000 and 100,000 nested parentheses at the first one too deep', () => {
    for (const n of [4_000, 100_000]) {
      const e = error(`${'('.repeat(n)}port == 1${')'.repeat(n)}`);
      expect(e.toString()).toBe(
        `filter error at column ${MAX_FILTER_NESTING + 1}: the filter nests '(' and 'not' more than ${MAX_FILTER_NESTING} levels deep`,
      );
    }
  });

  it('refuses 30,000 and 300,000 nots', () => {
    for (const n of [30_000, 300_000]) {
      const e = error(`${'not '.repeat(n)}port == 1`);
      expect(e.column).toBe(MAX_FILTER_NESTING * 4 + 1);
      expect(e.message).toMatch(/more than 256 levels deep$/);
    }
  });

  it('refuses mixed nesting the same way', () => {
    expect(error(`${'not ('.repeat(200)}len > 1${')'.repeat(200)}`).message).toMatch(
      /nests '\(' and 'not' more than 256 levels deep/,
    );
  });

  it('refuses a chain of 100,000 conditions (a tree as deep as it is long)', () => {
    const e = error(Array.from({ length: 100_000 }, () => 'len > 1').join(' and '));
    expect(e.message).toBe(
      `the filter joins more than ${MAX_FILTER_CONDITIONS} conditions with 'and'/'or'`,
    );
  });

  it('still takes filters at the bounds, and prints them back', () => {
    const deep = `${'('.repeat(MAX_FILTER_NESTING)}port == 1${')'.repeat(MAX_FILTER_NESTING)}`;
    const nots = `${'not '.repeat(MAX_FILTER_NESTING)}port == 1`;
    const long = Array.from({ length: MAX_FILTER_CONDITIONS }, (_, i) => `len > ${i}`).join(' or ');
    for (const source of [deep, nots, long]) {
      const f = parseFilter(source);
      expect(f instanceof FilterError ? f.toString() : 'ok').toBe('ok');
      if (!(f instanceof FilterError))
        expect(parseFilter(formatFilter(f.ast))).not.toBeInstanceOf(FilterError);
    }
  });
});
