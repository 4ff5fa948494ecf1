#!/usr/bin/env node
// The installed entry point: runs the compiled CLI (built by `npm run build`,
// which `npm install` runs through `prepare`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write(
    'vmchan: the CLI is not built yet; run `npm run build` in the vmchan checkout.\n',
  );
  process.exit(2);
}
const { run } = await import(main.href);
process.exitCode = await run(process.argv.slice(2));
