/**
 * A generic virtio device: the part of QEMU's hw/virtio/virtio.c and
 * virtio-pci that every device shares, behind the register interface of
 * device-transport.ts.
 *
 * It owns status and feature negotiation (G4), queue setup in the negotiated
 * ring format, notifications (M13), bounded configuration access (M14),
 * interrupts, and the rules for errors (G2, G3):
 * - nothing is consumed and no used notification is sent before DRIVER_OK:
 *   kicks that arrive earlier are remembered and served at DRIVER_OK (G2);
 * - the first fault (a VirtioFault from a ring, or a driver mistake seen
 *   here) sets DEVICE_NEEDS_RESET, sends a configuration-change interrupt if
 *   DRIVER_OK was set, stops all processing of this device and is kept, rule
 *   id and all, for the UI (G3). Writing status 0 resets everything.
 *
 * A concrete device (the console) supplies its features, queue sizes,
 * configuration bytes and what one step of work on a queue is. Work runs as
 * 'device' tasks on the engine's queue, one step (one chain) per task, so
 * step mode shows one ring operation at a time.
 */
import type { DescriptorChain } from './chain.js';
import {
  ISR_CONFIG,
  ISR_QUEUE,
  type ConfigWidth,
  type InterruptHandler,
  type QueueAddresses,
  type VirtioTransport,
} from './device-transport.js';
import { createDeviceQueue, ringFeaturesOf, ringFormatOf } from './device-rings.js';
import { fault, isFault, type VirtioFault } from './fault.js';
import { Feature, has, validateAccepted } from './features.js';
import type { GuestMemory } from './memory.js';
import {
  DEFAULT_CHAIN_LIMITS,
  type ChainLimits,
  type DeviceQueue,
  type DeviceQueueStatus,
  type QueueSnapshot,
} from './queue.js';
import { Status, statusNames, type StatusName } from './status.js';
import { RingTracer } from './trace.js';

/** One status write as the device kept it (onStatusChange). */
export interface StatusChange {
  /** Status before the write. */
  old: number;
  /** What the driver wrote. */
  written: number;
  /** Status after it (FEATURES_OK left out when refused, G4). */
  status: number;
  /** Features the driver had accepted when it wrote. */
  driverFeatures: bigint;
  /** Features in force after the write. */
  negotiated: bigint;
  /** Why FEATURES_OK was refused, when it was (G4). */
  refusal: VirtioFault | null;
}

/** Who a task works for: the guest, a device, or a host backend. */
export type TaskKind = 'guest' | 'device' | 'backend';
/** The virtqueue a task works on (device work after a kick, the guest's interrupt for it). */
export interface TaskQueue {
  /** The device's name (what its ports and its guest driver's label call it). */
  device: string;
  queue: number;
}
/**
 * How code asks for work to be done later, in order (the engine's
 * Scheduler.post); `queue` tags work that belongs to one virtqueue, so a
 * person can step that queue alone.
 */
export interface PostTask {
  (kind: TaskKind, label: string, run: () => void, queue?: TaskQueue): void;
  /**
   * The engine's scheduler answers: may the caller do this piece of work now
   * (inside the task it runs, or from outside any task) instead of posting
   * it? Yes only while free-running with batch budget left and nothing
   * queued (so the order of operations is the one posting gives), and the work
   * then counts as a task that ran (statistics, task listeners); never in
   * step mode, where every task stays one ring operation. A plain function
   * (tests that collect tasks by hand) has no answer: everything is posted.
   * Asked from inside a task it says no (tasks never nest).
   */
  readonly mayRunNow?: (kind: TaskKind, label: string) => boolean;
  /**
   * Asked by a running task: may it go on with one more piece of its own
   * work (counted as one more task) instead of posting its continuation?
   * Same rule as mayRunNow: free-run with batch budget left.
   */
  readonly mayContinue?: (kind: TaskKind, label: string) => boolean;
  /**
   * Free-running and not held: a guest program may look at its files
   * without a task (poll(2) with timeout 0) before choosing its next call.
   * No in step mode, where even a look waits for its step; a plain function
   * has no answer (no).
   */
  readonly freeRunning?: () => boolean;
}

/**
 * Run `run` at once when the scheduler lets it skip the queue (free-run),
 * else post it. `run` must not throw: nothing catches it when it runs now.
 */
export function runOrPost(post: PostTask, kind: TaskKind, label: string, run: () => void): void {
  if (post.mayRunNow?.(kind, label) === true) run();
  else post(kind, label, run);
}
/** A posted task as the scheduler reports it (step mode, engine events). */
export interface TaskInfo {
  /** Position in the sequence of all tasks ever posted (from 1). */
  seq: number;
  kind: TaskKind;
  label: string;
  /** The virtqueue it works on, when it works on one. */
  queue?: TaskQueue;
}

