/**
 * The chardev tap against a plain unix-socket server standing in for
 * QEMU's chardev (server=on): forwarding both ways with capture, bounded
 * buffering under backpressure, disconnects mirrored both ways, one
 * application at a time, the private listening socket, and what it
 * refuses. The real thing (a guest behind QEMU) is in tap-real.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isAttachError } from '../../core/qemu/attach-error.js';
import { parseListenSpec } from '../../core/qemu/private-socket.js';
import { ChardevTap, type TapEvent } from '../../core/qemu/tap.js';
import { followRaw, followRecords } from '../../core/capture/follow.js';
import { MemorySink } from '../../core/capture/record.js';
import { until as waitUntil } from '../until.js';

const sha1 = (b: Uint8Array): string => createHash('sha1').update(b).digest('hex');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-tap-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** QEMU's chardev, as far as the tap can tell: a unix server taking one client at a time. */
async function fakeChardev(dir: string, onClient: (s: net.Socket) => void) {
  const sockPath = path.join(dir, 'qemu.sock');
  const clients: net.Socket[] = [];
  const server = net.createServer((s) => {
    clients.push(s);
    s.on('error', () => {});
    onClient(s);
  });
  await new Promise<void>((r) => server.listen(sockPath, r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const c of clients) c.destroy();
        server.close(() => r());
      }),
  );
  return { sockPath, clients };
}

async function startTap(dir: string, target: string, sink?: MemorySink, highWaterMark?: number) {
  const tap = await ChardevTap.start({
    chardev: 'c1',
    target: { transport: 'unix', path: target, server: true },
    listen: path.join(dir, 'app.sock'),
    port: { device: 'vser0', nr: 1, kind: 'virtserialport', name: 'org.test.port.1' },
    ...(sink ? { sink } : {}),
    ...(highWaterMark !== undefined ? { highWaterMark } : {}),
  });
  if (isAttachError(tap)) throw new Error(tap.toString());
  cleanups.push(() => tap.close());
  const events: TapEvent[] = [];
  tap.onEvent((e) => events.push(e));
  return { tap, events };
}

function connect(p: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: p }, () => resolve(s));
    s.once('error', reject);
  });
}

async function until(what: string, check: () => boolean, ms = 5_000): Promise<void> {
  await waitUntil(check, what, ms);
}

