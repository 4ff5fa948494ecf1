/**
 * Holds the conformance tables and the tests side by side: every id in
 * docs/CONFORMANCE.md of a family in force must be named in the title of at
 * least one test that runs and asserts: an `it`/`test` call (a `describe`
 * title does not count), not skipped or todo, whose body calls `expect`
 * (or an `expect...` helper) at least once. A family joins
 * `FAMILIES_IN_FORCE` when the issue that implements it lands.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

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

/** `it`, `test`, `it.each(...)`, `it.skipIf(...)`: the root name and the member names on the way. */
function calleeChain(callee: ts.Expression): { root: string; members: string[] } | null {
  const members: string[] = [];
  let e: ts.Expression = callee;
  for (;;) {
    if (ts.isIdentifier(e)) return { root: e.text, members };
    if (ts.isPropertyAccessExpression(e)) {
      members.unshift(e.name.text);
      e = e.expression;
    } else if (ts.isCallExpression(e)) {
      e = e.expression;
    } else {
      return null;
    }
  }
}

function titleText(node: ts.Expression | undefined): string | null {
  if (node === undefined) return null;
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isTemplateExpression(node)) {
    return node.head.text + node.templateSpans.map((s) => ` ${s.literal.text}`).join('');
  }
  return null;
}

/** Does the body call expect (expect(...), expect.poll(...), expectError(...), ...)? */
function asserts(body: ts.Node): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isCallExpression(n)) {
      const chain = calleeChain(n.expression);
      if (chain !== null && /^expect/.test(chain.root)) {
        found = true;
        return;
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(body);
  return found;
}

export interface NamedTest {
  file: string;
  title: string;
  /** it/test (not describe), not skipped or todo, with a body that asserts. */
  counts: boolean;
}

/** Every it/test/describe call with a literal title in a test file's source. */
export function testsIn(file: string, source: string): NamedTest[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const found: NamedTest[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n)) {
      const chain = calleeChain(n.expression);
      if (chain !== null && ['it', 'test', 'describe'].includes(chain.root)) {
        const title = titleText(n.arguments[0]);
        if (title !== null) {
          const body = n.arguments.find((a) => ts.isArrowFunction(a) || ts.isFunctionExpression(a));
          const skipped = chain.members.some((m) => m === 'skip' || m === 'todo');
          const counts =
            chain.root !== 'describe' && !skipped && body !== undefined && asserts(body);
          found.push({ file, title, counts });
        }
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

function idsOf(title: string): string[] {
  return [...title.matchAll(/\b([A-Z]\d+)\b/g)].map((m) => m[1]!);
}

function idsNamedByAssertingTests(): Set<string> {
  const named = new Set<string>();
  for (const file of walk(join(ROOT, 'test'))) {
    if (file.includes(`${join('test', 'meta')}`)) continue;
    for (const t of testsIn(file, readFileSync(file, 'utf8'))) {
      if (t.counts) for (const id of idsOf(t.title)) named.add(id);
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

  it('every id of the families in force is named by a running it/test that asserts', () => {
    const named = idsNamedByAssertingTests();
    const missing = documentedIds().filter(
      (id) => FAMILIES_IN_FORCE.includes(id.replace(/\d+$/, '')) && !named.has(id),
    );
    expect(missing, `ids with no asserting test naming them: ${missing.join(', ')}`).toEqual([]);
  });

  it('counts only it/test titles, not describe, skipped, todo or assertion-free tests', () => {
    const source = `
      describe('S1 in a describe title', () => { it('plain', () => { expect(1).toBe(1); }); });
      it.skip('S2 skipped', () => { expect(1).toBe(1); });
      it.todo('S3 todo');
      it('S4 asserts nothing', () => { const x = 1; void x; });
      it('S5 asserts', async () => { await expect.poll(() => 1).toBe(1); });
      it.each([1, 2])('S6 each %i', (n) => { expect(n).toBeGreaterThan(0); });
      test(\`S7 template \${'x'}\`, () => { expectError(1, 'X'); });
      it.skipIf(false)('S8 conditional', () => { expect(true).toBe(true); });
    `;
    const counted = testsIn('probe.test.ts', source)
      .filter((t) => t.counts)
      .flatMap((t) => idsOf(t.title));
    expect(counted).toEqual(['S5', 'S6', 'S7', 'S8']);
  });
});
