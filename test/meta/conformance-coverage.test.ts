/**
 * Holds the conformance tables and the tests side by side: every id in
 * docs/CONFORMANCE.md of a family in force must be named in the title of at
 * least one test (`it('S11 ...')`). A family joins `FAMILIES_IN_FORCE` when
 * the issue that implements it lands.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const FAMILIES_IN_FORCE = ['C', 'G', 'S', 'P', 'M', 'D', 'L', 'H', 'Q'];

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function documentedIds(): string[] {
  const text = readFileSync(join(ROOT, 'docs', 'CONFORMANCE.md'), 'utf8');
  const ids = new Set<string>();
  for (const m of text.matchAll(/^\| ([A-Z]\d+) \|/gm)) ids.add(m[1]!);
  return [...ids];
}

function idsNamedByTests(): Set<string> {
  const named = new Set<string>();
  for (const file of walk(join(ROOT, 'test'))) {
    if (file.includes(`${join('test', 'meta')}`)) continue;
    const text = readFileSync(file, 'utf8');
    // titles of it(...) / test(...) / describe(...) calls, in any quote style
    for (const m of text.matchAll(
      /\b(?:it|test|describe)(?:\.\w+)*\(\s*(['"`])((?:(?!\1).)*)\1/g,
    )) {
      for (const id of m[2]!.matchAll(/\b([A-Z]\d+)\b/g)) named.add(id[1]!);
    }
  }
  return named;
}

describe('conformance coverage', () => {
  it('the table lists every family with ids', () => {
    const ids = documentedIds();
    for (const fam of ['C', 'G', 'S', 'P', 'M', 'D', 'L', 'H', 'Q']) {
      expect(ids.some((id) => id.startsWith(fam) && /^\D\d+$/.test(id))).toBe(true);
    }
  });

  it('every id of the families in force is named by a test title', () => {
    const named = idsNamedByTests();
    const missing = documentedIds().filter(
      (id) => FAMILIES_IN_FORCE.includes(id.replace(/\d+$/, '')) && !named.has(id),
    );
    expect(missing, `ids with no test naming them: ${missing.join(', ')}`).toEqual([]);
  });
});
