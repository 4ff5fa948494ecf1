/**
 * The contracts both ring formats implement, one for each side of a queue.
 *
 * The device side (DeviceQueue) is what QEMU's virtqueue_pop / virtqueue_push
 * / virtio_notify do; the driver side (DriverQueue) is what Linux's
 * virtqueue_add_sgs / virtqueue_kick_prepare / virtqueue_get_buf do. The
 * serial device and the guest driver above are written against these
 * interfaces only, so every scenario runs on split and packed rings alike.
 */
import type { DescriptorChain, Segment } from './chain.js';
import { fault, hex, type VirtioFault } from './fault.js';
import type { RingTracer } from './trace.js';

export type QueueFormat = 'split' | 'packed';

/** Ring features that change queue behaviour, as negotiated. */
export interface RingFeatures {
  /** VIRTIO_RING_F_INDIRECT_DESC (G1 bit 28). */
  indirect: boolean;
  /** VIRTIO_RING_F_EVENT_IDX (G1 bit 29). */
  eventIdx: boolean;
  /** VIRTIO_F_IN_ORDER (G1 bit 35): accepted and reported, buffers are used in order anyway. */
  inOrder: boolean;
}

/**
 * Where a queue lives in guest memory, in the transport's words:
 * split: desc table, avail ring (driver area), used ring (device area);
 * packed: descriptor ring, driver event suppression, device event suppression.
 */
export interface QueueLayout {
  format: QueueFormat;
  size: number;
  descAddr: number;
  driverAddr: number;
  deviceAddr: number;
}

/** Limits the device applies while walking chains. */
export interface ChainLimits {
  /**
   * Longest chain accepted, counting indirect entries (S3 lets a device cap
   * it; S5 caps it at the queue size for direct chains). QEMU's
   * VIRTQUEUE_MAX_SIZE is 1024.
   */
  maxChainLength: number;
  /**
   * Zero-length descriptors (M6): 'reject' as QEMU does (virtqueue_map_desc:
   * "zero sized buffers are not allowed", and the device is marked broken),
   * or 'allow' as a lenient device may (the buffer moves no bytes). Linux
   * never posts one, so the choice only shows with a hand-made chain.
   */
  zeroLengthDescriptors: 'allow' | 'reject';
  /** Chains with no descriptors at all cannot be expressed in a split ring; packed: always rejected. */
}

export const DEFAULT_CHAIN_LIMITS: ChainLimits = {
  maxChainLength: 1024,
  zeroLengthDescriptors: 'reject',
};

export const MAX_QUEUE_SIZE = 32768;

export interface QueueOptions {
  index: number;
  layout: QueueLayout;
  features: RingFeatures;
  limits?: ChainLimits;
  tracer?: RingTracer | null;
}

export interface DeviceQueue {
  readonly index: number;
  readonly format: QueueFormat;
  readonly size: number;
  /** Chains popped and not yet pushed. */
  readonly inFlight: number;
  /** Is a chain available to pop (without consuming it)? */
  hasAvailable(): boolean | VirtioFault;
  /** The next available chain, null when none is available, a fault when it is malformed. */
  pop(): DescriptorChain | null | VirtioFault;
  /**
   * Return a popped chain as used, with the number of bytes written into its
   * writable part (S9: the element is written before the index is published).
   */
  push(chain: DescriptorChain, writtenLen: number): VirtioFault | null;
  /**
   * After one or more pushes: should the device interrupt the driver now?
   * (S10 without EVENT_IDX, S11 with it, P7 for packed.) Records the decision
   * as the new signalled point and traces it.
   */
  needsInterrupt(): boolean | VirtioFault;
  /** Ask the driver to notify (true) or not to bother (false) on new buffers (S12, P7). */
  setNotification(enabled: boolean): VirtioFault | null;
  /** The full visible state, for the vring view and x-query-virtio-queue-*. */
  snapshot(): QueueSnapshot;
  /** Counters that the QMP introspection commands report. */
  readonly status: DeviceQueueStatus;
}

