/**
 * The import boundaries of docs/ARCHITECTURE.md, checked through the
 * project's own ESLint config: core/ never imports a face or Electron, and
 * the renderer imports only core/api/contract and core/api/browser.
 */
import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import * as path from 'node:path';

const ROOT = path.join(import.meta.dirname, '..', '..');
const eslint = new ESLint({ cwd: ROOT });

async function boundaryErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'no-restricted-imports')
    .map((m) => m.message);
}

describe('import boundaries', () => {
  it('core/ may not import electron/, cli/, renderer/ or electron itself', async () => {
    for (const spec of [
      '../../cli/main.js',
      '../../electron/main.js',
      '../../renderer/src/main.js',
      'electron',
    ]) {
      const errors = await boundaryErrors(
        'core/virtio/boundary-probe.ts',
        `import * as x from '${spec}';\nexport const y = x;\n`,
      );
      expect(errors.length, spec).toBeGreaterThan(0);
    }
  });

  it('core/ may import core/ and node:*', async () => {
    const errors = await boundaryErrors(
      'core/virtio/boundary-probe.ts',
      "import * as fs from 'node:fs';\nimport { Feature } from './features.js';\nexport const y = [fs, Feature];\n",
    );
    expect(errors).toEqual([]);
  });

  it('renderer/ may import core/api/contract and core/api/browser but not the engine, the faces or node:*', async () => {
    const file = 'renderer/src/lib/boundary-probe.ts';
    expect(
      await boundaryErrors(
        file,
        "import { RULES } from '../../../core/api/browser/rules.js';\nexport const y = RULES;\n",
      ),
    ).toEqual([]);
    expect(
      await boundaryErrors(
        file,
        "import type { ApiEvent } from '../../../core/api/contract/contract.js';\nexport type Y = ApiEvent;\n",
      ),
    ).toEqual([]);
    for (const spec of [
      '../../../core/engine/lab.js',
      '../../../core/api/server/service.js',
      '../../../core/api/server/session.js',
      '../../../cli/main.js',
      'node:fs',
      'fs',
    ]) {
      const errors = await boundaryErrors(
        file,
        `import * as x from '${spec}';\nexport const y = x;\n`,
      );
      expect(errors.length, spec).toBeGreaterThan(0);
    }
  });
});
