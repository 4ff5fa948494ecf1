/**
 * bytesNotInKernel (core/chardev/unsent.ts): of the bytes given to a
 * socket's write(), how many a destroy() now would lose. A unix socket's
 * client that does not read lets the kernel take about 200 KiB of a 1 MiB
 * write (the rest waits in libuv); after the writer is destroyed the client
 * still reads what the kernel took, and exactly that: the answer is the
 * rest, not writableLength (which counts the whole write in flight).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bytesNotInKernel } from '../../core/chardev/unsent.js';
import { until } from '../until.js';

const MiB = 1024 * 1024;
const cleanup: (() => void)[] = [];

afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

/** A connected pair: `server` writes, `client` has not read a byte (paused before connecting). */
async function pair(): Promise<{ server: net.Socket; client: net.Socket }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vml-unsent-'));
  const listener = net.createServer();
  cleanup.push(() => {
    listener.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const socketPath = path.join(dir, 's');
  await new Promise<void>((resolve) => listener.listen(socketPath, resolve));
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  const client = net.connect({ path: socketPath, allowHalfOpen: true });
  client.pause();
  const server = await accepted;
  cleanup.push(() => {
    server.destroy();
    client.destroy();
  });
  return { server, client };
}

/** Resume the client and count what it reads until end of file. */
async function readToEnd(client: net.Socket): Promise<number> {
  let received = 0;
  let ended = false;
  client.on('data', (d: Buffer) => (received += d.length));
  client.on('end', () => (ended = true));
  client.resume();
  await until(() => ended, 'the client to read to end of file');
  return received;
}

describe('bytesNotInKernel: what a destroy() would lose', () => {
  it('a 1 MiB write to a client that does not read: the kernel holds part of it, the client gets exactly that part', async () => {
    const { server, client } = await pair();
    server.write(new Uint8Array(MiB));
    expect(server.writableLength).toBe(MiB);
    const lost = bytesNotInKernel(server);
    // The kernel took some of the write in flight and not all of it.
    expect(lost).toBeGreaterThan(0);
    expect(lost).toBeLessThan(MiB);
    server.destroy();
    expect(await readToEnd(client)).toBe(MiB - lost);
  });

  it('writes behind the one in flight are all lost (Node still buffers them)', async () => {
    const { server, client } = await pair();
    server.write(new Uint8Array(MiB));
    server.write(new Uint8Array(100_000));
    server.write(new Uint8Array(1));
    expect(server.writableLength).toBe(MiB + 100_001);
    const lost = bytesNotInKernel(server);
    expect(lost).toBeGreaterThan(100_001);
    server.destroy();
    expect(await readToEnd(client)).toBe(MiB + 100_001 - lost);
  });

  it('nothing written, or everything in the kernel: 0; a destroyed socket: 0', async () => {
    const { server, client } = await pair();
    expect(bytesNotInKernel(server)).toBe(0);
    await new Promise<void>((resolve) => server.write(new Uint8Array(1000), () => resolve()));
    expect(bytesNotInKernel(server)).toBe(0);
    server.destroy();
    expect(bytesNotInKernel(server)).toBe(0);
    expect(await readToEnd(client)).toBe(1000);
  });
});
