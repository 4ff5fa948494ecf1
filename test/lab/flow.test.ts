/**
 * Flow control end to end and people coming and going:
 * - D5/D6: a slow host reader holds the guest writer back; nothing is lost
 *   and memory does not grow with the amount transferred;
 * - H3: one host client at a time, and the next one works after the first left;
 * - L3/L4/L5 at the guest-dir socket: exclusive open, the guest side stays
 *   connected across host hang-ups, writes wait for the next host.
 */
import * as path from 'node:path';
import type * as net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { GuestDir, isGuestDirError } from '../../core/guestdir/index.js';
import type { Machine } from '../../core/machine/machine.js';
import {
  isWorkloadError,
  parseWorkload,
  PatternStream,
  startWorkloads,
  type Workload,
} from '../../core/workloads/index.js';
import {
  caseStudyArgs,
  Collector,
  connectUnix,
  removeTempDirs,
  sha1,
  startMachine,
  tempDir,
  waitUntil,
  writeStream,
} from './helpers.js';
import { createHash } from 'node:crypto';

const MiB = 1024 * 1024;
const open: { close(): Promise<void> }[] = [];
let workloads: Workload[] = [];
afterEach(async () => {
  await Promise.all(workloads.map((w) => w.stop()));
  workloads = [];
  for (const x of open.splice(0).reverse()) await x.close();
});
afterAll(removeTempDirs);

async function caseStudy(dir: string): Promise<{ m: Machine; g: GuestDir }> {
  const m = await startMachine(caseStudyArgs(dir), dir);
  open.push(m);
  const g = await GuestDir.open(m.lab, path.join(dir, 'guest'));
  if (isGuestDirError(g)) throw new Error(g.message);
  open.push(g);
  return { m, g };
}

async function echo(m: Machine, port: string): Promise<void> {
  const spec = parseWorkload(`${port}=echo`);
  if (isWorkloadError(spec)) throw new Error(spec.message);
  const w = await startWorkloads(m.lab, [spec]);
  if (isWorkloadError(w)) throw new Error(w.message);
  workloads.push(...w);
}

/** Read `total` bytes at most `burst` bytes per `gapMs`; returns their sha1. */
function slowRead(
  socket: net.Socket,
  total: number,
  burst: number,
  gapMs: number,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha1');
    let got = 0;
    let inBurst = 0;
    socket.on('data', (c: Buffer) => {
      hash.update(c);
      got += c.length;
      inBurst += c.length;
      if (got >= total) {
        resolve(hash.digest('hex'));
        return;
      }
      if (inBurst >= burst) {
        socket.pause();
        inBurst = 0;
        setTimeout(() => socket.resume(), gapMs);
      }
    });
    socket.once('close', () => got < total && reject(new Error(`closed after ${got} bytes`)));
  });
}

function memoryNow(): number {
  const u = process.memoryUsage();
  return u.heapUsed + u.external;
}

describe('D5 D6: a slow host reader', () => {
  it('throttles the guest writer, loses nothing, and memory does not grow with the size', async () => {
    const dir = tempDir('slow');
    const { m, g } = await caseStudy(dir);
    let throttles = 0;
    m.lab.events.on('throttle', (e) => e.on && throttles++);

    /** One transfer of `size` bytes guest -> host; the peak memory growth while it ran. */
    const transfer = async (size: number): Promise<number> => {
      const guest = await connectUnix(path.join(g.dir, 'test2'));
      const host = await connectUnix(path.join(dir, 'test2'));
      const base = memoryNow();
      let peak = base;
      const sampler = setInterval(() => (peak = Math.max(peak, memoryNow())), 10);
      const p = new PatternStream(size);
      const received = slowRead(host, size, 512 * 1024, 4);
      const sent = await writeStream(guest, size, (n) => p.next(n), 64 * 1024);
      expect(await received).toBe(sent);
      clearInterval(sampler);
      guest.destroy();
      host.destroy();
      return peak - base;
    };
    const small = await transfer(8 * MiB);
    const large = await transfer(96 * MiB);
    expect(throttles).toBeGreaterThan(0);
    // Twelve times the bytes, about the same memory: what waits is bounded by
    // the guest's queue and the backends' high-water marks, not the transfer.
    expect(large).toBeLessThan(small + 32 * MiB);
    expect(large).toBeLessThan(48 * MiB);
  }, 60_000);
});