export interface VirtioDeviceOptions {
  /** Virtio device id (3: console). */
  deviceId: number;
  /** Name for tasks, traces and events (the qdev id, say `vser0`). */
  name: string;
  /** Guest memory the device reaches by DMA. */
  memory: GuestMemory;
  post: PostTask;
  limits?: ChainLimits;
  /** Ring trace of this device; one is made when not given. */
  tracer?: RingTracer;
}

export abstract class VirtioDevice implements VirtioTransport {
  readonly deviceId: number;
  readonly name: string;
  readonly tracer: RingTracer;
  protected readonly memory: GuestMemory;
  protected readonly post: PostTask;
  private readonly limits: ChainLimits;

  private status = 0;
  private driverFeatures = 0n;
  private negotiated = 0n;
  /** `negotiated`'s bits 0-31 and 32-63, for hasFeature. */
  private negotiatedLow = 0;
  private negotiatedHigh = 0;
  private firstFault: VirtioFault | null = null;
  private refusal: VirtioFault | null = null;
  private isr = 0;
  private generation = 0;
  private handler: InterruptHandler | null = null;
  private addresses: (QueueAddresses | undefined)[] = [];
  private queues: (DeviceQueue | undefined)[] = [];
  /**
   * Queues with a device task posted and not yet run (coalesces kicks). A
   * flag per queue, not a Set: a Set that gains and loses one entry per
   * chain reallocates its table now and then, and those tables lived long
   * enough to reach the old generation (more full collections).
   */
  private scheduled: boolean[] = [];
  /** Each queue's task label and tag, made once (not per kick). */
  private readonly queueTags: ({ label: string; tag: TaskQueue } | undefined)[] = [];
  /** Kicks that came before DRIVER_OK (G2), served when it is set. */
  private deferred = new Set<number>();
  /** Bumped on reset so tasks posted before it do nothing. */
  private epoch = 0;
  private faultListeners: ((fault: VirtioFault) => void)[] = [];
  private statusListeners: ((change: StatusChange) => void)[] = [];

  constructor(options: VirtioDeviceOptions) {
    this.deviceId = options.deviceId;
    this.name = options.name;
    this.memory = options.memory;
    this.post = options.post;
    this.limits = options.limits ?? DEFAULT_CHAIN_LIMITS;
    this.tracer = options.tracer ?? new RingTracer();
  }

  // ------------------------------------------------------- device contract

  /** Every feature the device offers (device and transport bits). */
  protected abstract offeredFeatures(): bigint;
  /** How many queues exist with these features (offered ones before FEATURES_OK). */
  protected abstract queueCount(features: bigint): number;
  /** Largest size of queue `q` (0: the queue does not exist). */
  protected abstract queueSizeMax(queue: number, features: bigint): number;
  /**
   * One step of work on queue `q` after a kick (normally one chain). True when
   * more work may remain: the device posts another task for it.
   */
  protected abstract processQueue(queue: number): boolean;
  /** The device configuration space as it reads now. */
  protected abstract configSpace(): Uint8Array;
  /** A driver write into the configuration space (already bounds-checked). */
  protected configWrite(_offset: number, _width: ConfigWidth, _value: number): void {}
  /** Device-specific refusals of a feature set, on top of G4 (null: accept). */
  protected checkFeatures(accepted: bigint): VirtioFault | null {
    // Only the modern interface exists here (C8-C10: legacy not offered).
    if (!has(accepted, Feature.VERSION_1)) {
      return fault(
        'FeatureDependencyMissing',
        'G4',
        'driver did not accept VERSION_1: this device has no legacy interface',
        { index: Feature.VERSION_1 },
      );
    }
    return null;
  }
  protected onDriverOk(): void {}
  /** DRIVER_OK was cleared without a reset. */
  protected onDriverOkCleared(): void {}
  /** Status 0 was written: forget everything the driver set up. */
  protected onDeviceReset(): void {}
  /** The device just entered NEEDS_RESET (G3). */
  protected onNeedsReset(_fault: VirtioFault): void {}

  // ------------------------------------------------------------ state views

  /** DRIVER_OK is set and the device has neither failed nor been given up on. */
  get running(): boolean {
    return (
      (this.status & Status.DRIVER_OK) !== 0 &&
      (this.status & (Status.DEVICE_NEEDS_RESET | Status.FAILED)) === 0
    );
  }

