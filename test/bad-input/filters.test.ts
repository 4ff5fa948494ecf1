/**
 * Bad-input corpus, capture filters (issue 13): every case is a FilterError
 * whose one line says `filter error at column N: ...` with N inside the
 * text (or just past it), never a throw or a stack overflow.
 */
import { describe, expect, it } from 'vitest';
import { FilterError, parseFilter } from '../../core/capture/filter.js';
import { FILTER_CASES } from './filters.cases.js';
import { expectClearLine } from './clear.js';

describe('bad input: capture filters', () => {
  for (const c of FILTER_CASES) {
    it(
      c.filter.length > 60 ? `${c.filter.slice(0, 40)}... (${c.filter.length} chars)` : c.filter,
      () => {
        const f = parseFilter(c.filter);
        expect(f, 'accepted').toBeInstanceOf(FilterError);
        const e = f as FilterError;
        expectClearLine(e.toString(), /^filter error at column \d+: .+$/);
        expect(e.column).toBeGreaterThanOrEqual(1);
        expect(e.column).toBeLessThanOrEqual(c.filter.length + 1);
        expect(e.message).toMatch(c.message);
      },
    );
  }
});
