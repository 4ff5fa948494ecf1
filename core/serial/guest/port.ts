/**
 * A port as the Linux guest driver keeps it (struct port in
 * drivers/char/virtio_console.c): connection flags, the receive buffer being
 * read (`inbuf`), the transmit queue state, a wait queue, SIGIO owners, and
 * the buffer handling that reads and writes go through.
 *
 * Linux facts kept here:
 * - received buffers stay in the used ring until a reader wants them; one
 *   read returns data from one buffer at most (fill_readbuf), and a buffer is
 *   posted again as soon as it is empty;
 * - writes do not wait for the device: a buffer is added and the call
 *   returns; used transmit buffers are reclaimed lazily (before the next
 *   write, at open, on host connect), and the queue is "full" when a write
 *   took its last free descriptor;
 * - data for a serial port the guest has not opened is dropped (L9) and
 *   counted in bytes_discarded, as is unread data at close (L3);
 * - a write that finds guest memory short waits for memory (or EAGAIN with
 *   O_NONBLOCK) instead of failing: Linux's GFP_KERNEL allocation in
 *   alloc_buf retries reclaim rather than return ENOMEM (L12). Used transmit
 *   buffers of every port are reclaimed when someone waits for memory.
 */
import type { DropReason } from '../events.js';
import type { GuestAllocator } from '../../virtio/allocator.js';
import type { Segment } from '../../virtio/chain.js';
import { isFault, type VirtioFault } from '../../virtio/fault.js';
import type { GuestMemory } from '../../virtio/memory.js';
import type { DriverQueue } from '../../virtio/queue.js';
import { errno, type Errno } from './errno.js';
import { WaitQueue } from './waitqueue.js';

/** A receive buffer the guest posted (PAGE_SIZE in Linux). */
export interface RxBuffer {
  addr: number;
  size: number;
  /**
   * A view of the whole buffer, made at its first full read and kept: the
   * buffer stays at its address for as long as it is posted, and a view
   * made per read costs as much as copying the 4 KiB out of it.
   */
  view?: Uint8Array;
}

/** A transmit buffer in flight; `done` runs when the device has used it. */
export interface TxBuffer {
  addr: number;
  len: number;
  done?: () => void;
}

/** What a port needs from its driver. */
export interface PortHost {
  readonly memory: GuestMemory;
  readonly allocator: GuestAllocator;
  readonly rxBufferSize: number;
  /** Set when the device or a ring broke: every call fails with EIO. */
  readonly broken: boolean;
  /** virtqueue_kick: publish and notify the device if it wants it. */
  kick(queue: number): void;
  /** A driver-side ring fault: the driver marks itself broken. */
  ringFault(problem: VirtioFault): void;
  dropped(port: GuestPort, reason: DropReason, bytes: number): void;
  /** Guest memory came back (a transmit buffer was freed): wake whoever waits for memory. */
  memoryReleased(): void;
  /** An allocation for a write failed: writers wait (poll shows no POLLOUT) until memory comes back. */
  memoryShortage(): void;
  readonly memoryShort: boolean;
  /** The kernel's reclaim: free the used transmit buffers of every port. */
  reclaimTransmitBuffers(): void;
}

const NO_SEGMENTS: readonly Segment[] = [];

/** port.send's answer when guest memory is short: the caller waits for memory (or EAGAIN). */
export const NO_MEMORY = 'no-memory' as const;

export interface GuestPortStats {
  bytesSent: number;
  bytesReceived: number;
  bytesDiscarded: number;
}

export class GuestPort {
  /** Device node name: vport<D>p<N>. */
  readonly devName: string;
  name: string | null = null;
  /** Set on CONSOLE_PORT (or for port 0 without MULTIPORT). */
  console: { hvc: number; rows: number; cols: number } | null = null;
  guestConnected = false;
  hostConnected = false;
  outvqFull = false;
  unplugged = false;
  inbuf: { buf: RxBuffer; len: number; offset: number } | null = null;
  /** The object getInbuf fills for every buffer it takes (see there). */
  private inbufSlot: NonNullable<GuestPort['inbuf']> | null = null;
  readonly waitq = new WaitQueue();
  /** fasync owners: how SIGIO reaches each (L7). */
  readonly asyncOwners = new Set<() => void>();
  readonly stats: GuestPortStats = { bytesSent: 0, bytesReceived: 0, bytesDiscarded: 0 };
  /** addInbuf's one writable segment, refilled for each buffer posted. */
  private readonly rxSegment: Segment = { addr: 0, len: 0 };
  private readonly rxSegments: readonly Segment[] = [this.rxSegment];

