/**
 * The bridge to a screen: the engine produces events at full rate, a screen
 * can show one frame at a time. One BatchBridge per screen (a window, a
 * browser tab) collects what happens and sends it as batches, one at a time:
 *
 * - a batch goes out only when the previous one was acknowledged; the
 *   renderer acknowledges from requestAnimationFrame after applying it, so a
 *   screen never gets more than one batch per animation frame, and a hidden
 *   window (no frames) gets nothing until it shows again;
 * - while a batch is out, everything new accumulates, bounded: the event
 *   list keeps the newest `maxEvents` and counts the others by kind;
 *   throughput samples beyond `maxSamples` are merged with their neighbour
 *   (sums over a longer interval, nothing lost); any number of topology
 *   changes become one fresh snapshot, taken when the batch is built;
 * - every batch says what was coalesced, so the screen can show it.
 *
 * Pure TypeScript with an injected clock and sender: tests drive it without
 * a window or a socket.
 */
import type {
  ApiEvent,
  Batch,
  EngineState,
  PortSample,
  ThroughputSample,
  TopologySnapshot,
} from '../contract/contract.js';

export interface BatchSource {
  /** A fresh snapshot (taken only when something changed). */
  topology(): TopologySnapshot;
  engine(): EngineState;
}

export interface BatchBridgeOptions {
  source: BatchSource;
  /** Hands a batch to the transport. */
  send: (batch: Batch) => void;
  /** Events per batch (the newest are kept). */
  maxEvents?: number;
  /** Throughput samples per batch (older ones are merged pairwise). */
  maxSamples?: number;
  now?: () => number;
  /**
   * Defer building the next batch (default: setImmediate), so that a burst
   * of engine events right after an ack still lands in one batch.
   */
  defer?: (run: () => void) => void;
  /**
   * A batch not acknowledged after this long counts as lost (a screen that
   * attached late, a message dropped): the next one goes out, with a fresh
   * topology. Default 5 s; a hidden window that acks nothing gets one batch
   * per this interval.
   */
  lostAfterMs?: number;
  /**
   * At most one topology snapshot per this many ms (default 100): a port
   * whose throttle flaps at full speed must not make every batch rebuild
   * the whole tree. Events and samples are not held back.
   */
  minTopologyIntervalMs?: number;
}

export interface BatchBridgeStats {
  sent: number;
  acked: number;
  /** Acks for a batch that was not the one out (ignored). */
  staleAcks: number;
  /** Batches given up as lost (no ack in lostAfterMs). */
  lost: number;
  eventsIn: number;
  eventsCoalesced: number;
  samplesIn: number;
  samplesCoalesced: number;
  topologyChanges: number;
}

export const DEFAULT_MAX_EVENTS = 256;
export const DEFAULT_MAX_SAMPLES = 16;

const defaultDefer = (run: () => void): void => {
  setImmediate(run);
};

export class BatchBridge {
  private readonly source: BatchSource;
  private readonly sendBatch: (batch: Batch) => void;
  private readonly maxEvents: number;
  private readonly maxSamples: number;
  private readonly now: () => number;
  private readonly defer: (run: () => void) => void;
  private readonly lostAfterMs: number;
  private readonly minTopologyMs: number;
  private sentAt = 0;
  private topologySentAt = -Infinity;

  /** Newest events, a ring of maxEvents. */
  private events: ApiEvent[] = [];
  private eventsHead = 0;
  private droppedByKind: Record<string, number> = {};
  private droppedEvents = 0;
  private samples: ThroughputSample[] = [];
  private samplesMerged = 0;
  private topologyDirty = 0;
  private engineDirty = false;

  private seq = 0;
  private outstanding: number | null = null;
  private flushPending = false;
  private closed = false;

  readonly stats: BatchBridgeStats = {
    sent: 0,
    acked: 0,
    staleAcks: 0,
    lost: 0,
    eventsIn: 0,
    eventsCoalesced: 0,
    samplesIn: 0,
    samplesCoalesced: 0,
    topologyChanges: 0,
  };

  constructor(options: BatchBridgeOptions) {
    this.source = options.source;
    this.sendBatch = options.send;
    this.maxEvents = Math.max(1, options.maxEvents ?? DEFAULT_MAX_EVENTS);
    this.maxSamples = Math.max(1, options.maxSamples ?? DEFAULT_MAX_SAMPLES);
    this.now = options.now ?? Date.now;
    this.defer = options.defer ?? defaultDefer;
    this.lostAfterMs = options.lostAfterMs ?? 5000;
    this.minTopologyMs = options.minTopologyIntervalMs ?? 100;
    // The first batch carries the whole picture.
    this.topologyDirty = 1;
    this.schedule();
  }

  /** Is a batch out and not acknowledged yet? */
  get waiting(): boolean {
    return this.outstanding !== null;
  }

