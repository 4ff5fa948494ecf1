import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createChardev,
  isChardevError,
  RingbufChardev,
  totalDropped,
  UdpChardev,
  type OpenChardev,
} from '../../core/chardev/index.js';
import { as, lab, mkfifo, spec, tempDir, TestFrontend, waitFor, writeAll } from './helpers.js';

const opened: OpenChardev[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('file chardev and logfile (H1)', () => {
  it('H1 file: guest output lands in the file; append=on keeps, append=off truncates', async () => {
    const f = path.join(tempDir(), 'out.txt');
    fs.writeFileSync(f, 'old\n');
    const { open, scheduler } = lab();
    const c = await open(spec('f1', { kind: 'file', path: f, append: true }));
    const fe = new TestFrontend();
    c.attach(fe);
    await scheduler.settle();
    expect(fe.events).toEqual(['opened']); // a file is open from the start
    await writeAll(c, enc('new\n'));
    await c.close();
    expect(fs.readFileSync(f, 'utf8')).toBe('old\nnew\n');

    const t = await open(spec('f2', { kind: 'file', path: f, append: false }));
    await writeAll(t, enc('only\n'));
    await t.close();
    expect(fs.readFileSync(f, 'utf8')).toBe('only\n');
    expect(t.describe()).toBe('file');
  });

  it('H1 logfile logs the guest output only (as QEMU), logappend keeps the old log', async () => {
    const dir = tempDir();
    const base = path.join(dir, 'loop');
    const log = path.join(dir, 'chardev.log');
    fs.writeFileSync(log, 'before|');
    const { open } = lab();
    // A single FIFO reads back what the guest writes: input and output both pass this chardev.
    mkfifo(base);
    const c = await open(
      spec('l1', { kind: 'pipe', path: base }, { logfile: log, logappend: true }),
    );
    opened.push(c);
    const fe = new TestFrontend();
    c.attach(fe);
    await writeAll(c, enc('guest says hi'));
    await waitFor(() => fe.text() === 'guest says hi', 'looped back as input');
    expect(fs.readFileSync(log, 'utf8')).toBe('before|guest says hi'); // once: the input is not logged

    const { ctx } = lab();
    const bad = await createChardev(
      spec('l2', { kind: 'null' }, { logfile: path.join(dir, 'no/such/dir/log') }),
      ctx,
    );
    expect(isChardevError(bad) && bad.message).toMatch(
      /^Could not create '.*': No such file or directory$/,
    );
  });
});

describe('null and ringbuf chardevs (H1)', () => {
  it('H1 null is never opened (as QEMU) and counts what is written to it', async () => {
    const { open, scheduler } = lab();
    const c = await open(spec('n1', { kind: 'null' }));
    const fe = new TestFrontend();
    c.attach(fe);
    await scheduler.settle();
    expect(c.connected).toBe(false);
    expect(fe.events).toEqual([]);
    expect(c.write(enc('gone'))).toBe(4);
    expect(c.counters.dropped['no-peer']).toBe(4);
    expect(c.describe()).toBe('null');
    await c.close();
  });

  it('H1 ringbuf wraps around, keeping the newest bytes; ringbuf-write appends to the ring as QEMU', async () => {
    const { open, ctx } = lab();
    const c = as(await open(spec('r1', { kind: 'ringbuf', size: 8 })), RingbufChardev);
    expect(c.connected).toBe(true);
    expect(c.write(enc('abcdef'))).toBe(6);
    expect(new TextDecoder().decode(c.ringbufRead(3))).toBe('abc');
    expect(c.write(enc('ghijklm'))).toBe(7); // 10 bytes for 8 slots: 'de' overwritten
    expect(c.counters.dropped.overwritten).toBe(2);
    expect(c.count).toBe(8);
    expect(new TextDecoder().decode(c.ringbufRead(100))).toBe('fghijklm');
    expect(c.ringbufRead(5)).toHaveLength(0);
    // One write longer than the ring keeps its last `size` bytes.
    c.write(enc('0123456789ABCDEF!'));
    expect(new TextDecoder().decode(c.ringbufRead(8))).toBe('9ABCDEF!');
    c.ringbufWrite(enc('qmp'));
    expect(new TextDecoder().decode(c.ringbufRead(8))).toBe('qmp');
    expect(c.counters.bytesIn).toBe(0); // nothing ever goes to the guest
    await c.close();

    const bad = await createChardev(spec('r2', { kind: 'ringbuf', size: 1000 }), ctx);
    expect(isChardevError(bad) && bad.message).toBe('size of ringbuf chardev must be power of two');
  });
});

describe('udp chardev (H1)', () => {
  it('H1 udp: datagrams both ways as chunks; never "opened", as QEMU', async () => {
    const peer = dgram.createSocket('udp4');
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
    const peerPort = peer.address().port;
    const { open, scheduler } = lab();
    const c = as(
      await open(spec('u1', { kind: 'udp', host: '127.0.0.1', port: String(peerPort) })),
      UdpChardev,
    );
    opened.push(c);
    expect(c.local.address).toBe('127.0.0.1'); // loopback remote: bound to loopback
    const fe = new TestFrontend();
    c.attach(fe);
    await scheduler.settle();
    expect(c.connected).toBe(false);
    expect(fe.events).toEqual([]);

    const got: Buffer[] = [];
    peer.on('message', (m) => got.push(m));
    await writeAll(c, enc('one'));
    await writeAll(c, enc('two'));
    await waitFor(() => got.length === 2, 'two datagrams');
    expect(got.map((b) => b.toString())).toEqual(['one', 'two']);

    peer.send('hello guest', c.local.port, '127.0.0.1');
    await waitFor(() => fe.text() === 'hello guest', 'datagram to the guest');
    expect(c.describe()).toBe('udp');
    peer.close();
  });

  it('H1 udp with no frontend reading: datagrams beyond the queue are dropped and counted', async () => {
    const peer = dgram.createSocket('udp4');
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
    const { open } = lab();
    const c = as(
      await open(spec('u2', { kind: 'udp', host: '127.0.0.1', port: String(peer.address().port) })),
      UdpChardev,
    );
    opened.push(c);
    const fe = new TestFrontend();
    fe.room = 0;
    c.attach(fe);
    const dgramSize = 8192;
    for (let i = 0; i < 12; i++) peer.send(Buffer.alloc(dgramSize, i), c.local.port, '127.0.0.1');
    await waitFor(
      () => c.pendingToGuest + c.counters.dropped.overflow === 12 * dgramSize,
      'all datagrams seen',
    );
    expect(c.counters.dropped.overflow).toBeGreaterThan(0);
    expect(c.pendingToGuest).toBeLessThanOrEqual(64 * 1024);
    peer.close();
  });
});

describe('stdio chardev (H1)', () => {
  it('H1 stdio: stdin to the guest, guest output to stdout; one owner; EOF closes', async () => {
    const input = new PassThrough({ autoDestroy: false });
    const output = new PassThrough({ autoDestroy: false });
    const out: Buffer[] = [];
    output.on('data', (d: Buffer) => out.push(d));
    const { open, ctx } = lab({ stdio: { input, output } });
    const c = await open(spec('s1', { kind: 'stdio' }));
    opened.push(c);
    const second = await createChardev(spec('s2', { kind: 'stdio' }), ctx);
    expect(isChardevError(second) && second.message).toBe(
      'cannot use stdio by multiple character devices',
    );
    const fe = new TestFrontend();
    c.attach(fe);
    input.write('typed');
    await waitFor(() => fe.text() === 'typed', 'stdin -> guest');
    await writeAll(c, enc('printed'));
    await waitFor(() => Buffer.concat(out).toString() === 'printed', 'guest -> stdout');
    input.end();
    await waitFor(() => fe.events.at(-1) === 'closed', 'closed at EOF');
    expect(input.destroyed).toBe(false); // the process's streams are never destroyed
    await c.close();
    const again = await createChardev(spec('s3', { kind: 'stdio' }), {
      ...ctx,
      stdio: { input: new PassThrough(), output },
    });
    expect(isChardevError(again)).toBe(false); // released at close
    if (!isChardevError(again)) await again.close();
  });

  it('H1 stdout closed under the guest (EPIPE): the writes it never confirmed are counted peer-gone, to-host', async () => {
    // A stdout whose reader leaves: the first write reaches it, the second
    // hangs in the kernel until the reader goes and then fails with EPIPE;
    // the writes queued behind it fail with it.
    const held: ((error?: Error | null) => void)[] = [];
    let delivered = 0;
    const output = new Writable({
      write(chunk: Buffer, _encoding, cb) {
        if (delivered === 0) {
          delivered += chunk.length;
          cb();
        } else held.push(cb);
      },
    });
    const drops: [string, number, string][] = [];
    const { open } = lab({
      stdio: { input: new PassThrough({ autoDestroy: false }), output },
      onDrop: (_id, reason, bytes, way) => drops.push([reason, bytes, way]),
    });
    const c = await open(spec('s1', { kind: 'stdio' }));
    opened.push(c);
    c.attach(new TestFrontend());
    const sizes = [1000, 2000, 3000, 4000];
    let taken = 0;
    for (const n of sizes) taken += c.write(new Uint8Array(n).fill(7));
    expect(taken).toBe(10_000);
    await waitFor(() => held.length === 1, 'the second write to reach the stalled stdout');
    held[0]!(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    await waitFor(() => !c.connected, 'the chardev to see stdout fail');
    expect(delivered).toBe(1000);
    expect(drops).toEqual([['peer-gone', 9000, 'to-host']]);
    expect(c.counters.bytesOut).toBe(1000);
    expect(c.counters.bytesOut + totalDropped(c.counters)).toBe(taken);
    expect(c.failures.last).toContain('EPIPE');
  });

  it('H1 stdio puts a terminal in raw mode and restores it on close', async () => {
    const input = Object.assign(new PassThrough(), { isTTY: true, modes: [] as boolean[] });
    const tty = Object.assign(input, { setRawMode: (raw: boolean) => input.modes.push(raw) });
    const { open } = lab({ stdio: { input: tty, output: new PassThrough() } });
    const c = await open(spec('s1', { kind: 'stdio' }));
    expect(input.modes).toEqual([true]);
    await c.close();
    expect(input.modes).toEqual([true, false]);
  });
});

describe('counters', () => {
  it('D7 every byte offered is either taken or counted as dropped', async () => {
    const { open } = lab();
    const c = await open(spec('n1', { kind: 'null' }));
    c.write(enc('12345'));
    await c.close();
    c.write(enc('678'));
    expect(c.counters.bytesOut + totalDropped(c.counters)).toBe(8);
    expect(c.counters.dropped.closed).toBe(3);
  });
});