  get driverOk(): boolean {
    return (this.status & Status.DRIVER_OK) !== 0;
  }

  /** The fault that put the device in NEEDS_RESET, with its rule id (G3). */
  get fault(): VirtioFault | null {
    return this.firstFault;
  }

  /** Why the last FEATURES_OK was refused (G4), for the UI. */
  get featureRefusal(): VirtioFault | null {
    return this.refusal;
  }

  get statusNames(): StatusName[] {
    return statusNames(this.status);
  }

  get hostFeatures(): bigint {
    return this.offeredFeatures();
  }

  /** Features in force: the accepted set once FEATURES_OK held, else 0. */
  get negotiatedFeatures(): bigint {
    return this.negotiated;
  }

  hasFeature(bit: number): boolean {
    // Plain numbers: a bigint test allocates, and devices ask per chunk (multiport).
    return bit < 32
      ? (this.negotiatedLow & (1 << bit)) !== 0
      : bit < 64 && (this.negotiatedHigh & (1 << (bit - 32))) !== 0;
  }

  private setNegotiated(features: bigint): void {
    this.negotiated = features;
    this.negotiatedLow = Number(BigInt.asUintN(32, features)) | 0;
    this.negotiatedHigh = Number(BigInt.asUintN(32, features >> 32n)) | 0;
  }

  queueStatus(queue: number): DeviceQueueStatus | null {
    return this.queues[queue]?.status ?? null;
  }

  queueSnapshot(queue: number): QueueSnapshot | null {
    return this.queues[queue]?.snapshot() ?? null;
  }

  queueReady(queue: number): boolean {
    return this.queues[queue] !== undefined;
  }

  /**
   * Every status write the driver makes (reset included), as the device
   * kept it: for the app's record of feature negotiation as it happened.
   */
  onStatusChange(listener: (change: StatusChange) => void): () => void {
    this.statusListeners = [...this.statusListeners, listener];
    return () => {
      this.statusListeners = this.statusListeners.filter((l) => l !== listener);
    };
  }

  private statusChanged(old: number, written: number): void {
    if (this.statusListeners.length === 0) return;
    const change: StatusChange = {
      old,
      written,
      status: this.status,
      driverFeatures: this.driverFeatures,
      negotiated: this.negotiated,
      refusal: this.refusal,
    };
    for (const l of this.statusListeners) l(change);
  }

  onFault(listener: (fault: VirtioFault) => void): () => void {
    this.faultListeners = [...this.faultListeners, listener];
    return () => {
      this.faultListeners = this.faultListeners.filter((l) => l !== listener);
    };
  }

  // -------------------------------------------------------------- transport

  get numQueues(): number {
    return this.queueCount(this.featuresForLayout());
  }

  readDeviceFeatures(): bigint {
    return this.offeredFeatures();
  }

  writeDriverFeatures(features: bigint): void {
    // After FEATURES_OK the set is frozen (virtio 3.1.1); later writes change nothing.
    if (this.status & Status.FEATURES_OK) return;
    this.driverFeatures = BigInt.asUintN(64, features);
  }

  readDriverFeatures(): bigint {
    return this.driverFeatures;
  }

  readStatus(): number {
    return this.status;
  }

  writeStatus(value: number): void {
    value &= 0xff;
    if (value === 0) {
      const before = this.status;
      this.reset();
      this.statusChanged(before, 0);
      return;
    }
    const old = this.status;
    // NEEDS_RESET belongs to the device: the driver can neither set nor clear it.
    let next = (value & ~Status.DEVICE_NEEDS_RESET) | (old & Status.DEVICE_NEEDS_RESET);
    if (next & Status.FEATURES_OK && !(old & Status.FEATURES_OK)) {
      const bad =
        validateAccepted(this.offeredFeatures(), this.driverFeatures) ??
        this.checkFeatures(this.driverFeatures);
      if (bad) {
        // G4: the device refuses by not keeping FEATURES_OK; the driver reads it back.
        this.refusal = bad;
        next &= ~Status.FEATURES_OK;
      } else {
        this.refusal = null;
        this.setNegotiated(this.driverFeatures);
      }
    }
    if (next & Status.DRIVER_OK && !(next & Status.FEATURES_OK)) {
      this.status = next & ~Status.DRIVER_OK;
      this.fail(
        fault(
          'InvalidStatusTransition',
          'G4',
          'driver set DRIVER_OK before feature negotiation completed (FEATURES_OK)',
        ),
      );
      this.statusChanged(old, value);
      return;
    }
    this.status = next;
    this.statusChanged(old, value);
    const wasOk = (old & Status.DRIVER_OK) !== 0;
    const isOk = (next & Status.DRIVER_OK) !== 0;
    if (isOk && !wasOk) {
      this.onDriverOk();
      const waiting = [...this.deferred];
      this.deferred.clear();
      for (const q of waiting) this.scheduleQueue(q);
    } else if (wasOk && !isOk) {
      this.onDriverOkCleared();
    }
  }

