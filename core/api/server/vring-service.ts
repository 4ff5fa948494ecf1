/**
 * The vring view and step mode behind the API (service.ts hands it the
 * getVringView, vringStep and injectFault commands):
 *
 * - one queue's rings as the view draws them, with a version that moves
 *   only when something on the view moved (a ring operation on the queue,
 *   a status change, a fault, a port plugged or unplugged), so a screen can
 *   ask every frame and only a changed queue travels;
 * - the ring operations (core/virtio/trace.ts) of each watched device, with
 *   the step they happened in, for the step log; the tracer is listened to
 *   only while a screen looks at the device (emitters build nothing when
 *   nobody listens), and let go after a few idle seconds;
 * - the device's status and feature negotiation as they happened, recorded
 *   from the first status write of the guest's probe (at lab start);
 * - faults on purpose: the device and queue checked, the malformed chain
 *   written by core/virtio/fault-injection.ts, then the queue kicked.
 */
import { isVmchanError } from '../../base/error.js';
import type { Lab } from '../../engine/lab.js';
import type { VirtioSerialDevice } from '../../serial/device.js';
import { queueRole } from '../../serial/layout.js';
import type { StatusChange } from '../../virtio/device.js';
import type { VirtioFault } from '../../virtio/fault.js';
import { injectChain } from '../../virtio/fault-injection.js';
import { Feature, featureBits } from '../../virtio/features.js';
import type { QueueSnapshot } from '../../virtio/queue.js';
import { Status, statusNames } from '../../virtio/status.js';
import type { RingTraceEvent } from '../../virtio/trace.js';
import { fail, ok, type Result } from '../contract/contract.js';
import { failWith } from './api-error.js';
import type {
  GetVringViewResult,
  InjectableFault,
  InjectFaultResult,
  NegotiationEntry,
  NegotiationStep,
  QueueChoice,
  Ring,
  RingOp,
  VringView,
} from '../contract/vring-contract.js';

/** Ring operations kept per device (the step log). */
const MAX_OPS = 400;
/** Ring operations a view carries (its queue's newest, and faults). */
const VIEW_OPS = 60;
const MAX_NEGOTIATION = 100;
/** A device nobody looked at for this long stops being traced. */
const IDLE_MS = 5000;
/** Tasks one vringStep may run while looking for ring work. */
const MAX_TASKS_PER_STEP = 10_000;

const FEATURE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(Feature).map(([name, b]) => [b, name]),
);

export function featureNames(features: bigint): string[] {
  return featureBits(features).map((b) => FEATURE_NAMES[b] ?? `bit ${b}`);
}

function bitsHex(features: bigint): string {
  return `0x${features.toString(16).padStart(16, '0')}`;
}

export function queueRoleText(queue: number): string {
  const role = queueRole(queue);
  return 'port' in role ? `${role.role} port ${role.port}` : role.role.replace('-', ' ');
}

/** Receive queues (and control rx) carry data to the guest; transmit queues from it. */
export function queueDirection(queue: number): 'host-to-guest' | 'guest-to-host' {
  const role = queueRole(queue).role;
  return role === 'rx' || role === 'control-rx' ? 'host-to-guest' : 'guest-to-host';
}

interface DeviceRecord {
  device: VirtioSerialDevice;
  negotiation: NegotiationEntry[];
  ops: RingOp[];
  /** Ring operations seen since tracing began (all queues). */
  opsTotal: number;
  traceOff: (() => void) | null;
  touched: number;
  /** Version of each queue's last ring operation. */
  versions: Map<number, number>;
  /** Version of the last change that shows on every queue's view. */
  base: number;
  offs: (() => void)[];
}

export class VringService {
  private readonly records = new Map<VirtioSerialDevice, DeviceRecord>();
  private lab: Lab | null = null;
  /** One clock for every version, so no two views ever share one by accident. */
  private clock = 0;
  private opSeq = 0;
  private negotiationSeq = 0;
  private stepSeq = 0;
  /** The step running now (ring operations are stamped with it). */
  private currentStep: number | null = null;
  /** Ring operations of the step running now, all devices. */
  private stepOps: RingOp[] | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Hear a new lab from its start (before the guest probes its devices):
   * status changes and faults of every device, ports coming and going.
   * Returns the unsubscribe (the lab is switched or closed).
   */
  listen(lab: Lab): () => void {
    this.dispose();
    this.lab = lab;
    this.watchDevices();
    const bump = (e: { device: string }): void => {
      const d = lab.device(e.device);
      const rec = d === undefined ? undefined : this.records.get(d);
      if (rec !== undefined) rec.base = ++this.clock;
    };
    const offs = [lab.events.on('port-added', bump), lab.events.on('port-removed', bump)];
    return () => {
      for (const off of offs) off();
      this.dispose();
    };
  }

