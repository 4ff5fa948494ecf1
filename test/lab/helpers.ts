/**
 * Rigs for the headless-lab tests: machines from QEMU command lines, real
 * unix/tcp clients on their host sockets, line and byte readers, temporary
 * directories, and the socat requirement.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Machine } from '../../core/machine/machine.js';
import { parseQemuArgs } from '../../core/machine/qemu-cmdline.js';
import { until } from '../until.js';
import { isQemuError } from '../../core/base/qemu-error.js';

export const ROOT = path.join(import.meta.dirname, '..', '..');
export const SOCAT_MISSING = 'socat not found: apt-get install socat';
export const hasSocat = spawnSync('socat', ['-V'], { encoding: 'utf8' }).status === 0;

/**
 * A describe block that needs socat: runs when it is installed; under CI=true
 * a missing socat fails the run; elsewhere the block is skipped with the message.
 */
export function describeWithSocat(name: string, body: () => void): void {
  if (hasSocat) describe(name, body);
  else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs socat', () => {
        throw new Error(SOCAT_MISSING);
      });
    });
  } else describe.skip(`${name} (${SOCAT_MISSING})`, body);
}

const tempDirs: string[] = [];

/** A fresh private directory (short path: unix socket paths are limited to 107 bytes). */
/**
 * Fails when a built file a test runs (the CLI in a child process) is
 * missing or older than its source, naming the fix: `npm run build`.
 */
export function requireBuilt(pairs: readonly (readonly [built: string, source: string])[]): void {
  for (const [built, source] of pairs) {
    const b = path.join(ROOT, built);
    if (!fs.existsSync(b) || fs.statSync(b).mtimeMs < fs.statSync(path.join(ROOT, source)).mtimeMs)
      throw new Error(`${built} is missing or older than ${source}: run \`npm run build\``);
  }
}

export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `vml-${prefix}-`));
  tempDirs.push(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** Parse a QEMU command line and start it; fails the test with QEMU's message otherwise. */
export async function startMachine(
  args: string[],
  runtimeDir: string,
  ring?: 'split' | 'packed',
): Promise<Machine> {
  const parsed = parseQemuArgs(args);
  if (!parsed.ok) throw new Error(`parse: ${parsed.error.toString()}`);
  const m = await Machine.start(parsed.value, { runtimeDir, ...(ring ? { ring } : {}) });
  if (isQemuError(m)) throw new Error(`start: ${m.message}`);
  return m;
}

/** `-chardev socket,path=DIR/ID,server=on,wait=off,id=ID` */
export function unixServer(dir: string, id: string, extra = ''): string[] {
  return ['-chardev', `socket,path=${path.join(dir, id)},server=on,wait=off,id=${id}${extra}`];
}

/** The case study (seed 002) on unix sockets in `dir`. */
export function caseStudyArgs(dir: string): string[] {
  return [
    ...unixServer(dir, 'test0'),
    ...unixServer(dir, 'test1'),
    ...unixServer(dir, 'test2'),
    '-device',
    'virtio-serial',
    '-device',
    'virtconsole,chardev=test0,name=console.0',
    '-device',
    'virtserialport,chardev=test1,name=test1',
    '-device',
    'virtserialport,chardev=test2,name=test2',
  ];
}

export function connectUnix(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: socketPath, allowHalfOpen: true });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export function connectTcp(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/**
 * The port a tcp server chardev listens on, read from its query-chardev
 * filename ("disconnected:tcp:127.0.0.1:PORT,server=on"), the lab's or a
 * real QEMU's: with port=0 both report the port the kernel chose. The
 * connected form ("tcp:127.0.0.1:PORT,server=on <-> 127.0.0.1:PEER")
 * ends with the client's port, so only the first address counts.
 */
export function tcpPortOf(filename: string): number {
  const port = /^(?:disconnected:)?tcp:(?:\[[^\]]*\]|[^:,\s]*):(\d+)/.exec(filename)?.[1];
  if (port === undefined) throw new Error(`not a tcp chardev: ${filename}`);
  return Number(port);
}

/** Everything a socket sends from now on, with waits for amounts and lines. */
export class Collector {
  private chunks: Buffer[] = [];
  length = 0;
  ended = false;
  private waiters: (() => void)[] = [];

  constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.length += c.length;
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  bytes(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  text(): string {
    return this.bytes().toString('utf8');
  }

  /** Take the first n bytes out. */
  take(n: number): Buffer {
    const all = this.bytes();
    const out = all.subarray(0, n);
    this.chunks = [all.subarray(n)];
    this.length -= out.length;
    return out;
  }

  async waitFor(test: () => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!test()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async bytesAtLeast(n: number, ms?: number): Promise<Buffer> {
    await this.waitFor(() => this.length >= n, `${n} bytes (have ${this.length})`, ms);
    return this.take(n);
  }

  /** The next full line (without the newline). */
  async line(ms?: number): Promise<string> {
    await this.waitFor(() => this.bytes().includes(10), 'a line', ms);
    const all = this.bytes();
    const nl = all.indexOf(10);
    const line = all.subarray(0, nl).toString('utf8');
    this.chunks = [all.subarray(nl + 1)];
    this.length -= nl + 1;
    return line;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** Hash everything a socket sends until `n` bytes came; the bytes are not kept. */
export function hashIncoming(socket: net.Socket, n: number): Promise<string> {
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
      if (got < n) reject(new Error(`socket closed after ${got} of ${n} bytes`));
    });
  });
}

/** Write `total` bytes made by `make(n)` with backpressure; resolves with their sha1. */
export async function writeStream(
  socket: net.Socket,
  total: number,
  make: (n: number) => Uint8Array,
  chunk = 256 * 1024,
): Promise<string> {
  const hash = createHash('sha1');
  for (let sent = 0; sent < total;) {
    const bytes = make(Math.min(chunk, total - sent));
    hash.update(bytes);
    sent += bytes.length;
    if (!socket.write(bytes)) await new Promise((r) => socket.once('drain', r));
  }
  return hash.digest('hex');
}

export async function waitUntil(test: () => boolean, what: string, ms = 10_000): Promise<void> {
  await until(test, what, ms);
}

export function sha1(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex');
}

export { expect };
