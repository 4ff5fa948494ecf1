/**
 * The worker of the worker-guest bench (bench/worker-guest.ts): the
 * simulated guest on a thread of its own, as a vCPU beside QEMU's I/O
 * thread. It maps the shared guest memory, lays out and fills the receive
 * queue with the real driver side (SplitDriverQueue, GuestAllocator) as
 * Linux's virtio_console does (PAGE_SIZE buffers), and on each interrupt
 * reclaims the used buffers the way a guest program's read(2) calls see
 * them: one buffer per read, copied into a 64 KiB user buffer, the buffer
 * posted again; the user buffer then goes to the guest-dir socket in one
 * write, as the guest-dir bridge does. Ordering and wake-ups: see
 * bench/worker-guest-protocol.ts.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { GuestAllocator } from '../core/virtio/allocator.js';
import type { Segment } from '../core/virtio/chain.js';
import { isFault, type VirtioFault } from '../core/virtio/fault.js';
import { GuestMemory } from '../core/virtio/memory.js';
import { allocSplitQueue, SplitDriverQueue } from '../core/virtio/split-queue.js';
import {
  CTL,
  QUEUE_SIZE,
  RING_FEATURES,
  RX_BUFFER,
  RX_QUEUE_INDEX,
  USER_BUFFER,
  waitAsync,
  type WorkerGuestData,
  type WorkerMessage,
} from './worker-guest-protocol.js';

/** A posted receive buffer: its one writable segment and a view of its bytes, made once. */
interface RxBuffer {
  addr: number;
  writable: Segment[];
  view: Uint8Array;
}

const NO_SEGMENTS: readonly Segment[] = [];
/** User buffers in flight to the socket at most; more waits for a write to finish. */
const USER_BUFFERS = 4;

function must<T>(value: T | VirtioFault): T {
  if (isFault(value)) throw new Error(value.toString());
  return value;
}

/** This thread's Linux thread id (for its CPU time in schedstat). */
function threadId(): number {
  return Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
}

class Guest {
  private readonly ctl: Int32Array;
  /** Used buffers reclaimed so far (free-running, as CTL.USED). */
  private consumed = 0;
  /** Buffers made available so far (as CTL.AVAIL). */
  private added = 0;
  private out: net.Socket | null = null;
  private readonly pool: Buffer[] = [];
  private user: Buffer | null = null;
  private userLen = 0;
  /** What the guest waits for when it is not running: an interrupt, or room to write. */
  private waiting: 'irq' | 'room' | null = null;

  constructor(
    private readonly data: WorkerGuestData,
    private readonly memory: GuestMemory,
    private readonly driver: SplitDriverQueue<RxBuffer>,
  ) {
    this.ctl = new Int32Array(data.ctl);
    for (let i = 0; i < USER_BUFFERS; i++) this.pool.push(Buffer.allocUnsafeSlow(USER_BUFFER));
    if (data.port !== null) data.port.on('message', () => this.interrupt());
  }

  /** Post every receive buffer (Linux's fill_queue) and publish them. */
  fill(allocator: GuestAllocator): void {
    for (let i = 0; i < QUEUE_SIZE; i++) {
      const addr = must(allocator.alloc(RX_BUFFER, 16));
      const view = must(this.memory.view(addr, RX_BUFFER));
      const buf = { addr, writable: [{ addr, len: RX_BUFFER }], view };
      must(this.driver.add(NO_SEGMENTS, buf.writable, buf));
      this.added++;
    }
    this.kick();
  }

  connected(socket: net.Socket): void {
    this.out = socket;
    socket.on('drain', () => this.room());
    socket.on('error', () => {});
    this.run();
  }

  /** The interrupt: the device published used buffers. */
  private interrupt(): void {
    if (this.waiting !== 'irq') return; // a wake-up for work the guest found by itself
    this.waiting = null;
    Atomics.store(this.ctl, CTL.GUEST_HALTED, 0);
    this.run();
  }

  private room(): void {
    if (this.waiting !== 'room') return;
    this.waiting = null;
    this.run();
  }

  private canWrite(): boolean {
    const out = this.out;
    return out !== null && !out.writableNeedDrain && (this.user !== null || this.pool.length > 0);
  }

