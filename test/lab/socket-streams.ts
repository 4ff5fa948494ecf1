/**
 * Real-socket streams for the loss-accounting tests (issue 13 item 14): a
 * client that writes patterned chunks and reads everything, with the counts
 * a test needs to tell bytes in the lab from bytes in a kernel buffer.
 */
import type * as net from 'node:net';
import * as path from 'node:path';
import { BackendEndpoint } from '../../core/chardev/backend-endpoint.js';
import { bytesNotInKernel } from '../../core/chardev/unsent.js';
import { GuestDir, isGuestDirError } from '../../core/guestdir/index.js';
import type { BridgeStats } from '../../core/guestdir/bridge.js';
import type { Machine } from '../../core/machine/machine.js';
import { PatternStream } from '../../core/workloads/index.js';
import { connectUnix, startMachine, tempDir, unixServer, waitUntil } from './helpers.js';

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

/** A lab with one port (test2) on a unix server chardev c2, and the guest dir open on it. */
export interface StreamingPort {
  dir: string;
  machine: Machine;
  guestDir: GuestDir;
  chardev: BackendEndpoint;
}

/**
 * Start the loss tests' lab: `-chardev socket,id=c2,path=DIR/c2,server=on`
 * behind virtserialport test2 on the given ring format, and its guest dir.
 * `keep` gets the machine and the guest dir as soon as each exists, so the
 * caller's afterEach closes them even when a later step fails.
 */
export async function startStreamingPort(
  prefix: string,
  ring: 'split' | 'packed',
  keep: (machine: Machine, guestDir: GuestDir | null) => void,
): Promise<StreamingPort> {
  const dir = tempDir(prefix);
  const machine = await startMachine(
    [
      ...unixServer(dir, 'c2'),
      '-device',
      'virtio-serial,id=vser0',
      '-device',
      'virtserialport,chardev=c2,name=test2,id=p2',
    ],
    dir,
    ring,
  );
  keep(machine, null);
  const guestDir = await GuestDir.open(machine.lab, path.join(dir, 'guest'));
  if (isGuestDirError(guestDir)) throw new Error(guestDir.message);
  keep(machine, guestDir);
  const chardev = machine.lab.chardev('c2');
  if (!(chardev instanceof BackendEndpoint)) throw new Error('c2 is not a socket chardev');
  return { dir, machine, guestDir, chardev };
}

/** Both ends of test2 streaming: a host client on c2 and a guest-dir client, each reading everything. */
export interface BothWays {
  hostSocket: net.Socket;
  host: SocketStream;
  guestSocket: net.Socket;
  guest: SocketStream;
  /** The guest-dir bridge's counts for the guest client. */
  bridge: BridgeStats;
}

/** Connect a host client and a guest-dir client to test2 and wait until a megabyte went each way. */
export async function streamBothWays(rig: StreamingPort): Promise<BothWays> {
  const hostSocket = await connectUnix(path.join(rig.dir, 'c2'));
  const host = stream(hostSocket, 1);
  const guestSocket = await connectUnix(path.join(rig.dir, 'guest', 'test2'));
  const bridgeOf = (): BridgeStats | null =>
    rig.guestDir.sockets().find((s) => s.port.name === 'test2')?.client ?? null;
  await waitUntil(() => bridgeOf() !== null, 'the guest-dir bridge');
  const bridge = bridgeOf()!;
  const guest = stream(guestSocket, 2);
  await waitUntil(
    () => host.received > 1_000_000 && guest.received > 1_000_000,
    'a megabyte each way',
    60_000,
  );
  return { hostSocket, host, guestSocket, guest, bridge };
}
