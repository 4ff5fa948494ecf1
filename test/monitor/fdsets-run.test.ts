/**
 * H6, issue 14 item 9: `-add-fd fd=N,set=S[,opaque=TEXT]` on `vmchan run`
 * with descriptors the test passes as the child's fds 3.. (as libvirt passes
 * QEMU files it may not open itself), `/dev/fdset/S` in a file chardev, and
 * QMP's query-fdsets, remove-fd, add-fd, getfd, closefd (with no descriptor
 * sent: test/monitor/getfd-run.test.ts sends them, H7).
 *
 * QEMU 7.2's behaviour, each checked against a real qemu-system-x86_64 7.2
 * while writing this (softmmu/vl.c parse_add_fd, monitor/misc.c,
 * util/osdep.c qemu_open_internal / qemu_dup_flags, char-file.c):
 * - -add-fd errors: "fd option is required and must be non-negative",
 *   "fd cannot be a standard I/O stream", "fd is not valid or already in
 *   use", "set option is required and must be non-negative", QemuOpts'
 *   "Invalid parameter 'foo'"; the same descriptor twice is two members;
 * - a file chardev on /dev/fdset/S takes the member whose access mode is
 *   O_WRONLY: none is "Permission denied" (EACCES), no set "No such file or
 *   directory", truncation of a pipe (append=off) "Invalid argument";
 * - query-fdsets lists sets by descending id, members in the order added;
 *   remove-fd's "File descriptor named 'fdset-id:S[, fd:N]' not found"; a
 *   set a chardev opened stays listed with no members after remove-fd; a set
 *   nobody opened is closed when the last monitor disconnects
 *   (monitor_fdsets_cleanup with mon_refcount 0);
 * - closefd of an unknown name: "File descriptor named 'x' not found";
 *   getfd and add-fd with no descriptor sent: "No file descriptor supplied
 *   via SCM_RIGHTS"; chardev-add on a socket fd string looks up a monitor
 *   name: "File descriptor named 'x' has not been found".
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Collector, removeTempDirs, ROOT, tempDir, waitUntil } from '../lab/helpers.js';

const BIN = path.join(ROOT, 'bin', 'vmchan.js');
afterAll(removeTempDirs);

function requireBuild(): void {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'run.js'))) {
    throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  }
}

interface Run {
  child: ChildProcess;
  out(): string;
  err(): string;
  exit: Promise<number | null>;
}

/** `vmchan run ARGS` with `fds` as the child's descriptors 3, 4, ... */
function vmchanRun(dir: string, args: string[], fds: Array<number | 'ignore' | 'pipe'>): Run {
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', ...fds];
  const child = spawn(process.execPath, [BIN, 'run', ...args], {
    env: { ...process.env, TMPDIR: dir, XDG_RUNTIME_DIR: '' },
    stdio,
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exit };
}

/** A QMP session over a unix socket: `cmd` sends one command and returns its reply line. */
async function qmp(socketPath: string): Promise<{
  cmd(execute: string, args?: object): Promise<unknown>;
  close(): Promise<void>;
}> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.createConnection({ path: socketPath }, () => resolve(s));
    s.once('error', reject);
  });
  const c = new Collector(socket);
  await c.line(); // the greeting
  const cmd = async (execute: string, args?: object): Promise<unknown> => {
    socket.write(
      `${JSON.stringify(args === undefined ? { execute } : { execute, arguments: args })}\n`,
    );
    for (;;) {
      const reply = JSON.parse(await c.line()) as Record<string, unknown>;
      if (!('event' in reply)) return reply;
    }
  };
  await cmd('qmp_capabilities');
  return {
    cmd,
    close: () =>
      new Promise((resolve) => {
        socket.once('close', () => resolve());
        socket.end();
      }),
  };
}

const error = (desc: string): unknown => ({ error: { class: 'GenericError', desc } });