  constructor(
    private readonly host: PortHost,
    readonly id: number,
    readonly virtioIndex: number,
    readonly rxq: DriverQueue<RxBuffer>,
    readonly txq: DriverQueue<TxBuffer>,
  ) {
    this.devName = `vport${virtioIndex}p${id}`;
  }

  get isConsole(): boolean {
    return this.console !== null;
  }

  // ------------------------------------------------------------- receive

  /** get_inbuf: the buffer being read, or the next used one. */
  getInbuf(): GuestPort['inbuf'] {
    if (this.inbuf !== null) return this.inbuf;
    const used = this.rxq.getUsed();
    if (isFault(used)) {
      this.host.ringFault(used);
      return null;
    }
    if (used === null) return null;
    this.stats.bytesReceived += used.len;
    // One record per port, refilled: a port reads one buffer at a time, and
    // each caller is done with the last one before it asks for the next.
    const slot = this.inbufSlot ?? (this.inbufSlot = { buf: used.token, len: 0, offset: 0 });
    slot.buf = used.token;
    slot.len = Math.min(used.len, used.token.size);
    slot.offset = 0;
    return slot;
  }

  /** port_has_data */
  hasData(): boolean {
    this.inbuf = this.getInbuf();
    return this.inbuf !== null;
  }

  /**
   * fill_readbuf: up to `count` bytes from the current buffer; an emptied
   * buffer is posted again. The bytes are copied once, into `into` when the
   * caller gives its buffer (copy_to_user), else into a fresh array.
   */
  fillReadbuf(count: number, into?: Uint8Array): Uint8Array | Errno {
    const inbuf = this.inbuf;
    if (inbuf === null) return new Uint8Array(0);
    if (into !== undefined) {
      const n = this.fillReadbufAt(Math.min(count, into.length), into, 0);
      return typeof n === 'number' ? into.subarray(0, n) : n;
    }
    const n = Math.min(count, inbuf.len - inbuf.offset);
    const bytes = this.host.memory.readBytes(inbuf.buf.addr + inbuf.offset, n);
    if (isFault(bytes)) {
      this.host.ringFault(bytes);
      return errno('EIO', 'read');
    }
    this.consumed(inbuf, n);
    return bytes;
  }

  /**
   * fill_readbuf into `into` at offset `at` (room for `count` bytes there):
   * how many bytes were copied. No array is made for the call, so a reader
   * taking buffer after buffer into one array allocates nothing per buffer.
   */
  fillReadbufAt(count: number, into: Uint8Array, at: number): number | Errno {
    const inbuf = this.inbuf;
    if (inbuf === null) return 0;
    const n = Math.min(count, inbuf.len - inbuf.offset);
    const buf = inbuf.buf;
    if (n === buf.size && inbuf.offset === 0) {
      // The whole buffer (a bulk transfer's every read): copied from its kept view.
      let whole = buf.view;
      if (whole === undefined) {
        const made = this.host.memory.view(buf.addr, buf.size);
        if (!isFault(made)) whole = buf.view = made;
      }
      if (whole !== undefined) {
        into.set(whole, at);
        this.consumed(inbuf, n);
        return n;
      }
    }
    const bad = this.host.memory.readIntoAt(buf.addr + inbuf.offset, into, at, n);
    if (bad !== null) {
      this.host.ringFault(bad);
      return errno('EIO', 'read');
    }
    this.consumed(inbuf, n);
    return n;
  }

  /** `n` bytes of the current buffer were read; an emptied buffer is posted again. */
  private consumed(inbuf: NonNullable<GuestPort['inbuf']>, n: number): void {
    inbuf.offset += n;
    if (inbuf.offset === inbuf.len) {
      this.inbuf = null;
      this.addInbuf(inbuf.buf);
    }
  }

