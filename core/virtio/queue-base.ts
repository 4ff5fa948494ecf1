/**
 * What the device and the driver side of one ring format share: the queue's
 * fields unpacked from QueueOptions, fault building and tracing, and wrap
 * traces. The hot paths read the unpacked fields as plain own properties of
 * the queue, exactly as before the sides shared them.
 *
 * This module imports neither split-queue.ts nor packed-queue.ts, so the
 * import cycles between each queue module and its driver module never reach
 * a base class before it is defined.
 */
import { VirtioFault, type FaultKind, type RuleId } from './fault.js';
import type { GuestMemory } from './memory.js';
import {
  splitRingSizes,
  type QueueFormat,
  type QueueLayout,
  type QueueOptions,
  type RingFeatures,
} from './queue.js';
import type { RingTracer } from './trace.js';

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Emit the 'fault' event for `f` (text: prefix, the fault, suffix) when someone listens; returns `f`. */
export function traceFault(
  tracer: RingTracer | null,
  queue: number,
  format: QueueFormat,
  f: VirtioFault,
  prefix = '',
  suffix = '',
): VirtioFault {
  if (tracer !== null && tracer.active) {
    tracer.emit({
      op: 'fault',
      queue,
      format,
      rule: f.rule,
      text: `${prefix}${f.toString()}${suffix}`,
      fault: f,
    });
  }
  return f;
}

/** Both sides of a split queue: the layout unpacked into ring addresses. */
export abstract class SplitQueueBase {
  readonly format = 'split' as const;
  readonly index: number;
  readonly size: number;
  protected readonly layout: QueueLayout;
  protected readonly memory: GuestMemory;
  protected readonly tracer: RingTracer | null;
  protected readonly mask: number;
  protected readonly descAddr: number;
  protected readonly availAddr: number;
  protected readonly usedAddr: number;
  protected readonly usedEventAddr: number;
  protected readonly availEventAddr: number;
  protected readonly indirectOk: boolean;
  protected readonly eventIdx: boolean;

  protected constructor(options: QueueOptions, memory: GuestMemory) {
    const { layout, features } = options;
    const size = layout.size;
    this.index = options.index;
    this.size = size;
    this.layout = { ...layout };
    this.memory = memory;
    this.tracer = options.tracer ?? null;
    this.mask = size - 1;
    this.descAddr = layout.descAddr;
    this.availAddr = layout.driverAddr;
    this.usedAddr = layout.deviceAddr;
    this.usedEventAddr = layout.driverAddr + 4 + 2 * size;
    this.availEventAddr = layout.deviceAddr + 4 + 8 * size;
    this.indirectOk = features.indirect;
    this.eventIdx = features.eventIdx;
    // The rings are fixed for the queue's life and guest memory's regions
    // never move, so when both areas (event fields included) lie inside
    // memory, as create() checks (M8), ring fields are read and written
    // through the region's view with no range lookup per field. An
    // unchecked layout keeps the checked accessors, which name the fault.
    const bytes = splitRingSizes(size);
    const avail = memory.span(this.availAddr, bytes.avail);
    const used = memory.span(this.usedAddr, bytes.used);
    this.availView = avail?.view ?? null;
    this.availOff = avail === null ? 0 : this.availAddr - avail.base;
    this.usedView = used?.view ?? null;
    this.usedOff = used === null ? 0 : this.usedAddr - used.base;
    const desc = memory.span(this.descAddr, bytes.desc);
    this.descView = desc?.view ?? null;
    this.descOff = desc === null ? 0 : this.descAddr - desc.base;
  }

  /** The descriptor table through its region's view, as the rings (null: take checked reads). */
  protected readonly descView: DataView | null;
  protected readonly descOff: number;

  // Ring fields by offset into their area: avail (flags 0, idx 2, ring 4 +
  // 2i, used_event 4 + 2 size) and used (flags 0, idx 2, ring 4 + 8i,
  // avail_event 4 + 8 size).
  private readonly availView: DataView | null;
  private readonly availOff: number;
  private readonly usedView: DataView | null;
  private readonly usedOff: number;

  protected availRead16(off: number): number | VirtioFault {
    const v = this.availView;
    return v !== null
      ? v.getUint16(this.availOff + off, true)
      : this.memory.read16(this.availAddr + off);
  }

  protected availWrite16(off: number, value: number): VirtioFault | null {
    const v = this.availView;
    if (v === null) return this.memory.write16(this.availAddr + off, value);
    v.setUint16(this.availOff + off, value, true);
    return null;
  }

