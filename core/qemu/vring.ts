/**
 * The vring state of a real virtio-serial device, read with QEMU's
 * debugging commands and put into the shape the emulated vring view draws
 * (core/virtio/queue.ts SplitQueueSnapshot).
 *
 * What QEMU 7.2 tells:
 *   x-query-virtio-queue-status   per queue: ring addresses and size, the
 *       device's last-avail-idx, shadow-avail-idx (the avail idx it last
 *       read), used-idx, signalled-used (valid or not), inuse (chains
 *       popped, not yet pushed).
 *   x-query-virtio-queue-element  one chain: given an avail ring slot
 *       (`index` mod the queue size; default: last-avail-idx, the next
 *       chain the device will take), the head descriptor index found
 *       there and the chain's descriptors (addr, len, flag names), plus
 *       the live avail idx/flags and used idx/flags from guest memory.
 *       QEMU builds the descriptor list by prepending, so it arrives last
 *       descriptor first; we put it back in chain order. Split rings only:
 *       QEMU 7.2 answers "Packed ring not supported".
 * What it cannot tell (marked in `unavailable`): the descriptor table
 * beyond the heads queried and the `next` of each entry, the avail ring
 * beyond the slots queried, the used ring's entries, used_event /
 * avail_event, which heads are in flight, and anything of the driver's
 * side (free list, last used idx seen).
 *
 * The poller asks at most one question at a time, 2 Hz by default, and
 * backs off when QEMU answers slowly: every query takes the big QEMU lock
 * for a moment, and a poller must not become the guest's bottleneck.
 */
import type { QueueLayout, SplitDescriptorView, SplitQueueSnapshot } from '../virtio/queue.js';
import type { Direction } from '../capture/record.js';
import { isQmpError, type QmpError } from './qmp-error.js';
import type { QmpClient } from './qmp-client.js';
import type { VirtioQueueElement, VirtQueueStatus } from './qmp-types.js';
import { queuePort, queueRoleText, type AttachedDevice } from './attach-model.js';

/** One chain as x-query-virtio-queue-element showed it. */
export interface QueueElementView {
  /** The avail idx (free-running, mod 2^16) whose ring slot was read. */
  availIdx: number;
  /** The ring slot: availIdx mod size. */
  slot: number;
  /** Head descriptor index found in that slot. */
  head: number;
  /** Descriptors in chain order (head first); `index` is known for the head only. */
  descriptors: { index: number | null; addr: number; len: number; flagNames: string[] }[];
  /**
   * consumed: the device has taken it (before last-avail-idx);
   * pending: made available, not yet taken; stale: the slot holds an entry
   * from an earlier lap (the guest has not refilled it).
   */
  state: 'consumed' | 'pending' | 'stale';
}

/** QEMU's own numbers for a queue, verbatim (mod 2^16 indices). */
export interface QemuQueueCounters {
  lastAvailIdx: number | null;
  shadowAvailIdx: number | null;
  usedIdx: number;
  signalledUsed: number | null;
  /** Chains popped and not yet pushed. */
  inuse: number;
  vringNumDefault: number;
  vringAlign: number;
}

/** A queue of a real device, as the vring view takes it (VringSnapshot in the app's contract). */
export interface AttachedQueueSnapshot {
  device: string;
  queue: number;
  /** `rx port 1`, `control tx`, ... */
  role: string;
  /** The port the queue carries, null for the control queues. */
  port: number | null;
  /** rx queues carry host-to-guest bytes, tx queues guest-to-host; null for control. */
  direction: Direction | null;
  format: 'split' | 'packed';
  size: number;
  /** The emulated view's shape; see `unavailable` for the parts QEMU does not show. */
  snapshot: SplitQueueSnapshot;
  qemu: QemuQueueCounters;
  elements: QueueElementView[];
  /** What the snapshot cannot hold for a real device, in words. */
  unavailable: string[];
  /** Date.now() when read, and how long the queries for this queue took. */
  time: number;
  queryMs: number;
}

const U16 = 0x10000;
const mod16 = (n: number): number => ((n % U16) + U16) % U16;

/** Unavailable parts of every snapshot of a real split queue. */
export const REAL_QUEUE_UNAVAILABLE: readonly string[] = [
  'descriptors: only the heads of the chains queried (x-query-virtio-queue-element), not the table',
  'descriptors[].next: QEMU lists a chain without descriptor indices (next is -1)',
  'avail.ring: only the slots queried; the others are -1',
  'used.ring: QEMU does not show used elements (empty)',
  'avail.usedEvent and used.availEvent: not shown (null)',
  'device.inFlight and chainsInFlight: QEMU gives only their count (qemu.inuse)',
  'driver: the guest side is not visible from the host (null)',
];

