/**
 * The layers inside core/ (eslint-rules/core-layers.js): the project's own
 * ESLint config refuses an import from a folder to one above it, core/api's
 * three parts (contract, browser, server) are layers of their own, and every
 * module of core/ is in a layer with a row in the table.
 */
import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { CORE_LAYERS, coreFolder } from '../../eslint-rules/core-layers.js';

const ROOT = path.join(import.meta.dirname, '..', '..');
const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'serial-imports-engine.txt');
const BROWSER_FIXTURE = path.join(import.meta.dirname, 'fixtures', 'browser-imports-server.txt');
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

  it('the same imports are allowed one layer up (core/machine may import the engine)', async () => {
    const result = await lint('core/machine/layer-probe.ts', readFileSync(FIXTURE, 'utf8'));
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

  it('every module of core/ is in a layer with a row, and the rows form layers (no cycle)', () => {
    const core = path.join(ROOT, 'core');
    const modules = (dir: string): string[] =>
      readdirSync(dir).flatMap((n) => {
        const p = path.join(dir, n);
        return statSync(p).isDirectory() ? modules(p) : n.endsWith('.ts') ? [p] : [];
      });
    const outside = modules(core)
      .filter((file) => !((coreFolder(core, file) ?? '') in CORE_LAYERS))
      .map((file) => path.relative(core, file));
    expect(outside).toEqual([]);
    expect(modules(core).length).toBeGreaterThan(150);
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

describe("core/api's parts, by who uses them", () => {
  const layerMessages = (r: ESLint.LintResult) =>
    r.messages.filter((m) => m.ruleId === 'vmchan/core-layers');
  const boundaryMessages = (r: ESLint.LintResult) =>
    r.messages.filter((m) => m.ruleId === 'no-restricted-imports');

  it('core/api/browser importing core/api/server or a Node module fails the lint', async () => {
    const result = await lint(
      'core/api/browser/layer-probe.ts',
      readFileSync(BROWSER_FIXTURE, 'utf8'),
    );
    expect(result.errorCount).toBeGreaterThan(0);
    const layers = layerMessages(result);
    expect(layers.map((m) => m.line)).toEqual([6]); // the server import, not the contract one
    expect(layers[0]!.message).toContain('core/api/browser may not import core/api/server');
    const boundaries = boundaryMessages(result);
    expect(boundaries.map((m) => m.line)).toEqual([7, 8]); // node:fs and bare 'path'
    for (const m of boundaries) expect(m.message).toContain('no Node modules');
  });

  it('core/api/contract imports neither core/api/browser nor core/api/server', async () => {
    const result = await lint(
      'core/api/contract/layer-probe.ts',
      "import type { ApiClient } from '../browser/client.js';\n" +
        "import type { Session } from '../server/session.js';\n" +
        "import { fs } from 'node:fs';\n" +
        'export type Probe = [ApiClient, Session, typeof fs];\n',
    );
    const layers = layerMessages(result);
    expect(layers.map((m) => m.line)).toEqual([1, 2]);
    expect(layers[0]!.message).toContain('core/api/contract may not import core/api/browser');
    expect(layers[1]!.message).toContain('core/api/contract may not import core/api/server');
    expect(boundaryMessages(result).map((m) => m.line)).toEqual([3]);
  });

  it('core/api/server may import the contract, the engine and Node (the same probe, one part up)', async () => {
    const result = await lint(
      'core/api/server/layer-probe.ts',
      "import type { ApiEvent } from '../contract/contract.js';\n" +
        "import type { Lab } from '../../engine/lab.js';\n" +
        "import { readFileSync } from 'node:fs';\n" +
        'export type Probe = [ApiEvent, Lab, typeof readFileSync];\n',
    );
    expect(layerMessages(result)).toEqual([]);
    expect(boundaryMessages(result)).toEqual([]);
  });

  it("core/api/server may not import core/api/browser (the renderer's code stays the renderer's)", async () => {
    const result = await lint(
      'core/api/server/layer-probe.ts',
      "import type { ThroughputHistory } from '../browser/view.js';\nexport type Probe = ThroughputHistory;\n",
    );
    expect(layerMessages(result)[0]?.message).toContain(
      'core/api/server may not import core/api/browser',
    );
  });

  it('a module directly in core/api/ fails the lint, naming the parts to choose from', async () => {
    const result = await lint('core/api/layer-probe.ts', 'export const probe = 1;\n');
    const layers = layerMessages(result);
    expect(layers).toHaveLength(1);
    expect(layers[0]!.message).toContain('api/contract, api/browser, api/server');
  });
});
