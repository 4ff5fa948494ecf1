/**
 * Socket chardevs read into reused buffers (core/chardev/pooled-reads.ts,
 * issue 18), and no byte a frontend, the guest or a 'data' listener keeps
 * ever changes because a buffer was reused:
 * - the queue gives a lent buffer back only once it was taken in full and
 *   the caller is done with it (or on clear);
 * - a frontend that keeps what it reads without copying (HMP does) gets its
 *   own copies: every byte arrives intact although the buffers are reused;
 * - the device copies what a short guest buffer cannot take yet, and the
 *   bytes it gives to 'data' listeners (capture).
 */
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Machine } from '../../core/machine/machine.js';
import { ByteQueue } from '../../core/chardev/byte-queue.js';
import { readIntoPool } from '../../core/chardev/pooled-reads.js';
import { PatternStream, patternSha1 } from '../../core/workloads/index.js';
import { GuestDir, isGuestDirError } from '../../core/guestdir/index.js';
import { O_RDWR } from '../../core/serial/guest/files.js';
import {
  caseStudyArgs,
  connectUnix,
  hashIncoming,
  removeTempDirs,
  startMachine,
  tempDir,
  waitUntil,
  writeStream,
} from '../lab/helpers.js';
import { bootLab, must, pattern, readExactly, sha1 } from '../serial/helpers.js';
import { mkfifo } from './helpers.js';

const MiB = 1024 * 1024;

let machine: Machine | null = null;
let guestDir: GuestDir | null = null;
afterEach(async () => {
  await guestDir?.close();
  guestDir = null;
  await machine?.close();
  machine = null;
});
afterAll(removeTempDirs);

describe('ByteQueue with lent chunks', () => {
  it('gives a lent chunk back only after it was taken in full and the caller is done', () => {
    const q = new ByteQueue();
    const released: string[] = [];
    q.push(new Uint8Array(8), () => released.push('a'));
    q.push(new Uint8Array(4), () => released.push('b'));
    q.take(4);
    expect(q.lastTakeBorrowed).toBe(true);
    q.releaseTaken();
    expect(released).toEqual([]); // half of a is still queued
    q.take(4);
    expect(released).toEqual([]); // taken in full, but the caller still holds the view
    q.releaseTaken();
    expect(released).toEqual(['a']);
    q.push(new Uint8Array(4)); // the queue's own: nothing to give back
    const spanning = q.take(8);
    expect(spanning.length).toBe(8);
    expect(q.lastTakeBorrowed).toBe(false); // a copy gathered from both
    q.releaseTaken();
    expect(released).toEqual(['a', 'b']);
  });

  it('clear() gives back everything still queued or taken', () => {
    const q = new ByteQueue();
    let back = 0;
    q.push(new Uint8Array(4), () => back++);
    q.push(new Uint8Array(4), () => back++);
    q.take(4);
    expect(q.clear()).toBe(4);
    expect(back).toBe(2);
  });
});

describe('readIntoPool', () => {
  it('reads a socket into lent buffers that come back to the pool', async () => {
    const dir = tempDir('pool');
    const where = path.join(dir, 's');
    const server = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve) => server.listen(where, resolve));
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = await connectUnix(where);
    const socket = await accepted;
    const chunks: Uint8Array[] = [];
    const buffers = new Set<ArrayBufferLike>();
    let got = 0;
    const engaged = readIntoPool(socket, (chunk, release) => {
      chunks.push(chunk.slice());
      buffers.add(chunk.buffer);
      got += chunk.length;
      release();
    });
    expect(engaged).toBe(true);
    socket.resume();
    const data = pattern(2 * MiB, 7);
    client.end(data);
    await waitUntil(() => got === data.length, 'every byte read');
    expect(sha1(...chunks)).toBe(sha1(data));
    // Each buffer came back before the next read: a couple served every read.
    expect(chunks.length).toBeGreaterThan(8);
    expect(buffers.size).toBeLessThanOrEqual(2);
    socket.destroy();
    await new Promise((r) => server.close(r));
  });
});

