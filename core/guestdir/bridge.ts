/**
 * One client of a guest-dir socket, bridged to a guest port that it holds
 * open: the client is a guest program, so it sees the port with the guest's
 * semantics (core/workloads/port-stream.ts does the system calls).
 *
 * - client -> guest: each chunk is written to the port; the socket is paused
 *   until the write returned, so a guest write that waits (host away, queue
 *   full: L5) holds the client back instead of buffering here.
 * - guest -> client: reads, forwarded; when the socket's buffer is full the
 *   bridge stops reading until it drains, so a slow client leaves the data
 *   in the guest's queue (and the device stops pulling from the host, D6).
 *   The reads copy straight into a buffer the socket write then takes as
 *   is (one copy, Linux's copy_to_user); a buffer is reused once the
 *   socket has handed it to the OS.
 * - the host hangs up (read returns 0, L4): the client stays connected and
 *   the bridge waits for a host again, as a person watching a port expects
 *   (Linux would report end of file; a program that exits on it would lose
 *   the next host). Bytes still queued are delivered first.
 * - the client closes, or half-closes (end of file from it): a port has no
 *   half-close, and a unix socket server cannot tell the two apart until a
 *   write fails, so guest data keeps flowing to the client while there is
 *   some, and once the guest has been quiet for LINGER_MS (socat's own
 *   -t default) the bridge ends the connection and the guest closes the
 *   port (PORT_OPEN 0, L3). So `printf 'PING\n' | socat - UNIX-CONNECT:...`
 *   still gets its answer; a new client arriving meanwhile takes the port
 *   over at once (guest-dir.ts), so a client that left never stands in the
 *   way of the next.
 * - the port is unplugged (ENODEV): the client gets end of file.
 * - bytes read from the port that the client never took (its socket is
 *   destroyed with them still buffered) are reported to `onLost`, so the
 *   lab counts them (no silent drops); so are bytes read from the client
 *   that the port refused (unplugged mid-write), to `onUnsent`.
 */
import type net from 'node:net';
import { readIntoPool } from '../chardev/pooled-reads.js';
import { bytesNotInKernel } from '../chardev/unsent.js';
import { isErrno } from '../serial/guest/errno.js';
import { READ_SIZE, type PortStream } from '../workloads/port-stream.js';

/** How long the guest may stay quiet after the client's end of file before the port is closed. */
export const LINGER_MS = 500;

export interface BridgeStats {
  /** Bytes read from the client socket (what left the kernel's buffer). */
  fromClient: number;
  /** Bytes of those written to the port. */
  toGuest: number;
  /** Bytes read from the port and handed to the client socket. */
  toClient: number;
}

export class ClientBridge {
  readonly stats: BridgeStats = { fromClient: 0, toGuest: 0, toClient: 0 };
  /** Settles when the client is gone and the guest has closed the port. */
  readonly done: Promise<void>;
  private finish: () => void = () => {};
  private stopped = false;
  /** The client sent end of file; the linger timer runs. */
  private lingerTimer: NodeJS.Timeout | null = null;
  /**
   * Read buffers the socket has finished with. The bridge stops reading
   * while the socket is over its high-water mark, so only a few are ever
   * out at once.
   */
  private readonly spare: Buffer[] = [];

  constructor(
    private readonly stream: PortStream,
    private readonly socket: net.Socket,
    private readonly onLost: (bytes: number) => void = () => {},
    private readonly onUnsent: (bytes: number) => void = () => {},
  ) {
    this.done = new Promise((resolve) => (this.finish = resolve));
    const fromClient = (chunk: Uint8Array, release?: () => void): void => {
      this.stats.fromClient += chunk.length;
      socket.pause();
      void this.toGuest(chunk, release);
    };
    socket.on('data', (chunk: Buffer) => fromClient(chunk));
    // The client's bytes go into reused buffers (pooled-reads.ts): each is
    // lent until the guest's write of it returned, and the socket stays
    // paused until then, so only one is out at a time.
    readIntoPool(socket, fromClient);
    socket.on('error', () => {}); // 'close' follows
    socket.on('end', () => this.linger());
    socket.on('close', () => void this.stop());
    void this.toClient();
  }

  /** The client sent end of file and only answers are still being passed on. */
  get lingering(): boolean {
    return this.lingerTimer !== null && !this.stopped;
  }

  /** Drop the client and close the port. */
  async stop(): Promise<void> {
    if (this.stopped) return this.done;
    this.stopped = true;
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    // Only what never reached the kernel: bytes already in the client's receive queue still get there.
    const unsent = bytesNotInKernel(this.socket);
    // Read from the client (out of the kernel) but held paused in Node: the port never gets them.
    const unread = this.socket.destroyed ? 0 : this.socket.readableLength;
    this.socket.destroy();
    if (unsent > 0) this.onLost(unsent);
    if (unread > 0) {
      this.stats.fromClient += unread;
      this.onUnsent(unread);
    }
    await this.stream.close();
    this.finish();
    return this.done;
  }

  /** Write a client chunk to the port; `release` gives its read buffer back once that returned. */
  private async toGuest(chunk: Uint8Array, release?: () => void): Promise<void> {
    let written = 0;
    const n = await this.stream.write(chunk, (part) => {
      written += part;
      this.stats.toGuest += part;
    });
    release?.();
    if (isErrno(n)) {
      if (chunk.length > written) this.onUnsent(chunk.length - written);
      this.hangUp();
      return;
    }
    if (!this.stopped) this.socket.resume();
  }

  private async toClient(): Promise<void> {
    while (!this.stopped) {
      const buffer = this.spare.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE);
      const r = await this.stream.readSome(READ_SIZE, buffer);
      if (!(r instanceof Uint8Array)) this.spare.push(buffer);
      if (r === 'eof') {
        if ((await this.stream.waitForHost()) === 'retry') continue;
        break;
      }
      if (isErrno(r)) break;
      this.stats.toClient += r.length;
      if (this.lingerTimer !== null) this.linger(); // still talking: wait again
      const room = this.socket.write(r, () => this.spare.push(buffer));
      if (!room) await this.drained();
    }
    this.hangUp();
  }

  /** (Re)start the quiet period after the client's end of file. */
  private linger(): void {
    if (this.stopped) return;
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.lingerTimer = setTimeout(() => this.hangUp(), LINGER_MS);
  }

  /** The port went away: end of file for the client, then the port is closed. */
  private hangUp(): void {
    if (this.stopped) return;
    this.socket.end(() => void this.stop());
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }
}
