/**
 * D8 L10, the mechanism behind the real-socket drop test's occasional
 * over-count (36,544 bytes host to guest, issue 13 item 14), made to happen
 * every time: the guest-dir bridge has handed its client's socket a write
 * that the kernel took only in part (the client is not reading), and the
 * port goes (unplug: the bridge stops and destroys the socket). The kernel's
 * part still reaches the client; only the rest is lost, and that is what the
 * bridge must count as 'guest-client-gone'. It used to count the whole write
 * in flight (writableLength), so client-received + counted came out larger
 * than what the bridge handed over.
 *
 * The port side is a stand-in PortStream that reads one 1 MiB chunk (a real
 * port reads at most 64 KiB at a time, which makes the half write a matter
 * of timing: test/lab/drop-accounting-sockets.test.ts runs that through the
 * whole lab); the socket, the kernel and the bridge are real.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientBridge } from '../../core/guestdir/bridge.js';
import { errno } from '../../core/serial/guest/errno.js';
import type { PortStream } from '../../core/workloads/port-stream.js';
import { until } from '../until.js';

const MiB = 1024 * 1024;
const cleanup: (() => void)[] = [];

afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

/** A port that has `chunks` to read and then nothing until it is closed. */
function portWith(chunks: Uint8Array[]): PortStream {
  let closed: () => void = () => {};
  const closing = new Promise<void>((resolve) => (closed = resolve));
  const port = {
    readSome: async () => chunks.shift() ?? closing.then(() => errno('EBADF', 'read')),
    write: async () => errno('EBADF', 'write'),
    waitForHost: async () => 'closed' as const,
    close: async () => closed(),
  };
  return port as unknown as PortStream;
}

/** A guest-dir-like socket pair: the bridge's end and a client that has read nothing yet. */
async function clientPair(): Promise<{ bridgeEnd: net.Socket; client: net.Socket }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vml-gone-'));
  const listener = net.createServer();
  cleanup.push(() => {
    listener.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const socketPath = path.join(dir, 'test2');
  await new Promise<void>((resolve) => listener.listen(socketPath, resolve));
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  const client = net.connect({ path: socketPath, allowHalfOpen: true });
  client.pause();
  const bridgeEnd = await accepted;
  cleanup.push(() => client.destroy());
  return { bridgeEnd, client };
}

describe('guest-dir bridge: a write half in the kernel when the port goes', () => {
  it('D8 L10 the client reads the kernel part; only the rest is guest-client-gone', async () => {
    const { bridgeEnd, client } = await clientPair();
    let lost = 0;
    const bridge = new ClientBridge(
      portWith([new Uint8Array(MiB).fill(7)]),
      bridgeEnd,
      (bytes) => (lost += bytes),
    );
    await until(() => bridge.stats.toClient === MiB, 'the bridge to hand the client 1 MiB');
    // The port goes (GuestDir.unexpose stops the bridge): the socket is destroyed mid-write.
    await bridge.stop();

    let received = 0;
    let ended = false;
    client.on('data', (d: Buffer) => (received += d.length));
    client.on('end', () => (ended = true));
    client.resume();
    await until(() => ended, 'the client to read to end of file');
    // The write was in flight in part only: the kernel had some, libuv the rest.
    expect(received).toBeGreaterThan(0);
    expect(lost).toBeGreaterThan(0);
    expect(received + lost).toBe(MiB);
  });
});
