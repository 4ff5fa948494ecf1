/**
 * Ring-operation trace: every step a queue takes, as a structured event, for
 * the vring view and step mode.
 *
 * Emitters check `tracer.active` before building an event, so a tracer that
 * nobody listens to costs one property read per operation.
 */
import type { RuleId, VirtioFault } from './fault.js';

/** Every ring operation, once: the API's schema (core/api/contract/vring-contract.ts) is made from it. */
export const RING_OPS = [
  /** Driver wrote a chain's descriptors and made it available (split: avail entry; packed: AVAIL flip). */
  'driver-add',
  /** Driver published avail idx (split) — packed rings publish per head flip. */
  'driver-publish',
  /** Driver decided whether to notify the device (kick sent or suppressed). */
  'driver-notify',
  /** Device took an available chain and walked it. */
  'device-pop',
  /** Device returned a chain as used, with the number of bytes it wrote. */
  'device-push',
  /** Device decided whether to interrupt the driver (sent or suppressed). */
  'device-interrupt',
  /** Driver reclaimed a used buffer. */
  'driver-reclaim',
  /** An index or wrap counter wrapped around. */
  'wrap',
  /** Device-side notification suppression changed (used.flags, avail_event, device event). */
  'device-suppress',
  /** Driver-side interrupt suppression changed (avail.flags, used_event, driver event). */
  'driver-suppress',
  /** A malformed structure was found; the device will go NEEDS_RESET. */
  'fault',
] as const;

export type RingOp = (typeof RING_OPS)[number];

export interface RingTraceEvent {
  op: RingOp;
  queue: number;
  format: 'split' | 'packed';
  /** Split: head descriptor index. Packed: ring slot of the first descriptor. */
  head?: number;
  /** Packed: buffer id. */
  id?: number;
  /** Descriptors in the chain (direct ones plus the indirect table's entries). */
  descCount?: number;
  /** Bytes: readable+writable for adds, written for pushes. */
  len?: number;
  /** Ring index after the operation (avail idx, used idx, or packed next slot). */
  idx?: number;
  /** For notify and interrupt decisions. */
  sent?: boolean;
  /** Packed wrap counter after a wrap. */
  wrapCounter?: boolean;
  /** The conformance rule that governs this step. */
  rule: RuleId;
  /** One line a person can read: what happened and why. */
  text: string;
  fault?: VirtioFault;
}

export type RingTraceListener = (event: RingTraceEvent) => void;

export class RingTracer {
  private listeners: RingTraceListener[] = [];
  /** True while somebody listens: emitters check it before building an event. */
  active = false;

  on(listener: RingTraceListener): () => void {
    this.listeners.push(listener);
    this.active = true;
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
      this.active = this.listeners.length > 0;
    };
  }

  emit(event: RingTraceEvent): void {
    for (const l of this.listeners) l(event);
  }
}
