/**
 * What the two halves of the worker-guest bench share (bench/worker-guest.ts):
 * the ring's shape, the words of the small control SharedArrayBuffer and the
 * messages between the main thread (the device, QEMU's I/O thread) and the
 * worker (the guest, a vCPU).
 *
 * Ordering across the threads. The rings are plain guest memory, read and
 * written by the real queue code through DataViews: non-atomic accesses,
 * which the JavaScript memory model does not order between threads. So
 * each side learns how far the other has got from a counter in the control
 * words, written with Atomics.store after the ring writes it covers and read
 * with Atomics.load before the ring reads (release and acquire, as Linux's
 * virtio_store_mb / virt_load_acquire on used.idx and avail.idx): the
 * device pops only the buffers the AVAIL count covers, the guest reclaims
 * only those the USED count covers, so every descriptor, avail entry and
 * used element read was written before the counter that made it visible.
 * The queue code still reads avail.idx and used.idx itself (pop, getUsed);
 * that read races with the other side's next store and sees the old or a
 * newer index, both valid (the counter bounds what is used). A 16-bit
 * DataView access at an even offset is one load or store on x86-64 and
 * arm64 in V8 (the rings are 2- and 4-aligned), so it does not tear, though
 * the language only promises that for TypedArray elements.
 *
 * Wake-ups. A side that runs out of work sets its flag (GUEST_HALTED,
 * DEVICE_WAITING) with Atomics.store and then reads the other's counter
 * again; the other side stores its counter and then reads the flag. Both
 * are sequentially consistent atomics, so at least one of the two sees the
 * other's store (Dekker): either the waiter finds the new work or the
 * producer finds the flag and wakes it. The ring's own suppression
 * (EVENT_IDX) cannot decide this by itself: used_event and avail_event are
 * plain fields, and its store-then-load on each side needs the full
 * barrier Linux puts there (virtio_mb), which JavaScript has only as part
 * of an atomic access. It does decide on top of the flag, device side: the
 * device asks needsInterrupt only after it read GUEST_HALTED as 1, and that
 * read synchronizes with the guest's store of the flag, which the guest
 * made after its last getUsed wrote used_event; so the ring sees the
 * guest's final used_event and says yes for the first interrupt of each
 * halt (the guest halts only once it consumed every published buffer, past
 * the last decision), no for repeats before the guest runs. Guest side,
 * kickPrepare reads avail_event before the flag, so its answer is not
 * used: a kick goes whenever the device waits (tens to hundreds of times
 * per 256 MiB, against thousands of interrupts).
 * The ring code still does its EVENT_IDX bookkeeping on every buffer (pop
 * writes avail_event, getUsed writes used_event), so the work per buffer
 * is the engine's.
 */
import type { MessagePort } from 'node:worker_threads';
import type { SharedGuestMemory } from '../core/virtio/memory.js';
import type { QueueLayout, RingFeatures } from '../core/virtio/queue.js';

/** Entries of the receive queue: QEMU's virtio-serial data queues have 128. */
export const QUEUE_SIZE = 128;
/** Linux's receive buffers are PAGE_SIZE; QEMU's chardev reads 4 KiB at a time. */
export const RX_BUFFER = 4096;
/** The guest program's read buffer: reads fill it one receive buffer each, then one socket write. */
export const USER_BUFFER = 64 * 1024;
/** port 1's receive queue with MULTIPORT (0, 1: port 0; 2, 3: control). */
export const RX_QUEUE_INDEX = 4;
/** What QEMU 7.2 offers and Linux takes for a virtio-serial ring. */
export const RING_FEATURES: RingFeatures = { indirect: true, eventIdx: true, inOrder: false };
/** Guest memory: the ring and 128 pages of receive buffers fit many times over. */
export const GUEST_MEMORY_BYTES = 4 * 1024 * 1024;

/** Words of the control Int32Array (counts are free-running, compared for equality only). */
export const CTL = {
  /** Buffers the device has pushed used, published after the used ring writes. */
  USED: 0,
  /** Buffers the driver has made available, published after kickPrepare wrote avail.idx. */
  AVAIL: 1,
  /** 1 while the guest waits for an interrupt (a halted vCPU). */
  GUEST_HALTED: 2,
  /** 1 while the device waits for buffers (its host socket paused). */
  DEVICE_WAITING: 3,
} as const;
export const CTL_BYTES = 4 * 4;

/**
 * How a side wakes the other: Atomics.notify to an Atomics.waitAsync on the
 * counter's word, or a message on a MessagePort.
 */
export type WakeKind = 'atomics' | 'port';

/**
 * How the guest halts: the wake-up kind, and how long it polls the used
 * count before it halts (KVM's halt polling, halt_poll_ns): a cross-thread
 * wake-up costs tens of microseconds of the waker's time on a busy 2-core
 * machine, a 64 KiB chunk arrives every 30 to 60.
 */
export interface HaltPolicy {
  wake: WakeKind;
  /** Microseconds of polling before halting; 0 halts at once. */
  pollUs: number;
}

export function policyName(p: HaltPolicy): string {
  return p.pollUs > 0 ? `${p.wake}, poll ${p.pollUs} us` : p.wake;
}

export interface WorkerGuestData {
  memory: SharedGuestMemory;
  ctl: SharedArrayBuffer;
  /** Where the guest listens: the guest-dir side's unix socket. */
  guestPath: string;
  wake: WakeKind;
  /** Halt polling, microseconds (HaltPolicy.pollUs). */
  pollUs: number;
  /** The wake-up port (wake 'port'): messages are empty, the counters say what changed. */
  port: MessagePort | null;
}

/** The worker's first message: the ring it laid out (the queue registers) and its thread id. */
export interface ReadyMessage {
  type: 'ready';
  layout: QueueLayout;
  /** Linux thread id, for the worker's CPU time in /proc/self/task/TID/schedstat. */
  tid: number;
}

export interface FailedMessage {
  type: 'failed';
  message: string;
}

export type WorkerMessage = ReadyMessage | FailedMessage;

/** Atomics.waitAsync's answer: at once ('not-equal', 'timed-out') or a promise. */
export type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };

/**
 * Atomics.waitAsync (ES2024, in Node since 16), typed here because the
 * project's TypeScript lib predates it: resolves once `ctl[index]` is
 * notified, unless it no longer holds `value` (compared atomically with
 * the enqueueing, so a notify cannot slip in between).
 */
export const waitAsync = (
  Atomics as unknown as {
    waitAsync: (ctl: Int32Array, index: number, value: number) => WaitAsyncResult;
  }
).waitAsync;