  /** Start recording devices added since (call after a device is created). */
  watchDevices(): void {
    const lab = this.lab;
    if (lab === null) return;
    for (const device of lab.registry.devices) {
      if (!this.records.has(device)) this.records.set(device, this.makeRecord(device));
    }
  }

  private dispose(): void {
    for (const rec of this.records.values()) {
      rec.traceOff?.();
      for (const off of rec.offs) off();
    }
    this.records.clear();
    this.lab = null;
  }

  private makeRecord(device: VirtioSerialDevice): DeviceRecord {
    const rec: DeviceRecord = {
      device,
      negotiation: [],
      ops: [],
      opsTotal: 0,
      traceOff: null,
      touched: 0,
      versions: new Map(),
      base: ++this.clock,
      offs: [],
    };
    rec.offs.push(
      device.onStatusChange((change) => this.statusChanged(rec, change)),
      device.onFault((problem) => this.faulted(rec, problem)),
    );
    return rec;
  }

  // ------------------------------------------------------------ negotiation

  private record(
    rec: DeviceRecord,
    step: NegotiationStep,
    status: number,
    text: string,
    extra: { features?: bigint; rule?: string } = {},
  ): void {
    rec.negotiation.push({
      seq: ++this.negotiationSeq,
      time: this.now(),
      step,
      status: statusNames(status),
      features: extra.features === undefined ? null : featureNames(extra.features),
      bits: extra.features === undefined ? null : bitsHex(extra.features),
      rule: extra.rule ?? null,
      text,
    });
    if (rec.negotiation.length > MAX_NEGOTIATION) rec.negotiation.splice(0, 1);
    rec.base = ++this.clock;
  }

  private statusChanged(rec: DeviceRecord, c: StatusChange): void {
    const name = rec.device.name;
    if (c.written === 0) {
      this.record(
        rec,
        'reset',
        0,
        `${name}: the driver wrote status 0: reset, everything forgotten`,
        {
          rule: 'G4',
        },
      );
      return;
    }
    const set = c.status & ~c.old;
    if (set & Status.ACKNOWLEDGE)
      this.record(
        rec,
        'ACKNOWLEDGE',
        c.status,
        `${name}: the guest noticed the device (ACKNOWLEDGE)`,
        {
          rule: 'G4',
        },
      );
    if (set & Status.DRIVER) {
      this.record(rec, 'DRIVER', c.status, `${name}: the guest has a driver for it (DRIVER)`, {
        rule: 'G4',
      });
      this.record(
        rec,
        'offered',
        c.status,
        `${name}: the device offers ${featureNames(rec.device.hostFeatures).join(', ')}`,
        { features: rec.device.hostFeatures, rule: 'G1' },
      );
    }
    const askedFeaturesOk = (c.written & Status.FEATURES_OK) !== 0 && !(c.old & Status.FEATURES_OK);
    if (askedFeaturesOk) {
      this.record(
        rec,
        'accepted',
        c.status,
        `${name}: the driver accepts ${featureNames(c.driverFeatures).join(', ') || 'nothing'}`,
        { features: c.driverFeatures, rule: 'G4' },
      );
      if (c.status & Status.FEATURES_OK) {
        this.record(
          rec,
          'FEATURES_OK',
          c.status,
          `${name}: FEATURES_OK: the device keeps the accepted set; the ring format is now fixed`,
          { features: c.negotiated, rule: 'G4' },
        );
      } else {
        this.record(
          rec,
          'FEATURES_OK refused',
          c.status,
          `${name}: FEATURES_OK refused: ${c.refusal?.message ?? 'the device did not keep it'}`,
          { features: c.driverFeatures, rule: c.refusal?.rule ?? 'G4' },
        );
      }
    }
    if (set & Status.DRIVER_OK)
      this.record(
        rec,
        'DRIVER_OK',
        c.status,
        `${name}: DRIVER_OK: queues are set up, the device may use the rings now`,
        { rule: 'G2' },
      );
    if (c.old & Status.DRIVER_OK && !(c.status & Status.DRIVER_OK))
      this.record(rec, 'DRIVER_OK cleared', c.status, `${name}: the driver cleared DRIVER_OK`, {
        rule: 'G2',
      });
    if (set & Status.FAILED)
      this.record(rec, 'FAILED', c.status, `${name}: the driver gave up on the device (FAILED)`, {
        rule: 'G4',
      });
  }

