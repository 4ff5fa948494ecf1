/**
 * `npm install && npm start` where Electron's binary cannot be downloaded
 * (issue 17, Setup): electron is an optional dependency whose install script
 * npm 11 does not run (package.json's allowScripts), so the install never
 * depends on the download and keeps Electron's type declarations (the type
 * check of electron/ needs them: when npm ran the download and it failed, npm
 * dropped the package and `npm test` failed its type check); an npm that does
 * run the script still drops it rather than failing the install; the first
 * `npm start` downloads the binary and falls back to the web mode when it
 * cannot; the build can still leave out exactly the shell's modules that
 * import electron (an install with --omit=dev); electron-builder is told the
 * version; the README's two commands are unchanged.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (p: string): string => fs.readFileSync(path.join(ROOT, p), 'utf8');
const json = (p: string): Record<string, Record<string, string>> =>
  JSON.parse(read(p)) as Record<string, Record<string, string>>;

describe('setup without the Electron binary', () => {
  it('has electron as an optional dependency whose download npm install does not run', () => {
    const pkg = json('package.json');
    expect(pkg['optionalDependencies']?.['electron']).toMatch(/^\^?\d+\./);
    expect(pkg['devDependencies']?.['electron']).toBeUndefined();
    expect(pkg['dependencies']?.['electron']).toBeUndefined();
    expect((pkg['allowScripts'] as unknown as Record<string, boolean>)['electron']).toBe(false);
    const lock = json('package-lock.json') as unknown as {
      packages: Record<string, { optional?: boolean; dev?: boolean; version?: string }>;
    };
    expect(lock.packages['node_modules/electron']).toMatchObject({ optional: true });
    expect(lock.packages['node_modules/electron']?.dev).toBeUndefined();
    // npm start fetches the binary itself, once, and says when it cannot
    expect(read('scripts/start.js')).toMatch(/electron', 'install\.js'/);
  });

  it('builds without the modules that import electron when it is missing, and only those', () => {
    const web = json('tsconfig.build-web.json') as unknown as { exclude: string[] };
    const importing = fs
      .readdirSync(path.join(ROOT, 'electron'))
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .filter((f) => /from 'electron'/.test(read(`electron/${f}`)))
      .map((f) => `electron/${f}`)
      .sort();
    expect(web.exclude.filter((e) => e.startsWith('electron/')).sort()).toEqual(importing);
    expect(json('package.json')['scripts']?.['build']).toBe('node scripts/build.js');
    expect(read('scripts/build.js')).toMatch(/tsconfig\.build-web\.json/);
    expect(read('scripts/start.js')).toMatch(/tsconfig\.build-web\.json/);
  });

  it('names the Electron version electron-builder packs, equal to the locked one', () => {
    const lock = json('package-lock.json') as unknown as {
      packages: Record<string, { version?: string }>;
    };
    const yml = read('electron/electron-builder.yml');
    const named = /^electronVersion:\s*([\d.]+)\s*$/m.exec(yml)?.[1];
    expect(named).toBe(lock.packages['node_modules/electron']?.version);
  });

  it('keeps the README’s two commands, with no environment variable', () => {
    const readme = read('README.md');
    expect(readme).toMatch(/npm install && npm start/);
    expect(readme).not.toMatch(/ELECTRON_SKIP_BINARY_DOWNLOAD=1 npm install/);
  });
});
