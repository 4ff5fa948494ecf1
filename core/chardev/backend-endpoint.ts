/**
 * What every real chardev backend shares: the frontend side of
 * ChardevEndpoint (core/serial/endpoint.ts) with the semantics of the
 * reference MemoryEndpoint, over whatever host channel a subclass runs.
 *
 * - host -> guest (pull, D6): the subclass hands received bytes to
 *   hostBytes(); they wait in a bounded queue and go to the frontend one
 *   chunk per 'backend' task, never more than canRead() allows and at most
 *   4096 bytes (QEMU's CHR_READ_BUF_LEN). When the queue holds
 *   INBOUND_HIGH_WATER bytes the subclass is told to pause its source
 *   (socket.pause()), and to resume once the frontend has taken it down to
 *   INBOUND_LOW_WATER: the rest waits in the kernel, as it does under QEMU,
 *   whose read handler is off while the frontend cannot read. Pausing on a
 *   full queue rather than on the first canRead() == 0 keeps a hang-up
 *   visible while the guest is not reading.
 * - guest -> host (push with backpressure, D5): write() gives the bytes to
 *   transmit(), which takes what fits under the subclass's small high-water
 *   mark and returns the count; fewer is backpressure and a write watch
 *   fires (as a posted task) when the subclass reports room again, or on
 *   hang-up (G_IO_OUT | G_IO_HUP).
 * - Every handler call runs in a task posted with post('backend', ...):
 *   never synchronously inside write(), acceptInput() or attach().
 * - Nothing is lost uncounted: see counters.ts for the reasons.
 * - hangUp() drops the host peer from vmchan's side (the inspector's
 *   "Disconnect host"), as if it went away: 'closed' to the frontend, what
 *   was queued either way counted as dropped['hung-up']. Backends with a
 *   connection of their own to drop (socket) say how; the others refuse
 *   with the reason.
 */
import type { FdSets } from './fdsets.js';
import type { EventEmitter } from 'node:events';
import type { ChardevEndpoint, ChardevEvent, ChardevHandlers } from '../serial/endpoint.js';
import type { DropDirection } from '../serial/events.js';
import type { PostTask } from '../virtio/device.js';
import { ByteQueue } from './byte-queue.js';
import { describeSystemError } from './chardev-error.js';
import { newCounters, type ChardevCounters, type DropReason } from './counters.js';
import type { LogTee } from './log-tee.js';

/** Largest chunk handed to the frontend per task (QEMU: CHR_READ_BUF_LEN). */
export const READ_CHUNK = 4096;
/** Host bytes held for the frontend before the source is paused. */
export const INBOUND_HIGH_WATER = 64 * 1024;
/** ... and resumed once the frontend has taken the queue down to this. */
export const INBOUND_LOW_WATER = 16 * 1024;

export interface Closeable {
  /** Stop, release what the backend created (sockets, socket files, fds). Idempotent. */
  close(): Promise<void>;
}

/** How `ready` settles: a peer arrived, or the chardev was closed first. */
export type ReadyOutcome = 'connected' | 'closed';

/** One row of query-chardev / `info chardev`. */
export interface ChardevInfo {
  label: string;
  filename: string;
  'frontend-open': boolean;
}

/** What hangUp() did: the peer is gone (and what that discarded), or why it was not hung up. */
export type HangUpResult =
  | {
      hungUp: true;
      /** Host bytes received and not yet taken by the frontend, now dropped['hung-up']. */
      droppedToGuest: number;
      /** Guest bytes taken by write() and not yet handed to the OS, now dropped['hung-up']. */
      droppedToHost: number;
    }
  | { hungUp: false; reason: string };

export interface BackendOptions {
  id: string;
  post: PostTask;
  log?: LogTee | null;
  onNotice?: (line: string) => void;
  /** `ready` waits for the first peer (a server with wait=on) instead of settling at once. */
  waitForPeer?: boolean;
  /**
   * Told about every drop, with the way the bytes were going, so the lab's
   * ledger counts what the backend counts (the Machine files it against the
   * port that holds this chardev).
   */
  onDrop?: (reason: DropReason, bytes: number, direction: DropDirection) => void;
  /** The fd sets `/dev/fdset/N` paths open (-add-fd); none: every set is unknown. */
  fdSets?: FdSets;
  /**
   * A socket `fd=NAME` added over a monitor: QEMU's socket_get_fd with a
   * current monitor, which takes NAME's descriptor from the monitor's getfd
   * names (ownership passes to the chardev); null when no such name.
   */
  monitorFd?: (name: string) => number | null;
}

