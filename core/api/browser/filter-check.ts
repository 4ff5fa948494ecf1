/**
 * The capture filter bar's check as the person types. It runs the parser the
 * service runs (core/capture/filter.ts, pure: no node:*), so the window and
 * the service never disagree on what is a filter, and answers in what the
 * bar shows: nothing when the text is a filter, else the 1-based column, the
 * one-line message and the text with a caret under the column. The renderer
 * sees this answer, not the capture layer's types.
 */
import { isFilterError, parseFilter } from '../../capture/filter.js';

/** What is wrong with a filter text, for the filter bar. */
export interface FilterProblem {
  /** 1-based column of the problem (the text's length + 1: at its end). */
  readonly column: number;
  /** `filter error at column 12: expected a value after '=='` */
  readonly message: string;
  /** Two lines: the text (tabs and newlines as spaces) and a ^ under the column. */
  readonly caret: string;
}

/** null when `text` is a filter the service will run (the empty text is: it shows all). */
export function checkFilter(text: string): FilterProblem | null {
  const parsed = parseFilter(text);
  if (!isFilterError(parsed)) return null;
  return { column: parsed.column, message: parsed.toString(), caret: parsed.caret() };
}
