/**
 * The filter bar's check as the person types (core/api/browser/filter-check.ts):
 * the service's own parser, answered as column, message and caret.
 */
import { describe, expect, it } from 'vitest';
import { checkFilter } from '../../core/api/browser/filter-check.js';
import { parseFilter, isFilterError } from '../../core/capture/filter.js';

describe('checkFilter', () => {
  it('has nothing to say about a filter the service runs', () => {
    expect(checkFilter('port == test1 && dir == g2h')).toBeNull();
    expect(checkFilter('kind == control || len > 100')).toBeNull();
  });

  it('names the column, the message and a caret under the column', () => {
    const text = 'port == test1 &&';
    const problem = checkFilter(text);
    expect(problem).not.toBeNull();
    expect(problem!.column).toBe(text.length + 1);
    expect(problem!.message).toMatch(/^filter error at column 17: /);
    expect(problem!.caret).toBe(`${text}\n${' '.repeat(text.length)}^`);
  });

  it('a tab or newline in the text keeps the caret in its column', () => {
    const problem = checkFilter('len >\t');
    expect(problem!.caret.split('\n')[0]).toBe('len > ');
  });

  it('agrees with the parser the service runs, text for text', () => {
    for (const text of ['', 'port ==', 'dir == sideways', '((kind == data)', 'contains "x"']) {
      const parsed = parseFilter(text);
      const problem = checkFilter(text);
      expect(problem === null, text).toBe(!isFilterError(parsed));
      if (isFilterError(parsed)) expect(problem!.column, text).toBe(parsed.column);
    }
  });
});
