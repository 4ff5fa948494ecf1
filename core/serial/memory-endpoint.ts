/**
 * An in-memory chardev: a backend (MemoryEndpoint, what the port attaches
 * to) and the host application's end of it (MemoryPeer, what a test or the
 * UI drives: connect, write, read, disconnect), like the two ends of a unix
 * socket with QEMU listening on one side.
 *
 * - host -> guest: peer.write() queues bytes (the socket's send buffer, not
 *   bounded); the endpoint hands them to the port in chunks of at most
 *   `chunkSize` (QEMU reads 4096 at a time) and only as many as canRead()
 *   allows, one chunk per 'backend' task.
 * - guest -> host: in flowing mode (peer.onData) every byte goes straight to
 *   the listener; otherwise bytes wait in the peer's receive buffer, which
 *   holds at most `capacity` bytes. A full buffer is backpressure: write()
 *   takes fewer bytes, and write watches fire when peer.read() makes room.
 * - Nothing is lost silently: bytes the host wrote that were still queued
 *   when it disconnected are counted in `stats.discardedFromHost`, bytes
 *   written while nobody was connected in `stats.discardedToHost`.
 */
import type { PostTask } from '../virtio/device.js';
import type { ChardevEndpoint, ChardevEvent, ChardevHandlers } from './endpoint.js';

export interface MemoryEndpointOptions {
  id: string;
  /** Where backend work runs: the engine's Scheduler.post (default: microtasks). */
  post?: PostTask;
  /** Receive buffer of the host peer, in bytes, when it is not in flowing mode. */
  capacity?: number;
  /** Largest chunk handed to the port per read (QEMU: 4096). */
  chunkSize?: number;
  /** Start with the host peer connected. */
  connected?: boolean;
  /** Told about every byte the endpoint discards (see MemoryEndpointStats), so it can be shown. */
  onDiscard?: (direction: 'from-host' | 'to-host', bytes: number) => void;
}

export interface MemoryEndpointStats {
  /** Bytes the port wrote that the host took. */
  toHost: number;
  /** Bytes handed to the port. */
  toGuest: number;
  /** Host bytes dropped because the peer disconnected before the port took them. */
  discardedFromHost: number;
  /** Port bytes dropped because no peer was connected. */
  discardedToHost: number;
}

const microtaskPost: PostTask = (_kind, _label, run) => queueMicrotask(run);

export class MemoryEndpoint implements ChardevEndpoint {
  readonly id: string;
  readonly peer: MemoryPeer;
  readonly stats: MemoryEndpointStats = {
    toHost: 0,
    toGuest: 0,
    discardedFromHost: 0,
    discardedToHost: 0,
  };
  private readonly post: PostTask;
  private readonly chunkSize: number;
  private readonly onDiscard: (direction: 'from-host' | 'to-host', bytes: number) => void;
  private handlers: ChardevHandlers | null = null;
  private isConnected: boolean;
  private isFrontendOpen = false;
  private pumpPosted = false;
  private watches: (() => void)[] = [];
  private watchPosted = false;

  // host -> guest bytes not yet taken by the port
  private outgoing: Uint8Array[] = [];
  private outgoingHead = 0;
  private outgoingOffset = 0;
  private outgoingBytes = 0;

  constructor(options: MemoryEndpointOptions) {
    this.id = options.id;
    this.post = options.post ?? microtaskPost;
    this.chunkSize = Math.max(1, options.chunkSize ?? 4096);
    this.isConnected = options.connected ?? false;
    this.onDiscard = options.onDiscard ?? (() => {});
    this.peer = new MemoryPeer(this, options.capacity ?? 64 * 1024);
  }

  // ------------------------------------------------- the frontend's side

  get connected(): boolean {
    return this.isConnected;
  }

  get attached(): boolean {
    return this.handlers !== null;
  }

  get frontendOpen(): boolean {
    return this.isFrontendOpen;
  }

  attach(handlers: ChardevHandlers): boolean {
    if (this.handlers !== null) return false;
    this.handlers = handlers;
    if (this.isConnected) this.postEvent('opened');
    return true;
  }

  detach(): void {
    this.handlers = null;
    this.watches = [];
    this.isFrontendOpen = false;
  }

