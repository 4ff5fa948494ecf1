/** What every answer to bad input must be: one line, the expected words, no stack, no internal error. */
import { expect } from 'vitest';

export function expectClearLine(line: string, want: string | RegExp): void {
  expect(line).not.toMatch(/\n\s+at |\bat .*\.(?:js|ts):\d+/);
  expect(line).not.toMatch(/Internal|TypeError|RangeError|(?<!an )undefined|\[object Object\]/);
  expect(line.trimEnd().includes('\n'), `more than one line: ${line}`).toBe(false);
  if (typeof want === 'string') expect(line).toBe(want);
  else expect(line).toMatch(want);
}
