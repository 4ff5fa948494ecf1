/**
 * Tap benchmarks: throughput through a chardev tap (core/qemu/tap.ts)
 * divided by throughput straight to the same server socket, in the same
 * run, each way, with and without capture to a pcapng file.
 *
 * The server stands in for QEMU's chardev: a plain Node unix-socket sink
 * (application -> "QEMU") or source ("QEMU" -> application). Booting QEMU
 * in a benchmark is too slow and too noisy (a TCG guest moves 4-8 MiB/s
 * host-to-guest, so the tap's cost would vanish in the guest's), which is
 * why the default figures use the stand-in. With VMCHAN_BENCH_QEMU=1 and
 * QEMU installed, the same ratio is also measured against the test guest
 * (test/guest/build.sh) launched under QEMU.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PcapngWriter } from '../core/capture/pcapng-writer.js';
import { CaptureError } from '../core/capture/error.js';
import { isAttachFailure } from '../core/qemu/attach-error.js';
import { LaunchedQemu } from '../core/qemu/launch.js';
import { InPlaceTap } from '../core/qemu/inplace-tap.js';
import { ChardevTap } from '../core/qemu/tap.js';
import { TapJournal } from '../core/qemu/tap-journal.js';

type Report = (name: string, value: number, baseline: number, unit: string) => void;

const MiB = 1024 * 1024;
/** Bytes per measured transfer (a few rounds are taken, the best kept). */
const BYTES = 64 * MiB;
const ROUNDS = 3;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

type Direction = 'to-qemu' | 'from-qemu';

/** The stand-in for QEMU's chardev: sinks what it gets, or sends `BYTES` to each client. */
interface StandIn {
  path: string;
  /** Resolves when the next connection has received all `BYTES` (to-qemu). */
  nextReceived(): Promise<void>;
  close(): Promise<void>;
}