  /** Reclaim, copy out and re-post every used buffer there is, then halt until the next interrupt. */
  private run(): void {
    const ctl = this.ctl;
    const driver = this.driver;
    for (;;) {
      const target = Atomics.load(ctl, CTL.USED);
      const before = this.added;
      while (this.consumed !== target && this.canWrite()) {
        const used = must(driver.getUsed());
        if (used === null) throw new Error('USED counts a buffer the used ring does not hold');
        this.consumed = (this.consumed + 1) | 0;
        const buf = used.token;
        // One read(2): this buffer's bytes into the user buffer (fill_readbuf).
        const user = (this.user ??= this.pool.pop()!);
        user.set(used.len === RX_BUFFER ? buf.view : buf.view.subarray(0, used.len), this.userLen);
        this.userLen += used.len;
        // The buffer is empty: posted again at once (add_inbuf).
        must(driver.add(NO_SEGMENTS, buf.writable, buf));
        this.added = (this.added + 1) | 0;
        if (this.userLen + RX_BUFFER > USER_BUFFER) this.flush();
      }
      if (this.added !== before) this.kick();
      // Nothing more to read now: write what was read, as the bridge does.
      this.flush();
      if (!this.canWrite()) {
        this.waiting = 'room';
        return;
      }
      // Poll a while (halt polling), then halt, unless the device published
      // more since `target` (see the protocol's Dekker note).
      if (this.poll()) continue;
      Atomics.store(ctl, CTL.GUEST_HALTED, 1);
      if (Atomics.load(ctl, CTL.USED) !== this.consumed) {
        Atomics.store(ctl, CTL.GUEST_HALTED, 0);
        continue;
      }
      this.waiting = 'irq';
      if (this.data.port === null) {
        const w = waitAsync(ctl, CTL.USED, this.consumed);
        if (w.async) {
          void w.value.then(() => this.interrupt());
          return;
        }
        this.waiting = null; // 'not-equal': the device published meanwhile
        Atomics.store(ctl, CTL.GUEST_HALTED, 0);
        continue;
      }
      return; // the port's next message is the interrupt
    }
  }

  /** Spin up to pollUs for the used count to move; true when it did. */
  private poll(): boolean {
    const us = this.data.pollUs;
    if (us <= 0) return false;
    const ctl = this.ctl;
    const until = performance.now() + us / 1000;
    do {
      if (Atomics.load(ctl, CTL.USED) !== this.consumed) return true;
    } while (performance.now() < until);
    return false;
  }

  /** virtqueue_kick: publish avail.idx, then the count; wake the device if it waits for buffers. */
  private kick(): void {
    must(this.driver.kickPrepare());
    const ctl = this.ctl;
    Atomics.store(ctl, CTL.AVAIL, this.added);
    if (Atomics.load(ctl, CTL.DEVICE_WAITING) === 1) {
      if (this.data.port !== null) this.data.port.postMessage(null);
      else Atomics.notify(ctl, CTL.AVAIL);
    }
  }

  /** Write the user buffer's bytes to the guest-dir socket; the buffer comes back when written. */
  private flush(): void {
    const user = this.user;
    if (user === null || this.userLen === 0) return;
    const out = this.out!;
    out.write(user.subarray(0, this.userLen), () => {
      this.pool.push(user);
      this.room();
    });
    this.user = null;
    this.userLen = 0;
  }
}

function start(): void {
  const data = workerData as WorkerGuestData;
  const memory = must(GuestMemory.attach(data.memory));
  const allocator = new GuestAllocator(memory);
  const layout = must(allocSplitQueue(memory, allocator, QUEUE_SIZE));
  const driver = must(
    SplitDriverQueue.create<RxBuffer>(
      { index: RX_QUEUE_INDEX, layout, features: RING_FEATURES },
      memory,
      allocator,
    ),
  );
  const guest = new Guest(data, memory, driver);
  const server = net.createServer((s) => guest.connected(s));
  server.listen(data.guestPath, () => {
    guest.fill(allocator);
    const ready: WorkerMessage = { type: 'ready', layout, tid: threadId() };
    parentPort!.postMessage(ready);
  });
  parentPort!.on('message', () => {
    // 'stop': let the thread end.
    server.close();
    data.port?.close();
    parentPort!.close();
  });
}

try {
  start();
} catch (err) {
  const failed: WorkerMessage = {
    type: 'failed',
    message: err instanceof Error ? err.message : String(err),
  };
  parentPort!.postMessage(failed);
}
