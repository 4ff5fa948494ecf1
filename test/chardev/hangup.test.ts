/**
 * hangUp(): vmchan drops a chardev's host peer, as if it went away (the
 * inspector's "Disconnect host" on an outside client).
 *
 * - socket server: the client sees the close, the frontend gets 'closed',
 *   host bytes the frontend had not taken are counted as dropped['hung-up'],
 *   and the server keeps listening: a second client is adopted;
 * - socket client with reconnect: the server sees the close and the client
 *   dials again;
 * - refusals, with the reason: nobody connected, a client without
 *   reconnect, a backend without a peer connection of its own, a closed one;
 * - a mux hangs up its base.
 */
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SocketChardev, type OpenChardev } from '../../core/chardev/index.js';
import { lab, spec, tempDir, TestFrontend, waitFor } from './helpers.js';

const unixServer = (p: string) =>
  ({
    kind: 'socket',
    address: { type: 'unix', path: p },
    server: true,
    wait: false,
    nodelay: false,
  }) as const;
const unixClient = (p: string, reconnect?: number) =>
  ({
    kind: 'socket',
    address: { type: 'unix', path: p },
    server: false,
    wait: false,
    nodelay: false,
    ...(reconnect !== undefined ? { reconnect } : {}),
  }) as const;

const opened: OpenChardev[] = [];
const sockets: net.Socket[] = [];
const servers: net.Server[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

function asSocket(c: OpenChardev): SocketChardev {
  if (!(c instanceof SocketChardev)) throw new Error('not a socket chardev');
  return c;
}

/** A client that records whether it saw its connection close. */
function connectUnix(p: string): Promise<{ socket: net.Socket; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let closed = false;
    const socket = net.connect({ path: p }, () => resolve({ socket, closed: () => closed }));
    socket.once('error', reject);
    socket.on('close', () => (closed = true));
    socket.resume();
    sockets.push(socket);
  });
}