describe('lent read buffers never change what was kept', () => {
  it('a frontend that keeps the arrays it reads (as HMP does) gets copies, all intact', async () => {
    const dir = tempDir('poolkeep');
    machine = await startMachine(
      ['-chardev', `socket,path=${path.join(dir, 'k')},server=on,wait=off,id=k`],
      dir,
    );
    const backend = machine.lab.chardev('k');
    expect(backend).toBeDefined();
    const kept: Uint8Array[] = [];
    let got = 0;
    backend!.attach({
      canRead: () => 4096,
      read: (bytes) => {
        kept.push(bytes); // kept as given, no copy
        got += bytes.length;
      },
      event: () => {},
    });
    const host = await connectUnix(path.join(dir, 'k'));
    const size = 4 * MiB;
    const p = new PatternStream(31);
    await writeStream(host, size, (n) => p.next(n));
    await waitUntil(() => got === size, 'every byte at the frontend');
    expect(sha1(...kept)).toBe(patternSha1(size, 31));
    host.destroy();
  }, 30_000);

  it("bytes to the guest and to 'data' listeners stay intact while the buffers are reused", async () => {
    const dir = tempDir('pooldata');
    machine = await startMachine(caseStudyArgs(dir), dir);
    const opened = await GuestDir.open(machine.lab, path.join(dir, 'guest'));
    if (isGuestDirError(opened)) throw new Error(opened.message);
    guestDir = opened;
    const seen: Uint8Array[] = [];
    const off = machine.lab.events.on('data', (e) => {
      if (e.direction === 'to-guest') seen.push(e.bytes);
    });
    const guest = await connectUnix(path.join(dir, 'guest', 'test1'));
    const host = await connectUnix(path.join(dir, 'test1'));
    const size = 8 * MiB;
    const received = hashIncoming(guest, size);
    const p = new PatternStream(32);
    await writeStream(host, size, (n) => p.next(n));
    expect(await received).toBe(patternSha1(size, 32));
    off();
    expect(sha1(...seen)).toBe(patternSha1(size, 32));
    guest.destroy();
    host.destroy();
  }, 60_000);
});

describe('pipe chardevs read into reused buffers too', () => {
  it('H1 4 MiB from path.in reach the guest intact', async () => {
    const dir = tempDir('poolpipe');
    const base = path.join(dir, 'p');
    mkfifo(`${base}.in`);
    mkfifo(`${base}.out`);
    machine = await startMachine(
      [
        '-chardev',
        `pipe,path=${base},id=p`,
        '-device',
        'virtio-serial',
        '-device',
        'virtserialport,chardev=p,name=p',
      ],
      dir,
    );
    const opened = await GuestDir.open(machine.lab, path.join(dir, 'guest'));
    if (isGuestDirError(opened)) throw new Error(opened.message);
    guestDir = opened;
    const guest = await connectUnix(path.join(dir, 'guest', 'p'));
    const size = 4 * MiB;
    const received = hashIncoming(guest, size);
    const host = fs.createWriteStream(`${base}.in`);
    const p = new PatternStream(33);
    for (let sent = 0; sent < size; sent += 64 * 1024) {
      if (!host.write(p.next(64 * 1024))) await once(host, 'drain');
    }
    expect(await received).toBe(patternSha1(size, 33));
    host.destroy();
    guest.destroy();
  }, 60_000);
});

describe('D5 the device copies what a short receive buffer cannot take yet', () => {
  it('bytes left over for the next buffer survive the backend reusing its array', async () => {
    // 100-byte receive buffers, 128 of them: 16 KiB more than they hold,
    // so the rest waits in the device until the guest posts buffers again.
    const lab = await bootLab({
      guest: { rxBufferSize: 100 },
      chardevs: [{ id: 'c1' }],
      devices: [{ ports: [{ driver: 'virtserialport', name: 'p1', chardev: 'c1' }] }],
    });
    const files = lab.guest.files;
    const fd = must(await files.open('/dev/vport0p1', O_RDWR));
    await lab.scheduler.settle();
    const { device, port } = lab.port('p1')!;
    const lent = pattern(16 * 1024, 9);
    const original = lent.slice();
    device.writeToGuest(port, lent);
    lent.fill(0xee); // the backend reads into it again
    expect(port.inboundBytes).toBeGreaterThan(0);
    const got = await readExactly(files, fd, lent.length);
    expect(sha1(got)).toBe(sha1(original));
  });
});