export interface DeviceQueueStatus {
  /** Split: last avail idx the device consumed. Packed: next ring slot to look at. */
  lastAvailIdx: number;
  /** Split: used idx the device published. Packed: next used slot. */
  usedIdx: number;
  /** The used idx at the last interrupt sent, or null before any. */
  signalledUsed: number | null;
  /** Packed only: device-side wrap counters. */
  availWrap?: boolean;
  usedWrap?: boolean;
}

export interface UsedBuffer<T> {
  token: T;
  len: number;
}

export interface DriverQueue<T> {
  readonly index: number;
  readonly format: QueueFormat;
  readonly size: number;
  /** Descriptors free for new chains. */
  readonly numFree: number;
  /**
   * Add a chain of device-readable then device-writable buffers. With
   * `indirect` (and INDIRECT_DESC negotiated) the chain goes into one
   * indirect table. Returns the head (split) or buffer id (packed), or
   * QueueFull when there is no room.
   */
  add(
    readable: readonly Segment[],
    writable: readonly Segment[],
    token: T,
    indirect?: boolean,
  ): number | VirtioFault;
  /**
   * Publish what was added and decide whether the device wants a
   * notification (S10/S12 for split, P7 for packed).
   */
  kickPrepare(): boolean | VirtioFault;
  /**
   * The next used buffer, null when none; a fault if the device misbehaved
   * (M15 and friends). The result is one object per queue, refilled by each
   * call (a transfer reclaims a buffer per 4 KiB and would make one each
   * time): read it before the next getUsed() on the same queue.
   */
  getUsed(): UsedBuffer<T> | null | VirtioFault;
  /** Ask the device not to interrupt (avail.flags NO_INTERRUPT / used_event / driver event). */
  disableCallbacks(): void;
  /**
   * Ask for interrupts again. Returns false when used buffers are already
   * pending (the caller must poll again), like virtqueue_enable_cb.
   */
  enableCallbacks(): boolean | VirtioFault;
  /** Tokens of buffers never used (for reset and unplug), freeing their descriptors. */
  detachUnused(): T[];
  snapshot(): QueueSnapshot;
}

// ---------------------------------------------------------------- snapshots

export interface SplitDescriptorView {
  index: number;
  addr: number;
  len: number;
  flags: number;
  /** Decoded: NEXT, WRITE, INDIRECT. */
  flagNames: string[];
  next: number;
}

export interface SplitQueueSnapshot {
  format: 'split';
  index: number;
  size: number;
  layout: QueueLayout;
  eventIdx: boolean;
  descriptors: SplitDescriptorView[];
  avail: { flags: number; idx: number; ring: number[]; usedEvent: number | null };
  used: {
    flags: number;
    idx: number;
    ring: { id: number; len: number }[];
    availEvent: number | null;
  };
  /** Device side: last avail idx seen, in-flight heads. Null when only the driver side exists. */
  device: {
    lastAvailIdx: number;
    usedIdx: number;
    signalledUsed: number | null;
    inFlight: number[];
  } | null;
  /** Driver side: free list head and count, last used idx seen. Null when only the device side exists. */
  driver: { freeHead: number; numFree: number; lastUsedIdx: number } | null;
  /** Chains the device has popped but not pushed: head -> descriptor indices of the ring. */
  chainsInFlight: { head: number; descriptors: number[] }[];
  /** Memory errors met while reading the snapshot (rings outside memory). */
  unreadable: string[];
}

export interface PackedDescriptorView {
  index: number;
  addr: number;
  len: number;
  id: number;
  flags: number;
  /** Decoded: NEXT, WRITE, INDIRECT, AVAIL, USED. */
  flagNames: string[];
  avail: boolean;
  used: boolean;
}

export interface EventSuppressionView {
  /** ENABLE=0, DISABLE=1, DESC=2 (P7). */
  flags: number;
  flagName: 'ENABLE' | 'DISABLE' | 'DESC' | 'RESERVED';
  offset: number;
  wrap: boolean;
}

