/**
 * Shared pieces of the chardev tests: a small frontend driven by a real
 * Scheduler, specs, temp dirs, socat, and waiting helpers.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'vitest';
import type { Chardev, ChardevBackend } from '../../core/machine/topology.js';
import type { ChardevEndpoint, ChardevEvent, ChardevHandlers } from '../../core/serial/endpoint.js';
import { Scheduler } from '../../core/engine/scheduler.js';
import {
  createChardev,
  isChardevError,
  type ChardevContext,
  type OpenChardev,
} from '../../core/chardev/index.js';
import { until } from '../until.js';

/**
 * A port-like frontend: takes up to `room` bytes per canRead() (Infinity:
 * 64 KiB at a time), keeps what it read and the events it saw.
 */
export class TestFrontend implements ChardevHandlers {
  readonly events: ChardevEvent[] = [];
  readonly chunks: Uint8Array[] = [];
  received = 0;
  /** Bytes the frontend will take in total before it stops (like posted guest buffers). */
  room = Infinity;
  private readonly hash = createHash('sha1');

  canRead(): number {
    return Math.max(0, Math.min(this.room, 64 * 1024));
  }

  read(bytes: Uint8Array): void {
    if (bytes.length > this.canRead())
      throw new Error(`read ${bytes.length} > canRead ${this.canRead()}`);
    this.chunks.push(bytes.slice());
    this.received += bytes.length;
    this.room -= bytes.length;
    this.hash.update(bytes);
  }

  event(event: ChardevEvent): void {
    this.events.push(event);
  }

  text(): string {
    return Buffer.concat(this.chunks).toString();
  }

  sha1(): string {
    return this.hash.copy().digest('hex');
  }
}

/** Push all of `data` through write() with backpressure, as a throttled port does (D5). */
export async function writeAll(
  ep: ChardevEndpoint,
  data: Uint8Array,
  piece = 4096,
): Promise<{ shortWrites: number }> {
  let off = 0;
  let shortWrites = 0;
  while (off < data.length) {
    const chunk = data.subarray(off, Math.min(data.length, off + piece));
    const n = ep.write(chunk);
    off += n;
    if (n < chunk.length) {
      shortWrites++;
      await new Promise<void>((resolve) => ep.addWriteWatch(resolve));
    }
  }
  return { shortWrites };
}

/** Wait until `cond` holds; fails naming `what` (test/until.ts). */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  await until(cond, what, timeoutMs);
}

export function sha1(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('hex');
}

/** Deterministic pseudo-random bytes. */
export function pattern(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A short private temp dir (unix socket paths are limited to 107 bytes). */
export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'vmc-'));
}

export function spec(id: string, backend: ChardevBackend, extra: Partial<Chardev> = {}): Chardev {
  return { id, backend, mux: false, logappend: false, ...extra };
}

/** A scheduler, the notices it saw, and an opener that fails the test on a ChardevError. */
export function lab(extra: Partial<ChardevContext> = {}): {
  scheduler: Scheduler;
  notices: string[];
  ctx: ChardevContext;
  open: (s: Chardev) => Promise<OpenChardev>;
} {
  const scheduler = new Scheduler();
  const notices: string[] = [];
  const ctx: ChardevContext = { post: scheduler.post, onNotice: (l) => notices.push(l), ...extra };
  const open = async (s: Chardev): Promise<OpenChardev> => {
    const c = await createChardev(s, ctx);
    if (isChardevError(c)) throw new Error(`unexpected error: ${c.toString()}`);
    return c;
  };
  return { scheduler, notices, ctx, open };
}

/** The chardev as the backend class a test expects (fails the test otherwise). */
export function as<T extends object>(
  c: OpenChardev,
  cls: { prototype: T; readonly name: string },
): T {
  // (a prototype check: the backend classes have private constructors)
  if (!Object.prototype.isPrototypeOf.call(cls.prototype, c)) {
    throw new Error(`expected ${cls.name}, got ${c.constructor.name}`);
  }
  return c as unknown as T;
}

// ------------------------------------------------------------------ socat

export const HAVE_SOCAT = spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
const IN_CI = process.env.CI === 'true';

/**
 * Whether socat tests should be skipped. Under CI=true a missing socat is a
 * failure ("socat not found: apt-get install socat"), elsewhere a skip.
 */
export function skipWithoutSocat(): boolean {
  if (HAVE_SOCAT) return false;
  if (IN_CI) {
    it('socat is installed', () => {
      throw new Error('socat not found: apt-get install socat');
    });
    return true;
  }
  it.skip('socat not found: apt-get install socat', () => {});
  return true;
}

/** A socat process with its stdout collected. */
export interface Socat {
  child: ChildProcess;
  output(): Buffer;
  write(data: Uint8Array | string): void;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export function socat(args: string[]): Socat {
  const child = spawn('socat', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', () => {});
  child.stdin!.on('error', () => {});
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => Buffer.concat(out),
    write: (data) => child.stdin!.write(data),
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export function mkfifo(p: string): void {
  const r = spawnSync('mkfifo', [p]);
  if (r.status !== 0) throw new Error(`mkfifo ${p} failed: ${r.stderr}`);
}