  /** discard_port_data: drop everything received and post the buffers again. */
  discardData(reason: DropReason): void {
    // Linux: "Device has been unplugged. vqs are already gone."
    if (this.unplugged) return;
    let buf = this.getInbuf();
    let bytes = 0;
    while (buf !== null) {
      bytes += buf.len - buf.offset;
      this.inbuf = null;
      this.addInbuf(buf.buf);
      buf = this.getInbuf();
    }
    this.inbuf = null;
    if (bytes > 0) {
      this.stats.bytesDiscarded += bytes;
      this.host.dropped(this, reason, bytes);
    }
  }

  /** add_inbuf: post one receive buffer and kick. */
  addInbuf(buf: RxBuffer): boolean {
    // add() copies the segment into the descriptor table and keeps nothing
    // of the arrays: one scratch segment serves every buffer.
    const seg = this.rxSegment;
    seg.addr = buf.addr;
    seg.len = buf.size;
    const r = this.rxq.add(NO_SEGMENTS, this.rxSegments, buf);
    if (isFault(r)) {
      // Queue full: free the buffer, as Linux does ("Errors adding buffers back to vq").
      this.host.allocator.release(buf.addr);
      return false;
    }
    this.host.kick(this.rxq.index);
    return true;
  }

  /** fill_queue: page-sized buffers into every free slot of the receive queue (L1). */
  fillReceiveQueue(): number {
    let added = 0;
    while (this.rxq.numFree > 0) {
      const addr = this.host.allocator.alloc(this.host.rxBufferSize, 16);
      if (isFault(addr)) break;
      if (!this.addInbuf({ addr, size: this.host.rxBufferSize })) break;
      added++;
    }
    return added;
  }

  // ------------------------------------------------------------ transmit

  /** reclaim_consumed_buffers: free what the device used; the queue is not full any more. */
  reclaimConsumed(): void {
    for (;;) {
      const used = this.txq.getUsed();
      if (isFault(used)) {
        this.host.ringFault(used);
        return;
      }
      if (used === null) return;
      this.host.allocator.release(used.token.addr);
      this.outvqFull = false;
      used.token.done?.();
      this.host.memoryReleased();
    }
  }

  /**
   * __send_to_port without waiting: copy into a fresh buffer, add, kick.
   * Returns the bytes queued, NO_MEMORY when guest memory is short (nothing
   * was queued: wait for memory and try again), or an errno (EIO).
   */
  send(data: Uint8Array, done?: () => void): number | Errno | typeof NO_MEMORY {
    this.reclaimConsumed();
    const addr = this.host.allocator.alloc(Math.max(1, data.length), 16);
    if (isFault(addr)) {
      this.host.memoryShortage();
      return NO_MEMORY;
    }
    const e = this.host.memory.writeBytes(addr, data);
    if (e) {
      this.host.allocator.release(addr);
      this.host.ringFault(e);
      return errno('EIO', 'write');
    }
    const token: TxBuffer = { addr, len: data.length, done };
    const r = this.txq.add([{ addr, len: data.length }], [], token);
    this.host.kick(this.txq.index);
    if (isFault(r)) {
      this.host.allocator.release(addr);
      return 0; // Linux: virtqueue_add_outbuf failed, in_count = 0
    }
    if (this.txq.numFree === 0) this.outvqFull = true;
    this.stats.bytesSent += data.length;
    return data.length;
  }

  // ------------------------------------------------------------ waiting

  /** will_read_block */
  willReadBlock(): boolean {
    if (!this.guestConnected) return false; // unplugged: do not block
    return !this.hasData() && this.hostConnected;
  }

  /** will_write_block */
  willWriteBlock(): boolean {
    if (!this.guestConnected) return false; // unplugged: let the caller see ENODEV
    if (!this.hostConnected) return true;
    this.reclaimConsumed();
    // L12: a write would wait for memory; reclaim first, as the allocator would.
    if (this.host.memoryShort) this.host.reclaimTransmitBuffers();
    return this.outvqFull || this.host.memoryShort;
  }

  /** send_sigio_to_port: only while the guest has the port open. */
  sendSigio(): void {
    if (!this.guestConnected) return;
    for (const signal of this.asyncOwners) signal();
  }

  wake(): void {
    this.waitq.wakeAll();
  }
}