const PACKED_UNAVAILABLE = 'elements: QEMU 7.2 does not show packed ring elements; indices only';

function num(v: number | bigint): number {
  return typeof v === 'bigint' ? Number(v) : v;
}

const DESC_FLAG_NAMES: Record<string, string> = {
  next: 'NEXT',
  write: 'WRITE',
  indirect: 'INDIRECT',
  avail: 'AVAIL',
  used: 'USED',
};
const DESC_FLAG_BITS: Record<string, number> = { NEXT: 1, WRITE: 2, INDIRECT: 4 };
const FLAG_ORDER = ['NEXT', 'WRITE', 'INDIRECT', 'AVAIL', 'USED'];

function flagNamesOf(flags: string[]): string[] {
  const names = flags.map((f) => DESC_FLAG_NAMES[f] ?? f.toUpperCase());
  return names.sort((a, b) => FLAG_ORDER.indexOf(a) - FLAG_ORDER.indexOf(b));
}

/** An element reply as a chain in order (QEMU lists it last descriptor first). */
export function elementView(
  element: VirtioQueueElement,
  availIdx: number,
  size: number,
  lastAvailIdx: number,
): QueueElementView {
  const liveAvail = element.avail.idx;
  const ahead = mod16(liveAvail - availIdx); // how far the guest's avail idx is past this entry
  const behind = mod16(lastAvailIdx - availIdx); // > 0: the device has consumed it
  const state: QueueElementView['state'] =
    ahead === 0 || ahead > size ? 'stale' : behind > 0 && behind <= size ? 'consumed' : 'pending';
  const chain = [...element.descs].reverse();
  return {
    availIdx: mod16(availIdx),
    slot: mod16(availIdx) % size,
    head: element.index,
    descriptors: chain.map((d, i) => ({
      index: i === 0 ? element.index : null,
      addr: num(d.addr),
      len: d.len,
      flagNames: flagNamesOf(d.flags),
    })),
    state,
  };
}

/**
 * The SplitQueueSnapshot-shaped view of a real queue: indices and ring
 * addresses from the status, heads and avail slots from the elements.
 */
export function queueSnapshotFromQemu(input: {
  device: string;
  status: VirtQueueStatus;
  elements: readonly QueueElementView[];
  /** avail/used flags and idx as the last element reply showed them (live guest memory). */
  rings?: { availFlags: number; availIdx: number; usedFlags: number; usedIdx: number } | undefined;
  eventIdx: boolean;
  packed?: boolean;
  time?: number;
  queryMs?: number;
}): AttachedQueueSnapshot {
  const s = input.status;
  const size = s['vring-num'];
  const index = s['queue-index'];
  const layout: QueueLayout = {
    format: 'split',
    size,
    descAddr: num(s['vring-desc']),
    driverAddr: num(s['vring-avail']),
    deviceAddr: num(s['vring-used']),
  };
  const descriptors: SplitDescriptorView[] = [];
  const availRing: number[] = new Array<number>(size).fill(-1);
  const seen = new Set<number>();
  for (const e of input.elements) {
    if (e.state !== 'stale' && e.slot < size) availRing[e.slot] = e.head;
    const head = e.descriptors[0];
    if (!head || seen.has(e.head)) continue;
    seen.add(e.head);
    descriptors.push({
      index: e.head,
      addr: head.addr,
      len: head.len,
      flags: head.flagNames.reduce((f, n) => f | (DESC_FLAG_BITS[n] ?? 0), 0),
      flagNames: head.flagNames.filter((n) => n in DESC_FLAG_BITS),
      next: -1,
    });
  }
  descriptors.sort((a, b) => a.index - b.index);
  const lastAvail = s['last-avail-idx'] ?? null;
  const signalled = s['signalled-used-valid'] ? s['signalled-used'] : null;
  const rings = input.rings;
  const snapshot: SplitQueueSnapshot = {
    format: 'split',
    index,
    size,
    layout,
    eventIdx: input.eventIdx,
    descriptors,
    avail: {
      flags: rings?.availFlags ?? 0,
      // Without an element reply, the avail idx QEMU last read is the best we have.
      idx: rings?.availIdx ?? s['shadow-avail-idx'] ?? 0,
      ring: availRing,
      usedEvent: null,
    },
    used: {
      flags: rings?.usedFlags ?? 0,
      idx: rings?.usedIdx ?? s['used-idx'],
      ring: [],
      availEvent: null,
    },
    device: {
      lastAvailIdx: lastAvail ?? 0,
      usedIdx: s['used-idx'],
      signalledUsed: signalled,
      inFlight: [],
    },
    driver: null,
    chainsInFlight: [],
    unreadable: [],
  };
  const role = queueRoleText(index);
  const port = queuePort(index);
  const unavailable = [...REAL_QUEUE_UNAVAILABLE];
  if (input.packed) unavailable.unshift(PACKED_UNAVAILABLE);
  if (!rings) unavailable.push('avail.flags, used.flags: no element was read (0)');
  return {
    device: input.device,
    queue: index,
    role,
    port,
    direction: port === null ? null : index % 2 === 0 ? 'host-to-guest' : 'guest-to-host',
    format: input.packed ? 'packed' : 'split',
    size,
    snapshot,
    qemu: {
      lastAvailIdx: lastAvail,
      shadowAvailIdx: s['shadow-avail-idx'] ?? null,
      usedIdx: s['used-idx'],
      signalledUsed: signalled,
      inuse: s.inuse,
      vringNumDefault: s['vring-num-default'],
      vringAlign: s['vring-align'],
    },
    elements: [...input.elements],
    unavailable,
    time: input.time ?? Date.now(),
    queryMs: input.queryMs ?? 0,
  };
}

