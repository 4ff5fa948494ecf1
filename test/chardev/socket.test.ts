import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseQemuArgs } from '../../core/machine/index.js';
import {
  createChardev,
  INBOUND_HIGH_WATER,
  isChardevError,
  SocketChardev,
  type OpenChardev,
} from '../../core/chardev/index.js';
import { MAX_WAITING_CLIENTS } from '../../core/chardev/socket-backend.js';
import {
  lab,
  pattern,
  sha1,
  skipWithoutSocat,
  socat,
  spec,
  tempDir,
  TestFrontend,
  waitFor,
  writeAll,
} from './helpers.js';
import { until } from '../until.js';

const unixServer = (p: string, wait = false) =>
  ({
    kind: 'socket',
    address: { type: 'unix', path: p },
    server: true,
    wait,
    nodelay: false,
  }) as const;
const tcpServer = (host = '', port = '0') =>
  ({
    kind: 'socket',
    address: { type: 'tcp', host, port },
    server: true,
    wait: false,
    nodelay: true,
  }) as const;

const opened: OpenChardev[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

function connectUnix(p: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: p }, () => resolve(s));
    s.once('error', reject);
    sockets.push(s);
  });
}

function asSocket(c: OpenChardev): SocketChardev {
  if (!(c instanceof SocketChardev)) throw new Error('not a socket chardev');
  return c;
}

describe('socket chardev with socat (H1)', () => {
  if (skipWithoutSocat()) return;

  it('H1 unix server: 0600, data both ways with socat, describe like query-chardev', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'p1');
    const { open } = lab();
    const c = await open(spec('c1', unixServer(p)));
    opened.push(c);
    expect(fs.statSync(p).mode & 0o777).toBe(0o600);
    expect(fs.statSync(p).isSocket()).toBe(true);
    expect(c.describe()).toBe(`disconnected:unix:${p},server=on`);
    const fe = new TestFrontend();
    expect(c.attach(fe)).toBe(true);

    const peer = socat(['-', `UNIX-CONNECT:${p}`]);
    await waitFor(() => fe.events.includes('opened'), 'opened');
    expect(c.connected).toBe(true);
    expect(c.describe()).toBe(`unix:${p},server=on`);

    peer.write('ping-from-host\n');
    await waitFor(() => fe.text() === 'ping-from-host\n', 'host -> guest');
    await writeAll(c, new TextEncoder().encode('pong-from-guest\n'));
    await waitFor(() => peer.output().toString() === 'pong-from-guest\n', 'guest -> host');

    await peer.stop();
    await waitFor(() => fe.events.at(-1) === 'closed', 'closed');
    expect(c.describe()).toBe(`disconnected:unix:${p},server=on`);
    expect(c.counters.bytesIn).toBe(15);
    expect(c.counters.bytesOut).toBe(16);

    await c.close();
    expect(fs.existsSync(p)).toBe(false); // close removes the socket file it made
    expect(fs.readdirSync(dir)).toEqual([]); // and no private directory is left behind
  });

  it('H1 tcp server listens on 127.0.0.1 when no host is given; socat both ways; describe <->', async () => {
    const noDelay = vi.spyOn(net.Socket.prototype, 'setNoDelay');
    const { open } = lab();
    const c = asSocket(await open(spec('t1', tcpServer())));
    opened.push(c);
    const where = c.listeningOn;
    expect(where?.type).toBe('tcp');
    if (where?.type !== 'tcp') return;
    expect(where.host).toBe('127.0.0.1');
    expect(c.describe()).toBe(`disconnected:tcp:127.0.0.1:${where.port},server=on`);
    const fe = new TestFrontend();
    c.attach(fe);
    const peer = socat(['-', `TCP:127.0.0.1:${where.port}`]);
    await waitFor(() => c.connected, 'client');
    expect(noDelay).toHaveBeenCalledWith(true); // nodelay=on
    noDelay.mockRestore();
    expect(c.describe()).toMatch(
      new RegExp(`^tcp:127\\.0\\.0\\.1:${where.port},server=on <-> 127\\.0\\.0\\.1:\\d+$`),
    );
    peer.write('abc');
    await waitFor(() => fe.text() === 'abc', 'host -> guest');
    await writeAll(c, new TextEncoder().encode('xyz'));
    await waitFor(() => peer.output().toString() === 'xyz', 'guest -> host');
    await peer.stop();
  });
});

