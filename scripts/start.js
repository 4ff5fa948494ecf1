#!/usr/bin/env node
// `npm start`: build what is missing or older than its sources (the engine
// and CLI with tsc, the sandboxed preload, the renderer with Vite), then
// start the desktop app. The Electron binary is downloaded on the first
// start (not by npm install). Where that download fails (or is skipped with
// ELECTRON_SKIP_BINARY_DOWNLOAD) or there is no display, it says so in one
// line and starts the web mode instead, printing the URL to open.
//
//   npm start [-- --web] [-- --port N] [-- --host ADDR] [-- --no-demo]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

/** Newest modification time of the files under `paths` whose names end with one of `exts`. */
function newest(paths, exts) {
  let t = 0;
  const walk = (p) => {
    if (!existsSync(p)) return;
    const s = statSync(p);
    if (s.isDirectory()) {
      for (const e of readdirSync(p)) if (e !== 'node_modules' && e !== 'dist') walk(join(p, e));
    } else if (exts.some((x) => p.endsWith(x))) {
      t = Math.max(t, s.mtimeMs);
    }
  };
  for (const p of paths) walk(join(root, p));
  return t;
}

function stale(output, inputs, exts) {
  const out = join(root, output);
  return !existsSync(out) || statSync(out).mtimeMs < newest(inputs, exts);
}

function step(what, command, commandArgs, output) {
  process.stdout.write(`vmchan: building ${what}…\n`);
  const r = spawnSync(command, commandArgs, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    // tsc still writes its output on type errors; go on if there is something to run.
    if (existsSync(join(root, output))) {
      process.stderr.write(
        `vmchan: building ${what} reported errors (see above); starting what was built\n`,
      );
    } else {
      process.stderr.write(`vmchan: building ${what} failed\n`);
      process.exit(1);
    }
  }
}

const TS = ['.ts', '.cts'];
// Electron is optional: without it the shell's modules that import it are left out.
const haveElectron = (() => {
  try {
    createRequire(import.meta.url).resolve('electron/package.json');
    return true;
  } catch {
    return false;
  }
})();
if (
  stale('dist/cli/serve.js', ['core', 'cli', 'electron'], TS) ||
  (haveElectron && stale('dist/electron/main.js', ['core', 'electron'], TS))
) {
  step(
    'the engine (tsc)',
    bin('tsc'),
    ['-p', haveElectron ? 'tsconfig.build.json' : 'tsconfig.build-web.json'],
    'dist/cli/serve.js',
  );
}
if (haveElectron && stale('dist/electron/preload.cjs', ['electron/preload.cts'], TS)) {
  step(
    'the preload (tsc)',
    bin('tsc'),
    ['-p', 'electron/tsconfig.json'],
    'dist/electron/preload.cjs',
  );
}
if (
  stale(
    'dist/renderer/index.html',
    ['renderer', 'core/api'],
    ['.ts', '.svelte', '.css', '.html', '.js'],
  )
) {
  step(
    'the window (vite)',
    bin('vite'),
    ['build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn'],
    'dist/renderer/index.html',
  );
}

function electronBinary() {
  try {
    const p = createRequire(import.meta.url)('electron');
    return typeof p === 'string' && existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

/**
 * The binary, fetched on first start: npm install does not run Electron's
 * download (package.json's allowScripts), so an install never fails or drops
 * Electron's type declarations where the download cannot work; here it runs
 * once, and where it fails the web mode starts instead.
 */
function fetchElectronBinary() {
  const installer = join(root, 'node_modules', 'electron', 'install.js');
  if (!haveElectron || !existsSync(installer) || process.env.ELECTRON_SKIP_BINARY_DOWNLOAD) {
    return null;
  }
  process.stdout.write('vmchan: downloading the Electron binary (first start)…\n');
  const r = spawnSync(process.execPath, [installer], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) {
    const why = `${r.stderr ?? ''}`.split('\n').find((l) => /error/i.test(l)) ?? `exit ${r.status}`;
    process.stdout.write(`vmchan: the Electron download failed (${why.trim()})\n`);
    return null;
  }
  return electronBinary();
}

const electron = flag('--web') ? null : (electronBinary() ?? fetchElectronBinary());
const noDisplay =
  process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY;

if (electron !== null && !noDisplay) {
  const child = spawn(electron, [join(root, 'dist', 'electron', 'main.js')], {
    cwd: root,
    stdio: 'inherit',
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  if (!flag('--web')) {
    process.stdout.write(
      electron === null
        ? 'vmchan: the Electron binary is not installed; starting the web mode instead\n'
        : 'vmchan: no display to open a window on; starting the web mode instead\n',
    );
  }
  const { startServe } = await import(pathToFileURL(join(root, 'dist', 'cli', 'serve.js')).href);
  const port = option('--port');
  const handle = await startServe({
    ...(port !== undefined ? { port: Number(port) } : {}),
    ...(option('--host') !== undefined ? { host: option('--host') } : {}),
    demo: !flag('--no-demo'),
  });
  process.stdout.write(`vmchan: open ${handle.url}\n`);
  const stop = async () => {
    await handle.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