// ---- the poller ----------------------------------------------------------------------------

export interface VringPollOptions {
  /** Time between two rounds (default 500 ms: 2 Hz). */
  intervalMs?: number;
  /** Longest time between rounds after backing off (default 10 s). */
  maxIntervalMs?: number;
  /**
   * Keep QMP busy at most this share of the time (default 0.2): after a
   * round that took d ms, the next starts no sooner than d / share - d later.
   */
  busyShare?: number;
  /** Chains to read per queue around last-avail-idx (default 4; 0: status only). */
  elements?: number;
  /** Which queues (default: every queue of the device). */
  queues?: readonly number[];
  /** Time allowed per query (default 2 s); a slower answer ends the round. */
  queryTimeoutMs?: number;
}

export type VringListener = (snapshots: AttachedQueueSnapshot[]) => void;

/**
 * Reads the queues of one device in rounds, one query in flight at a time.
 * Elements are re-read only for queues whose indices moved (or on the first
 * round): an idle device costs one status query per queue per round.
 */
export class VringPoller {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** stop() was called: a round under way ends after its current query. */
  private aborted = false;
  private inRound: Promise<AttachedQueueSnapshot[] | QmpError> | undefined;
  private readonly listeners = new Set<VringListener>();
  private readonly latestByQueue = new Map<number, AttachedQueueSnapshot>();
  private currentInterval: number;
  /** Rounds done, and the duration of the last one. */
  rounds = 0;
  lastRoundMs = 0;
  lastError: QmpError | undefined;

  constructor(
    private readonly qmp: QmpClient,
    private readonly device: AttachedDevice,
    private readonly options: VringPollOptions = {},
  ) {
    this.currentInterval = options.intervalMs ?? 500;
  }

  /** The delay before the next round, after backoff. */
  get intervalMs(): number {
    return this.currentInterval;
  }

  /** Snapshots of the last round (a queue that failed keeps its previous one). */
  latest(): AttachedQueueSnapshot[] {
    return [...this.latestByQueue.values()].sort((a, b) => a.queue - b.queue);
  }

  onSnapshot(listener: VringListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.aborted = false;
    this.schedule(0);
  }