  readConfigGeneration(): number {
    return this.generation;
  }

  readIsr(): number {
    const v = this.isr;
    this.isr = 0;
    return v;
  }

  queueMaxSize(queue: number): number {
    if (!Number.isInteger(queue) || queue < 0) return 0;
    const features = this.featuresForLayout();
    if (queue >= this.queueCount(features)) return 0;
    return this.queueSizeMax(queue, features);
  }

  configureQueue(queue: number, addresses: QueueAddresses): VirtioFault | null {
    const max = this.queueMaxSize(queue);
    if (max === 0) return this.failWith(this.noSuchQueue(queue, 'configuration'));
    if (!(this.status & Status.FEATURES_OK)) {
      return this.failWith(
        fault(
          'InvalidStatusTransition',
          'G4',
          `queue ${queue} configured before FEATURES_OK: the ring format is not known yet`,
          { queue },
        ),
      );
    }
    if (!Number.isInteger(addresses.size) || addresses.size < 1 || addresses.size > max) {
      return this.failWith(
        fault(
          'InvalidQueueSize',
          this.hasFeature(Feature.RING_PACKED) ? 'P8' : 'S1',
          `queue ${queue} size ${addresses.size} is not in 1..${max}`,
          { queue, length: addresses.size },
        ),
      );
    }
    this.addresses[queue] = { ...addresses };
    return null;
  }

  enableQueue(queue: number): VirtioFault | null {
    const addresses = this.addresses[queue];
    if (addresses === undefined) {
      return this.failWith(
        fault('QueueNotReady', 'G4', `queue ${queue} enabled before it was configured`, {
          queue,
        }),
      );
    }
    const made = createDeviceQueue(
      {
        index: queue,
        layout: { format: ringFormatOf(this.negotiated), ...addresses },
        features: ringFeaturesOf(this.negotiated),
        limits: this.limits,
        tracer: this.tracer,
      },
      this.memory,
    );
    if (isFault(made)) return this.failWith(made.onQueue(queue));
    this.queues[queue] = made;
    return null;
  }

  notify(queue: number): void {
    if (this.queueMaxSize(queue) === 0) {
      this.fail(this.noSuchQueue(queue, 'notification'));
      return;
    }
    // A kick for a queue the driver never enabled is ignored, as QEMU does.
    if (this.queues[queue] === undefined) return;
    this.scheduleQueue(queue);
  }

  readConfig(offset: number, width: ConfigWidth): number | VirtioFault {
    const bytes = this.configSpace();
    const bad = this.checkConfigAccess(offset, width, bytes.length, 'read');
    if (bad) return this.failWith(bad);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (width === 1) return view.getUint8(offset);
    if (width === 2) return view.getUint16(offset, true);
    return view.getUint32(offset, true);
  }

  writeConfig(offset: number, width: ConfigWidth, value: number): VirtioFault | null {
    const bad = this.checkConfigAccess(offset, width, this.configSpace().length, 'write');
    if (bad) return this.failWith(bad);
    this.configWrite(offset, width, value >>> 0);
    return null;
  }

  setInterruptHandler(handler: InterruptHandler | null): void {
    this.handler = handler;
  }

  // ---------------------------------------------------- helpers for devices

  /** The live queue `q`, or undefined when the driver has not enabled it. */
  protected queue(queue: number): DeviceQueue | undefined {
    return this.queues[queue];
  }

  /** Post a device task for queue `q` (coalesced); before DRIVER_OK it waits (G2). */
  protected scheduleQueue(queue: number): void {
    if (!this.running) {
      if (this.firstFault === null) this.deferred.add(queue);
      return;
    }
    if (this.scheduled[queue] === true) return;
    this.scheduled[queue] = true;
    const epoch = this.epoch;
    const tags = (this.queueTags[queue] ??= {
      label: `${this.name}: queue ${queue}`,
      tag: { device: this.name, queue },
    });
    this.post(
      'device',
      tags.label,
      () => {
        if (epoch !== this.epoch) return;
        this.scheduled[queue] = false;
        if (!this.running) {
          if (this.firstFault === null) this.deferred.add(queue);
          return;
        }
        // Go on only while a chain waits: a task that would pop nothing is a
        // wasted hop (the driver's next kick schedules the queue again).
        if (this.processQueue(queue) && this.running && this.hasAvailable(queue)) {
          this.scheduleQueue(queue);
        }
      },
      tags.tag,
    );
  }