  private faulted(rec: DeviceRecord, problem: VirtioFault): void {
    this.record(
      rec,
      'NEEDS_RESET',
      rec.device.readStatus(),
      `${rec.device.name}: NEEDS_RESET (${problem.rule}): ${problem.message}`,
      { rule: problem.rule },
    );
  }

  // ---------------------------------------------------------------- tracing

  /** Make sure the device's ring operations are being recorded; let idle ones go. */
  private touch(rec: DeviceRecord): void {
    const now = this.now();
    rec.touched = now;
    if (rec.traceOff === null) {
      rec.traceOff = rec.device.tracer.on((e) => this.traced(rec, e));
      rec.base = ++this.clock; // what happened unseen: the next view is fresh
    }
    for (const other of this.records.values()) {
      if (other !== rec && other.traceOff !== null && now - other.touched > IDLE_MS) {
        other.traceOff();
        other.traceOff = null;
      }
    }
  }

  private traced(rec: DeviceRecord, e: RingTraceEvent): void {
    const op: RingOp = {
      seq: ++this.opSeq,
      time: this.now(),
      step: this.currentStep,
      op: e.op,
      queue: e.queue,
      format: e.format,
      head: e.head ?? null,
      id: e.id ?? null,
      descCount: e.descCount ?? null,
      len: e.len ?? null,
      idx: e.idx ?? null,
      sent: e.sent ?? null,
      rule: e.rule,
      text: e.text,
    };
    rec.ops.push(op);
    if (rec.ops.length > MAX_OPS) rec.ops.splice(0, rec.ops.length - MAX_OPS);
    rec.opsTotal++;
    const v = ++this.clock;
    if (e.op === 'fault') rec.base = v;
    else rec.versions.set(e.queue, v);
    this.stepOps?.push(op);
  }

  // ------------------------------------------------------------------ views

  private lookup(name: string, queue: number): { rec: DeviceRecord } | { error: Result<never> } {
    const device = this.lab?.device(name);
    if (device === undefined) return { error: fail('NotFound', `Device '${name}' not found`) };
    this.watchDevices();
    const rec = this.records.get(device)!;
    if (queue >= device.numQueues) {
      return {
        error: fail(
          'NotFound',
          `${device.name} has no queue ${queue} (it has ${device.numQueues}: 0 to ${device.numQueues - 1})`,
        ),
      };
    }
    return { rec };
  }

  private version(rec: DeviceRecord, queue: number): number {
    return Math.max(rec.base, rec.versions.get(queue) ?? 0);
  }

  /** One queue's view; `since` equal to its version: nothing changed, no view travels. */
  view(name: string, queue: number, since?: number): Result<GetVringViewResult> {
    const found = this.lookup(name, queue);
    if ('error' in found) return found.error;
    const { rec } = found;
    this.touch(rec);
    const version = this.version(rec, queue);
    if (since === version) return ok({ changed: false, version, view: null });
    return ok({ changed: true, version, view: this.build(rec, queue, version) });
  }

  private build(rec: DeviceRecord, queue: number, version: number): VringView {
    const d = rec.device;
    const snap = d.queueSnapshot(queue);
    const log: RingOp[] = [];
    for (let i = rec.ops.length - 1; i >= 0 && log.length < VIEW_OPS; i--) {
      const op = rec.ops[i]!;
      if (op.queue === queue || op.op === 'fault') log.push(op);
    }
    log.reverse();
    const fault = d.fault;
    return {
      device: d.name,
      queue,
      role: queueRoleText(queue),
      direction: queueDirection(queue),
      version,
      ring: snap === null ? null : ringOf(snap),
      deviceState: {
        name: d.name,
        state: fault !== null ? 'needs-reset' : d.running ? 'running' : 'stopped',
        status: d.statusNames,
        fault: fault === null ? null : { rule: fault.rule, message: fault.message },
        offered: featureNames(d.hostFeatures),
        negotiated: featureNames(d.negotiatedFeatures),
      },
      negotiation: rec.negotiation.slice(),
      log,
      queues: queueChoices(d),
    };
  }

