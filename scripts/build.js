#!/usr/bin/env node
// `npm run build` (and `prepare`, so after every `npm install`): the engine and
// CLI with tsc, the sandboxed preload, the renderer with Vite, the native
// descriptor-passing addon when a C compiler is there (build-native.js). Electron is an
// optional dependency: where npm skipped it (its binary could not be
// downloaded), the shell's modules that import it are left out, in one line,
// and the rest builds as usual: `npm start` then opens the web mode.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);

function electronInstalled() {
  try {
    createRequire(import.meta.url).resolve('electron/package.json');
    return true;
  } catch {
    return false;
  }
}

function run(command, args) {
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const electron = electronInstalled();
if (!electron) {
  process.stdout.write(
    'vmchan: electron is not installed (optional: its download failed or was skipped); building without the desktop shell, `npm start` opens the web mode\n',
  );
}
run(bin('tsc'), ['-p', electron ? 'tsconfig.build.json' : 'tsconfig.build-web.json']);
if (electron) run(bin('tsc'), ['-p', 'electron/tsconfig.json']);
run(bin('vite'), ['build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn']);
// The descriptor-passing addon: never fails the build (it says what is missing).
run(process.execPath, [join(root, 'scripts', 'build-native.js')]);