describe('H6 -add-fd and fd sets on vmchan run', () => {
  it('H6 a file chardev writes through /dev/fdset/S (a file and a pipe), query-fdsets and remove-fd as QEMU', async () => {
    requireBuild();
    const dir = tempDir('addfd');
    const fileOut = path.join(dir, 'port1.out');
    const spare = path.join(dir, 'spare.out');
    const wo = fs.openSync(fileOut, 'w');
    const ro = fs.openSync(fileOut, 'r');
    const unused = fs.openSync(spare, 'w');
    // A pipe's write end: cat reads it; the child gets the O_WRONLY end.
    const fifo = path.join(dir, 'pipe');
    const mk = spawn('mkfifo', [fifo]);
    await new Promise((r) => mk.on('exit', r));
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
    let piped = 0;
    reader.stdout.on('data', (c: Buffer) => (piped += c.length));
    const pipeEnd = fs.openSync(fifo, 'w'); // returns once cat has it open
    const qmpPath = path.join(dir, 'qmp.sock');
    const run = vmchanRun(
      dir,
      [
        '--workload', 'p1=source:65536', '--workload', 'p2=source:65536', '--',
        '-add-fd', 'fd=3,set=1',
        '-add-fd', 'fd=4,set=1,opaque=ro',
        '-add-fd', 'fd=3,set=1,opaque=again',
        '-add-fd', 'fd=5,set=2',
        '-add-fd', 'fd=6,set=3',
        '-chardev', 'file,id=f1,path=/dev/fdset/1',
        '-chardev', 'file,id=f2,path=/dev/fdset/2,append=on',
        '-device', 'virtio-serial',
        '-device', 'virtserialport,chardev=f1,name=p1',
        '-device', 'virtserialport,chardev=f2,name=p2',
        '-qmp', `unix:${qmpPath},server=on,wait=off`,
      ],
      [wo, ro, pipeEnd, unused],
    ); // prettier-ignore
    for (const fd of [wo, ro, pipeEnd, unused]) fs.closeSync(fd);
    try {
      await waitUntil(
        () => /^ready$/m.test(run.out()) || run.child.exitCode !== null,
        'ready',
        30_000,
      );
      expect(run.err()).toBe('');
      await waitUntil(
        () => fs.statSync(fileOut).size > 0,
        'bytes in the file through set 1',
        20_000,
      );
      await waitUntil(() => piped > 0, 'bytes through the pipe in set 2', 20_000);

      const m = await qmp(qmpPath);
      expect(await m.cmd('query-fdsets')).toEqual({
        return: [
          { 'fdset-id': 3, fds: [{ fd: 6 }] },
          { 'fdset-id': 2, fds: [{ fd: 5 }] },
          { 'fdset-id': 1, fds: [{ fd: 3 }, { fd: 4, opaque: 'ro' }, { fd: 3, opaque: 'again' }] },
        ],
      });
      expect(await m.cmd('remove-fd', { 'fdset-id': 9 })).toEqual(
        error("File descriptor named 'fdset-id:9' not found"),
      );
      expect(await m.cmd('remove-fd', { 'fdset-id': 1, fd: 99 })).toEqual(
        error("File descriptor named 'fdset-id:1, fd:99' not found"),
      );
      expect(await m.cmd('closefd', { fdname: 'x' })).toEqual(
        error("File descriptor named 'x' not found"),
      );
      // H7: nothing came with these commands (build/fdpass.node is built by npm run build).
      const none = error('No file descriptor supplied via SCM_RIGHTS');
      expect(await m.cmd('getfd', { fdname: 'x' })).toEqual(none);
      expect(await m.cmd('add-fd', { 'fdset-id': 1 })).toEqual(none);
      expect(
        await m.cmd('chardev-add', {
          id: 's',
          backend: { type: 'socket', data: { addr: { type: 'fd', data: { str: 'x' } } } },
        }),
      ).toEqual(error("Failed to add chardev 's': File descriptor named 'x' has not been found"));

      // remove-fd of the whole of set 1: a chardev opened it, so it stays, empty,
      // and the chardev goes on writing (vmchan closes its member when it lets go).
      expect(await m.cmd('remove-fd', { 'fdset-id': 1 })).toEqual({ return: {} });
      expect(await m.cmd('query-fdsets')).toEqual({
        return: [
          { 'fdset-id': 3, fds: [{ fd: 6 }] },
          { 'fdset-id': 2, fds: [{ fd: 5 }] },
          { 'fdset-id': 1, fds: [] },
        ],
      });
      const before = fs.statSync(fileOut).size;
      await waitUntil(() => fs.statSync(fileOut).size > before, 'bytes after remove-fd', 20_000);

      // The last monitor leaves: set 3, which nothing opened, is closed.
      await m.close();
      const again = await qmp(qmpPath);
      expect(await again.cmd('query-fdsets')).toEqual({
        return: [
          { 'fdset-id': 2, fds: [{ fd: 5 }] },
          { 'fdset-id': 1, fds: [] },
        ],
      });
      await again.close();
    } finally {
      run.child.kill('SIGTERM');
      await run.exit;
      reader.kill();
    }
  }, 90_000);

  /** `vmchan run` that must fail at start; returns its first stderr line. */
  async function startFailure(
    args: string[],
    fds: Array<number | 'ignore' | 'pipe'> = [],
  ): Promise<string> {
    const dir = tempDir('addfd-bad');
    const run = vmchanRun(dir, ['--', ...args, '-device', 'virtio-serial'], fds);
    const code = await run.exit;
    expect(code).not.toBe(0);
    return run.err().split('\n')[0] ?? '';
  }

  it("H6 bad -add-fd and /dev/fdset inputs get QEMU 7.2's messages", async () => {
    requireBuild();
    const dir = tempDir('addfd-in');
    const file = path.join(dir, 'f.out');
    fs.writeFileSync(file, '');
    const wo = fs.openSync(file, 'w');
    const ro = fs.openSync(file, 'r');
    try {
      expect(await startFailure(['-add-fd', 'fd=9,set=1'])).toBe(
        'vmchan: -add-fd fd=9,set=1: fd is not valid or already in use',
      );
      expect(await startFailure(['-add-fd', 'fd=2,set=1'])).toBe(
        'vmchan: -add-fd fd=2,set=1: fd cannot be a standard I/O stream',
      );
      expect(await startFailure(['-add-fd', 'set=1'])).toBe(
        'vmchan: -add-fd set=1: fd option is required and must be non-negative',
      );
      expect(await startFailure(['-add-fd', 'fd=3'], [wo])).toBe(
        'vmchan: -add-fd fd=3: set option is required and must be non-negative',
      );
      expect(await startFailure(['-add-fd', 'fd=3,set=1,foo=1'], [wo])).toBe(
        "vmchan: -add-fd fd=3,set=1,foo=1: Invalid parameter 'foo'",
      );
      expect(await startFailure(['-add-fd', 'fd=x,set=1'])).toBe(
        "vmchan: -add-fd fd=x,set=1: Parameter 'fd' expects a number",
      );
      expect(
        await startFailure(
          ['-add-fd', 'fd=3,set=1', '-chardev', 'file,id=f,path=/dev/fdset/7'],
          [wo],
        ),
      ).toMatch(/: Could not open '\/dev\/fdset\/7': No such file or directory$/);
      expect(
        await startFailure(
          ['-add-fd', 'fd=3,set=1', '-chardev', 'file,id=f,path=/dev/fdset/x'],
          [wo],
        ),
      ).toMatch(/: Could not open '\/dev\/fdset\/x': Invalid argument$/);
      // The only member is read-only: no O_WRONLY member for the file chardev.
      expect(
        await startFailure(
          ['-add-fd', 'fd=3,set=1', '-chardev', 'file,id=f,path=/dev/fdset/1'],
          [ro],
        ),
      ).toMatch(/: Could not open '\/dev\/fdset\/1': Permission denied$/);
      // Node's extra stdio 'pipe' is a socketpair, open O_RDWR: no O_WRONLY member either.
      expect(
        await startFailure(
          ['-add-fd', 'fd=3,set=1', '-chardev', 'file,id=f,path=/dev/fdset/1'],
          ['pipe'],
        ),
      ).toMatch(/: Could not open '\/dev\/fdset\/1': Permission denied$/);
    } finally {
      fs.closeSync(wo);
      fs.closeSync(ro);
    }
  }, 120_000);

  it('H6 a pipe in a set cannot be truncated: a file chardev without append=on fails as QEMU', async () => {
    requireBuild();
    const dir = tempDir('addfd-pipe');
    const fifo = path.join(dir, 'pipe');
    const mk = spawn('mkfifo', [fifo]);
    await new Promise((r) => mk.on('exit', r));
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'ignore', 'ignore'] });
    const pipeEnd = fs.openSync(fifo, 'w');
    try {
      expect(
        await startFailure(
          ['-add-fd', 'fd=3,set=1', '-chardev', 'file,id=f,path=/dev/fdset/1'],
          [pipeEnd],
        ),
      ).toMatch(/: Could not open '\/dev\/fdset\/1': Invalid argument$/);
    } finally {
      fs.closeSync(pipeEnd);
      reader.kill();
    }
  }, 60_000);
});
