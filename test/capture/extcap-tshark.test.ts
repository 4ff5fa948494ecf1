/**
 * vmchan inside the real tshark 4.0 as an extcap: `vmchan extcap install
 * --user` (HOME at a temp dir) makes a running lab an interface of
 * `tshark -D`; `tshark -i <it> -a duration:3 -w F` captures the lab's
 * traffic live (frames, directions, payload sha1); an invalid capture
 * filter is refused with vmchan's own message; `uninstall` leaves the
 * folders as they were.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithTshark, tsharkFields } from './helpers.js';
import {
  Collector,
  connectUnix,
  removeTempDirs,
  ROOT,
  sha1,
  tempDir,
  unixServer,
  waitUntil,
} from '../lab/helpers.js';

const BIN = path.join(ROOT, 'bin', 'vmchan.js');

let home = '';
let env: NodeJS.ProcessEnv = {};
let lab: ChildProcess | undefined;
let labOut = '';
let iface = '';
let labDir = '';

/** Every path under `dir`, so a listing before and after can be compared. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out.push(path.relative(dir, p) + (e.isDirectory() ? '/' : ''));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

function vmchan(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Run tshark; with `hang`, a tshark still running after `limitMs` is killed
 * and the run fails with that sentence (what it was left waiting for).
 */
function tshark(
  args: string[],
  hang?: { limitMs: number; what: string },
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('tshark', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hung = false;
    const timer =
      hang &&
      setTimeout(() => {
        hung = true;
        child.kill('SIGTERM');
      }, hang.limitMs);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (status) => {
      if (timer) clearTimeout(timer);
      if (hung)
        reject(
          new Error(
            `tshark ${args.join(' ')} still ran after ${hang!.limitMs} ms: ${hang!.what}\n${stderr}`,
          ),
        );
      else resolve({ status, stdout, stderr });
    });
  });
}

