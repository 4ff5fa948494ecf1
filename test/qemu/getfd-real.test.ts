/**
 * H7 against the real QEMU 7.2: the same QMP client passes descriptors with
 * SCM_RIGHTS (python3 socket.send_fds) to qemu-system-x86_64 (`-machine
 * none`, no guest needed) and to `vmchan run`, and every reply must be the
 * same: getfd with and without a descriptor, a name starting with a digit,
 * a name replaced, closefd twice, chardev-add on a pipe's name and on a
 * socket's name (twice: the name is taken), query-chardev's filename for
 * the socketpair end ("unix:", qemu_chr_compute_filename), add-fd with no
 * descriptor, into the first free set, into set 7 and into set -1,
 * query-fdsets, chardev-remove. Descriptor numbers differ between the two
 * processes, so add-fd's `fd` is compared as "a number" and query-fdsets by
 * its shape. Sources: QEMU 7.2 monitor/misc.c (qmp_getfd, qmp_closefd,
 * monitor_get_fd, qmp_add_fd, monitor_fdset_add_fd), util/qemu-sockets.c
 * (socket_get_fd), chardev/char-socket.c (qemu_chr_compute_filename).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, requireBuilt, ROOT, tempDir, waitUntil } from '../lab/helpers.js';
import { COMMON_STEPS, PRELUDE, startFdClient } from '../monitor/qmp-fd-client.js';

const BIN = path.join(ROOT, 'bin', 'vmchan.js');
const inCi = process.env['CI'] === 'true';
const missing = [
  spawnSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' }).status === 0
    ? ''
    : 'qemu-system-x86_64 (apt-get install qemu-system-x86)',
  spawnSync('python3', ['-c', 'pass'], { stdio: 'ignore' }).status === 0
    ? ''
    : 'python3 (apt-get install python3-minimal)',
]
  .filter((m) => m !== '')
  .join(', ');
afterAll(removeTempDirs);

const CLIENT =
  PRELUDE +
  COMMON_STEPS +
  String.raw`
r, w = spare_r, spare_w
out('add-fd without a descriptor', cmd('add-fd'))
out('add-fd', cmd('add-fd', [w], opaque='w'))
out('add-fd set 7', cmd('add-fd', [r], **{'fdset-id': 7}))
out('add-fd negative', cmd('add-fd', [r], **{'fdset-id': -1}))
out('query-fdsets', cmd('query-fdsets'))
out('chardev-remove', cmd('chardev-remove', id='passed'))
`;

/** Descriptor numbers differ between processes: each `fd` becomes 'N'. */
function withoutFdNumbers(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (key, v: unknown) =>
    key === 'fd' && typeof v === 'number' ? 'N' : v,
  );
}

async function runClient(qmpPath: string): Promise<unknown> {
  return withoutFdNumbers(await startFdClient(CLIENT, qmpPath).steps());
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

describe.skipIf(missing !== '' && !inCi)(
  `H7 getfd, closefd, add-fd, chardev-add fd=NAME: vmchan run and QEMU 7.2 answer alike${missing ? ` (missing ${missing})` : ''}`,
  () => {
    it('H7 the same descriptors and commands get the same replies from QEMU 7.2 and vmchan', async () => {
      if (missing !== '') throw new Error(`missing ${missing}`);
      requireBuilt([['dist/cli/run.js', 'cli/run.ts']]);
      if (!fs.existsSync(path.join(ROOT, 'build', 'fdpass.node'))) {
        throw new Error(
          'build/fdpass.node is not built: apt-get install build-essential, then npm run build',
        );
      }
      const dir = tempDir('getfd-real');
      const qemuQmp = path.join(dir, 'qemu.sock');
      const qemu = spawn(
        'qemu-system-x86_64',
        ['-machine', 'none', '-nodefaults', '-display', 'none',
          '-qmp', `unix:${qemuQmp},server=on,wait=off`],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      ); // prettier-ignore
      const labQmp = path.join(dir, 'lab.sock');
      const lab = spawn(
        process.execPath,
        [BIN, 'run', '--', '-device', 'virtio-serial', '-qmp', `unix:${labQmp},server=on,wait=off`],
        { env: { ...process.env, TMPDIR: dir, XDG_RUNTIME_DIR: '' }, stdio: 'ignore' },
      );
      try {
        await waitUntil(
          () => (fs.existsSync(qemuQmp) && fs.existsSync(labQmp)) || qemu.exitCode !== null,
          'both QMP sockets',
          30_000,
        );
        const real = await runClient(qemuQmp);
        const ours = await runClient(labQmp);
        expect(ours).toEqual(real);
        // What QEMU answered, so a change on either side shows here.
        expect(real).toContainEqual([
          'getfd without a descriptor',
          { error: { class: 'GenericError', desc: 'No file descriptor supplied via SCM_RIGHTS' } },
        ]);
        expect(real).toContainEqual(['add-fd', { return: { 'fdset-id': 0, fd: 'N' } }]);
      } finally {
        await stop(qemu);
        await stop(lab);
      }
    });
  },
);
