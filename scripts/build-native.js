#!/usr/bin/env node
// build/fdpass.node from native/fdpass.c: vmchan's one native piece, which
// receives descriptors passed with SCM_RIGHTS (QMP getfd, add-fd; see
// core/chardev/fd-passing.ts). N-API only, so one build loads in Node and
// Electron alike; no node-gyp: a single C file needs only a compiler and
// the node_api.h/uv.h headers every Node install carries. Where either is
// missing it says so in one line and the build goes on: vmchan then
// refuses getfd and add-fd, naming this step.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'fdpass.c');
const target = join(root, 'build', 'fdpass.node');

/** Where this Node keeps its C headers (<prefix>/include/node). */
function headerDir() {
  const dirs = [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
    join(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ].filter(Boolean);
  return dirs.find((d) => fs.existsSync(join(d, 'node_api.h')) && fs.existsSync(join(d, 'uv.h')));
}

function skip(why) {
  process.stdout.write(
    `vmchan: ${why}; building without build/fdpass.node: QMP getfd and add-fd will be refused (apt-get install build-essential, then npm run build)\n`,
  );
}

const compiler = process.env.CC || 'cc';
const include = headerDir();
if (process.platform !== 'linux') skip('descriptor passing is built on Linux only');
else if (include === undefined) skip("this Node's C headers (node_api.h, uv.h) were not found");
else {
  fs.mkdirSync(dirname(target), { recursive: true });
  const built = spawnSync(
    compiler,
    [
      '-O2',
      '-Wall',
      '-fPIC',
      '-shared',
      '-DNODE_GYP_MODULE_NAME=fdpass',
      '-DNAPI_VERSION=8',
      `-I${include}`,
      '-o',
      target,
      source,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (built.error !== undefined) skip(`no C compiler (${compiler}: ${built.error.message})`);
  else if (built.status !== 0) skip(`${compiler} failed on native/fdpass.c (exit ${built.status})`);
}
