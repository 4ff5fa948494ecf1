/**
 * `RuleId` (core/base/rule-ids.ts) is the first column of docs/CONFORMANCE.md:
 * the same ids, in the same order, so the type and the table cannot drift.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRuleId, RULE_IDS } from '../../core/base/rule-ids.js';

const TABLE = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'CONFORMANCE.md'), 'utf8');

describe('RuleId', () => {
  it('lists exactly the ids of docs/CONFORMANCE.md, in order', () => {
    const documented = [...TABLE.matchAll(/^\| ([A-Z]\d+) \|/gm)].map((m) => m[1]!);
    expect(documented.length).toBeGreaterThan(50);
    expect([...RULE_IDS]).toEqual(documented);
  });

  it('tells ids from other strings', () => {
    expect(isRuleId('S11')).toBe(true);
    expect(isRuleId('S99')).toBe(false);
  });
});
