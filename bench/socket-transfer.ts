/**
 * The two socket moves the lab bench times, shared by the in-process bench
 * (lab.ts) and the client it runs in its own process (lab-client.ts), so
 * both sides of the cross-process check measure the same way.
 */
import * as net from 'node:net';

/** The bench's write size: larger than any buffer on the way, so the path's own chunking shows. */
export const CHUNK = 256 * 1024;

export function connect(p: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: p }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Seconds to push `total` bytes from `from` until `to` has seen them all. */
export async function transfer(from: net.Socket, to: net.Socket, total: number): Promise<number> {
  const chunk = Buffer.alloc(CHUNK, 0x5a);
  const start = performance.now();
  const arrived = new Promise<void>((resolve) => {
    let got = 0;
    const onData = (c: Buffer): void => {
      got += c.length;
      if (got >= total) {
        to.off('data', onData);
        resolve();
      }
    };
    to.on('data', onData);
  });
  for (let sent = 0; sent < total; sent += CHUNK) {
    if (!from.write(chunk.subarray(0, Math.min(CHUNK, total - sent)))) {
      await new Promise((r) => from.once('drain', r));
    }
  }
  await arrived;
  return (performance.now() - start) / 1000;
}