export interface PackedQueueSnapshot {
  format: 'packed';
  index: number;
  size: number;
  layout: QueueLayout;
  eventIdx: boolean;
  descriptors: PackedDescriptorView[];
  driverEvent: EventSuppressionView;
  deviceEvent: EventSuppressionView;
  device: {
    nextAvail: number;
    availWrap: boolean;
    nextUsed: number;
    usedWrap: boolean;
    signalledUsed: number | null;
    inFlight: number[];
  } | null;
  driver: {
    nextAvail: number;
    availWrap: boolean;
    nextUsed: number;
    usedWrap: boolean;
    numFree: number;
  } | null;
  chainsInFlight: { id: number; head: number; descriptors: number[] }[];
  unreadable: string[];
}

export type QueueSnapshot = SplitQueueSnapshot | PackedQueueSnapshot;

// ------------------------------------------------------------------ layout

/** Split ring sizes in bytes (virtio 1.x 2.7): with or without the event-idx tail fields. */
export function splitRingSizes(size: number): { desc: number; avail: number; used: number } {
  return { desc: 16 * size, avail: 6 + 2 * size, used: 6 + 8 * size };
}

export function packedRingSizes(size: number): { desc: number; driver: number; device: number } {
  return { desc: 16 * size, driver: 4, device: 4 };
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/**
 * Check a layout the driver programmed (S1 for split, P8 for packed).
 * Memory bounds are checked separately, against the guest memory (M8).
 */
export function validateLayout(layout: QueueLayout, queue: number): VirtioFault | null {
  const { size, format } = layout;
  if (!Number.isInteger(size) || size < 1 || size > MAX_QUEUE_SIZE) {
    return fault(
      'InvalidQueueSize',
      format === 'split' ? 'S1' : 'P8',
      `queue size ${size} is not in 1..32768`,
      {
        queue,
        length: size,
      },
    );
  }
  if (format === 'split') {
    if (!isPowerOfTwo(size)) {
      return fault('InvalidQueueSize', 'S1', `split queue size ${size} is not a power of 2`, {
        queue,
        length: size,
      });
    }
    const checks: [number, number, string][] = [
      [layout.descAddr, 16, 'descriptor table'],
      [layout.driverAddr, 2, 'available ring'],
      [layout.deviceAddr, 4, 'used ring'],
    ];
    for (const [addr, align, what] of checks) {
      if (addr % align !== 0) {
        return fault('MisalignedRing', 'S1', `${what} at ${hex(addr)} is not aligned to ${align}`, {
          queue,
          address: addr,
        });
      }
    }
  } else {
    const checks: [number, number, string][] = [
      [layout.descAddr, 16, 'descriptor ring'],
      [layout.driverAddr, 4, 'driver event suppression'],
      [layout.deviceAddr, 4, 'device event suppression'],
    ];
    for (const [addr, align, what] of checks) {
      if (addr % align !== 0) {
        return fault('MisalignedRing', 'P8', `${what} at ${hex(addr)} is not aligned to ${align}`, {
          queue,
          address: addr,
        });
      }
    }
  }
  return null;
}

/** vring_need_event from the spec (S11): did new_idx pass event_idx since old? 16-bit arithmetic. */
export function needEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

export const SPLIT_DESC_F_NEXT = 1;
export const SPLIT_DESC_F_WRITE = 2;
export const SPLIT_DESC_F_INDIRECT = 4;
export const SPLIT_AVAIL_F_NO_INTERRUPT = 1;
export const SPLIT_USED_F_NO_NOTIFY = 1;

export const PACKED_DESC_F_NEXT = 1;
export const PACKED_DESC_F_WRITE = 2;
export const PACKED_DESC_F_INDIRECT = 4;
export const PACKED_DESC_F_AVAIL = 1 << 7;
export const PACKED_DESC_F_USED = 1 << 15;
export const PACKED_EVENT_FLAG_ENABLE = 0;
export const PACKED_EVENT_FLAG_DISABLE = 1;
export const PACKED_EVENT_FLAG_DESC = 2;

export function descFlagNames(flags: number, packed: boolean): string[] {
  const names: string[] = [];
  if (flags & 1) names.push('NEXT');
  if (flags & 2) names.push('WRITE');
  if (flags & 4) names.push('INDIRECT');
  if (packed) {
    if (flags & PACKED_DESC_F_AVAIL) names.push('AVAIL');
    if (flags & PACKED_DESC_F_USED) names.push('USED');
  }
  return names;
}