export abstract class BackendEndpoint implements ChardevEndpoint, Closeable {
  readonly id: string;
  /** The registered kind (kinds/index.ts) this backend opens for. */
  abstract readonly kind: string;
  readonly counters: ChardevCounters = newCounters();
  /** Settles when the backend is usable: at once, or for wait=on at the first client. */
  readonly ready: Promise<ReadyOutcome>;

  protected readonly post: PostTask;
  /** The label of every read task, made once (the pump names one per chunk). */
  private readonly readLabel: string;
  protected readonly notice: (line: string) => void;
  private readonly onDrop: (reason: DropReason, bytes: number, direction: DropDirection) => void;
  private readonly log: LogTee | null;
  private settleReady: (outcome: ReadyOutcome) => void = () => {};

  private handlers: ChardevHandlers | null = null;
  private isConnected = false;
  /** A host channel can carry bytes. Usually the same as connected; see channelOpen(). */
  private carrying = false;
  private isFrontendOpen = false;
  private closing: Promise<void> | null = null;
  /** The peer sent end-of-file: deliver what is queued, then hang up. */
  private hostDone = false;
  /** Why peerDisconnected() drops queued host bytes: the peer left, or hangUp() dropped it. */
  private goneReason: 'peer-gone' | 'hung-up' = 'peer-gone';
  /** While hangUp() runs: what peerDisconnected() dropped, for hangUp()'s answer. */
  private goneCount: { toGuest: number; toHost: number } | null = null;

  private readonly inbound = new ByteQueue();
  private sourcePaused = false;
  /** H4: the peer hung up; what still arrives is counted as lost, not queued. */
  private discarding = false;
  private unread = 0;
  /** The hang-up watch saw the peer close (it runs once per connection). */
  private peerGoneSeen = false;
  private pumpPosted = false;
  private watches: (() => void)[] = [];
  private failureCount = 0;
  private lastFailure: string | null = null;
  /** Resources whose 'error' events go to failed(), with how to stop listening. */
  private readonly watched = new Map<EventEmitter, () => void>();
  private watchPosted = false;

  protected constructor(options: BackendOptions) {
    this.id = options.id;
    this.readLabel = `chardev ${options.id}: read`;
    this.post = options.post;
    this.log = options.log ?? null;
    this.notice = options.onNotice ?? (() => {});
    this.onDrop = options.onDrop ?? (() => {});
    if (options.waitForPeer === true) {
      this.ready = new Promise((resolve) => (this.settleReady = resolve));
    } else {
      this.ready = Promise.resolve('connected');
    }
  }

  // ------------------------------------------------- the frontend's side

  get connected(): boolean {
    return this.isConnected;
  }

  get attached(): boolean {
    return this.handlers !== null;
  }

  get frontendOpen(): boolean {
    return this.isFrontendOpen;
  }

  get closed(): boolean {
    return this.closing !== null;
  }

  attach(handlers: ChardevHandlers): boolean {
    if (this.handlers !== null) return false;
    this.handlers = handlers;
    if (this.isConnected) this.postEvent('opened');
    this.schedulePump();
    return true;
  }

  detach(): void {
    this.handlers = null;
    this.watches = [];
    this.isFrontendOpen = false;
  }

  write(bytes: Uint8Array, handover = false, release?: (bytes: Uint8Array) => void): number {
    if (bytes.length === 0) return 0;
    if (this.closing !== null) {
      this.countDrop('closed', bytes.length, 'to-host');
      return bytes.length;
    }
    if (!this.carrying) {
      this.countDrop('no-peer', bytes.length, 'to-host');
      this.log?.write(bytes);
      return bytes.length;
    }
    const taken = this.transmit(bytes, handover, release);
    if (taken > 0) {
      this.counters.bytesOut += taken;
      this.log?.write(taken === bytes.length ? bytes : bytes.subarray(0, taken));
    }
    return taken;
  }

  addWriteWatch(callback: () => void): () => void {
    this.watches.push(callback);
    // Room may already be there (the host drained between the short write and now).
    if (!this.carrying || this.closing !== null || this.canTransmit()) this.fireWatches();
    return () => {
      this.watches = this.watches.filter((w) => w !== callback);
    };
  }

