/**
 * `vmchan run` as a person runs it: the built CLI in a child process. It
 * prints its endpoints and `ready`, carries data, stops cleanly on SIGTERM
 * (exit 0, runtime directory gone), and refuses malformed command lines with
 * QEMU's message and exit status 2.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collector, connectUnix, removeTempDirs, ROOT, tempDir, waitUntil } from './helpers.js';

const BIN = path.join(ROOT, 'bin', 'vmchan.js');

function entry(): string {
  return BIN;
}

beforeAll(() => {
  const built = path.join(ROOT, 'dist', 'cli', 'run.js');
  if (!fs.existsSync(built)) {
    throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  }
  const source = path.join(ROOT, 'cli', 'run.ts');
  if (fs.statSync(built).mtimeMs < fs.statSync(source).mtimeMs) {
    throw new Error('dist/cli/run.js is older than cli/run.ts: run `npm run build`');
  }
});
afterAll(removeTempDirs);

interface Running {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
}

/** Start `vmchan run ARGS` with its own temp dir; resolves once it printed `ready`. */
async function startRun(args: string[], tmp: string): Promise<Running> {
  const child = spawn(process.execPath, [entry(), 'run', ...args], {
    env: { ...process.env, TMPDIR: tmp, XDG_RUNTIME_DIR: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitUntil(() => /^ready$/m.test(out) || child.exitCode !== null, 'ready', 15_000);
  if (!/^ready$/m.test(out)) throw new Error(`vmchan run did not start: ${err}`);
  return { child, out: () => out, err: () => err, exit };
}

/** Run to completion (for refusals). */
function runOnce(
  args: string[],
  tmp: string,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [entry(), 'run', ...args], {
      env: { ...process.env, TMPDIR: tmp, XDG_RUNTIME_DIR: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

describe('vmchan run', () => {
  it('the demo (the app’s): endpoints, ready, console lines, a sha1 SEND on test1/test2, Q1 monitors, the agent; SIGTERM exits 0 and removes the runtime dir', async () => {
    const tmp = tempDir('cli');
    const run = await startRun([], tmp);
    const out = run.out();
    const runtimeDir = /runtime dir (\S+)/.exec(out)?.[1];
    expect(runtimeDir).toBeDefined();
    expect(path.dirname(runtimeDir!)).toBe(tmp);
    expect(fs.statSync(runtimeDir!).mode & 0o777).toBe(0o700);
    for (const id of ['test0', 'test1', 'test2', 'qga0']) {
      expect(out).toContain(`${path.join(runtimeDir!, id)} (unix, server)`);
    }
    expect(out).toMatch(
      /test1 +socket +\S+ \(unix, server\) -> test1 \(virtserialport, vser0\.0 port 1\)/,
    );
    expect(out).toContain(
      `${path.join(runtimeDir!, 'guest', 'org.qemu.guest_agent.0')} -> /dev/vport0p3`,
    );
    expect(out).toContain(`socat - UNIX-CONNECT:${path.join(runtimeDir!, 'test1')}`);
    // the app's demo guest programs (core/api/server/demo-lab.ts)
    expect(out).toMatch(/^workloads: hvc0=source:2048 \(\/dev\/hvc0\), test1=sha1 \(/m);

    // console.0: the guest's numbered lines
    const console0 = new Collector(await connectUnix(path.join(runtimeDir!, 'test0')));
    expect(await console0.line()).toMatch(/^hvc0 0000000001 abcdefghij/);
    // test1: seed 002's service sends 16 bytes on test2, and their sha1 on test1
    const data = new Collector(await connectUnix(path.join(runtimeDir!, 'test2')));
    const c = new Collector(await connectUnix(path.join(runtimeDir!, 'test1')));
    c.socket.write('SEND test2 16 7\n');
    expect(await c.line()).toMatch(/^READY SEND \S+ 16$/);
    const sent = await data.bytesAtLeast(16);
    expect(await c.line()).toBe(`DONE SEND 16 ${createHash('sha1').update(sent).digest('hex')}`);
    // The demo's monitors answer (Q1) and the guest agent serves its port.
    const qmp = new Collector(await connectUnix(path.join(runtimeDir!, 'qmp')));
    expect(await qmp.line()).toMatch(/^\{"QMP": \{"version"/);
    const qga = new Collector(await connectUnix(path.join(runtimeDir!, 'qga0')));
    qga.socket.write('{"execute":"guest-ping"}\n');
    expect(await qga.line()).toBe('{"return": {}}');
    for (const x of [console0, data, c, qmp, qga]) x.socket.destroy();

    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(fs.existsSync(runtimeDir!)).toBe(false);
    expect(fs.readdirSync(tmp)).toEqual([]);
    expect(run.out()).toMatch(/workload test1 sha1 \(stopped\): /);
  });

  it('prints the lost-bytes summary line on SIGUSR1 and when it stops (issue 13 item 14)', async () => {
    const tmp = tempDir('cli');
    const run = await startRun([], tmp);
    const summary = /^vmchan run: dropped \d+ bytes(: .+)?$/gm;
    run.child.kill('SIGUSR1');
    await waitUntil(() => (run.out().match(summary) ?? []).length === 1, 'the summary line');
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(run.out().match(summary)).toHaveLength(2);
  });

  it('H2: the Fedora command line with a guest dir, a workload and a capture file', async () => {
    const tmp = tempDir('cli2');
    const sock = path.join(tmp, 'foo');
    const guest = path.join(tmp, 'g');
    const pcap = path.join(tmp, 'lab.pcapng');
    const run = await startRun(
      [
        '--guest-dir',
        guest,
        '--workload',
        'org.fedoraproject.port.0=echo',
        '-w',
        pcap,
        '--',
        '-m',
        '512',
        '-device',
        'virtio-serial',
        '-chardev',
        `socket,path=${sock},server,nowait,id=foo`,
        '-device',
        'virtserialport,chardev=foo,name=org.fedoraproject.port.0',
      ],
      tmp,
    );
    // D11: -m sizes the guest's RAM; it is read, not listed as ignored.
    expect(run.out()).toContain('guest RAM: 512 MiB');
    expect(run.out()).not.toContain('ignored (not part of the virtio-serial topology)');
    expect(run.out()).toContain(`capturing to ${pcap}`);
    expect(fs.readdirSync(guest)).toEqual(['org.fedoraproject.port.0']);
    const c = new Collector(await connectUnix(sock));
    c.socket.write('fedora\n');
    expect(await c.line()).toBe('fedora');
    c.socket.destroy();
    run.child.kill('SIGINT');
    expect(await run.exit).toBe(0);
    expect(fs.existsSync(guest)).toBe(false);
    expect(fs.existsSync(sock)).toBe(false);
    const file = fs.readFileSync(pcap);
    expect(file.readUInt32LE(0)).toBe(0x0a0d0d0a); // a pcapng section header
    expect(file.includes(Buffer.from('fedora\n'))).toBe(true);
  });

  it('prints help a person can learn from', async () => {
    const tmp = tempDir('help');
    const r = await runOnce(['--help'], tmp);
    expect(r.code).toBe(0);
    for (const word of [
      '--guest-dir',
      '--workload',
      '--ring',
      '-w, --write',
      'Examples:',
      'RECV <port>',
      'EBUSY',
    ]) {
      expect(r.out).toContain(word);
    }
  });

  it('a backend that cannot be opened is an error (exit 1), in QEMU words, leaving nothing behind', async () => {
    const tmp = tempDir('bind');
    const r = await runOnce(
      ['-chardev', 'socket,path=/nonexistent/dir/s,server=on,wait=off,id=s'],
      tmp,
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /^vmchan: -chardev socket,id=s,path=\/nonexistent\/dir\/s,server=on,wait=off: Failed to bind socket/,
    );
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(fs.readdirSync(tmp)).toEqual([]);
  }, 180_000);
});

/** [arguments, what stderr must say] — each refused with exit status 2. */
const REFUSED: [string[], string][] = [
  [['-foo'], 'vmchan: -foo: invalid option'],
  // Q5: the QMP event mode is 'qemu' (rate-limited, the default) or 'all'.
  [['--qmp-events', 'bogus'], "argument 'bogus' is invalid. Allowed choices are qemu, all"],
  // Q6: chardev-change under a port: 'qemu' (refused as QEMU 7.2, the default) or 'ports'.
  [
    ['--qmp-chardev-change', 'bogus'],
    "argument 'bogus' is invalid. Allowed choices are qemu, ports",
  ],
  [['-chardev'], 'vmchan: -chardev: requires an argument'],
  [['-chardev', 'socket,id=x,server=maybe'], "Parameter 'server' expects 'on' or 'off'"],
  [['-chardev', 'bogus,id=x'], "'bogus' is not a valid char driver name"],
  [['-chardev', 'ringbuf,id=r,size=1000'], 'size of ringbuf chardev must be power of two'],
  [
    ['-chardev', 'null,id=a', '-chardev', 'null,id=a'],
    "-chardev null,id=a: Duplicate ID 'a' for chardev",
  ],
  [['-device', 'virtio-serial,max_ports=600'], 'maximum ports supported: 511'],
  [
    ['-device', 'virtserialport,chardev=nope'],
    "No 'virtio-serial-bus' bus found for device 'virtserialport'",
  ],
  [
    ['-device', 'virtio-serial', '-device', 'virtserialport,nr=0'],
    'Port number 0 on virtio-serial devices reserved for virtconsole devices for backward compatibility.',
  ],
  [
    [
      '-device',
      'virtio-serial',
      '-device',
      'virtserialport,name=a',
      '-device',
      'virtserialport,name=a',
    ],
    'virtio-serial-bus: A port already exists by name a',
  ],
  [['--workload', 'test1'], "--workload 'test1': expected PORT=KIND[:ARG]"],
  [['--workload', 'test1=juggle'], "unknown workload 'juggle'"],
  [['--workload', 'test2=source:fast'], "'fast' is not a rate"],
  [
    ['--workload', 'nope=echo'],
    "no port 'nope' in the guest (ports: console.0, test1, test2, org.qemu.guest_agent.0)",
  ],
  [['--workload', 'test1=echo', '--workload', 'test1=sink'], 'port already has a workload'],
  [['--ring', 'diagonal'], "argument 'diagonal' is invalid"],
];

describe('H2 D1 D3: malformed command lines', () => {
  it('each is refused with its message and exit 2, no stack trace, nothing left behind', async () => {
    const tmp = tempDir('bad');
    // Four at a time: each is a whole Node start, and the machine has two cores.
    const results: Awaited<ReturnType<typeof runOnce>>[] = [];
    for (let i = 0; i < REFUSED.length; i += 4) {
      const batch = REFUSED.slice(i, i + 4).map(([args]) => runOnce(args, tmp));
      results.push(...(await Promise.all(batch)));
    }
    results.forEach((r, i) => {
      const [args, message] = REFUSED[i]!;
      const where = `vmchan run ${args.join(' ')}`;
      expect(r.code, where).toBe(2);
      expect(r.err, where).toContain(message);
      expect(r.err, where).not.toMatch(/\n\s+at /);
      expect(r.out, where).not.toMatch(/^ready$/m);
    });
    expect(fs.readdirSync(tmp)).toEqual([]);
  }, 180_000);
});