  stop(): void {
    this.running = false;
    this.aborted = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One round now (or the one already under way). */
  pollOnce(): Promise<AttachedQueueSnapshot[] | QmpError> {
    if (!this.inRound) this.aborted = false;
    this.inRound ??= this.round().finally(() => {
      this.inRound = undefined;
    });
    return this.inRound;
  }

  private schedule(delay: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.pollOnce().then(() => this.schedule(this.currentInterval));
    }, delay);
    this.timer.unref?.();
  }

  private queueList(): number[] {
    if (this.options.queues) return [...this.options.queues];
    const n = this.device.queues ?? 0;
    return Array.from({ length: n }, (_, i) => i);
  }

  private async round(): Promise<AttachedQueueSnapshot[] | QmpError> {
    const started = performance.now();
    const out: AttachedQueueSnapshot[] = [];
    const timeoutMs = this.options.queryTimeoutMs ?? 2_000;
    const wanted = this.options.elements ?? 4;
    let error: QmpError | undefined;
    for (const q of this.queueList()) {
      if (this.aborted) break;
      const t0 = performance.now();
      const status = await this.qmp.xQueryVirtioQueueStatus(this.device.path, q, { timeoutMs });
      if (isQmpError(status)) {
        // A queue the driver never set up answers "Invalid virtqueue number".
        if (status.kind === 'CommandFailed') continue;
        error = status;
        break;
      }
      const before = this.latestByQueue.get(q);
      const moved =
        !before ||
        before.qemu.lastAvailIdx !== (status['last-avail-idx'] ?? null) ||
        before.qemu.usedIdx !== status['used-idx'] ||
        before.qemu.shadowAvailIdx !== (status['shadow-avail-idx'] ?? null);
      let elements: QueueElementView[] = before?.elements ?? [];
      let rings = before?.snapshot
        ? {
            availFlags: before.snapshot.avail.flags,
            availIdx: before.snapshot.avail.idx,
            usedFlags: before.snapshot.used.flags,
            usedIdx: before.snapshot.used.idx,
          }
        : undefined;
      const packed = this.device.packed === true;
      if (moved && wanted > 0 && !packed && status['vring-num'] > 0) {
        const read = await this.readElements(q, status, wanted, timeoutMs);
        if (isQmpError(read)) {
          if (read.kind !== 'CommandFailed') {
            error = read;
            break;
          }
          elements = [];
          rings = undefined;
        } else {
          elements = read.elements;
          rings = read.rings;
        }
      } else if (moved) {
        rings = undefined;
      }
      const snap = queueSnapshotFromQemu({
        device: this.device.name,
        status,
        elements,
        rings,
        eventIdx: this.device.eventIdx === true,
        packed,
        queryMs: performance.now() - t0,
      });
      this.latestByQueue.set(q, snap);
      out.push(snap);
    }
    this.rounds++;
    this.lastRoundMs = performance.now() - started;
    this.lastError = error;
    this.adapt();
    if (out.length > 0) {
      for (const l of [...this.listeners]) {
        try {
          l(out);
        } catch {
          // A listener's bug must not stop the poller.
        }
      }
    }
    return error ?? out;
  }

  /**
   * Read the next chain (at last-avail-idx) and the `n - 1` chains before
   * it, most recent first. Stops at the first slot that could only hold an
   * entry from an earlier lap.
   */
  private async readElements(
    q: number,
    status: VirtQueueStatus,
    n: number,
    timeoutMs: number,
  ): Promise<
    | {
        elements: QueueElementView[];
        rings: { availFlags: number; availIdx: number; usedFlags: number; usedIdx: number };
      }
    | QmpError
  > {
    const size = status['vring-num'];
    const last = status['last-avail-idx'] ?? status['used-idx'];
    const headReply = await this.qmp.xQueryVirtioQueueElement(this.device.path, q, undefined, {
      timeoutMs,
    });
    if (isQmpError(headReply)) return headReply;
    const rings = {
      availFlags: headReply.avail.flags,
      availIdx: headReply.avail.idx,
      usedFlags: headReply.used.flags,
      usedIdx: headReply.used.idx,
    };
    const elements: QueueElementView[] = [];
    const head = elementView(headReply, last, size, last);
    if (head.state !== 'stale') elements.push(head);
    const availIdx = headReply.avail.idx;
    for (let k = 1; k < n; k++) {
      const idx = mod16(last - k);
      // An entry more than one lap behind the guest's avail idx is overwritten;
      // below idx 0 (in the first lap) nothing was ever made available.
      if (mod16(availIdx - idx) > size || k > mod16(last)) break;
      const e = await this.qmp.xQueryVirtioQueueElement(this.device.path, q, idx, { timeoutMs });
      if (isQmpError(e)) return e;
      elements.push(elementView(e, idx, size, last));
    }
    return { elements, rings };
  }

  /** Back off when QMP answers slowly, come back when it is quick again. */
  private adapt(): void {
    const base = this.options.intervalMs ?? 500;
    const max = this.options.maxIntervalMs ?? 10_000;
    const share = this.options.busyShare ?? 0.2;
    const needed = this.lastRoundMs / share - this.lastRoundMs;
    const target = Math.min(max, Math.max(base, needed));
    // Grow at once, shrink gently (halfway per round) so one quick round after
    // a slow stretch does not bring the full rate back.
    this.currentInterval = Math.round(
      target >= this.currentInterval
        ? target
        : Math.max(target, (this.currentInterval + target) / 2),
    );
  }
}
