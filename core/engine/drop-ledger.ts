/**
 * The lab's loss ledger: every `drop` event (device, guest driver, backend)
 * added up per port, side, reason and direction, so the counts can be shown
 * anywhere at any time: the app's snapshot, the summary line `vmchan run`
 * prints on exit and on SIGUSR1, and QMP `x-vmchan-query-drops`.
 *
 * It listens to the one drop event every part of the engine already emits
 * (events.ts), so a new reason shows up here without any change.
 */
import type { Emitter } from '../base/emitter.js';
import {
  DROP_DIRECTION,
  type DropDirection,
  type DropReason,
  type EngineEvents,
} from '../serial/events.js';

export interface DropCount {
  device: string;
  /** The port number, or null for bytes of no port (control messages, emergency writes). */
  nr: number | null;
  side: EngineEvents['drop']['side'];
  reason: DropReason;
  /** Which way the bytes were going; null when they belong to no port's stream. */
  direction: DropDirection | null;
  /** The chardev, for a backend's drop (the only name of one no port holds). */
  chardev: string | null;
  bytes: number;
  /** How many drop events made up `bytes`. */
  events: number;
}

export class DropLedger {
  private readonly counts = new Map<string, DropCount>();
  private totalBytes = 0;
  private readonly unsubscribe: () => void;

  constructor(events: Emitter<EngineEvents>) {
    this.unsubscribe = events.on('drop', (e) => this.add(e));
  }

  private add(e: EngineEvents['drop']): void {
    if (e.bytes <= 0) return;
    const direction = e.direction ?? DROP_DIRECTION[e.reason] ?? null;
    const chardev = e.chardev ?? null;
    const key = [e.device, e.nr ?? '', e.side, e.reason, direction ?? '', chardev ?? ''].join('\0');
    let c = this.counts.get(key);
    if (c === undefined) {
      c = {
        device: e.device,
        nr: e.nr,
        side: e.side,
        reason: e.reason,
        direction,
        chardev,
        bytes: 0,
        events: 0,
      };
      this.counts.set(key, c);
    }
    c.bytes += e.bytes;
    c.events++;
    this.totalBytes += e.bytes;
  }

  /** Every count, by device, port, direction and reason. */
  list(): DropCount[] {
    return [...this.counts.values()]
      .map((c) => ({ ...c }))
      .sort(
        (a, b) =>
          a.device.localeCompare(b.device) ||
          (a.nr ?? -1) - (b.nr ?? -1) ||
          (a.direction ?? '').localeCompare(b.direction ?? '') ||
          a.reason.localeCompare(b.reason),
      );
  }

  get total(): number {
    return this.totalBytes;
  }

  /** Bytes of one port (all reasons), optionally one way only. */
  portTotal(device: string, nr: number, direction?: DropDirection): number {
    let n = 0;
    for (const c of this.counts.values()) {
      if (
        c.device === device &&
        c.nr === nr &&
        (direction === undefined || c.direction === direction)
      ) {
        n += c.bytes;
      }
    }
    return n;
  }

  /**
   * One line for people: `dropped 0 bytes`, or the total and each count,
   * e.g. `dropped 20480 bytes: vser0 port 1 to-host unplugged 20000, ...`.
   */
  summary(): string {
    if (this.totalBytes === 0) return 'dropped 0 bytes';
    const parts = this.list().map((c) => {
      const where =
        c.nr !== null
          ? `${c.device} port ${c.nr}`
          : c.device === '' && c.chardev !== null
            ? `chardev ${c.chardev}`
            : c.device;
      return `${where}${c.direction ? ` ${c.direction}` : ''} ${c.reason} ${c.bytes}`;
    });
    return `dropped ${this.totalBytes} bytes: ${parts.join(', ')}`;
  }

  close(): void {
    this.unsubscribe();
  }
}
