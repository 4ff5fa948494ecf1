/**
 * The layers inside core/ (eslint-rules/core-layers.js): the project's own
 * ESLint config refuses an import from a folder to one above it, and every
 * folder of core/ has a row in the table.
 */
import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { CORE_LAYERS } from '../../eslint-rules/core-layers.js';

const ROOT = path.join(import.meta.dirname, '..', '..');
const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'serial-imports-engine.txt');
const eslint = new ESLint({ cwd: ROOT });

async function lint(file: string, code: string): Promise<ESLint.LintResult> {
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  if (result === undefined) throw new Error(`ESLint returned no result for ${file}`);
  return result;
}

describe('layers inside core', () => {
  it('a core/serial module importing core/engine fails the lint, naming both folders', async () => {
    const result = await lint('core/serial/layer-probe.ts', readFileSync(FIXTURE, 'utf8'));
    const layerErrors = result.messages.filter((m) => m.ruleId === 'vmchan/core-layers');
    expect(result.errorCount).toBeGreaterThan(0);
    expect(layerErrors).toHaveLength(1);
    expect(layerErrors[0]!.line).toBe(5); // the engine import, not the virtio one
    expect(layerErrors[0]!.message).toContain('core/serial may not import core/engine');
  });

  it('the same imports are allowed one layer up (core/api may import the engine)', async () => {
    const result = await lint('core/api/layer-probe.ts', readFileSync(FIXTURE, 'utf8'));
    expect(result.messages.filter((m) => m.ruleId === 'vmchan/core-layers')).toEqual([]);
  });

  it('export-from and dynamic import() are checked too', async () => {
    const result = await lint(
      'core/virtio/layer-probe.ts',
      "export { Guest } from '../serial/guest/guest.js';\nexport const lab = () => import('../engine/lab.js');\n",
    );
    const layerErrors = result.messages.filter((m) => m.ruleId === 'vmchan/core-layers');
    expect(layerErrors.map((m) => m.line)).toEqual([1, 2]);
  });

  it('every folder of core/ has a row in the layer table, and the rows form layers (no cycle)', () => {
    const core = path.join(ROOT, 'core');
    const folders = readdirSync(core).filter((n) => statSync(path.join(core, n)).isDirectory());
    expect(folders.filter((f) => !(f in CORE_LAYERS))).toEqual([]);
    for (const [folder, allowed] of Object.entries(CORE_LAYERS)) {
      for (const to of allowed) expect(CORE_LAYERS, `${folder} -> ${to}`).toHaveProperty([to]);
    }
    // Depth-first: a folder reachable from itself through the allow-lists is a cycle.
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (f: string, trail: string[]): void => {
      if (done.has(f)) return;
      if (visiting.has(f)) throw new Error(`layer cycle: ${[...trail, f].join(' -> ')}`);
      visiting.add(f);
      for (const to of CORE_LAYERS[f] ?? []) visit(to, [...trail, f]);
      visiting.delete(f);
      done.add(f);
    };
    for (const f of Object.keys(CORE_LAYERS)) visit(f, []);
    expect(done.size).toBe(Object.keys(CORE_LAYERS).length);
  });
});
