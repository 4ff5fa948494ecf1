import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  checkTopology,
  parseQemuArgs,
  parseQemuCommandLine,
  parseTopology,
  printQemuArgs,
} from '../../core/machine/index.js';
import { topologyArb } from './arbitraries.js';

describe('H1/H2 printing and parsing QEMU command lines are inverse', () => {
  test('the generator makes only consistent topologies', () => {
    fc.assert(
      fc.property(topologyArb, (t) => {
        expect(checkTopology(t)).toEqual([]);
        expect(parseTopology(JSON.parse(JSON.stringify(t))).ok).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test('H2: parse(print(t)) equals t for every valid topology', () => {
    fc.assert(
      fc.property(topologyArb, (t) => {
        const printed = printQemuArgs(t);
        const back = parseQemuArgs(printed.args);
        if (!back.ok) throw new Error(`${back.error.toString()}\n${printed.shell}`);
        expect(back.value).toEqual(t);
      }),
      { numRuns: 500 },
    );
  });

  test('H2: the shell-quoted form reads back as the same arguments', () => {
    fc.assert(
      fc.property(topologyArb, (t) => {
        const printed = printQemuArgs(t);
        const back = parseQemuCommandLine(printed.shell);
        if (!back.ok) throw new Error(back.error.toString());
        expect(back.value).toEqual(t);
      }),
      { numRuns: 200 },
    );
  });

  test('H2: printing uses the modern syntax only (no short-form booleans, no shorthands)', () => {
    fc.assert(
      fc.property(topologyArb, (t) => {
        const back = parseQemuArgs(printQemuArgs(t).args);
        expect(back.ok).toBe(true);
        expect(back.notes.filter((n) => n.kind === 'Deprecated')).toEqual([]);
        const args = printQemuArgs(t).args;
        expect(args).not.toContain('-qmp');
      }),
      { numRuns: 200 },
    );
  });

  test('topologies survive JSON unchanged (plain data)', () => {
    fc.assert(
      fc.property(topologyArb, (t) => {
        expect(JSON.parse(JSON.stringify(t))).toEqual(t);
      }),
      { numRuns: 100 },
    );
  });
});
