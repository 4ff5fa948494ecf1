/**
 * core/'s import graph, read from the sources: no cycle between folders and
 * no cycle between files (a cycle makes load order matter and hides which
 * concept is the lower one), and every edge between folders is one the layer
 * table allows, so the lint and the code agree.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { CORE_LAYERS, coreFolder } from '../../eslint-rules/core-layers.js';

const CORE = path.join(import.meta.dirname, '..', '..', 'core');

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** file -> the core files it imports (import, import type, export from; not import()). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(CORE)) {
    const source = readFileSync(file, 'utf8');
    const { importedFiles } = ts.preProcessFile(source, true, true);
    // import() is a deferred edge: a chardev kind's record loads its backend
    // only when a chardev opens (core/chardev/kinds/), so it cannot order
    // module loading, and the backend naming its record's config type back
    // is no cycle. Static imports and `import type` all count.
    const deferred = new Set(
      [...source.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!),
    );
    const staticSpecs = new Set(
      [...source.matchAll(/(?:from|^import)\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!),
    );
    const targets = importedFiles
      .map((ref) => ref.fileName)
      .filter((spec) => spec.startsWith('.'))
      .filter((spec) => !deferred.has(spec) || staticSpecs.has(spec))
      .map((spec) => path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts'))
      .filter((target) => !path.relative(CORE, target).startsWith('..'));
    graph.set(file, targets);
  }
  return graph;
}

/** The layer a file is in: its folder of core/, or core/api's part (`api/server`). */
function folderOf(file: string): string {
  return coreFolder(CORE, file) ?? '(outside core)';
}

/** Strongly connected components with more than one node (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) connect(v);
  return found;
}

describe('core import graph', () => {
  const files = importGraph();
  const folders = new Map<string, string[]>();
  for (const [file, targets] of files) {
    const from = folderOf(file);
    const list = folders.get(from) ?? [];
    for (const t of targets)
      if (folderOf(t) !== from && !list.includes(folderOf(t))) list.push(folderOf(t));
    folders.set(from, list);
  }

  it('reads a real graph (every folder of core/, hundreds of edges)', () => {
    expect(files.size).toBeGreaterThan(150);
    expect([...files.values()].flat().length).toBeGreaterThan(500);
    expect(folders.get('api/server')).toContain('engine');
    expect(folders.get('api/server')).toContain('api/contract');
    expect(folders.get('api/browser')).toContain('api/contract');
  });

  it('has no cycle between folders', () => {
    expect(cycles(folders)).toEqual([]);
  });

  it('has no cycle between files', () => {
    const named = cycles(files).map((c) => c.map((f) => path.relative(CORE, f)).join(' <-> '));
    expect(named).toEqual([]);
  });

  it('every folder edge is allowed by the layer table (eslint-rules/core-layers.js)', () => {
    const refused: string[] = [];
    for (const [from, tos] of folders) {
      for (const to of tos) if (!CORE_LAYERS[from]?.includes(to)) refused.push(`${from} -> ${to}`);
    }
    expect(refused).toEqual([]);
  });

  it('finds a cycle when there is one (the walker is not blind)', () => {
    const probe = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(cycles(probe)).toEqual([['a', 'b', 'c']]);
  });
});
