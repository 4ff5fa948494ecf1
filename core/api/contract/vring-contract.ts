/**
 * The vring view's part of the contract (contract.ts spreads these into its
 * command union and result table): one virtqueue as the view draws it, the
 * ring operations of the step log, the device's status and feature
 * negotiation as they happened, and the faults a person can inject on
 * purpose (M2, M3, M4, M5, M8) to watch the device refuse them.
 *
 * Pure data and zod schemas, importing only zod and the list of ring
 * operations (core/virtio/trace.ts, itself pure): the renderer imports it,
 * and contract.ts imports it (so it must not import contract.ts).
 */
import { z } from 'zod';
import { INJECTABLE_RULE_IDS, INJECTABLE_RULES } from '../../virtio/fault-injection.js';
import { RING_OPS } from '../../virtio/trace.js';

const Int = z.number().int();
const DeviceName = z.string().min(1).max(128);
const QueueNr = Int.min(0).max(1024);

// --------------------------------------------------------------- snapshots

export const SplitDescSchema = z.object({
  index: Int,
  addr: z.number(),
  len: z.number(),
  flags: Int,
  flagNames: z.array(z.string()),
  next: Int,
});

export const SplitRingSchema = z.object({
  format: z.literal('split'),
  index: Int,
  size: Int,
  eventIdx: z.boolean(),
  descAddr: z.number(),
  driverAddr: z.number(),
  deviceAddr: z.number(),
  descriptors: z.array(SplitDescSchema),
  avail: z.object({
    flags: Int,
    idx: Int,
    ring: z.array(Int),
    usedEvent: Int.nullable(),
  }),
  used: z.object({
    flags: Int,
    idx: Int,
    ring: z.array(z.object({ id: Int, len: z.number() })),
    availEvent: Int.nullable(),
  }),
  device: z
    .object({
      lastAvailIdx: Int,
      usedIdx: Int,
      signalledUsed: Int.nullable(),
      inFlight: z.array(Int),
    })
    .nullable(),
  chainsInFlight: z.array(z.object({ head: Int, descriptors: z.array(Int) })),
  unreadable: z.array(z.string()),
});
export type SplitRing = z.infer<typeof SplitRingSchema>;

export const PackedDescSchema = z.object({
  index: Int,
  addr: z.number(),
  len: z.number(),
  id: Int,
  flags: Int,
  flagNames: z.array(z.string()),
  avail: z.boolean(),
  used: z.boolean(),
});

export const EventSuppressionSchema = z.object({
  flags: Int,
  flagName: z.enum(['ENABLE', 'DISABLE', 'DESC', 'RESERVED']),
  offset: Int,
  wrap: z.boolean(),
});

export const PackedRingSchema = z.object({
  format: z.literal('packed'),
  index: Int,
  size: Int,
  eventIdx: z.boolean(),
  descAddr: z.number(),
  driverAddr: z.number(),
  deviceAddr: z.number(),
  descriptors: z.array(PackedDescSchema),
  driverEvent: EventSuppressionSchema,
  deviceEvent: EventSuppressionSchema,
  device: z
    .object({
      nextAvail: Int,
      availWrap: z.boolean(),
      nextUsed: Int,
      usedWrap: z.boolean(),
      signalledUsed: Int.nullable(),
      inFlight: z.array(Int),
    })
    .nullable(),
  chainsInFlight: z.array(z.object({ id: Int, head: Int, descriptors: z.array(Int) })),
  unreadable: z.array(z.string()),
});
export type PackedRing = z.infer<typeof PackedRingSchema>;

export const RingSchema = z.discriminatedUnion('format', [SplitRingSchema, PackedRingSchema]);
export type Ring = z.infer<typeof RingSchema>;

// ------------------------------------------------------------ ring operations

export const RingOpNameSchema = z.enum(RING_OPS);
export type RingOpName = z.infer<typeof RingOpNameSchema>;

/** One ring operation (core/virtio/trace.ts's RingTraceEvent) as the step log shows it. */
export const RingOpSchema = z.object({
  /** Order among this service's ring operations. */
  seq: Int,
  time: z.number(),
  /** The step (vringStep) it happened in; null when the engine ran free. */
  step: Int.nullable(),
  op: RingOpNameSchema,
  queue: Int,
  format: z.enum(['split', 'packed']),
  head: Int.nullable(),
  id: Int.nullable(),
  descCount: Int.nullable(),
  len: z.number().nullable(),
  idx: Int.nullable(),
  sent: z.boolean().nullable(),
  rule: z.string(),
  text: z.string(),
});
export type RingOp = z.infer<typeof RingOpSchema>;

// ------------------------------------------------------- status and features