  /** Events waiting for the next batch. */
  get pendingEvents(): number {
    return this.events.length;
  }

  pushEvent(event: ApiEvent): void {
    if (this.closed) return;
    this.stats.eventsIn++;
    if (this.events.length < this.maxEvents) {
      this.events.push(event);
    } else {
      // Ring: overwrite the oldest, count it by kind.
      const old = this.events[this.eventsHead]!;
      this.droppedByKind[old.kind] = (this.droppedByKind[old.kind] ?? 0) + 1;
      this.droppedEvents++;
      this.stats.eventsCoalesced++;
      this.events[this.eventsHead] = event;
      this.eventsHead = (this.eventsHead + 1) % this.maxEvents;
    }
    this.schedule();
  }

  pushSample(sample: ThroughputSample): void {
    if (this.closed) return;
    this.stats.samplesIn++;
    this.samples.push(sample);
    while (this.samples.length > this.maxSamples) {
      // Merge the two oldest: one interval, the sums of both.
      const a = this.samples.shift()!;
      const b = this.samples[0]!;
      this.samples[0] = mergeSamples(a, b);
      this.samplesMerged++;
      this.stats.samplesCoalesced++;
    }
    this.schedule();
  }

  /** Something in the topology changed; the next batch carries a fresh snapshot. */
  topologyChanged(): void {
    if (this.closed) return;
    this.topologyDirty++;
    this.stats.topologyChanges++;
    this.schedule();
  }

  /** The engine's mode or counters changed (pause, run, step). */
  engineChanged(): void {
    if (this.closed) return;
    this.engineDirty = true;
    this.schedule();
  }

  /**
   * The screen applied batch `seq`. Returns false (and changes nothing) for
   * an ack that does not match the batch out: a late or forged ack cannot
   * make the bridge send two batches in one frame.
   */
  ack(seq: number): boolean {
    if (this.outstanding === null || seq !== this.outstanding) {
      this.stats.staleAcks++;
      return false;
    }
    this.outstanding = null;
    this.stats.acked++;
    this.schedule();
    return true;
  }

  /** Stop: nothing is sent after this. */
  close(): void {
    this.closed = true;
    this.events = [];
    this.samples = [];
  }

  /** A snapshot is due: something changed and the last one is old enough. */
  private get topologyDue(): boolean {
    return this.topologyDirty > 0 && this.now() - this.topologySentAt >= this.minTopologyMs;
  }

  private get hasPending(): boolean {
    return (
      this.events.length > 0 || this.samples.length > 0 || this.topologyDue || this.engineDirty
    );
  }

  private schedule(): void {
    if (this.outstanding !== null && this.now() - this.sentAt > this.lostAfterMs) {
      this.outstanding = null;
      this.stats.lost++;
      this.topologyDirty++; // the lost batch may have carried the only snapshot
    }
    if (this.closed || this.flushPending || this.outstanding !== null || !this.hasPending) return;
    this.flushPending = true;
    this.defer(() => {
      this.flushPending = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.closed || this.outstanding !== null || !this.hasPending) return;
    // One batch out at a time: `outstanding` is cleared only by its ack (or as lost).
    const events =
      this.eventsHead === 0
        ? this.events
        : [...this.events.slice(this.eventsHead), ...this.events.slice(0, this.eventsHead)];
    const withTopology = this.topologyDue;
    const batch: Batch = {
      seq: ++this.seq,
      time: this.now(),
      events,
      samples: this.samples,
      topology: withTopology ? this.source.topology() : null,
      engine: this.source.engine(),
      coalesced: {
        events: this.droppedEvents,
        byKind: this.droppedByKind,
        samples: this.samplesMerged,
        topology: withTopology ? this.topologyDirty - 1 : 0,
      },
    };
    this.events = [];
    this.eventsHead = 0;
    this.droppedByKind = {};
    this.droppedEvents = 0;
    this.samples = [];
    this.samplesMerged = 0;
    if (withTopology) {
      this.topologyDirty = 0;
      this.topologySentAt = batch.time;
    }
    this.engineDirty = false;
    this.outstanding = batch.seq;
    this.sentAt = this.now();
    this.stats.sent++;
    this.sendBatch(batch);
  }
}

/** Two consecutive samples as one: the union of the intervals, the sums per port. */
export function mergeSamples(a: ThroughputSample, b: ThroughputSample): ThroughputSample {
  const byKey = new Map<string, PortSample>();
  for (const p of a.ports) byKey.set(p.key, { ...p });
  for (const p of b.ports) {
    const q = byKey.get(p.key);
    if (q === undefined) byKey.set(p.key, { ...p });
    else {
      q.toGuest += p.toGuest;
      q.toHost += p.toHost;
      q.totalToGuest = p.totalToGuest;
      q.totalToHost = p.totalToHost;
    }
  }
  return { t: b.t, dt: a.dt + b.dt, ports: [...byKey.values()] };
}