  // ------------------------------------------------------------------- steps

  /**
   * Step mode: pause the engine, then run tasks until `count` of them did
   * ring work on this device (a backend's I/O completion does none and runs
   * on the way). Every ring operation of the step comes back, oldest first.
   */
  step(
    name: string,
    queue: number,
    count: number,
  ): Result<{ ran: string[]; ops: RingOp[]; view: VringView }> {
    const found = this.lookup(name, queue);
    if ('error' in found) return found.error;
    const { rec } = found;
    this.touch(rec);
    const sch = this.lab!.scheduler;
    if (sch.mode !== 'step') sch.setMode('step');
    const ran: string[] = [];
    const ops: RingOp[] = [];
    this.stepOps = ops;
    try {
      let done = 0;
      for (let tasks = 0; done < count && tasks < MAX_TASKS_PER_STEP; tasks++) {
        const before = rec.opsTotal;
        this.currentStep = ++this.stepSeq;
        const t = sch.step();
        if (t === null) break;
        ran.push(`#${t.seq} ${t.kind}: ${t.label}`);
        if (rec.opsTotal > before) done++;
      }
    } finally {
      this.currentStep = null;
      this.stepOps = null;
    }
    return ok({
      ran: ran.slice(-50),
      ops: ops.slice(-200),
      view: this.build(rec, queue, this.version(rec, queue)),
    });
  }

  // ------------------------------------------------------------------ faults

  /** Write a malformed chain as a buggy driver would, publish it, kick the queue. */
  inject(name: string, queue: number, kind: InjectableFault): Result<InjectFaultResult> {
    const found = this.lookup(name, queue);
    if ('error' in found) return found.error;
    const { rec } = found;
    this.touch(rec);
    const d = rec.device;
    const snap = d.queueSnapshot(queue);
    if (snap === null)
      return fail(
        'Refused',
        `queue ${queue} of ${d.name} is not set up: the guest has no ring there yet`,
      );
    if (d.fault !== null)
      return fail(
        'Refused',
        `${d.name} is already in NEEDS_RESET (${d.fault.rule}); reload the lab to start again`,
      );
    const written = injectChain(this.lab!.memory, snap, kind);
    if (isVmchanError(written)) return failWith(written);
    // The kick: a notification on the queue, as the driver's notify register write.
    d.notify(queue);
    return ok({
      fault: kind,
      text: written.text,
      descriptors: written.descriptors,
      view: this.build(rec, queue, this.version(rec, queue)),
    });
  }
}

/** The engine's snapshot as the contract carries it. */
export function ringOf(s: QueueSnapshot): Ring {
  const where = {
    descAddr: s.layout.descAddr,
    driverAddr: s.layout.driverAddr,
    deviceAddr: s.layout.deviceAddr,
  };
  if (s.format === 'split') {
    return {
      format: 'split',
      index: s.index,
      size: s.size,
      eventIdx: s.eventIdx,
      ...where,
      descriptors: s.descriptors,
      avail: s.avail,
      used: s.used,
      device: s.device,
      chainsInFlight: s.chainsInFlight,
      unreadable: s.unreadable,
    };
  }
  return {
    format: 'packed',
    index: s.index,
    size: s.size,
    eventIdx: s.eventIdx,
    ...where,
    descriptors: s.descriptors,
    driverEvent: s.driverEvent,
    deviceEvent: s.deviceEvent,
    device: s.device,
    chainsInFlight: s.chainsInFlight,
    unreadable: s.unreadable,
  };
}

/** The control queues and each plugged port's pair, in queue order. */
export function queueChoices(d: VirtioSerialDevice): QueueChoice[] {
  const qs: number[] = [];
  if (d.multiport) qs.push(2, 3);
  for (const p of d.ports) {
    const pair = p.nr === 0 ? [0, 1] : [2 * p.nr + 2, 2 * p.nr + 3];
    for (const q of pair) if (q < d.numQueues) qs.push(q);
  }
  qs.sort((x, y) => x - y);
  return [...new Set(qs)].map((queue) => ({
    queue,
    role: queueRoleText(queue),
    direction: queueDirection(queue),
    ready: d.queueReady(queue),
  }));
}
