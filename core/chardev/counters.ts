/**
 * What every backend counts, so nothing is lost without a number saying so.
 *
 * - bytesIn: host -> guest bytes handed to the frontend (handlers.read).
 * - bytesOut: guest -> host bytes the host side took (sent, written, stored).
 * - dropped: bytes that went nowhere, by reason; each reason belongs to one
 *   direction (below), 'closed', 'peer-gone' and 'hung-up' to both. A drop
 *   is decided in one place and counted there (BackendEndpoint.countDrop,
 *   which also tells the lab's ledger), so for the guest's output bytesOut +
 *   no-peer + send-failed + closed + peer-gone + hung-up is every byte
 *   write() accounted for; 'overwritten' is the part of bytesOut a ringbuf
 *   later lost; 'peer-gone' and 'hung-up' guest bytes are the part the
 *   connection took with it unsent (moved out of bytesOut).
 */
import type { DropDirection, DropReason as EngineDropReason } from '../serial/events.js';

export type DropReason =
  /** guest -> host: written while no host peer was there (D7; QEMU returns len and discards). */
  | 'no-peer'
  /**
   * Either way, when the peer left: host bytes received and not yet taken by
   * the frontend; guest bytes taken and not yet handed to the OS.
   */
  | 'peer-gone'
  /** host -> guest: datagrams that found the receive queue full (udp has no flow control). */
  | 'overflow'
  /** guest -> host, ringbuf: unread bytes overwritten by newer ones (already in bytesOut). */
  | 'overwritten'
  /** guest -> host: a send the OS refused after it was accepted (udp: port unreachable; file: disk full). */
  | 'send-failed'
  /** Either way: queued for the guest at close, or written after close. */
  | 'closed'
  /**
   * Either way, when vmchan hung up the peer (hangUp()): host bytes not yet
   * taken by the frontend, and guest bytes taken but not yet handed to the OS.
   */
  | 'hung-up'
  /**
   * host -> guest, unix sockets: received but not taken by the frontend when
   * the peer closed (H4). QEMU's HUP watch disconnects with them unread.
   */
  | 'hangup-unread';

export const DROP_REASONS: readonly DropReason[] = [
  'no-peer',
  'peer-gone',
  'hangup-unread',
  'overflow',
  'overwritten',
  'send-failed',
  'closed',
  'hung-up',
];

export interface ChardevCounters {
  bytesIn: number;
  bytesOut: number;
  dropped: Record<DropReason, number>;
}

export function newCounters(): ChardevCounters {
  const dropped = {} as Record<DropReason, number>;
  for (const r of DROP_REASONS) dropped[r] = 0;
  return { bytesIn: 0, bytesOut: 0, dropped };
}

/** Sum of every drop reason. */
export function totalDropped(c: ChardevCounters): number {
  let n = 0;
  for (const r of DROP_REASONS) n += c.dropped[r];
  return n;
}

/**
 * The reason the lab's ledger (and x-vmchan-query-drops, the app, `vmchan
 * run`'s summary) shows for a backend's drop.
 */
export function engineDropReason(reason: DropReason, direction: DropDirection): EngineDropReason {
  switch (reason) {
    case 'no-peer':
      return 'host-disconnected';
    case 'peer-gone':
    case 'hung-up':
      return direction === 'to-guest' ? 'host-hung-up' : 'host-disconnected';
    case 'hangup-unread':
      return 'hangup-unread';
    case 'closed':
      return 'chardev-closed';
    case 'send-failed':
      return 'host-send-failed';
    case 'overflow':
      return 'host-overflow';
    case 'overwritten':
      return 'ringbuf-overwritten';
  }
}