  write(bytes: Uint8Array): number {
    if (bytes.length === 0) return 0;
    if (!this.isConnected) {
      this.stats.discardedToHost += bytes.length;
      this.onDiscard('to-host', bytes.length);
      return bytes.length;
    }
    const taken = this.peer.accept(bytes);
    this.stats.toHost += taken;
    return taken;
  }

  addWriteWatch(callback: () => void): () => void {
    this.watches.push(callback);
    // Room may already be there (the peer read between the short write and now).
    if (!this.isConnected || this.peer.hasRoom()) this.fireWatches();
    return () => {
      this.watches = this.watches.filter((w) => w !== callback);
    };
  }

  acceptInput(): void {
    this.schedulePump();
  }

  setFrontendOpen(open: boolean): void {
    this.isFrontendOpen = open;
  }

  describe(): string {
    return `${this.isConnected ? '' : 'disconnected:'}memory:${this.id}`;
  }

  /** Host bytes still waiting for the port. */
  get pendingToGuest(): number {
    return this.outgoingBytes;
  }

  // ------------------------------------------------ used by MemoryPeer

  /** @internal */
  queueFromHost(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.outgoing.push(bytes);
    this.outgoingBytes += bytes.length;
    this.schedulePump();
  }

  /** @internal */
  setConnected(connected: boolean): void {
    if (connected === this.isConnected) return;
    this.isConnected = connected;
    if (connected) {
      this.postEvent('opened');
      this.schedulePump();
    } else {
      const lost = this.outgoingBytes;
      this.stats.discardedFromHost += lost;
      if (lost > 0) this.onDiscard('from-host', lost);
      this.outgoing = [];
      this.outgoingHead = 0;
      this.outgoingOffset = 0;
      this.outgoingBytes = 0;
      this.postEvent('closed');
      this.fireWatches(); // G_IO_HUP wakes a throttled writer too
    }
  }

  /** @internal the peer made room in its receive buffer */
  roomMade(): void {
    if (this.watches.length > 0) this.fireWatches();
  }

  // ------------------------------------------------------------ internals

  private postEvent(event: ChardevEvent): void {
    this.post('backend', `chardev ${this.id}: ${event}`, () => this.handlers?.event(event));
  }

  private fireWatches(): void {
    if (this.watchPosted) return;
    this.watchPosted = true;
    this.post('backend', `chardev ${this.id}: writable`, () => {
      this.watchPosted = false;
      const due = this.watches;
      this.watches = [];
      for (const w of due) w();
    });
  }

  private schedulePump(): void {
    if (this.pumpPosted || this.outgoingBytes === 0 || !this.isConnected) return;
    this.pumpPosted = true;
    this.post('backend', `chardev ${this.id}: read`, this.pump);
  }

  /** One chunk to the port per task (QEMU's tcp_chr_read reads one buffer per wakeup). */
  private readonly pump = (): void => {
    this.pumpPosted = false;
    const handlers = this.handlers;
    if (handlers === null || !this.isConnected || this.outgoingBytes === 0) return;
    const room = handlers.canRead();
    if (room <= 0) return; // wait for acceptInput()
    const chunk = this.takeOutgoing(Math.min(room, this.chunkSize));
    this.stats.toGuest += chunk.length;
    handlers.read(chunk);
    this.schedulePump();
  };

  private takeOutgoing(max: number): Uint8Array {
    const first = this.outgoing[this.outgoingHead]!;
    const left = first.length - this.outgoingOffset;
    let out: Uint8Array;
    if (left >= max || this.outgoingHead === this.outgoing.length - 1) {
      const n = Math.min(left, max);
      out = first.subarray(this.outgoingOffset, this.outgoingOffset + n);
      this.outgoingOffset += n;
    } else {
      // Gather across the host's writes into one chunk, as a socket read would.
      const n = Math.min(max, this.outgoingBytes);
      out = new Uint8Array(n);
      let filled = 0;
      while (filled < n) {
        const buf = this.outgoing[this.outgoingHead]!;
        const take = Math.min(buf.length - this.outgoingOffset, n - filled);
        out.set(buf.subarray(this.outgoingOffset, this.outgoingOffset + take), filled);
        filled += take;
        this.outgoingOffset += take;
        if (this.outgoingOffset === buf.length) this.advanceOutgoing();
      }
      this.outgoingBytes -= n;
      return out;
    }
    this.outgoingBytes -= out.length;
    if (this.outgoingOffset === first.length) this.advanceOutgoing();
    return out;
  }

