/**
 * The main thread's half of the worker-guest bench (bench/worker-guest.ts):
 * the device side of the receive queue, as QEMU's I/O thread runs it. Each
 * chunk the host socket gives is split into 4 KiB pieces (QEMU's chardev
 * reads); each piece pops a receive chain from the real device-side split
 * queue, is scattered into it and pushed used; after the chunk (or when the
 * buffers run out) the used count is published and the guest woken if it
 * halted. With no buffer left the socket is paused until the guest posts
 * more. Ordering and wake-ups: see bench/worker-guest-protocol.ts.
 */
import type * as net from 'node:net';
import type { MessagePort } from 'node:worker_threads';
import { readIntoPool } from '../core/chardev/pooled-reads.js';
import { scatter } from '../core/virtio/chain.js';
import { isFault, type VirtioFault } from '../core/virtio/fault.js';
import type { GuestMemory } from '../core/virtio/memory.js';
import type { SplitDeviceQueue } from '../core/virtio/split-queue.js';
import { CTL, RX_BUFFER, waitAsync } from './worker-guest-protocol.js';

function must<T>(value: T | VirtioFault): T {
  if (isFault(value)) throw new Error(value.toString());
  return value;
}

/** Counts of one run, to tell where the wake-ups went. */
export interface DeviceStats {
  /** Times the used count was published (one per chunk, plus one before each wait for buffers). */
  interrupts: number;
  /** Of those, the ones that found the guest halted and woke it. */
  wakes: number;
  /**
   * The ones that found the guest halted but the ring's needsInterrupt
   * (EVENT_IDX) said no: an interrupt was already sent since the guest
   * last looked, and it has not run yet.
   */
  suppressed: number;
  /** Times the device ran out of buffers and paused the host socket. */
  pauses: number;
}

export class DeviceHalf {
  private readonly ctl: Int32Array;
  private socket: net.Socket | null = null;
  /** The chunk being put into the ring, how far it got, and what gives its buffer back. */
  private pending: Uint8Array | null = null;
  private release: (() => void) | null = null;
  private offset = 0;
  /** Chains popped (free-running, compared with CTL.AVAIL). */
  private popped = 0;
  /** Chains pushed, and the count last published in CTL.USED. */
  private pushed = 0;
  private published = 0;
  readonly stats: DeviceStats = { interrupts: 0, wakes: 0, suppressed: 0, pauses: 0 };

  constructor(
    private readonly memory: GuestMemory,
    private readonly queue: SplitDeviceQueue,
    ctl: SharedArrayBuffer,
    /** The wake-up port (wake 'port'), or null for Atomics.notify / waitAsync. */
    private readonly port: MessagePort | null,
  ) {
    this.ctl = new Int32Array(ctl);
    if (port !== null) port.on('message', () => this.buffersCame());
  }

  /**
   * The chardev's socket: every chunk it reads goes into the ring. Read
   * into reused buffers as the lab's socket chardev does
   * (core/chardev/pooled-reads.ts), so the comparison with the lab is of
   * the threads, not of the reads; 'data' for what Node read before.
   */
  attach(socket: net.Socket): void {
    this.socket = socket;
    readIntoPool(socket, (chunk, release) => this.take(chunk, release));
    socket.on('data', (chunk: Buffer) => this.take(chunk, null));
    socket.on('error', () => {});
  }

  private take(chunk: Uint8Array, release: (() => void) | null): void {
    this.pending = chunk;
    this.release = release;
    this.offset = 0;
    this.run();
  }

  private run(): void {
    const chunk = this.pending!;
    const queue = this.queue;
    const memory = this.memory;
    let avail = Atomics.load(this.ctl, CTL.AVAIL);
    while (this.offset < chunk.length) {
      if (this.popped === avail) {
        avail = Atomics.load(this.ctl, CTL.AVAIL);
        if (this.popped === avail) {
          this.interrupt();
          if (this.waitForBuffers()) return;
          avail = Atomics.load(this.ctl, CTL.AVAIL);
          continue;
        }
      }
      const chain = must(queue.pop());
      if (chain === null) throw new Error('AVAIL counts a chain the available ring does not hold');
      const n = Math.min(RX_BUFFER, chunk.length - this.offset);
      const piece = n === chunk.length ? chunk : chunk.subarray(this.offset, this.offset + n);
      const written = must(scatter(memory, chain.writable, 0, piece));
      must(queue.push(chain, written));
      this.offset += written;
      this.popped = (this.popped + 1) | 0;
      this.pushed = (this.pushed + 1) | 0;
    }
    this.pending = null;
    this.release?.();
    this.release = null;
    this.interrupt();
  }

  /**
   * Publish the used count; interrupt the guest if it halted and the ring
   * asks for it (QEMU's virtio_notify after a flush: virtio_should_notify).
   */
  private interrupt(): void {
    if (this.pushed === this.published) return;
    const ctl = this.ctl;
    Atomics.store(ctl, CTL.USED, this.pushed);
    this.published = this.pushed;
    this.stats.interrupts++;
    if (Atomics.load(ctl, CTL.GUEST_HALTED) !== 1) return; // the vCPU runs: it sees the count
    // Asked only once the halt flag is seen, the ring reads the used_event
    // the guest wrote before it halted (see worker-guest-protocol.ts).
    if (!must(this.queue.needsInterrupt())) {
      this.stats.suppressed++;
      return;
    }
    this.stats.wakes++;
    if (this.port !== null) this.port.postMessage(null);
    else Atomics.notify(ctl, CTL.USED);
  }

  /** Out of buffers: true when the device now waits (socket paused), false when some came meanwhile. */
  private waitForBuffers(): boolean {
    const ctl = this.ctl;
    Atomics.store(ctl, CTL.DEVICE_WAITING, 1);
    if (Atomics.load(ctl, CTL.AVAIL) !== this.popped) {
      Atomics.store(ctl, CTL.DEVICE_WAITING, 0);
      return false;
    }
    this.stats.pauses++;
    this.socket!.pause();
    if (this.port === null) {
      const w = waitAsync(ctl, CTL.AVAIL, this.popped);
      if (!w.async) {
        this.socket!.resume();
        Atomics.store(ctl, CTL.DEVICE_WAITING, 0);
        return false;
      }
      void w.value.then(() => this.buffersCame());
    }
    return true;
  }

  /** The guest's kick while the device waited: resume the chunk and the socket. */
  private buffersCame(): void {
    if (Atomics.load(this.ctl, CTL.DEVICE_WAITING) !== 1) return;
    Atomics.store(this.ctl, CTL.DEVICE_WAITING, 0);
    this.socket!.resume();
    if (this.pending !== null) this.run();
  }
}