describe('chardev tap (mode A: QEMU listens, the application connects to the tap)', () => {
  it('forwards both ways and captures every byte with its direction', async () => {
    const dir = tmpDir();
    const toQemu: Buffer[] = [];
    const fromQemu = randomBytes(300_000);
    const qemu = await fakeChardev(dir, (s) => {
      s.on('data', (b) => toQemu.push(b));
      s.write(fromQemu);
    });
    const sink = new MemorySink();
    const { tap } = await startTap(dir, qemu.sockPath, sink);
    expect(fs.statSync(tap.address).mode & 0o777).toBe(0o600);

    const app = await connect(tap.address);
    const got: Buffer[] = [];
    app.on('data', (b) => got.push(b));
    const toGuest = randomBytes(500_000);
    app.write(toGuest);
    await until(
      'both ways',
      () =>
        Buffer.concat(toQemu).length === toGuest.length &&
        Buffer.concat(got).length === fromQemu.length,
    );
    expect(sha1(Buffer.concat(toQemu))).toBe(sha1(toGuest));
    expect(sha1(Buffer.concat(got))).toBe(sha1(fromQemu));
    app.end();
    await tap.whenIdle();

    expect(sink.interfaces).toEqual([
      {
        device: 'vser0',
        deviceIndex: 0,
        port: 1,
        kind: 'virtserialport',
        name: 'org.test.port.1',
        chardev: { id: 'c1', backend: `unix:${qemu.sockPath},server=on` },
      },
    ]);
    const stream = followRecords(sink.records, { port: 'org.test.port.1' });
    if ('kind' in stream) throw new Error(stream.toString());
    expect(sha1(followRaw(stream, 'host-to-guest'))).toBe(sha1(toGuest));
    expect(sha1(followRaw(stream, 'guest-to-host'))).toBe(sha1(fromQemu));
    const evs = sink.records.filter((r) => r.kind === 'event');
    expect(evs.map((r) => r.kind === 'event' && r.event)).toEqual(['host-open', 'host-close']);
    expect(tap.stats).toMatchObject({
      toGuest: toGuest.length,
      toHost: fromQemu.length,
      sessions: 1,
    });
  });

  it('pauses the reading side while the other side is full: buffering stays bounded', async () => {
    const dir = tmpDir();
    let qemuSide: net.Socket | undefined;
    const qemu = await fakeChardev(dir, (s) => {
      qemuSide = s;
      s.pause(); // a guest that does not read
    });
    const hwm = 64 * 1024;
    const { tap } = await startTap(dir, qemu.sockPath, undefined, hwm);
    const app = await connect(tap.address);
    const total = 16 * 1024 * 1024;
    const chunk = randomBytes(64 * 1024);
    let written = 0;
    // The application writes as fast as its socket lets it.
    const pump = (): void => {
      while (written < total && app.write(chunk)) written += chunk.length;
      if (written < total) app.once('drain', () => ((written += chunk.length), pump()));
    };
    pump();
    // The tap pauses the application, and the application's own socket then
    // fills: everything not yet taken sits in kernel socket buffers, not in the tap.
    await until('the tap pausing the application', () => tap.stats.pauses > 0);
    await until('the application blocked on a full socket', () => app.writableNeedDrain);
    expect(tap.stats.toGuest).toBeLessThan(total);
    expect(written).toBeLessThan(total);
    // The guest reads again: everything arrives.
    let got = 0;
    qemuSide!.on('data', (b: Buffer) => (got += b.length));
    qemuSide!.resume();
    await until('all bytes', () => got >= total, 20_000);
    expect(got).toBe(total);
    app.destroy();
  });

  it('mirrors disconnects both ways and serves the next application', async () => {
    const dir = tmpDir();
    const qemu = await fakeChardev(dir, (s) => s.pipe(s)); // echo
    const { tap, events } = await startTap(dir, qemu.sockPath);

    // The application leaves: the tap closes its QEMU side too.
    const a = await connect(tap.address);
    await until('QEMU side up', () => qemu.clients.length === 1);
    a.end();
    await until(
      'QEMU side closed',
      () => qemu.clients[0]!.destroyed || qemu.clients[0]!.readableEnded,
    );
    await tap.whenIdle();

    // QEMU goes away (chardev removed): the application is closed too.
    const b = await connect(tap.address);
    let bClosed = false;
    b.on('close', () => (bClosed = true));
    b.on('error', () => {});
    await until('second QEMU connection', () => qemu.clients.length === 2);
    const echoed: Buffer[] = [];
    b.on('data', (d) => echoed.push(d));
    b.write('ping');
    await until('echo', () => Buffer.concat(echoed).toString() === 'ping');
    qemu.clients[1]!.destroy();
    await until('application closed', () => bClosed);
    await tap.whenIdle();
    expect(
      events.filter((e) => e.kind === 'app-disconnected').map((e) => e.text.split(';')[0]),
    ).toEqual([
      'session 1: the application disconnected',
      'session 2: QEMU closed the chardev connection',
    ]);
  });

  it('lets a second application wait until the first leaves, as QEMU does', async () => {
    const dir = tmpDir();
    const qemu = await fakeChardev(dir, (s) => s.pipe(s));
    const { tap, events } = await startTap(dir, qemu.sockPath);
    const first = await connect(tap.address);
    await until('first connected', () => tap.connected);
    const second = await connect(tap.address);
    const echoed: Buffer[] = [];
    second.on('data', (d) => echoed.push(d));
    second.write('two');
    await until('the second application told to wait', () =>
      events.some((e) => e.kind === 'app-waiting'),
    );
    expect(echoed).toEqual([]);
    first.end();
    await until('second served', () => Buffer.concat(echoed).toString() === 'two');
    second.destroy();
  });

  it('closes the application when QEMU cannot be reached', async () => {
    const dir = tmpDir();
    const { tap, events } = await startTap(dir, path.join(dir, 'nobody.sock'));
    const app = await connect(tap.address);
    await new Promise<void>((r) => app.once('close', () => r()));
    expect(events.find((e) => e.kind === 'error')?.text).toContain('cannot reach');
  });

  it("refuses chardevs where QEMU is the client, QEMU's own socket, and public addresses", async () => {
    const dir = tmpDir();
    const client = await ChardevTap.start({
      chardev: 'c9',
      target: { transport: 'unix', path: '/tmp/app.sock', server: false },
      listen: path.join(dir, 'x.sock'),
    });
    expect(isAttachError(client) && client.kind).toBe('Unsupported');
    const same = await ChardevTap.start({
      chardev: 'c1',
      target: { transport: 'unix', path: path.join(dir, 'q.sock'), server: true },
      listen: path.join(dir, 'q.sock'),
    });
    expect(isAttachError(same) && same.kind).toBe('InvalidArgument');
    const pub = parseListenSpec('0.0.0.0:5555');
    expect(isAttachError(pub) && pub.message).toContain('loopback only');
    expect(parseListenSpec(':5555')).toEqual({ transport: 'tcp', host: '127.0.0.1', port: 5555 });
    expect(parseListenSpec('/run/x.sock')).toEqual({ transport: 'unix', path: '/run/x.sock' });
  });

  it('listens on TCP loopback with any free port', async () => {
    const dir = tmpDir();
    const qemu = await fakeChardev(dir, (s) => s.pipe(s));
    const tap = await ChardevTap.start({
      chardev: 'c1',
      target: { transport: 'unix', path: qemu.sockPath, server: true },
      listen: '127.0.0.1:0',
    });
    if (isAttachError(tap)) throw new Error(tap.toString());
    cleanups.push(() => tap.close());
    const port = Number(tap.address.split(':').pop());
    expect(port).toBeGreaterThan(0);
    const s = net.createConnection({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    s.on('data', (d) => got.push(d));
    s.write('tcp');
    await until('echo over tcp', () => Buffer.concat(got).toString() === 'tcp');
    s.destroy();
  });
});