describe('hangUp() (Disconnect host)', () => {
  it('socket server: closes the client, counts what it had queued, keeps listening', async () => {
    const p = path.join(tempDir(), 'h1');
    const { open, notices } = lab();
    const c = asSocket(await open(spec('h1', unixServer(p))));
    opened.push(c);
    const fe = new TestFrontend();
    fe.room = 0; // the guest has posted no receive buffers: host bytes wait in the backend
    c.attach(fe);
    const first = await connectUnix(p);
    await waitFor(() => fe.events.includes('opened'), 'opened');
    first.socket.write('never read');
    await waitFor(() => c.pendingToGuest === 10, 'queued host bytes');

    const r = c.hangUp();
    expect(r).toEqual({ hungUp: true, droppedToGuest: 10, droppedToHost: 0 });
    expect(c.connected).toBe(false);
    expect(c.counters.dropped['hung-up']).toBe(10);
    expect(c.counters.dropped['peer-gone']).toBe(0);
    expect(c.pendingToGuest).toBe(0);
    await waitFor(() => fe.events.at(-1) === 'closed', 'closed');
    await waitFor(first.closed, 'the client sees the close');
    expect(
      notices.some((l) => /chardev h1: hung up the host peer .*10 bytes for the guest/.test(l)),
    ).toBe(true);
    expect(c.describe()).toBe(`disconnected:unix:${p},server=on`);
    // Nobody there now: refused with the reason.
    expect(c.hangUp()).toEqual({ hungUp: false, reason: "nobody is connected to chardev 'h1'" });

    // Still listening: a second client is adopted and carries bytes.
    fe.room = Infinity;
    c.acceptInput();
    const second = await connectUnix(p);
    await waitFor(() => c.connected && fe.events.at(-1) === 'opened', 'second client');
    second.socket.write('hello again');
    await waitFor(() => fe.text() === 'hello again', 'bytes from the second client');
    expect(c.stats.refusedClients).toBe(0);
    expect(c.stats.connections).toBe(2);
  });

  it('guest bytes still queued for the host count as hung-up, out of bytesOut', async () => {
    const p = path.join(tempDir(), 'h2');
    const { open } = lab();
    const c = asSocket(await open(spec('h2', unixServer(p))));
    opened.push(c);
    c.attach(new TestFrontend());
    const client = await connectUnix(p);
    client.socket.pause(); // a host application that does not read
    await waitFor(() => c.connected, 'connected');
    // Write until the kernel's buffer is full and the rest waits in this process.
    let written = 0;
    for (let i = 0; i < 4000 && c.queuedToHost === 0; i++) {
      const n = c.write(new Uint8Array(4096));
      written += n;
      // A short write: let the socket hand what it holds to the kernel, then go on.
      if (n < 4096) await new Promise((resolve) => setImmediate(resolve));
    }
    const queued = c.queuedToHost;
    expect(queued).toBeGreaterThan(0);
    const r = c.hangUp();
    expect(r).toMatchObject({ hungUp: true, droppedToHost: queued });
    expect(c.counters.dropped['hung-up']).toBe(queued);
    expect(c.counters.bytesOut).toBe(written - queued);
  });

  it('socket client with reconnect: closes, then dials again', async () => {
    const p = path.join(tempDir(), 'h3');
    const accepted: net.Socket[] = [];
    const server = net.createServer((s) => {
      accepted.push(s);
      sockets.push(s);
      s.resume();
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(p, resolve));
    const { open } = lab();
    const c = await open(spec('h3', unixClient(p, 1)));
    opened.push(c);
    const fe = new TestFrontend();
    c.attach(fe);
    await waitFor(() => c.connected && accepted.length === 1, 'connected');
    let closedByUs = false;
    accepted[0]!.on('close', () => (closedByUs = true));
    expect(c.hangUp()).toMatchObject({ hungUp: true });
    expect(c.connected).toBe(false);
    await waitFor(() => closedByUs, 'the server sees the close');
    await waitFor(() => fe.events.at(-1) === 'closed', 'closed');
    await waitFor(() => c.connected && accepted.length === 2, 'reconnected', 4000);
    await waitFor(() => fe.events.at(-1) === 'opened', 'opened again');
  });

  it('refuses with the reason where a hang-up cannot be done', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'h4');
    const server = net.createServer((s) => sockets.push(s));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(p, resolve));
    const { open } = lab();
    const client = await open(spec('h4', unixClient(p)));
    opened.push(client);
    await waitFor(() => client.connected, 'connected');
    const r = client.hangUp();
    expect(r.hungUp).toBe(false);
    if (!r.hungUp) expect(r.reason).toMatch(/socket client without reconnect/);
    expect(client.connected).toBe(true);

    const ringbuf = await open(spec('rb', { kind: 'ringbuf', size: 64 }));
    opened.push(ringbuf);
    expect(ringbuf.hangUp()).toEqual({
      hungUp: false,
      reason:
        "chardev 'rb' is a ringbuf backend: it has no peer connection of its own that vmchan can hang up",
    });
    const nul = await open(spec('n', { kind: 'null' }));
    opened.push(nul);
    expect(nul.hangUp().hungUp).toBe(false);

    const closing = await open(spec('h5', unixServer(path.join(dir, 'h5'))));
    await closing.close();
    expect(closing.hangUp()).toEqual({ hungUp: false, reason: "chardev 'h5' is closed" });
  });

  it('a mux hangs up its base: every frontend gets closed', async () => {
    const p = path.join(tempDir(), 'h6');
    const { open } = lab();
    const c = await open(spec('h6', unixServer(p), { mux: true }));
    opened.push(c);
    const fe = new TestFrontend();
    c.attach(fe);
    const client = await connectUnix(p);
    await waitFor(() => fe.events.includes('opened'), 'opened');
    expect(c.hangUp()).toMatchObject({ hungUp: true });
    await waitFor(() => fe.events.at(-1) === 'closed', 'closed');
    await waitFor(client.closed, 'the client sees the close');
  });
});