  acceptInput(): void {
    this.schedulePump();
  }

  setFrontendOpen(open: boolean): void {
    this.isFrontendOpen = open;
  }

  abstract describe(): string;

  /** query-chardev's row for this chardev. */
  info(): ChardevInfo {
    return { label: this.id, filename: this.describe(), 'frontend-open': this.isFrontendOpen };
  }

  /** Host bytes received and not yet taken by the frontend (bounded by INBOUND_HIGH_WATER + one read). */
  get pendingToGuest(): number {
    return this.inbound.length;
  }

  /** Guest bytes taken by write() and still queued in this process on their way to the host. */
  get queuedToHost(): number {
    return 0;
  }

  /** Is the host source paused because the frontend is not taking bytes? */
  get inputPaused(): boolean {
    return this.sourcePaused;
  }

  /**
   * Hang up the host peer, as if it went away (a socket server closes its
   * client and keeps listening; a client with reconnect=N dials again):
   * the frontend gets 'closed', host bytes not yet taken by the frontend
   * and guest bytes not yet handed to the OS are counted as
   * dropped['hung-up']. Refused, with the reason, when the backend has no
   * peer connection of its own to drop or nobody is there.
   */
  hangUp(): HangUpResult {
    if (this.closing !== null) return { hungUp: false, reason: `chardev '${this.id}' is closed` };
    const refused = this.hangUpRefusal();
    if (refused !== null) return { hungUp: false, reason: refused };
    if (!this.isConnected) {
      return { hungUp: false, reason: `nobody is connected to chardev '${this.id}'` };
    }
    const before = this.describe();
    const counted = { toGuest: 0, toHost: 0 };
    this.goneReason = 'hung-up';
    this.goneCount = counted;
    try {
      // dropPeer() ends in peerDisconnected(), which counts both ways as 'hung-up'.
      this.dropPeer();
    } finally {
      this.goneReason = 'peer-gone';
      this.goneCount = null;
    }
    const droppedToGuest = counted.toGuest;
    const droppedToHost = counted.toHost;
    const lost =
      droppedToGuest + droppedToHost === 0
        ? 'nothing was queued'
        : `dropped ${droppedToGuest} bytes for the guest and ${droppedToHost} for the host (hung-up)`;
    this.notice(`chardev ${this.id}: hung up the host peer (${before}); ${lost}`);
    return { hungUp: true, droppedToGuest, droppedToHost };
  }

  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.countDrop('closed', this.inbound.clear(), 'to-guest');
    const wasConnected = this.isConnected;
    this.isConnected = false;
    this.carrying = false;
    if (wasConnected) this.postEvent('closed');
    this.fireWatches();
    this.settleReady('closed');
    this.closing = this.teardown().finally(() => {
      for (const emitter of [...this.watched.keys()]) this.unwatch(emitter);
      this.log?.close();
    });
    return this.closing;
  }

  // ------------------------------------------- asynchronous failures

  /**
   * Asynchronous failures of this chardev's OS resources (a listener, a
   * socket, a stream, an fd read): counted and shown, never thrown, so no
   * backend's error can end the process (issue 13 item 5).
   */
  get failures(): { count: number; last: string | null } {
    return { count: this.failureCount, last: this.lastFailure };
  }

  /**
   * Emit `error` on every OS resource this chardev watches, as the OS would:
   * the error takes the same path a real one takes (tests, teaching).
   * Returns how many resources got it (0 for a backend that has none, such
   * as null or ringbuf).
   */
  injectAsyncError(error: Error): number {
    const targets = [...this.watched.keys()];
    for (const emitter of targets) emitter.emit('error', error);
    return targets.length;
  }

  /** The one error path of every backend: count the failure, keep its text, say it. */
  protected failed(where: string, error: unknown): void {
    this.failureCount++;
    this.lastFailure = `${where}: ${describeSystemError(error)}`;
    this.notice(`chardev ${this.id}: ${this.lastFailure}`);
  }

  /**
   * Route an emitter's 'error' events into failed() for as long as the
   * emitter lives (until it closes, or the chardev does). An EventEmitter
   * with an 'error' listener never throws its errors, so this is also what
   * keeps the process alive.
   */
  protected watchErrors(emitter: EventEmitter, where: string): void {
    if (this.watched.has(emitter)) return;
    const onError = (error: unknown): void => this.failed(where, error);
    const onClose = (): void => this.unwatch(emitter);
    emitter.on('error', onError);
    emitter.once('close', onClose);
    this.watched.set(emitter, () => {
      emitter.off('error', onError);
      emitter.off('close', onClose);
      // A late error after close is still swallowed: never an uncaught 'error'.
      emitter.on('error', () => {});
    });
  }

  private unwatch(emitter: EventEmitter): void {
    this.watched.get(emitter)?.();
    this.watched.delete(emitter);
  }

  // ------------------------------------------------ for the subclasses

  /**
   * Send up to bytes.length bytes to the host; return how many were taken.
   * Copy before queuing, unless `handover` says the array is the backend's
   * to keep; a subclass that keeps it may give it back with `release`
   * (ChardevEndpoint.write).
   */
  protected abstract transmit(
    bytes: Uint8Array,
    handover: boolean,
    release?: (bytes: Uint8Array) => void,
  ): number;

  /** Release OS resources. Called once, by close(). */
  protected abstract teardown(): Promise<void>;

  /** Is there room for at least one more byte right now? */
  protected canTransmit(): boolean {
    return true;
  }

  /** Stop reading from the host (queue full). */
  protected pauseSource(): void {}

  /** Read from the host again. */
  protected resumeSource(): void {}

  /**
   * The peer finished sending and everything it sent has reached the
   * frontend: drop the link. The default treats it as a plain disconnect.
   */
  protected peerFinished(): void {
    this.peerDisconnected();
  }

  /**
   * Can the peer's close be a hang-up QEMU acts on at once (G_IO_HUP), losing
   * unread bytes (H4)? True for unix sockets, whose peer's close raises
   * POLLHUP; a tcp FIN only raises POLLRDHUP, and QEMU reads to the end.
   */
  protected hangUpAtEnd(): boolean {
    return false;
  }

  /** Start watching for the peer's close; the subclass calls peerHungUp() when it comes. */
  protected startHangUpWatch(): void {}

  protected stopHangUpWatch(): void {}

  /** Why hangUp() cannot drop this backend's peer; null when it can. */
  protected hangUpRefusal(): string | null {
    return `chardev '${this.id}' is a ${this.kind} backend: it has no peer connection of its own that vmchan can hang up`;
  }

  /** hangUp(): drop the peer's connection now, calling peerDisconnected() before returning. */
  protected dropPeer(): void {
    this.peerDisconnected();
  }

  /** A host peer is there ('opened'): a socket client, an open pty slave, a pipe. */
  protected peerConnected(): void {
    if (this.closing !== null) return;
    this.carrying = true;
    this.hostDone = false;
    this.peerGoneSeen = false;
    if (!this.isConnected) {
      this.isConnected = true;
      this.postEvent('opened');
    }
    this.settleReady('connected');
    this.schedulePump();
  }

  /**
   * Bytes can move although QEMU never reports the backend open (udp: its
   * chardev sets be_opened = false and no event ever opens it).
   */
  protected channelOpen(): void {
    if (this.closing !== null) return;
    this.carrying = true;
    this.schedulePump();
  }

  /**
   * The peer went away: queued host bytes are dropped (counted), 'closed',
   * watches fire. `unsentToHost`: guest bytes write() took (in bytesOut)
   * that the connection took with it before they reached the OS; the
   * subclass measures them before it lets go of the connection
   * (bytesNotInKernel), and they move from bytesOut to the drop.
   */
  protected peerDisconnected(unsentToHost = 0): void {
    this.carrying = false;
    this.hostDone = false;
    this.peerGoneSeen = false;
    this.stopHangUpWatch();
    if (this.discarding) {
      // The connection went before end-of-file: what was counted is still lost.
      this.discarding = false;
      this.countDrop('hangup-unread', this.unread, 'to-guest');
      this.unread = 0;
    }
    const cleared = this.inbound.clear();
    this.countDrop(this.goneReason, cleared, 'to-guest');
    if (unsentToHost > 0) {
      this.counters.bytesOut -= unsentToHost;
      this.countDrop(this.goneReason, unsentToHost, 'to-host');
    }
    if (this.goneCount !== null) {
      this.goneCount.toGuest += cleared;
      this.goneCount.toHost += unsentToHost;
    }
    if (this.sourcePaused) {
      this.sourcePaused = false;
      this.resumeSource();
    }
    if (this.isConnected) {
      this.isConnected = false;
      this.postEvent('closed');
    }
    this.fireWatches(); // G_IO_HUP wakes a throttled writer too
  }

  /**
   * Bytes from the host for the guest. With `release`, `chunk` is a view of
   * a buffer lent by the source (pooled reads): it is given back once the
   * frontend has taken all of it, or at once if it is not kept.
   */
  protected hostBytes(chunk: Uint8Array, release?: () => void): void {
    if (chunk.length === 0 || this.closing !== null || this.discarding) {
      if (this.closing !== null) this.countDrop('closed', chunk.length, 'to-guest');
      else if (this.discarding) this.unread += chunk.length;
      release?.();
      return;
    }
    this.inbound.push(chunk, release);
    if (!this.sourcePaused && this.queueFull()) {
      this.sourcePaused = true;
      this.pauseSource();
      this.syncHangUpWatch();
    }
    this.schedulePump();
  }

  /**
   * Time to pause the source: the queue is over the high-water mark, or at
   * it while the frontend takes nothing. A socket read is up to 64 KiB, so
   * one read into an empty queue lands exactly on the mark: pausing then
   * while the guest is taking it (a transfer) cost a pause/resume pair per
   * read (5376 per 256 MiB host -> guest, ~5 us each) and kept nothing
   * more in the kernel for long. The queue stays bounded by the mark plus
   * one read; a frontend that takes nothing still pauses the source at the
   * mark, as before (H4's amounts).
   */
  private queueFull(): boolean {
    const queued = this.inbound.length;
    if (queued < INBOUND_HIGH_WATER) return false;
    if (queued > INBOUND_HIGH_WATER) return true;
    return this.handlers === null || this.handlers.canRead() <= 0;
  }

  /** True when the inbound queue is at its high-water mark (for sources that cannot pause). */
  protected inboundFull(): boolean {
    return this.inbound.length >= INBOUND_HIGH_WATER;
  }

  /** The host sent end-of-file: what it sent before still goes to the guest, then peerFinished(). */
  protected hostEnded(): void {
    if (this.closing !== null || this.hostDone) return;
    this.hostDone = true;
    if (this.discarding) {
      this.finishHangUp();
      return;
    }
    if (this.inbound.length === 0) this.peerFinished();
    else {
      this.schedulePump();
      this.syncHangUpWatch();
    }
  }

  /**
   * H4: the peer closed (POLLHUP), seen by the subclass's watch. QEMU's
   * tcp_chr_hup disconnects at once; its read watch runs only while the port
   * can take data (tcp_chr_read_poll), so what the port can take now still
   * goes in, and the rest, here or still in the kernel, is never read: it is
   * counted as dropped['hangup-unread'] and reported.
   */
  protected peerHungUp(): void {
    this.peerGoneSeen = true;
    if (this.hangUpMatters()) this.postHangUp();
  }

  /** While bytes flow, end-of-file comes anyway and decides (a later watch sees the HUP at once). */
  private hangUpMatters(): boolean {
    return (
      this.carrying &&
      !this.discarding &&
      (this.sourcePaused || (this.hostDone && this.inbound.length > 0))
    );
  }

  private postHangUp(): void {
    this.post('backend', `chardev ${this.id}: hang-up`, () => {
      if (!this.carrying || this.closing !== null || this.discarding) return;
      const handlers = this.handlers;
      while (handlers !== null && this.inbound.length > 0) {
        const room = handlers.canRead();
        if (room <= 0) break;
        this.deliver(handlers, Math.min(room, READ_CHUNK));
      }
      this.discarding = true;
      this.unread = this.inbound.clear();
      // Read what is left in the kernel to count it; end-of-file finishes.
      if (this.hostDone) this.finishHangUp();
      else if (this.sourcePaused) {
        this.sourcePaused = false;
        this.resumeSource();
      }
    });
  }

  private finishHangUp(): void {
    const lost = this.unread;
    this.discarding = false;
    this.unread = 0;
    if (lost > 0) {
      this.countDrop('hangup-unread', lost, 'to-guest');
      this.notice(`chardev ${this.id}: QEMU discarded ${lost} unread bytes when the host hung up`);
    }
    this.peerFinished();
  }

  /**
   * A hang-up watch is needed while the peer could close unseen: the source
   * is paused (nothing is read, so no end-of-file either), or it ended and
   * its last bytes wait for the port (a half-close, or a close?).
   */
  private syncHangUpWatch(): void {
    if (!this.hangUpAtEnd() || !this.hangUpMatters()) return;
    // The watch, once started, runs until the connection ends: a source that
    // pauses and resumes many times a second must not start a process each time.
    if (this.peerGoneSeen) this.postHangUp();
    else this.startHangUpWatch();
  }

  /**
   * Bytes transmit() accepted (or will accept) that the OS then refused
   * (udp: port unreachable; file: disk full): they move from bytesOut to
   * dropped['send-failed']. May be called inside transmit() for its own bytes.
   */
  protected sendFailed(count: number): void {
    this.counters.bytesOut -= count;
    this.countDrop('send-failed', count, 'to-host');
  }

  /**
   * The one place a backend's drop is counted: its counter, and the lab's
   * ledger through onDrop, with the way the bytes were going (no silent
   * drops: every counter the backend keeps is in the ledger too).
   */
  protected countDrop(reason: DropReason, bytes: number, direction: DropDirection): void {
    if (bytes <= 0) return;
    this.counters.dropped[reason] += bytes;
    this.onDrop(reason, bytes, direction);
  }

  /** The host side can take bytes again: fire pending write watches. */
  protected writable(): void {
    if (this.watches.length > 0) this.fireWatches();
  }

  // ------------------------------------------------------------ internals

  private postEvent(event: ChardevEvent): void {
    // Deliver to the frontend attached now; one that attaches later gets its own 'opened'.
    const target = this.handlers;
    if (target === null) return;
    this.post('backend', `chardev ${this.id}: ${event}`, () => {
      if (this.handlers === target) target.event(event);
    });
  }

  private fireWatches(): void {
    if (this.watchPosted || this.watches.length === 0) return;
    this.watchPosted = true;
    this.post('backend', `chardev ${this.id}: writable`, () => {
      this.watchPosted = false;
      const due = this.watches;
      this.watches = [];
      for (const w of due) w();
    });
  }

  /**
   * One read of up to `max` queued bytes into the frontend. A view of a
   * lent buffer goes as it is only to a frontend that copies what it keeps
   * (ChardevHandlers.copiesWhatItKeeps); any other gets its own copy. The
   * buffers taken in full go back to the source after the call.
   */
  private deliver(handlers: ChardevHandlers, max: number): void {
    const inbound = this.inbound;
    const chunk = inbound.take(max);
    this.counters.bytesIn += chunk.length;
    handlers.read(
      inbound.lastTakeBorrowed && handlers.copiesWhatItKeeps !== true ? chunk.slice() : chunk,
    );
    inbound.releaseTaken();
  }

  private schedulePump(): void {
    if (this.pumpPosted || this.handlers === null || !this.carrying) return;
    if (this.inbound.length === 0) return;
    this.pumpPosted = true;
    this.post('backend', this.readLabel, this.pump);
  }

  /**
   * One chunk to the frontend per task (QEMU's fd and socket handlers read
   * one buffer per wakeup). In free-run the next chunk may follow in the same
   * task (post.mayContinue, each counted as a task of its own), as QEMU's main
   * loop comes straight back to a socket that is still readable; every
   * chunk is still one read of at most READ_CHUNK bytes.
   */
  private readonly pump = (): void => {
    this.pumpPosted = false;
    for (;;) {
      const handlers = this.handlers;
      if (handlers === null || !this.carrying || this.inbound.length === 0) return;
      const room = handlers.canRead();
      if (room <= 0) return; // wait for acceptInput()
      this.deliver(handlers, Math.min(room, READ_CHUNK));
      if (this.sourcePaused && this.inbound.length <= INBOUND_LOW_WATER) {
        this.sourcePaused = false;
        this.resumeSource();
        this.syncHangUpWatch();
      }
      if (this.hostDone && this.inbound.length === 0) {
        this.peerFinished();
        return;
      }
      if (this.inbound.length === 0 || this.pumpPosted) return;
      if (this.post.mayContinue?.('backend', this.readLabel) !== true) break;
    }
    this.schedulePump();
  };
}