  private advanceOutgoing(): void {
    this.outgoing[this.outgoingHead] = new Uint8Array(0);
    this.outgoingHead++;
    this.outgoingOffset = 0;
    if (this.outgoingHead === this.outgoing.length) {
      this.outgoing = [];
      this.outgoingHead = 0;
    } else if (this.outgoingHead > 1024) {
      this.outgoing = this.outgoing.slice(this.outgoingHead);
      this.outgoingHead = 0;
    }
  }
}

/**
 * The host application's end of a MemoryEndpoint: what `socat` or your
 * program would be on a real unix socket.
 */
export class MemoryPeer {
  private flowing: ((bytes: Uint8Array) => void) | null = null;
  private paused = false;
  private buffer: Uint8Array[] = [];
  private buffered = 0;
  private total = 0;

  /** @internal created by MemoryEndpoint */
  constructor(
    private readonly endpoint: MemoryEndpoint,
    /** Receive buffer size (bytes) outside flowing mode. */
    public capacity: number,
  ) {}

  get connected(): boolean {
    return this.endpoint.connected;
  }

  connect(): void {
    this.endpoint.setConnected(true);
  }

  /** Hang up: host bytes the port has not taken yet are discarded (and counted). */
  disconnect(): void {
    this.endpoint.setConnected(false);
  }

  /** Send bytes (or UTF-8 text) towards the guest. Ignored (0) while disconnected. */
  write(data: Uint8Array | string): number {
    if (!this.endpoint.connected) return 0;
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    this.endpoint.queueFromHost(bytes);
    return bytes.length;
  }

  /** Bytes received from the guest and not read yet. */
  get available(): number {
    return this.buffered;
  }

  /** Bytes received from the guest so far, read or not. */
  get receivedTotal(): number {
    return this.total;
  }

  /** Take up to `max` received bytes (all by default); makes room, which may unthrottle the port. */
  read(max = Infinity): Uint8Array {
    const n = Math.min(max, this.buffered);
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const head = this.buffer[0]!;
      const take = Math.min(head.length, n - filled);
      out.set(head.subarray(0, take), filled);
      filled += take;
      if (take === head.length) this.buffer.shift();
      else this.buffer[0] = head.subarray(take);
    }
    this.buffered -= n;
    if (n > 0) this.endpoint.roomMade();
    return out;
  }

  /** Received bytes as UTF-8 text (consumes them). */
  readText(): string {
    return new TextDecoder().decode(this.read());
  }

  /**
   * Flowing mode: every byte from the guest goes to `listener` as it arrives
   * (buffered bytes first). Returns a function that leaves flowing mode.
   */
  onData(listener: (bytes: Uint8Array) => void): () => void {
    this.flowing = listener;
    if (this.buffered > 0) listener(this.read());
    return () => {
      if (this.flowing === listener) this.flowing = null;
    };
  }

  /** Stop taking bytes in flowing mode: they pile up in the receive buffer (backpressure). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    if (this.flowing !== null && this.buffered > 0) this.flowing(this.read());
    this.endpoint.roomMade();
  }

  /** @internal room for another write from the port? */
  hasRoom(): boolean {
    return (this.flowing !== null && !this.paused) || this.buffered < this.capacity;
  }

  /** @internal bytes from the port; returns how many were taken. */
  accept(bytes: Uint8Array): number {
    if (this.flowing !== null && !this.paused) {
      this.total += bytes.length;
      this.flowing(bytes);
      return bytes.length;
    }
    const n = Math.min(bytes.length, Math.max(0, this.capacity - this.buffered));
    if (n === 0) return 0;
    this.buffer.push(bytes.subarray(0, n));
    this.buffered += n;
    this.total += n;
    return n;
  }
}

/** A MemoryEndpoint (give it to a port) and its host peer (drive it from a test). */
export function createMemoryEndpoint(options: MemoryEndpointOptions): {
  endpoint: MemoryEndpoint;
  peer: MemoryPeer;
} {
  const endpoint = new MemoryEndpoint(options);
  return { endpoint, peer: endpoint.peer };
}
