/**
 * Named fault values for everything a driver (or a fuzzer) can get wrong.
 *
 * Faults are values, not exceptions: queue code returns them and the device
 * turns the first one into NEEDS_RESET (G3). The names follow rust-vmm's
 * virtio-queue where a counterpart exists, and every fault carries the id of
 * the conformance rule it enforces so the UI and the tests can name it.
 *
 * VirtioFault deliberately does not extend Error: building a stack trace for
 * every malformed chain a fuzzer throws at us would dominate the run time,
 * and nothing should ever `throw` one.
 */
import { VmchanError } from '../base/error.js';
import type { RuleId } from '../base/rule-ids.js';

/** A conformance rule id of docs/CONFORMANCE.md (S11, M3, ...). */
export type { RuleId };

export type FaultKind =
  // guest memory
  | 'GuestMemoryOutOfRange'
  | 'InvalidGuestMemoryLayout'
  // queue setup (S1, P8)
  | 'InvalidQueueSize'
  | 'MisalignedRing'
  | 'QueueNotReady'
  // available ring / descriptors
  /** M1: avail.idx more than the queue size ahead of what the device consumed. */
  | 'AvailIndexTooFarAhead'
  /** S8: avail.idx moved back below what the driver had already published. */
  | 'AvailIndexWentBackwards'
  | 'InvalidDescriptorIndex'
  | 'DescriptorChainLoop'
  | 'ChainTooLong'
  | 'ChainLengthOverflow'
  | 'InvalidIndirectTableLength'
  | 'NestedIndirectDescriptor'
  | 'IndirectWithNext'
  | 'IndirectNotNegotiated'
  | 'ReadableAfterWritable'
  | 'ZeroLengthDescriptor'
  | 'EmptyChain'
  /** M9: more buffers (or ring slots) in flight than the queue size. */
  | 'TooManyBuffersInFlight'
  /** M9: a head made available again while the device still holds its chain. */
  | 'HeadAlreadyInFlight'
  | 'WrongBufferDirection'
  | 'InvalidBufferId'
  // used ring
  | 'DuplicateUsedHead'
  | 'UsedLengthTooLarge'
  | 'UnknownUsedId'
  // driver side bookkeeping
  | 'QueueFull'
  | 'NoBuffers'
  // device / transport
  | 'InvalidQueueIndex'
  | 'ConfigAccessOutOfRange'
  | 'FeatureDependencyMissing'
  | 'FeatureNotOffered'
  | 'InvalidStatusTransition'
  | 'DeviceNeedsReset'
  // console device (C*, M11, M12)
  | 'MalformedControlMessage'
  | 'ControlBufferTooSmall';

export interface FaultDetails {
  /** Queue index the fault was seen on, when it concerns a queue. */
  queue?: number;
  /** Descriptor index, ring index or buffer id involved. */
  index?: number;
  /** Guest-physical address involved. */
  address?: number;
  /** Length involved (bytes or entries, see the message). */
  length?: number;
}

export class VirtioFault extends VmchanError<FaultKind> {
  readonly domain = 'virtio';
  readonly queue: number | undefined;
  readonly index: number | undefined;
  readonly address: number | undefined;
  readonly length: number | undefined;

  constructor(
    kind: FaultKind,
    readonly rule: RuleId,
    message: string,
    details: FaultDetails = {},
  ) {
    super(kind, message);
    this.queue = details.queue;
    this.index = details.index;
    this.address = details.address;
    this.length = details.length;
  }

  /** A copy of this fault attributed to a queue (faults from memory know no queue). */
  onQueue(queue: number): VirtioFault {
    if (this.queue === queue) return this;
    return new VirtioFault(this.kind, this.rule, this.message, {
      queue,
      index: this.index,
      address: this.address,
      length: this.length,
    });
  }

  /** One line for logs and the UI: `M2 InvalidDescriptorIndex: ... (queue 4)`. */
  override toString(): string {
    const where = this.queue === undefined ? '' : ` (queue ${this.queue})`;
    return `${this.rule} ${this.kind}: ${this.message}${where}`;
  }

  override toJSON(): Record<string, unknown> {
    return {
      kind: this.kind,
      rule: this.rule,
      message: this.message,
      queue: this.queue,
      index: this.index,
      address: this.address,
      length: this.length,
    };
  }
}

export function isFault(value: unknown): value is VirtioFault {
  return value instanceof VirtioFault;
}

export function fault(
  kind: FaultKind,
  rule: RuleId,
  message: string,
  details?: FaultDetails,
): VirtioFault {
  return new VirtioFault(kind, rule, message, details);
}

export function hex(n: number): string {
  return '0x' + n.toString(16);
}
