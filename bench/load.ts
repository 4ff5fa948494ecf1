/**
 * The load rig (issue 13): many ports streaming both ways at once through
 * real unix sockets, host socket <-> lab <-> guest-dir socket, with a sha1
 * per port and direction, the peak RSS, and optionally one port whose
 * guest-side reader never reads (it must not slow the others down).
 *
 * `runLoad` is shared by the CI-sized test (test/lab/load.test.ts) and
 * `npm run bench -- load` (31 ports x 64 MiB each way).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { GuestDir, isGuestDirError } from '../core/guestdir/index.js';
import { Machine } from '../core/machine/machine.js';
import { parseQemuArgs } from '../core/machine/qemu-cmdline.js';
import { isQemuError } from '../core/base/qemu-error.js';
import { PatternStream } from '../core/workloads/index.js';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;

export interface LoadOptions {
  /** Ports streaming both ways at once. */
  ports: number;
  /** Bytes each way on each port. */
  bytes: number;
  /** Add one more port whose guest-side client never reads while the host writes to it. */
  stuckReader?: boolean;
  ring?: 'split' | 'packed';
}

export interface PortResult {
  name: string;
  toGuest: { sent: string; received: string };
  toHost: { sent: string; received: string };
}

export interface LoadResult {
  ports: PortResult[];
  seconds: number;
  peakRssBytes: number;
  /** Bytes the stuck port's host pushed that the lab accepted (bounded by its buffers). */
  stuckAccepted: number;
}

function connect(p: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: p }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** sha1 of the first `n` bytes a socket sends. */
function hashIncoming(socket: net.Socket, n: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha1');
    let got = 0;
    const onData = (c: Buffer): void => {
      const take = Math.min(c.length, n - got);
      hash.update(c.subarray(0, take));
      got += take;
      if (got >= n) {
        socket.off('data', onData);
        resolve(hash.digest('hex'));
      }
    };
    socket.on('data', onData);
    socket.once('close', () => {
      if (got < n) reject(new Error(`${what}: socket closed after ${got} of ${n} bytes`));
    });
  });
}

/** Write `total` pattern bytes with backpressure; their sha1. */
async function writePattern(socket: net.Socket, total: number, seed: number): Promise<string> {
  const hash = createHash('sha1');
  const pattern = new PatternStream(seed);
  for (let sent = 0; sent < total;) {
    const bytes = pattern.next(Math.min(CHUNK, total - sent));
    hash.update(bytes);
    sent += bytes.length;
    if (!socket.write(bytes)) await new Promise((r) => socket.once('drain', r));
  }
  return hash.digest('hex');
}

/** QEMU arguments: one controller, `n` serial ports p1..pn on unix sockets in `dir`. */
export function loadArgs(dir: string, n: number): string[] {
  const args = ['-device', `virtio-serial,id=vser0,max_ports=${n + 1}`];
  for (let i = 1; i <= n; i++) {
    args.push(
      '-chardev',
      `socket,path=${path.join(dir, `p${i}`)},server=on,wait=off,id=c${i}`,
      '-device',
      `virtserialport,bus=vser0.0,nr=${i},chardev=c${i},name=p${i}`,
    );
  }
  return args;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const total = options.ports + (options.stuckReader === true ? 1 : 0);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vml-load-'));
  const parsed = parseQemuArgs(loadArgs(dir, total));
  if (!parsed.ok) throw new Error(`load rig: ${parsed.error.toString()}`);
  const machine = await Machine.start(parsed.value, {
    runtimeDir: dir,
    ...(options.ring ? { ring: options.ring } : {}),
  });
  if (isQemuError(machine)) throw new Error(`load rig: ${machine.message}`);
  const guestDir = await GuestDir.open(machine.lab, path.join(dir, 'guest'));
  if (isGuestDirError(guestDir)) throw new Error(`load rig: ${guestDir.message}`);
  const sockets: net.Socket[] = [];
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  try {
    const started = performance.now();
    let stuckAccepted = 0;
    if (options.stuckReader === true) {
      // The guest side connects and never reads; the host side writes as much as it is let.
      const name = `p${total}`;
      const guest = await connect(path.join(dir, 'guest', name));
      guest.pause();
      const host = await connect(path.join(dir, name));
      sockets.push(guest, host);
      const block = new Uint8Array(CHUNK);
      const push = (): void => {
        while (host.write(block)) stuckAccepted += block.length;
        stuckAccepted += block.length;
      };
      host.on('drain', push);
      push();
    }
    const ports = await Promise.all(
      Array.from({ length: options.ports }, async (_, k): Promise<PortResult> => {
        const name = `p${k + 1}`;
        const guest = await connect(path.join(dir, 'guest', name));
        const host = await connect(path.join(dir, name));
        sockets.push(guest, host);
        const toGuest = hashIncoming(guest, options.bytes, `${name} host->guest`);
        const toHost = hashIncoming(host, options.bytes, `${name} guest->host`);
        const [sentToGuest, sentToHost] = await Promise.all([
          writePattern(host, options.bytes, 2 * k + 1),
          writePattern(guest, options.bytes, 2 * k + 2),
        ]);
        return {
          name,
          toGuest: { sent: sentToGuest, received: await toGuest },
          toHost: { sent: sentToHost, received: await toHost },
        };
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    peak = Math.max(peak, process.memoryUsage().rss);
    return { ports, seconds, peakRssBytes: peak, stuckAccepted };
  } finally {
    clearInterval(sampler);
    for (const s of sockets) s.destroy();
    await guestDir.close();
    await machine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `npm run bench -- load`: 31 ports x 64 MiB each way, with and without a stuck reader. */
export async function benchLoad(
  report: (name: string, value: number, baseline: number, unit: string) => void,
): Promise<void> {
  const bytes = Number(process.env.VMCHAN_LOAD_MIB ?? 64) * MiB;
  const base = await runLoad({ ports: 31, bytes });
  check(base);
  const stuck = await runLoad({ ports: 31, bytes, stuckReader: true });
  check(stuck);
  const mibps = (r: LoadResult): number => (2 * 31 * bytes) / MiB / r.seconds;
  report('31 ports both ways, one stuck reader (vs none)', mibps(stuck), mibps(base), 'MiB/s');
  process.stdout.write(
    `peak RSS ${(base.peakRssBytes / MiB).toFixed(0)} MiB (no stuck reader), ` +
      `${(stuck.peakRssBytes / MiB).toFixed(0)} MiB (stuck reader); sha1 equal on 62 streams\n`,
  );
}

function check(r: LoadResult): void {
  for (const p of r.ports) {
    if (p.toGuest.sent !== p.toGuest.received || p.toHost.sent !== p.toHost.received) {
      throw new Error(`load: sha1 differs on ${p.name}`);
    }
  }
}