/** vmchan without blocking the test's event loop (a fifo reader in this process must keep running). */
function vmchanAsync(
  args: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

let before: string[] = [];

beforeAll(async () => {
  const built = path.join(ROOT, 'dist', 'cli', 'extcap.js');
  if (!fs.existsSync(built))
    throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  home = tempDir('extcap-home');
  labDir = tempDir('extcap-lab');
  env = { ...process.env, HOME: home, TMPDIR: home, XDG_RUNTIME_DIR: '' };
  delete env['XDG_CONFIG_HOME'];
  before = listing(home);
  lab = spawn(
    process.execPath,
    [
      BIN,
      'run',
      '--no-agent',
      '--workload',
      'test1=echo',
      '--guest-dir',
      path.join(labDir, 'guest'),
      '--',
      ...unixServer(labDir, 'test1'),
      '-device',
      'virtio-serial',
      '-device',
      'virtserialport,chardev=test1,name=test1',
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  lab.stdout!.on('data', (c: Buffer) => (labOut += c.toString()));
  lab.stderr!.on('data', (c: Buffer) => (labOut += c.toString()));
  await waitUntil(() => /^ready$/m.test(labOut), 'vmchan run to print ready', 60_000);
  const m = /live capture: (vmchan-lab-\d+)/.exec(labOut);
  if (!m) throw new Error(`vmchan run did not publish a live capture:\n${labOut}`);
  iface = m[1]!;
}, 90_000);

afterAll(async () => {
  if (lab && lab.exitCode === null) {
    const gone = new Promise((r) => lab!.once('exit', r));
    lab.kill('SIGTERM');
    await gone;
  }
  removeTempDirs();
});

describeWithTshark('vmchan as a tshark extcap', () => {
  it('install --user puts the launcher and the dissector where tshark looks, and tshark -D lists the lab', async () => {
    const r = vmchan(['extcap', 'install', '--user']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const launcher = path.join(home, '.config', 'wireshark', 'extcap', 'vmchan-extcap');
    expect(fs.statSync(launcher).mode & 0o111).not.toBe(0);
    expect(
      fs.existsSync(path.join(home, '.local', 'lib', 'wireshark', 'plugins', 'vmchan.lua')),
    ).toBe(true);
    const d = await tshark(['-D']);
    expect(d.stdout).toMatch(new RegExp(`\\d+\\. ${iface} \\(vmchan lab: `));
    expect(d.stdout).toMatch(/\d+\. vmchan-qmp \(vmchan: attach to a QEMU/);
  }, 120_000);

  it('tshark -i <lab> -a duration:3 -w F captures the traffic live: frames, directions, sha1', async () => {
    const file = path.join(home, 'live.pcapng');
    const capture = tshark(['-i', iface, '-a', 'duration:3', '-w', file]);
    // dumpcap creates the file when the extcap's section header arrives: the capture is on.
    await waitUntil(
      () => fs.existsSync(file) && fs.statSync(file).size > 0,
      'the live capture file',
      90_000,
    );
    const socket = await connectUnix(path.join(labDir, 'test1'));
    const echoes = new Collector(socket);
    const sent: Buffer[] = [];
    for (let i = 0; i < 5; i++) {
      const msg = Buffer.from(`live message ${i} ${'x'.repeat(i * 10)}\n`);
      sent.push(msg);
      const want = echoes.length + msg.length;
      socket.write(msg);
      await waitUntil(() => echoes.length >= want, `the echo of message ${i}`);
    }
    socket.destroy();
    const done = await capture;
    expect(done.status).toBe(0);
    const rows = tsharkFields(
      file,
      ['frame.interface_name', 'frame.packet_flags_direction', 'data.data'],
      ['-Y', 'frame.interface_name == "test1"', '--disable-protocol', 'vmchan'],
    );
    const h2g = rows.filter((r) => Number(r[1]) === 1);
    const g2h = rows.filter((r) => Number(r[1]) === 2);
    expect(h2g).toHaveLength(5);
    expect(g2h).toHaveLength(5);
    const joined = (rs: string[][]): Buffer =>
      Buffer.concat(rs.map((r) => Buffer.from(r[2]!.replace(/:/g, ''), 'hex')));
    expect(sha1(joined(h2g))).toBe(sha1(Buffer.concat(sent)));
    expect(sha1(joined(g2h))).toBe(sha1(Buffer.concat(sent)));
  }, 180_000);

  it("an invalid capture filter is refused with vmchan's message", async () => {
    const check = vmchan([
      'extcap',
      '--extcap-interface',
      iface,
      '--extcap-capture-filter',
      'port ==',
    ]);
    expect(check.stdout.trim()).toMatch(/^filter error at column 8: /);
    expect(
      vmchan(['extcap', '--extcap-interface', iface, '--extcap-capture-filter', 'port == test1'])
        .stdout,
    ).toBe('');
    // What dumpcap runs: --capture with the filter; refused before any capture, and the
    // fifo's reader is not left waiting.
    const fifo = path.join(home, 'refused.fifo');
    spawnSync('mkfifo', [fifo]);
    // The reader opens the fifo (in libuv's pool: the open waits for a writer) and reads to
    // end-of-file: only a refused extcap that opens and closes the write side lets it end.
    const reader = (async (): Promise<number> => {
      const fh = await fs.promises.open(fifo, 'r');
      try {
        return (await fh.readFile()).length;
      } finally {
        await fh.close();
      }
    })();
    const r = await vmchanAsync([
      'extcap',
      '--capture',
      '--extcap-interface',
      iface,
      '--fifo',
      fifo,
      '--extcap-capture-filter',
      'port ==',
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^vmchan: capture filter: filter error at column 8: /);
    // The extcap has exited: the reader has end-of-file now, or never will.
    expect(
      await Promise.race([
        reader,
        new Promise((_, reject) =>
          setTimeout(
            () => reject(new Error('the fifo reader still waits after the refused extcap exited')),
            20_000,
          ),
        ),
      ]),
    ).toBe(0);
    fs.rmSync(fifo);
  }, 180_000);

  it("tshark -f <invalid> -i <lab> -a duration:3 ends at once with vmchan's message, not a hang", async () => {
    // dumpcap 4.0 waits in select() on the extcap fifo until its first bytes
    // or end-of-file: the refused extcap closes the fifo's write side before
    // it exits, so dumpcap ends and tshark prints the extcap's stderr.
    const r = await tshark(
      ['-f', 'port ==', '-i', iface, '-a', 'duration:3', '-w', path.join(home, 'refused.pcapng')],
      {
        limitMs: 60_000,
        what: 'dumpcap left waiting on the fifo of a refused vmchan extcap capture',
      },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(
      /Error by extcap pipe: vmchan: capture filter: filter error at column 8: expected a value after '=='/,
    );
  }, 120_000);

  it('uninstall leaves the folders as they were', () => {
    const r = vmchan(['extcap', 'uninstall', '--user']);
    expect(r.status).toBe(0);
    const after = listing(home).filter((p) => !p.startsWith('vmchan-') && !p.endsWith('.pcapng'));
    expect(after).toEqual(before);
  });
});
