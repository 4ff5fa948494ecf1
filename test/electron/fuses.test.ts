/**
 * Issue 13 item 3: Electron's fuses in electron-builder's config, read the
 * way electron-builder reads it (its own YAML parser, resolved through
 * app-builder-lib), and checked against the options electron-builder knows.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const CONFIG = path.join(here, '..', '..', 'electron', 'electron-builder.yml');

function builderRequire(): NodeJS.Require {
  const require = createRequire(import.meta.url);
  return createRequire(require.resolve('app-builder-lib/package.json'));
}

function readConfig(): Record<string, unknown> {
  const yaml = builderRequire()('js-yaml') as { load(text: string): unknown };
  return yaml.load(fs.readFileSync(CONFIG, 'utf8')) as Record<string, unknown>;
}

describe('item 3: electron fuses', () => {
  it('turns off RunAsNode, NODE_OPTIONS and --inspect, and on asar-only loading, asar integrity and cookie encryption', () => {
    const fuses = readConfig()['electronFuses'] as Record<string, unknown> | undefined;
    expect(fuses).toEqual({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      enableCookieEncryption: true,
      grantFileProtocolExtraPrivileges: false,
    });
    expect(readConfig()['asar']).toBe(true);
  });

  it('uses only fuse names electron-builder knows (a typo would be ignored silently)', () => {
    const require = createRequire(import.meta.url);
    const dts = fs.readFileSync(
      path.join(
        path.dirname(require.resolve('app-builder-lib/package.json')),
        'out',
        'configuration.d.ts',
      ),
      'utf8',
    );
    const body = /export interface FuseOptionsV1 \{([\s\S]*?)\n\}/.exec(dts)?.[1] ?? '';
    const known = new Set([...body.matchAll(/^\s+(\w+)\?:/gm)].map((m) => m[1]));
    expect(known.size).toBeGreaterThan(5);
    const fuses = readConfig()['electronFuses'] as Record<string, unknown>;
    for (const name of Object.keys(fuses)) expect(known.has(name), name).toBe(true);
  });
});