async function standIn(dir: string, direction: Direction): Promise<StandIn> {
  let waiters: (() => void)[] = [];
  const p = path.join(dir, `qemu-${direction}.sock`);
  const server = net.createServer((s) => {
    s.on('error', () => {});
    if (direction === 'to-qemu') {
      let got = 0;
      s.on('data', (b: Buffer) => {
        got += b.length;
        if (got >= BYTES) {
          const w = waiters;
          waiters = [];
          for (const r of w) r();
        }
      });
      return;
    }
    let sent = 0;
    const pump = (): void => {
      while (sent < BYTES) {
        sent += CHUNK.length;
        if (!s.write(CHUNK)) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(p, r));
  return {
    path: p,
    nextReceived: () => new Promise<void>((r) => waiters.push(r)),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Bytes per second of one transfer over a connection to `target`, until the far end has it all. */
async function transfer(target: string, direction: Direction, server: StandIn): Promise<number> {
  const received = server.nextReceived();
  const s = net.createConnection({ path: target });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  const start = performance.now();
  if (direction === 'from-qemu') {
    let got = 0;
    await new Promise<void>((resolve) => {
      s.on('data', (b: Buffer) => {
        got += b.length;
        if (got >= BYTES) resolve();
      });
    });
  } else {
    let sent = 0;
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        while (sent < BYTES) {
          sent += CHUNK.length;
          if (!s.write(CHUNK)) {
            s.once('drain', pump);
            return;
          }
        }
        resolve();
      };
      pump();
    });
    await received;
  }
  const seconds = (performance.now() - start) / 1000;
  s.destroy();
  return BYTES / seconds;
}

export async function benchTap(report: Report): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-bench-tap-'));
  try {
    for (const direction of ['to-qemu', 'from-qemu'] as const) {
      const server = await standIn(dir, direction);
      for (const captured of [false, true]) {
        const capPath = path.join(dir, 'bench.pcapng');
        const sink = captured ? PcapngWriter.create(capPath) : undefined;
        if (sink instanceof CaptureError) throw new Error(sink.message);
        const tap = await ChardevTap.start({
          chardev: 'bench',
          target: { transport: 'unix', path: server.path, server: true },
          listen: path.join(dir, 'tap.sock'),
          port: { device: 'vser0', nr: 1, kind: 'virtserialport', name: 'bench' },
          ...(sink ? { sink } : {}),
        });
        if (isAttachFailure(tap)) throw new Error(tap.message);
        // Direct and tapped rounds interleaved, so drift in the machine hits both.
        let direct = 0;
        let tapped = 0;
        for (let i = 0; i < ROUNDS; i++) {
          direct = Math.max(direct, await transfer(server.path, direction, server));
          tapped = Math.max(tapped, await transfer(tap.address, direction, server));
          await tap.whenIdle();
        }
        await tap.close();
        sink?.close();
        const way = direction === 'to-qemu' ? 'app->QEMU' : 'QEMU->app';
        report(
          `tap ${way} ${captured ? 'with pcapng capture' : 'no capture'} (unix stand-in)`,
          tapped,
          direct,
          'B/s',
        );
      }
      await server.close();
    }
    await benchInPlace(report, dir);
    if (process.env['VMCHAN_BENCH_QEMU'] === '1') await benchAgainstQemu(report, dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The in-place tap (core/qemu/inplace-tap.ts): the application connects to
 * the same path in both rounds; in the tapped round vmchan holds it and
 * QEMU's node waits aside. Each round puts the tap in place and takes it
 * away again, so the direct and tapped figures interleave.
 */
async function benchInPlace(report: Report, dir: string): Promise<void> {
  const journal = new TapJournal(path.join(dir, 'journal'));
  for (const direction of ['to-qemu', 'from-qemu'] as const) {
    const server = await standIn(dir, direction);
    const sink = PcapngWriter.create(path.join(dir, 'inplace.pcapng'));
    if (sink instanceof CaptureError) throw new Error(sink.message);
    let direct = 0;
    let tapped = 0;
    for (let i = 0; i < ROUNDS; i++) {
      direct = Math.max(direct, await transfer(server.path, direction, server));
      const tap = await InPlaceTap.start({
        chardev: 'bench',
        target: { transport: 'unix', path: server.path, server: true },
        port: { device: 'vser0', nr: 1, kind: 'virtserialport', name: 'bench' },
        sink,
        journal,
      });
      if (isAttachFailure(tap)) throw new Error(tap.message);
      tapped = Math.max(tapped, await transfer(server.path, direction, server));
      await tap.tap.whenIdle();
      await tap.close();
    }
    sink.close();
    const way = direction === 'to-qemu' ? 'app->QEMU' : 'QEMU->app';
    report(
      `in-place tap ${way} with pcapng capture, same path (unix stand-in)`,
      tapped,
      direct,
      'B/s',
    );
    await server.close();
  }
}

// ---- against a real guest (VMCHAN_BENCH_QEMU=1) ---------------------------------------------

const GUEST_BYTES = 4 * MiB;

async function benchAgainstQemu(report: Report, dir: string): Promise<void> {
  const root = findRepoRoot();
  const built = root
    ? spawnSync('bash', [path.join(root, 'test/guest/build.sh'), '--quiet'], { encoding: 'utf8' })
    : undefined;
  const imageDir = built?.status === 0 ? built.stdout.trim().split('\n').at(-1) : undefined;
  if (!imageDir) {
    process.stdout.write('tap against QEMU: skipped (test/guest/build.sh did not build a guest)\n');
    return;
  }
  const portSock = path.join(dir, 'port.sock');
  const serial = path.join(dir, 'ttyS0.sock');
  // prettier-ignore
  const launched = await LaunchedQemu.start({
    args: [
      '-accel', 'tcg', '-machine', 'q35', '-m', '256', '-nographic', '-nodefaults', '-no-user-config', '-no-reboot',
      '-kernel', path.join(imageDir, 'vmlinuz'), '-initrd', path.join(imageDir, 'initramfs.gz'),
      '-append', 'console=ttyS0 quiet panic=-1',
      '-chardev', `socket,id=ser0,path=${serial},server=on,wait=off`, '-serial', 'chardev:ser0',
      '-device', 'virtio-serial-pci,id=vser0',
      '-chardev', `socket,id=c1,path=${portSock},server=on,wait=off`,
      '-device', 'virtserialport,bus=vser0.0,chardev=c1,id=port1,name=org.bench',
    ],
    attach: { pollIntervalMs: 0 },
  });
  if (isAttachFailure(launched)) {
    process.stdout.write(`tap against QEMU: skipped (${launched.message})\n`);
    return;
  }
  try {
    const shell = await SerialShell.connect(serial, 90_000);
    const tap = await ChardevTap.start({
      chardev: 'c1',
      target: { transport: 'unix', path: portSock, server: true },
      listen: path.join(dir, 'tap-qemu.sock'),
    });
    if (isAttachFailure(tap)) throw new Error(tap.message);
    const portOpen = async (): Promise<void> => {
      for (;;) {
        await launched.machine.pollNow();
        if (launched.machine.port('port1')?.guestOpen) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    // Host -> guest: the host connects first (a guest read with no host is EOF), the guest reads.
    const toGuest = async (target: string): Promise<number> => {
      const s = await connectUnix(target);
      await new Promise((r) => setTimeout(r, 200));
      const reading = shell.run(`head -c ${GUEST_BYTES} /dev/virtio-ports/org.bench >/dev/null`);
      await portOpen();
      const t0 = performance.now();
      s.write(Buffer.alloc(GUEST_BYTES, 0x62));
      await reading;
      const rate = GUEST_BYTES / ((performance.now() - t0) / 1000);
      s.destroy();
      await tap.whenIdle();
      return rate;
    };
    const fromGuest = async (target: string): Promise<number> => {
      const s = await connectUnix(target);
      await new Promise((r) => setTimeout(r, 200));
      let got = 0;
      const all = new Promise<void>((resolve) =>
        s.on('data', (b: Buffer) => {
          got += b.length;
          if (got >= GUEST_BYTES) resolve();
        }),
      );
      const t0 = performance.now();
      await shell.run(`head -c ${GUEST_BYTES} /dev/zero > /dev/virtio-ports/org.bench`);
      await all;
      const rate = GUEST_BYTES / ((performance.now() - t0) / 1000);
      s.destroy();
      await tap.whenIdle();
      return rate;
    };
    let d = 0;
    let t = 0;
    for (let i = 0; i < 2; i++) {
      d = Math.max(d, await toGuest(portSock));
      t = Math.max(t, await toGuest(tap.address));
    }
    report('tap host->guest, real guest under QEMU (TCG)', t, d, 'B/s');
    d = 0;
    t = 0;
    for (let i = 0; i < 2; i++) {
      d = Math.max(d, await fromGuest(portSock));
      t = Math.max(t, await fromGuest(tap.address));
    }
    report('tap guest->host, real guest under QEMU (TCG)', t, d, 'B/s');
    await tap.close();
    shell.close();
  } finally {
    await launched.stop();
  }
}

function findRepoRoot(): string | undefined {
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (fs.existsSync(path.join(d, 'test/guest/build.sh'))) return d;
    d = path.dirname(d);
  }
  return undefined;
}

function connectUnix(p: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: p }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Just enough of the test guest's serial shell (test/guest/guest-shell.ts) to run a command. */
class SerialShell {
  private buffer = '';
  private n = 0;
  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (t: string) => (this.buffer += t));
    socket.on('error', () => {});
  }

  static async connect(p: string, timeoutMs: number): Promise<SerialShell> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        const shell = new SerialShell(await connectUnix(p));
        await shell.run('true', end - Date.now());
        return shell;
      } catch (e) {
        if (Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  async run(command: string, timeoutMs = 60_000): Promise<void> {
    const marker = `__BENCH_${++this.n}_${process.pid}__`;
    const end = Date.now() + timeoutMs;
    for (;;) {
      this.socket.write(`${command}; echo ${marker.slice(0, 7)}""${marker.slice(7)}\n`);
      const until = Date.now() + Math.min(2_000, Math.max(0, end - Date.now()));
      while (Date.now() < Math.max(until, command === 'true' ? until : end)) {
        const i = this.buffer.indexOf(marker);
        if (i >= 0) {
          this.buffer = this.buffer.slice(i + marker.length);
          return;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      // Only the readiness probe is retried (the shell may not be up yet).
      if (command !== 'true' || Date.now() > end)
        throw new Error(`guest command timed out: ${command}`);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
