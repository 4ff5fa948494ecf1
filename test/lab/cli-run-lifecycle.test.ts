/**
 * Issue 13 items 8 and 9, with the built CLI in a child process:
 * - item 8: `vmchan run` exited with code 13 right after `ready` when
 *   nothing kept Node's event loop alive (a lone device, a stdio monitor
 *   with stdin at end of file), leaving its runtime directory. A lab runs
 *   until it is told to stop.
 * - item 9: `-w EXISTING_FILE` truncated, then deleted, the user's file when
 *   start-up failed after parsing. Now the capture goes to a new file that
 *   takes FILE's name only once the lab is up; a FIFO or device is refused.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs, requireBuilt, ROOT, tempDir, waitUntil } from './helpers.js';

const BIN = path.join(ROOT, 'bin', 'vmchan.js');

beforeAll(() =>
  requireBuilt([
    ['dist/cli/run.js', 'cli/run.ts'],
    ['dist/cli/capture-file.js', 'cli/capture-file.ts'],
  ]),
);
afterAll(removeTempDirs);

interface Child {
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
  kill: (signal: NodeJS.Signals) => void;
  running: () => boolean;
}

function start(args: string[], tmp: string, stdin: 'ignore' | 'pipe' = 'ignore'): Child {
  const child = spawn(process.execPath, [BIN, 'run', ...args], {
    env: { ...process.env, TMPDIR: tmp, XDG_RUNTIME_DIR: '' },
    stdio: [stdin, 'pipe', 'pipe'],
  });
  if (stdin === 'pipe') child.stdin!.end(); // stdin at end of file
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    out: () => out,
    err: () => err,
    exit,
    kill: (s) => child.kill(s),
    running: () => child.exitCode === null && child.signalCode === null,
  };
}

/** True when the child is still running `ms` after now (it used to exit at once). */
async function stillRunningAfter(c: Child, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    c.exit.then(() => 'exited' as const),
    new Promise<'running'>((resolve) => (timer = setTimeout(() => resolve('running'), ms))),
  ]);
  clearTimeout(timer);
  return outcome === 'running' && c.running();
}

const runtimeDirs = (tmp: string): string[] =>
  fs.readdirSync(tmp).filter((n) => n.startsWith('vmchan-'));

describe('item 8: a lab runs until it is told to stop', () => {
  for (const [what, args, stdin] of [
    ['a lone device', ['--no-agent', '--', '-device', 'virtio-serial'], 'ignore'],
    [
      'a stdio monitor with stdin at end of file',
      ['--no-agent', '--', '-device', 'virtio-serial', '-monitor', 'stdio'],
      'pipe',
    ],
  ] as const) {
    it(`${what}: still running after ready, SIGTERM ends it with 0 and no runtime dir`, async () => {
      const tmp = tempDir('alive');
      const c = start([...args], tmp, stdin);
      await waitUntil(() => /^ready$/m.test(c.out() + c.err()) || !c.running(), 'ready', 15_000);
      expect(c.out() + c.err()).toMatch(/^ready$/m);
      // Before the fix the process was gone within milliseconds of `ready` (exit 13).
      expect(await stillRunningAfter(c, 1000)).toBe(true);
      c.kill('SIGTERM');
      expect(await c.exit).toBe(0);
      expect(runtimeDirs(tmp)).toEqual([]);
    });
  }
});

describe('item 9: -w never destroys the user’s file', () => {
  it('a start that fails after parsing leaves the existing file as it was, and no partial file', async () => {
    const tmp = tempDir('keepw');
    const precious = path.join(tmp, 'thesis.pcapng');
    fs.writeFileSync(precious, 'four years of work\n');
    const c = start(
      ['-w', precious, '--', '-chardev', 'socket,path=/nonexistent/dir/s,server=on,wait=off,id=s'],
      tmp,
    );
    expect(await c.exit).toBe(1);
    expect(c.err()).toMatch(/Failed to bind socket/);
    expect(fs.readFileSync(precious, 'utf8')).toBe('four years of work\n');
    expect(fs.readdirSync(tmp).sort()).toEqual(['thesis.pcapng']);
  });

  it('a start that succeeds replaces the file with the capture (as tshark -w does)', async () => {
    const tmp = tempDir('replacew');
    const file = path.join(tmp, 'old.pcapng');
    fs.writeFileSync(file, 'old');
    const c = start(['--no-agent', '-w', file, '--', '-device', 'virtio-serial'], tmp);
    await waitUntil(() => /^ready$/m.test(c.out()) || !c.running(), 'ready', 15_000);
    expect(fs.readFileSync(file, 'latin1')).not.toBe('old'); // already the capture's file
    c.kill('SIGTERM');
    expect(await c.exit).toBe(0);
    expect(fs.readFileSync(file).readUInt32LE(0)).toBe(0x0a0d0d0a); // a pcapng section header
    expect(fs.readdirSync(tmp).filter((n) => !n.startsWith('vmchan-'))).toEqual(['old.pcapng']);
  });

  it('refuses a FIFO or a device at once (exit 2), never opening it', async () => {
    const tmp = tempDir('fifow');
    const fifo = path.join(tmp, 'pipe');
    if (spawnSync('mkfifo', [fifo]).status !== 0) throw new Error('mkfifo failed (coreutils)');
    for (const [target, what] of [
      [fifo, 'a FIFO (named pipe)'],
      ['/dev/zero', 'a character device'],
      [tmp, 'a directory'],
    ] as const) {
      const c = start(['-w', target, '--', '-device', 'virtio-serial'], tmp);
      expect(await c.exit).toBe(2);
      expect(c.err()).toBe(
        `vmchan: -w ${target}: it is ${what}; a capture is written to a regular file\n`,
      );
    }
    expect(fs.readdirSync(tmp)).toEqual(['pipe']);
  });
});