  protected usedRead16(off: number): number | VirtioFault {
    const v = this.usedView;
    return v !== null
      ? v.getUint16(this.usedOff + off, true)
      : this.memory.read16(this.usedAddr + off);
  }

  protected usedRead32(off: number): number | VirtioFault {
    const v = this.usedView;
    return v !== null
      ? v.getUint32(this.usedOff + off, true)
      : this.memory.read32(this.usedAddr + off);
  }

  protected usedWrite16(off: number, value: number): VirtioFault | null {
    const v = this.usedView;
    if (v === null) return this.memory.write16(this.usedAddr + off, value);
    v.setUint16(this.usedOff + off, value, true);
    return null;
  }

  protected usedWrite32(off: number, value: number): VirtioFault | null {
    const v = this.usedView;
    if (v === null) return this.memory.write32(this.usedAddr + off, value);
    v.setUint32(this.usedOff + off, value >>> 0, true);
    return null;
  }

  /** Trace a fault as this side reports it, and return it. */
  protected abstract traceFault(f: VirtioFault): VirtioFault;

  /** Build a fault on this queue (not traced). */
  protected fault(
    kind: FaultKind,
    rule: RuleId,
    message: string,
    index?: number,
    address?: number,
    length?: number,
  ): VirtioFault {
    return new VirtioFault(kind, rule, message, { queue: this.index, index, address, length });
  }

  /** Build, trace and return a fault. */
  protected fail(
    kind: FaultKind,
    rule: RuleId,
    message: string,
    index?: number,
    address?: number,
    length?: number,
  ): VirtioFault {
    return this.traceFault(this.fault(kind, rule, message, index, address, length));
  }

  protected traceWrap(t: RingTracer, what: string, rule: RuleId): void {
    t.emit({
      op: 'wrap',
      queue: this.index,
      format: 'split',
      idx: 0,
      rule,
      text: `${what} wrapped from 65535 to 0: ring indices are free-running 16-bit counters, the slot is idx mod ${this.size}`,
    });
  }
}

/** Both sides of a packed queue: the layout unpacked, and the two ring positions. */
export abstract class PackedQueueBase {
  readonly format = 'packed' as const;
  readonly index: number;
  readonly size: number;

  protected readonly memory: GuestMemory;
  protected readonly layout: QueueLayout;
  protected readonly descAddr: number;
  /** Driver area: the driver writes it to ask for (or waive) interrupts, the device reads it. */
  protected readonly driverEventAddr: number;
  /** Device area: the device writes it to ask for (or waive) kicks, the driver reads it. */
  protected readonly deviceEventAddr: number;
  protected readonly features: RingFeatures;
  protected readonly tracer: RingTracer | null;

  // Both wrap counters start at 1 (P1).
  protected nextAvail = 0;
  protected availWrap = true;
  protected nextUsed = 0;
  protected usedWrap = true;

  protected constructor(options: QueueOptions, memory: GuestMemory) {
    this.index = options.index;
    this.size = options.layout.size;
    this.memory = memory;
    this.layout = { ...options.layout };
    this.descAddr = options.layout.descAddr;
    this.driverEventAddr = options.layout.driverAddr;
    this.deviceEventAddr = options.layout.deviceAddr;
    this.features = { ...options.features };
    this.tracer = options.tracer ?? null;
  }

  /** The ring positions both sides show in a snapshot. */
  protected positions(): {
    nextAvail: number;
    availWrap: boolean;
    nextUsed: number;
    usedWrap: boolean;
  } {
    return {
      nextAvail: this.nextAvail,
      availWrap: this.availWrap,
      nextUsed: this.nextUsed,
      usedWrap: this.usedWrap,
    };
  }

  /** Trace a fault and return it. */
  protected fail(f: VirtioFault): VirtioFault {
    return traceFault(this.tracer, this.index, 'packed', f);
  }

  /** What this side says when its wrap counter `which` flips to `w`. */
  protected abstract wrapText(which: 'avail' | 'used', w: number): string;

  protected traceWrap(t: RingTracer, which: 'avail' | 'used', now: boolean): void {
    t.emit({
      op: 'wrap',
      queue: this.index,
      format: 'packed',
      idx: which === 'avail' ? this.nextAvail : this.nextUsed,
      wrapCounter: now,
      rule: 'P1',
      text: this.wrapText(which, now ? 1 : 0),
    });
  }
}
