/**
 * The rule explanations (core/api/browser/rules.ts) against the conformance table
 * (docs/CONFORMANCE.md): one entry per table id, nothing else, each short
 * enough for the step view and long enough to teach.
 *
 * Titles here deliberately name families, not single ids: the coverage test
 * (test/meta) counts an id named in a title as tested, and these tests check
 * explanations, not the behaviour behind them.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import {
  FAMILY_NAMES,
  RULES,
  explainRule,
  type RuleExplanation,
} from '../../core/api/browser/rules.js';

const ROOT = join(import.meta.dirname, '..', '..');
const FAMILIES: RuleExplanation['family'][] = ['C', 'G', 'S', 'P', 'M', 'D', 'L', 'H', 'Q'];

function tableIds(): string[] {
  const text = readFileSync(join(ROOT, 'docs', 'CONFORMANCE.md'), 'utf8');
  return [...new Set([...text.matchAll(/^\| ([A-Z]\d+) \|/gm)].map((m) => m[1]!))];
}

/** Sentences end in . ! or ? followed by white space or the end of the text. */
function sentences(text: string): string[] {
  return text
    .trim()
    .split(/(?<=[.!?])\s+/)
    .filter((s) => s.length > 0);
}

function words(text: string): number {
  return text.trim().split(/\s+/).length;
}

const IDS = tableIds();
const ENTRIES = Object.entries(RULES);

describe('rule explanations', () => {
  it('the table has ids of every family (C, G, S, P, M, D, L, H and Q)', () => {
    for (const fam of FAMILIES) {
      expect(IDS.some((id) => id.replace(/\d+$/, '') === fam)).toBe(true);
    }
  });

  it('every C, G, S, P, M, D, L, H and Q id has an explanation', () => {
    const missing = IDS.filter((id) => RULES[id] === undefined);
    expect(missing, `ids with no explanation: ${missing.join(', ')}`).toEqual([]);
    for (const id of IDS) {
      const rule = RULES[id]!;
      expect(rule.id).toBe(id);
      expect(rule.family).toBe(id.replace(/\d+$/, ''));
    }
  });

  it('no explanation for an id that is not in the table', () => {
    const extra = ENTRIES.filter(([key]) => !IDS.includes(key)).map(([key]) => key);
    expect(extra, `explanations with no table row: ${extra.join(', ')}`).toEqual([]);
    for (const [key, rule] of ENTRIES) expect(rule.id).toBe(key);
  });

  it('titles are at most 6 words, summaries one sentence', () => {
    for (const [id, rule] of ENTRIES) {
      expect(rule.title.trim().length, `${id} title`).toBeGreaterThan(0);
      expect(words(rule.title), `${id} title: ${rule.title}`).toBeLessThanOrEqual(6);
      expect(sentences(rule.summary), `${id} summary`).toHaveLength(1);
      expect(rule.summary, `${id} summary`).toMatch(/[.!?]$/);
    }
  });

  it('explanations are between 3 and 8 sentences', () => {
    for (const [id, rule] of ENTRIES) {
      const n = sentences(rule.explanation).length;
      expect(n, `${id} has ${n} sentences`).toBeGreaterThanOrEqual(3);
      expect(n, `${id} has ${n} sentences`).toBeLessThanOrEqual(8);
      expect(rule.explanation, `${id} explanation`).toMatch(/[.!?]$/);
    }
  });

  it('every explanation names a source and its seeAlso ids exist', () => {
    for (const [id, rule] of ENTRIES) {
      expect(rule.source.trim().length, `${id} source`).toBeGreaterThan(0);
      for (const other of rule.seeAlso) {
        expect(RULES[other], `${id} sees also ${other}`).toBeDefined();
        expect(other, `${id} sees also itself`).not.toBe(id);
      }
      expect(new Set(rule.seeAlso).size, `${id} seeAlso has duplicates`).toBe(rule.seeAlso.length);
    }
  });

  it('names every family (C, G, S, P, M, D, L, H and Q)', () => {
    expect(Object.keys(FAMILY_NAMES).sort()).toEqual([...FAMILIES].sort());
    for (const fam of FAMILIES) expect(FAMILY_NAMES[fam].length).toBeGreaterThan(0);
  });

  it('explainRule finds ids as traces cite them and nothing else', () => {
    const first = IDS[0]!;
    expect(explainRule(first)).toBe(RULES[first]);
    expect(explainRule(` ${first.toLowerCase()} `)).toBe(RULES[first]);
    expect(explainRule('Z99')).toBeUndefined();
    expect(explainRule('')).toBeUndefined();
    expect(explainRule('toString')).toBeUndefined();
    expect(explainRule('__proto__')).toBeUndefined();
  });

  it('the table is frozen', () => {
    expect(Object.isFrozen(RULES)).toBe(true);
    for (const [, rule] of ENTRIES) {
      expect(Object.isFrozen(rule)).toBe(true);
      expect(Object.isFrozen(rule.seeAlso)).toBe(true);
    }
  });

  it('the module imports nothing from node (the sandboxed renderer loads it)', () => {
    const src = readFileSync(join(ROOT, 'core', 'api', 'browser', 'rules.ts'), 'utf8');
    const specifiers = [
      ...src.matchAll(/\b(?:import|export)\b[^;]*?\bfrom\s+['"]([^'"]+)['"]/g),
      ...src.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
      ...src.matchAll(/\bimport\s+['"]([^'"]+)['"]/g),
      ...src.matchAll(/\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
    ].map((m) => m[1]!);
    const builtins = new Set(builtinModules);
    const fromNode = specifiers.filter(
      (s) => s.startsWith('node:') || builtins.has(s) || builtins.has(s.split('/')[0]!),
    );
    expect(fromNode).toEqual([]);
  });
});