export const NegotiationStepSchema = z.enum([
  'reset',
  'ACKNOWLEDGE',
  'DRIVER',
  'offered',
  'accepted',
  'FEATURES_OK',
  'FEATURES_OK refused',
  'DRIVER_OK',
  'DRIVER_OK cleared',
  'FAILED',
  'NEEDS_RESET',
]);
export type NegotiationStep = z.infer<typeof NegotiationStepSchema>;

export const NegotiationEntrySchema = z.object({
  seq: Int,
  time: z.number(),
  step: NegotiationStepSchema,
  /** Status bits after this step. */
  status: z.array(z.string()),
  /** Feature names (offered, accepted) for those steps, else null. */
  features: z.array(z.string()).nullable(),
  /** The same set as a hex number. */
  bits: z.string().nullable(),
  /** The rule behind it (G4 for negotiation, the fault's rule for NEEDS_RESET). */
  rule: z.string().nullable(),
  text: z.string(),
});
export type NegotiationEntry = z.infer<typeof NegotiationEntrySchema>;

export const VringDeviceStateSchema = z.object({
  name: z.string(),
  state: z.enum(['running', 'needs-reset', 'stopped']),
  status: z.array(z.string()),
  fault: z.object({ rule: z.string(), message: z.string() }).nullable(),
  offered: z.array(z.string()),
  negotiated: z.array(z.string()),
});
export type VringDeviceState = z.infer<typeof VringDeviceStateSchema>;

/** A queue a person can pick: every port's pair and the control queues. */
export const QueueChoiceSchema = z.object({
  queue: Int,
  /** `rx port 1`, `control tx`, ... */
  role: z.string(),
  direction: z.enum(['host-to-guest', 'guest-to-host']),
  ready: z.boolean(),
});
export type QueueChoice = z.infer<typeof QueueChoiceSchema>;

/** Everything the vring view draws for one queue. */
export const VringViewSchema = z.object({
  device: z.string(),
  queue: Int,
  role: z.string(),
  /** Receive queues (even) carry data to the guest, transmit queues (odd) from it. */
  direction: z.enum(['host-to-guest', 'guest-to-host']),
  /** Changes whenever anything on the view changed (getVringView's `since`). */
  version: Int,
  /** Null when the driver has not set the queue up (or the device is reset). */
  ring: RingSchema.nullable(),
  deviceState: VringDeviceStateSchema,
  negotiation: z.array(NegotiationEntrySchema),
  /** The newest ring operations of this device (all queues), oldest first. */
  log: z.array(RingOpSchema),
  queues: z.array(QueueChoiceSchema),
});
export type VringView = z.infer<typeof VringViewSchema>;

// ---------------------------------------------------------------- faults

/** The rules a fault on purpose can break, declared with the writer (core/virtio/fault-injection.ts). */
export const InjectableFaultSchema = z.enum(INJECTABLE_RULE_IDS);
export type InjectableFault = z.infer<typeof InjectableFaultSchema>;

/** What each one writes, for the fault menu. */
export const INJECTABLE_FAULTS: Readonly<Record<InjectableFault, string>> = INJECTABLE_RULES;

// --------------------------------------------------------------- commands

export const VringCommandSchemas = [
  /**
   * One queue for the vring view. With `since` (the version the screen has)
   * the answer is `{changed: false}` and no view when nothing moved: a screen
   * can ask every frame and only a changed queue travels.
   */
  z.object({
    cmd: z.literal('getVringView'),
    device: DeviceName,
    queue: QueueNr,
    since: Int.min(0).optional(),
  }),
  /**
   * Step mode: pause the engine and run tasks until `count` of them did ring
   * work on this device (tasks without any are run too, and listed).
   */
  z.object({
    cmd: z.literal('vringStep'),
    device: DeviceName,
    queue: QueueNr,
    count: Int.min(1).max(100).optional(),
  }),
  /**
   * Write a malformed chain into the guest's own ring memory the way a buggy
   * driver would, publish it and kick the queue: the device refuses it
   * (NEEDS_RESET with the rule) when it walks the chain.
   */
  z.object({
    cmd: z.literal('injectFault'),
    device: DeviceName,
    queue: QueueNr,
    fault: InjectableFaultSchema,
  }),
] as const;

export const GetVringViewResultSchema = z.object({
  changed: z.boolean(),
  version: Int,
  view: VringViewSchema.nullable(),
});
export type GetVringViewResult = z.infer<typeof GetVringViewResultSchema>;

export const InjectFaultResultSchema = z.object({
  fault: InjectableFaultSchema,
  /** Which descriptors were written, how, and where the chain was published. */
  text: z.string(),
  /** Descriptor indices (split) or ring slots (packed) written. */
  descriptors: z.array(Int),
  view: VringViewSchema,
});
export type InjectFaultResult = z.infer<typeof InjectFaultResultSchema>;
