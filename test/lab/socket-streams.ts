/**
 * Real-socket streams for the loss-accounting tests (issue 13 item 14): a
 * client that writes patterned chunks and reads everything, with the counts
 * a test needs to tell bytes in the lab from bytes in a kernel buffer.
 */
import type * as net from 'node:net';
import { bytesNotInKernel } from '../../core/chardev/unsent.js';
import { PatternStream } from '../../core/workloads/index.js';

export interface SocketStream {
  /** Bytes passed to socket.write(). */
  written: number;
  /** Bytes whose write callback said they are in the kernel's buffer. */
  acked: number;
  /** Bytes read ('data' events). */
  received: number;
  ended: boolean;
  /** Set to stop writing after the write in flight. */
  stop: boolean;
}

/** A client that writes patterned chunks one at a time and reads everything. */
export function stream(socket: net.Socket, seed: number): SocketStream {
  const s: SocketStream = { written: 0, acked: 0, received: 0, ended: false, stop: false };
  const p = new PatternStream(seed);
  socket.on('data', (d: Buffer) => (s.received += d.length));
  socket.on('end', () => (s.ended = true));
  socket.on('close', () => (s.ended = true));
  socket.on('error', () => {});
  const next = (): void => {
    if (s.stop || s.ended) return;
    const chunk = p.next(64 * 1024);
    s.written += chunk.length;
    // the callback says the bytes are in the kernel's buffer: from here on they are the lab's or the kernel's
    socket.write(chunk, (error) => {
      if (error) return;
      s.acked += chunk.length;
      next();
    });
  };
  next();
  return s;
}

/**
 * Bytes a client has put into the kernel so far, its write in flight
 * included (a unix socket's data is in the peer's receive queue at once):
 * ask before destroy(), which throws the rest away.
 */
export function inKernel(socket: net.Socket, s: SocketStream): number {
  return s.written - bytesNotInKernel(socket);
}

/** Wait until `count` stays the same over many event-loop turns (no timer): the flow has stopped. */
export async function stalled(count: () => number): Promise<void> {
  let before = -1;
  while (before !== count()) {
    before = count();
    for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
  }
}