describe('H3: host clients come and go', () => {
  it('H3 one client at a time; the next waits and is served once the first left', async () => {
    const dir = tempDir('recon');
    const { m } = await caseStudy(dir);
    await echo(m, 'test1');
    const first = new Collector(await connectUnix(path.join(dir, 'test1')));
    first.socket.write('first\n');
    expect(await first.line()).toBe('first');

    // A second client while the first is there waits, as in QEMU's listen backlog
    // (char-socket.c stops accepting while a client is connected): not closed, and
    // what it already sent is served when the first leaves (issue 14 item 2).
    const second = new Collector(await connectUnix(path.join(dir, 'test1')));
    second.socket.write('second\n');
    first.socket.write('first again\n');
    expect(await first.line()).toBe('first again');
    expect(second.ended).toBe(false);
    expect(second.length).toBe(0);

    first.socket.destroy();
    expect(await second.line()).toBe('second');
    second.socket.destroy();
    await waitUntil(
      () =>
        m
          .chardevs()
          .find((c) => c.id === 'test1')!
          .filename.startsWith('disconnected:'),
      'hang-up',
    );
    const third = new Collector(await connectUnix(path.join(dir, 'test1')));
    third.socket.write('third\n');
    expect(await third.line()).toBe('third');
    third.socket.destroy();
  });
});

describe('L3 L4 L5 at the guest-dir socket', () => {
  it('is exclusive: a second client gets one line and is closed', async () => {
    const dir = tempDir('busy');
    const { m, g } = await caseStudy(dir);
    const a = new Collector(await connectUnix(path.join(g.dir, 'test1')));
    await waitUntil(() => m.chardevs().find((c) => c.id === 'test1')!.frontendOpen, 'the open');
    const b = new Collector(await connectUnix(path.join(g.dir, 'test1')));
    await b.waitFor(() => b.ended, 'the refusal');
    expect(b.text()).toBe('vmchan: port test1 is already open in the guest (EBUSY)\n');
    // A guest program holding the port refuses a client the same way.
    await echo(m, 'test2');
    const c = new Collector(await connectUnix(path.join(g.dir, 'test2')));
    await c.waitFor(() => c.ended, 'the refusal');
    expect(c.text()).toBe('vmchan: port test2 is already open in the guest (EBUSY)\n');
    a.socket.destroy();
  });

  it('stays connected when the host hangs up; its writes wait for the next host', async () => {
    const dir = tempDir('stay');
    const { m, g } = await caseStudy(dir);
    const guest = new Collector(await connectUnix(path.join(g.dir, 'test1')));
    const h1 = new Collector(await connectUnix(path.join(dir, 'test1')));
    h1.socket.write('one\n');
    expect(await guest.line()).toBe('one');
    h1.socket.destroy();
    await waitUntil(
      () => m.lab.port('test1')?.port.hostConnected === false,
      'the device seeing the host hang up',
    );
    expect(guest.ended).toBe(false);
    // Written while no host is there: the guest's write waits (L5), nothing is dropped.
    guest.socket.write('for whoever comes next\n');
    await waitUntil(() => guest.socket.writableLength === 0, 'the guest program writing its line');
    const h2 = new Collector(await connectUnix(path.join(dir, 'test1')));
    expect(await h2.line()).toBe('for whoever comes next');
    h2.socket.write('two\n');
    expect(await guest.line()).toBe('two');
    expect(sha1(Buffer.from('x'))).toHaveLength(40);
    guest.socket.destroy();
    h2.socket.destroy();
  });
});