describe('socket chardev semantics (H1, H3, D5, D7)', () => {
  it('H3 a second client waits while one is connected, and is served with what it sent when the first leaves', async () => {
    // QEMU stops accepting while a client is connected (chardev/char-socket.c
    // tcp_chr_new_client / tcp_chr_disconnect): the second connection waits in
    // the listen backlog with its bytes (issue 14 item 2; the real-QEMU comparison
    // is test/qemu/backlog-real.test.ts).
    const p = path.join(tempDir(), 's');
    const { open } = lab();
    const c = asSocket(await open(spec('c1', unixServer(p))));
    opened.push(c);
    const fe = new TestFrontend();
    c.attach(fe);
    const first = await connectUnix(p);
    await waitFor(() => c.connected, 'first client');
    const second = await connectUnix(p);
    let secondClosed = false;
    second.on('close', () => (secondClosed = true));
    second.write('from the second');
    await waitFor(() => c.stats.waitingClients === 1, 'the second client waiting');

    first.write('still here');
    await waitFor(() => fe.text() === 'still here', 'first client data');
    expect(secondClosed).toBe(false);
    expect(c.stats.refusedClients).toBe(0);

    first.destroy();
    await waitFor(() => fe.text() === 'still herefrom the second', "the second client's bytes");
    expect(c.connected).toBe(true);
    expect(c.stats.connections).toBe(2);
    expect(c.stats.waitingClients).toBe(0);
    expect(fe.events).toEqual(['opened', 'closed', 'opened']);
    second.destroy();
  });

  it('H3 past MAX_WAITING_CLIENTS a client is refused (closed at once) and counted', async () => {
    const p = path.join(tempDir(), 's');
    const { open, notices } = lab();
    const c = asSocket(await open(spec('c1', unixServer(p))));
    opened.push(c);
    const clients = [await connectUnix(p)];
    await waitFor(() => c.connected, 'first client');
    for (let i = 0; i < MAX_WAITING_CLIENTS; i++) clients.push(await connectUnix(p));
    await waitFor(() => c.stats.waitingClients === MAX_WAITING_CLIENTS, 'a full queue');
    const extra = await connectUnix(p);
    await new Promise<void>((r) => extra.on('close', () => r()));
    expect(c.stats.refusedClients).toBe(1);
    expect(notices.some((n) => n.includes('already wait for the connected one'))).toBe(true);
    for (const s of clients) s.destroy();
  });

  it('H1 a stale socket file is replaced; a live one gives "socket PATH is in use"', async () => {
    const dir = tempDir();
    const stale = path.join(dir, 'stale');
    // A socket file nobody listens on: listen, then drop the fd without unlinking.
    // (Node removes the file when a server closes: move it aside meanwhile.)
    const old = net.createServer();
    await new Promise<void>((r) => old.listen(stale, r));
    fs.renameSync(stale, stale + '.keep');
    await new Promise<void>((r) => old.close(() => r()));
    fs.renameSync(stale + '.keep', stale);
    expect(fs.statSync(stale).isSocket()).toBe(true);

    const { open, ctx } = lab();
    const c = await open(spec('c1', unixServer(stale)));
    opened.push(c);
    expect(fs.statSync(stale).mode & 0o777).toBe(0o600);

    const again = await createChardev(spec('c2', unixServer(stale)), ctx);
    expect(isChardevError(again)).toBe(true);
    if (isChardevError(again)) {
      expect(again.kind).toBe('SocketInUse');
      expect(again.message).toBe(`socket ${stale} is in use`);
    }
    const notSocket = path.join(dir, 'plain');
    fs.writeFileSync(notSocket, 'x');
    const wrong = await createChardev(spec('c3', unixServer(notSocket)), ctx);
    expect(isChardevError(wrong) && wrong.kind).toBe('WrongFileType');
    expect(fs.readFileSync(notSocket, 'utf8')).toBe('x');
  });

  it('H1 wait=on does not block: it says it is waiting and `ready` settles at the first client', async () => {
    const p = path.join(tempDir(), 'w');
    const { open, notices } = lab();
    const c = await open(spec('c1', unixServer(p, true)));
    opened.push(c);
    expect(notices).toContain(
      `chardev c1: waiting for connection on: disconnected:unix:${p},server=on`,
    );
    let settled: string | null = null;
    void c.ready.then((r) => (settled = r));
    await new Promise((resolve) => setImmediate(resolve)); // let a wrongly settled promise run
    expect(settled).toBeNull();
    await connectUnix(p);
    expect(await c.ready).toBe('connected');
  });

  it('H2 the legacy `server,nowait` command line opens a listening socket that does not wait', async () => {
    const p = path.join(tempDir(), 'legacy');
    const parsed = parseQemuArgs(['-chardev', `socket,id=mon0,path=${p},server,nowait`]);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const { open, notices } = lab();
    const c = await open(parsed.value.chardevs[0]!);
    opened.push(c);
    expect(await c.ready).toBe('connected'); // nothing to wait for
    expect(notices.filter((n) => n.includes('waiting'))).toEqual([]);
    expect(c.describe()).toBe(`disconnected:unix:${p},server=on`);
    const fe = new TestFrontend();
    c.attach(fe);
    const s = await connectUnix(p);
    s.write('hi');
    await waitFor(() => fe.text() === 'hi', 'data');
  });

  it('H1 client reconnect=1: retries while the server is away, opened again when it comes back', async () => {
    const p = path.join(tempDir(), 'srv');
    const serverSockets: net.Socket[] = [];
    const startServer = async (): Promise<net.Server> => {
      const srv = net.createServer((s) => serverSockets.push(s));
      await new Promise<void>((r) => srv.listen(p, r));
      return srv;
    };
    let server = await startServer();
    const { open, notices } = lab();
    const c = await open(
      spec('cl', {
        kind: 'socket',
        address: { type: 'unix', path: p },
        server: false,
        wait: false,
        nodelay: false,
        reconnect: 1,
      }),
    );
    opened.push(c);
    const fe = new TestFrontend();
    c.attach(fe);
    await waitFor(() => c.connected && serverSockets.length === 1, 'first connect');
    expect(c.describe()).toBe(`unix:${p}`);

    // The server goes away (and its socket file with it).
    for (const s of serverSockets.splice(0)) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    await waitFor(() => !c.connected, 'disconnect');
    expect(c.describe()).toBe(`disconnected:unix:${p}`);
    await until(
      () => notices.some((n) => n.startsWith('Unable to connect character device cl:')),
      'a failed reconnect attempt',
      4000,
    );
    expect(
      notices.filter((n) => n.startsWith('Unable to connect character device cl:')),
    ).toHaveLength(1);

    server = await startServer();
    await waitFor(() => c.connected, 'reconnected', 4000);
    expect(fe.events).toEqual(['opened', 'closed', 'opened']);
    await writeAll(c, new TextEncoder().encode('back'));
    await waitFor(() => serverSockets.length === 1, 'server side');
    const got = await new Promise<string>((r) =>
      serverSockets[0]!.once('data', (d) => r(d.toString())),
    );
    expect(got).toBe('back');
    for (const s of serverSockets) s.destroy();
    await c.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it("H1 a client without reconnect fails with QEMU's message when nothing listens", async () => {
    const p = path.join(tempDir(), 'none');
    const { ctx } = lab();
    const r = await createChardev(
      spec('cl', {
        kind: 'socket',
        address: { type: 'unix', path: p },
        server: false,
        wait: false,
        nodelay: false,
      }),
      ctx,
    );
    expect(isChardevError(r)).toBe(true);
    if (isChardevError(r)) {
      expect(r.kind).toBe('ConnectFailed');
      expect(r.message).toBe(`Failed to connect to '${p}': No such file or directory`);
    }
  });

  it('D7 guest bytes written while no client is connected are discarded, counted and logged', async () => {
    const dir = tempDir();
    const p = path.join(dir, 's');
    const log = path.join(dir, 'log');
    const { open } = lab();
    const c = await open(spec('c1', unixServer(p), { logfile: log }));
    opened.push(c);
    expect(c.write(new TextEncoder().encode('lost'))).toBe(4);
    expect(c.counters.dropped['no-peer']).toBe(4);
    expect(c.counters.bytesOut).toBe(0);
    expect(fs.readFileSync(log, 'utf8')).toBe('lost'); // QEMU logs what write() accounted for
  });

  it('D5 slow host reader: bounded memory, backpressure, nothing lost (sha1 both ends)', async () => {
    const p = path.join(tempDir(), 'slow');
    const { open } = lab();
    const c = await open(spec('c1', unixServer(p)));
    opened.push(c);
    c.attach(new TestFrontend());
    const client = await connectUnix(p);
    await waitFor(() => c.connected, 'client');
    client.pause(); // the host stops reading for a while
    const data = pattern(4 * 1024 * 1024, 7);
    const received: Buffer[] = [];
    client.on('data', (d: Buffer) => received.push(d));
    let maxQueued = 0;
    const sampler = setInterval(
      () => (maxQueued = Math.max(maxQueued, asSocket(c).queuedToHost)),
      1,
    );
    const writing = writeAll(c, data, 16 * 1024);
    await until(() => asSocket(c).queuedToHost > 0, 'the kernel buffer full and bytes queued here');
    const acceptedWhilePaused = c.counters.bytesOut;
    expect(acceptedWhilePaused).toBeLessThan(data.length); // throttled, not buffered
    client.resume();
    const { shortWrites } = await writing;
    clearInterval(sampler);
    await waitFor(
      () => received.reduce((n, b) => n + b.length, 0) === data.length,
      'all bytes',
      10000,
    );
    expect(shortWrites).toBeGreaterThan(0);
    expect(maxQueued).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(64 * 1024); // the stream's high-water mark, never the 4 MiB
    expect(sha1(Buffer.concat(received))).toBe(sha1(data));
    expect(c.counters.bytesOut).toBe(data.length);
    expect(c.counters.dropped['no-peer'] + c.counters.dropped['peer-gone']).toBe(0);
  });

  it('D6 slow guest: the host socket is paused at the high-water mark, nothing lost (sha1)', async () => {
    const p = path.join(tempDir(), 'pull');
    const { open } = lab();
    const c = await open(spec('c1', unixServer(p)));
    opened.push(c);
    const fe = new TestFrontend();
    fe.room = 0; // the guest has posted no receive buffers
    c.attach(fe);
    const client = await connectUnix(p);
    await waitFor(() => c.connected, 'client');
    const data = pattern(2 * 1024 * 1024, 3);
    client.write(data);
    const ep = c as SocketChardev;
    await until(() => ep.inputPaused, 'the host socket paused at the high-water mark');
    expect(ep.pendingToGuest).toBeLessThanOrEqual(INBOUND_HIGH_WATER + 64 * 1024);
    expect(fe.received).toBe(0);
    // The guest posts buffers bit by bit.
    while (fe.received < data.length) {
      fe.room = 256 * 1024;
      const before = fe.received;
      c.acceptInput();
      await until(() => fe.received > before, 'the guest taking more bytes');
      expect(ep.pendingToGuest).toBeLessThanOrEqual(INBOUND_HIGH_WATER + 64 * 1024);
    }
    expect(fe.sha1()).toBe(sha1(data));
    expect(c.counters.bytesIn).toBe(data.length);
  });

  it('H1 host bytes sent just before the client closes still reach the guest', async () => {
    const p = path.join(tempDir(), 'eof');
    const { open } = lab();
    const c = await open(spec('c1', unixServer(p)));
    opened.push(c);
    const fe = new TestFrontend();
    c.attach(fe);
    const client = await connectUnix(p);
    client.end('last words');
    await waitFor(() => fe.events.at(-1) === 'closed', 'closed');
    expect(fe.text()).toBe('last words');
    expect(c.counters.dropped['peer-gone']).toBe(0);
  });
});