  /** Is a chain available on `q`? A fault puts the device in NEEDS_RESET and reads as false. */
  protected hasAvailable(queue: number): boolean {
    const q = this.queues[queue];
    if (q === undefined || !this.running) return false;
    const r = q.hasAvailable();
    if (isFault(r)) {
      this.fail(r.onQueue(queue));
      return false;
    }
    return r;
  }

  /** The next chain of `q`, or null (none, not running, or a fault that was just handled). */
  protected pop(queue: number): DescriptorChain | null {
    const q = this.queues[queue];
    if (q === undefined || !this.running) return null;
    const r = q.pop();
    if (isFault(r)) {
      this.fail(r.onQueue(queue));
      return null;
    }
    return r;
  }

  /** Return a chain as used; false when that failed (the device is now in NEEDS_RESET). */
  protected push(queue: number, chain: DescriptorChain, written: number): boolean {
    const q = this.queues[queue];
    if (q === undefined) return false;
    const e = q.push(chain, written);
    if (e) {
      this.fail(e.onQueue(queue));
      return false;
    }
    return true;
  }

  /** After pushes: interrupt the driver if the ring asks for it (never before DRIVER_OK, G2). */
  protected signalQueue(queue: number): void {
    const q = this.queues[queue];
    if (q === undefined || !this.running) return;
    const r = q.needsInterrupt();
    if (isFault(r)) {
      this.fail(r.onQueue(queue));
      return;
    }
    if (r) {
      this.isr |= ISR_QUEUE;
      this.handler?.({ kind: 'queue', queue });
    }
  }

  /** Tell the driver the configuration changed (only once DRIVER_OK is set, G2). */
  protected notifyConfigChange(): void {
    this.generation = (this.generation + 1) >>> 0;
    if (!(this.status & Status.DRIVER_OK)) return;
    this.isr |= ISR_CONFIG;
    this.handler?.({ kind: 'config' });
  }

  /**
   * G3: the first fault sets DEVICE_NEEDS_RESET, interrupts the driver with a
   * configuration change if DRIVER_OK was set, and stops the device. Later
   * faults change nothing: the first one is the cause.
   */
  protected fail(problem: VirtioFault): void {
    if (this.firstFault !== null) return;
    this.firstFault = problem;
    this.status |= Status.DEVICE_NEEDS_RESET;
    this.deferred.clear();
    if (this.tracer.active) {
      this.tracer.emit({
        op: 'fault',
        queue: problem.queue ?? -1,
        format: ringFormatOf(this.negotiated),
        rule: problem.rule,
        text: `${this.name}: ${problem.toString()}; the device sets DEVICE_NEEDS_RESET and stops`,
        fault: problem,
      });
    }
    this.onNeedsReset(problem);
    for (const l of this.faultListeners) l(problem);
    if (this.status & Status.DRIVER_OK) {
      this.isr |= ISR_CONFIG;
      this.handler?.({ kind: 'config' });
    }
  }

  private failWith(problem: VirtioFault): VirtioFault {
    this.fail(problem);
    return problem;
  }

  private reset(): void {
    this.epoch++;
    this.status = 0;
    this.driverFeatures = 0n;
    this.setNegotiated(0n);
    this.firstFault = null;
    this.refusal = null;
    this.isr = 0;
    this.addresses = [];
    this.queues = [];
    this.scheduled = [];
    this.deferred.clear();
    this.onDeviceReset();
  }

  /** Before FEATURES_OK the queue layout follows what is offered, after it what was accepted. */
  private featuresForLayout(): bigint {
    return this.status & Status.FEATURES_OK ? this.negotiated : this.offeredFeatures();
  }

  private noSuchQueue(queue: number, what: string): VirtioFault {
    return fault(
      'InvalidQueueIndex',
      'M13',
      `${what} for queue ${queue}, which does not exist (the device has ${this.numQueues} queues)`,
      { queue, index: queue },
    );
  }

  private checkConfigAccess(
    offset: number,
    width: number,
    size: number,
    what: 'read' | 'write',
  ): VirtioFault | null {
    if (
      !Number.isInteger(offset) ||
      offset < 0 ||
      (width !== 1 && width !== 2 && width !== 4) ||
      offset + width > size
    ) {
      return fault(
        'ConfigAccessOutOfRange',
        'M14',
        `config ${what} of ${width} bytes at offset ${offset} is outside the ${size}-byte configuration space`,
        { address: offset, length: width },
      );
    }
    return null;
  }
}
