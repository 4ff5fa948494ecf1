/**
 * The packed virtqueue (virtio 1.1+, "Packed Virtqueues"), device side, plus
 * the format's entry point. The driver side lives in packed-driver.ts and
 * the ring layout both sides share in packed-ring.ts; both are re-exported
 * from here.
 *
 * One ring of 16-byte descriptors { le64 addr, le32 len, le16 id, le16 flags }
 * carries both directions: the driver makes a descriptor available by
 * setting AVAIL to its wrap counter and USED to the inverse, the device
 * overwrites it as used with AVAIL = USED = its own wrap counter (P1). Each
 * side only ever polls one slot: the next one after what it processed last.
 * Two 4-byte event suppression structures { le16 off_wrap, le16 flags }
 * replace the split ring's flags and event indices (P7).
 *
 * Everything here returns faults as values (see fault.ts); nothing throws.
 * The hot paths (pop, push) read guest memory field by field and check
 * `typeof x !== 'number'` instead of allocating closures or views.
 */
import { ChainPool, type DescriptorChain } from './chain.js';
import { fault, hex, type RuleId, type VirtioFault } from './fault.js';
import type { GuestMemory } from './memory.js';
import {
  DEFAULT_CHAIN_LIMITS,
  PACKED_DESC_F_INDIRECT,
  PACKED_DESC_F_NEXT,
  PACKED_DESC_F_WRITE,
  PACKED_EVENT_FLAG_DESC,
  PACKED_EVENT_FLAG_DISABLE,
  PACKED_EVENT_FLAG_ENABLE,
  type DeviceQueue,
  type DeviceQueueStatus,
  type PackedQueueSnapshot,
  type QueueOptions,
} from './queue.js';
import { PackedQueueBase } from './queue-base.js';
import type { RingTracer } from './trace.js';

// The format's entry point: the driver side and the ring layout are re-exported.
export { PackedDriverQueue } from './packed-driver.js';
export { layoutPackedQueue, packedNeedEvent } from './packed-ring.js';
import {
  AVAIL_USED,
  DESC_FLAGS,
  DESC_ID,
  DESC_LEN,
  DESC_SIZE,
  EVENT_FLAGS,
  EVENT_OFF_WRAP,
  EVENT_WRAP_BIT,
  MAX_U32,
  addChainsInFlight,
  availBits,
  availUsedText,
  checkPackedLayout,
  eventFlagName,
  packedNeedEvent,
  readPackedRings,
  usedBits,
} from './packed-ring.js';

// ------------------------------------------------------------- device side

export class PackedDeviceQueue extends PackedQueueBase implements DeviceQueue {
  private readonly maxChain: number;
  private readonly rejectZeroLength: boolean;

  /** Per buffer id: ring slots it occupies while in flight (0 = not in flight). */
  private readonly flightSlots: Uint16Array;
  /** Per buffer id: the ring slot of its first descriptor. */
  private readonly flightHead: Uint16Array;
  private buffersInFlight = 0;
  private slotsInFlight = 0;

  /** Used slots written since the last interrupt decision: the P7 window. */
  private usedSinceDecision = 0;
  private signalledUsed: number | null = null;

  // The chain being walked lives in the pool (no allocation per pop);
  // walkDescs counts its descriptors.
  private readonly chains: ChainPool;
  private walkDescs = 0;
  // The descriptor read last by readEntry (fields of one 16-byte entry).
  private eAddr = 0;
  private eLen = 0;
  private eId = 0;
  private eFlags = 0;

  private constructor(options: QueueOptions, memory: GuestMemory) {
    super(options, memory);
    const limits = options.limits ?? DEFAULT_CHAIN_LIMITS;
    this.maxChain = limits.maxChainLength;
    this.rejectZeroLength = limits.zeroLengthDescriptors === 'reject';
    this.flightSlots = new Uint16Array(this.size);
    this.flightHead = new Uint16Array(this.size);
    this.chains = new ChainPool(this.size);
  }

  /** The queue, or the fault that makes its layout unusable (P8, M8). */
  static create(options: QueueOptions, memory: GuestMemory): PackedDeviceQueue | VirtioFault {
    const bad = checkPackedLayout(options.layout, options.index, memory);
    if (bad !== null) return bad;
    return new PackedDeviceQueue(options, memory);
  }

  get inFlight(): number {
    return this.buffersInFlight;
  }

  get status(): DeviceQueueStatus {
    return {
      lastAvailIdx: this.nextAvail,
      usedIdx: this.nextUsed,
      signalledUsed: this.signalledUsed,
      availWrap: this.availWrap,
      usedWrap: this.usedWrap,
    };
  }

  hasAvailable(): boolean | VirtioFault {
    const flags = this.memory.read16(this.descAddr + this.nextAvail * DESC_SIZE + DESC_FLAGS);
    if (typeof flags !== 'number') return this.fail(flags.onQueue(this.index));
    return (flags & AVAIL_USED) === availBits(this.availWrap);
  }

  pop(): DescriptorChain | null | VirtioFault {
    const memory = this.memory;
    const size = this.size;
    const head = this.nextAvail;
    const headWrap = this.availWrap;
    let base = this.descAddr + head * DESC_SIZE;
    // P2: the flags come first; nothing else of the descriptor is trusted
    // until its AVAIL bit shows the driver's flip for this lap.
    let flags = memory.read16(base + DESC_FLAGS);
    if (typeof flags !== 'number') return this.fail(flags.onQueue(this.index));
    if ((flags & AVAIL_USED) !== availBits(headWrap)) return null;
    const headFlags = flags;

    this.chains.begin();
    this.walkDescs = 0;
    let slot = head;
    let slotWrap = headWrap;
    let ringCount = 0;
    let indirect = false;
    let id: number;
    for (;;) {
      const unreadable = this.readEntry(base, ringCount > 0 ? availBits(slotWrap) : -1);
      if (unreadable !== null) return this.fail(unreadable.onQueue(this.index));
      if (ringCount > 0) {
        flags = this.eFlags;
        // The driver makes every descriptor of a list available before the
        // head, so a later one still in its old state is a broken list.
        if ((flags & AVAIL_USED) !== availBits(slotWrap)) {
          return this.fail(
            fault(
              'InvalidDescriptorIndex',
              'P2',
              `slot ${slot} continues the NEXT list from slot ${head} but is not available (${availUsedText(flags)}, wrap ${slotWrap ? 1 : 0})`,
              { queue: this.index, index: slot },
            ),
          );
        }
      }
      ringCount++;
      // An address beyond 2^53: the checked read names the fault (M8).
      const addr = this.eAddr >= 0 ? this.eAddr : memory.read64(base);
      if (typeof addr !== 'number') return this.fail(addr.onQueue(this.index));
      const len = this.eLen;
      // Taken now: walking an indirect table reads its entries into e*.
      const entryId = this.eId;
      if ((flags & PACKED_DESC_F_INDIRECT) !== 0) {
        const bad = this.walkIndirect(slot, flags, ringCount, addr, len);
        if (bad !== null) return this.fail(bad);
        indirect = true;
        id = entryId;
        break;
      }
      const bad = this.addSegment(addr, len, (flags & PACKED_DESC_F_WRITE) !== 0, slot);
      if (bad !== null) return this.fail(bad);
      if ((flags & PACKED_DESC_F_NEXT) === 0) {
        // P4: the buffer id lives in the last descriptor of the list.
        id = entryId;
        break;
      }
      if (ringCount === size) {
        return this.fail(
          fault(
            'DescriptorChainLoop',
            'M3',
            `NEXT list from slot ${head} runs past all ${size} ring slots and would wrap onto itself`,
            { queue: this.index, index: head, length: ringCount },
          ),
        );
      }
      if (++slot === size) {
        slot = 0;
        slotWrap = !slotWrap;
      }
      base = this.descAddr + slot * DESC_SIZE;
    }
    if (id >= size) {
      return this.fail(
        fault(
          'InvalidBufferId',
          'M2',
          `buffer id ${id} at slot ${slot} is not below the queue size ${size}`,
          {
            queue: this.index,
            index: id,
          },
        ),
      );
    }
    if (this.flightSlots[id] !== 0) {
      return this.fail(
        fault(
          'InvalidBufferId',
          'M9',
          `buffer id ${id} was made available again while still in flight`,
          {
            queue: this.index,
            index: id,
          },
        ),
      );
    }
    if (this.slotsInFlight + ringCount > size) {
      return this.fail(
        fault(
          'TooManyBuffersInFlight',
          'M9',
          `${this.slotsInFlight} ring slots are in flight; ${ringCount} more would exceed the queue size ${size}`,
          { queue: this.index, index: head, length: this.slotsInFlight + ringCount },
        ),
      );
    }

    // Commit: only a fully valid chain moves the device's state (P3).
    let next = head + ringCount;
    if (next >= size) {
      next -= size;
      this.availWrap = !headWrap;
    }
    this.nextAvail = next;
    this.flightSlots[id] = ringCount;
    this.flightHead[id] = head;
    this.buffersInFlight++;
    this.slotsInFlight += ringCount;
    const chain = this.chains.commit(id, head, ringCount, this.walkDescs, indirect);
    const t = this.tracer;
    if (t !== null && t.active) {
      this.tracePop(t, chain, headFlags, headWrap);
      if (this.availWrap !== headWrap) this.traceWrap(t, 'avail', this.availWrap);
    }
    return chain;
  }

  /** The one descriptor of a buffer that points to an indirect table (P6, M4). */
  private walkIndirect(
    slot: number,
    flags: number,
    ringCount: number,
    tableAddr: number,
    tableLen: number,
  ): VirtioFault | null {
    const queue = this.index;
    if (!this.features.indirect) {
      return fault(
        'IndirectNotNegotiated',
        'P6',
        `slot ${slot} is INDIRECT but INDIRECT_DESC was not negotiated`,
        {
          queue,
          index: slot,
        },
      );
    }
    if (ringCount > 1 || (flags & PACKED_DESC_F_NEXT) !== 0) {
      return fault('IndirectWithNext', 'P6', `slot ${slot} is INDIRECT inside a NEXT list`, {
        queue,
        index: slot,
      });
    }
    if (tableLen === 0 || tableLen % DESC_SIZE !== 0) {
      return fault(
        'InvalidIndirectTableLength',
        'M4',
        `indirect table at ${hex(tableAddr)} has length ${tableLen}, not a non-zero multiple of 16`,
        { queue, index: slot, address: tableAddr, length: tableLen },
      );
    }
    const entries = tableLen / DESC_SIZE;
    if (entries > this.maxChain) {
      return fault(
        'ChainTooLong',
        'M4',
        `indirect table at ${hex(tableAddr)} holds ${entries} entries, more than the ${this.maxChain} allowed`,
        { queue, index: slot, address: tableAddr, length: entries },
      );
    }
    if (this.memory.check(tableAddr, tableLen) !== null) {
      return fault(
        'GuestMemoryOutOfRange',
        'M8',
        `indirect table at ${hex(tableAddr)} (${tableLen} bytes) is outside guest memory`,
        { queue, index: slot, address: tableAddr, length: tableLen },
      );
    }
    // P6: the table's len/16 entries are used in order; only WRITE counts
    // (NEXT, INDIRECT and id are reserved there and ignored).
    const memory = this.memory;
    for (let e = 0; e < entries; e++) {
      const base = tableAddr + e * DESC_SIZE;
      const unreadable = this.readEntry(base, -1);
      if (unreadable !== null) return unreadable.onQueue(queue);
      const eFlags = this.eFlags;
      const addr = this.eAddr >= 0 ? this.eAddr : memory.read64(base);
      if (typeof addr !== 'number') return addr.onQueue(queue);
      const len = this.eLen;
      const bad = this.addSegment(addr, len, (eFlags & PACKED_DESC_F_WRITE) !== 0, slot);
      if (bad !== null) return bad;
    }
    return null;
  }

  /**
   * Read the 16-byte descriptor at `base` into eFlags/eId/eAddr/eLen with
   * one range check (the ring and any indirect table were checked whole
   * before the walk, M8), instead of a checked accessor per field.
   *
   * P2: the flags come first, and when `expect` (AVAIL/USED bits, or -1 for
   * no check) says the descriptor is not available, nothing else of it is
   * read; the caller sees eFlags and refuses the list. eAddr is -1 for an
   * address beyond 2^53; the caller then asks read64 for the fault.
   */
  private readEntry(base: number, expect: number): VirtioFault | null {
    const r = this.memory.span(base, DESC_SIZE);
    if (r === null) return this.memory.check(base, DESC_SIZE);
    const v = r.view;
    const o = base - r.base;
    const flags = v.getUint16(o + DESC_FLAGS, true);
    this.eFlags = flags;
    if (expect >= 0 && (flags & AVAIL_USED) !== expect) return null;
    this.eId = v.getUint16(o + DESC_ID, true);
    const lo = v.getUint32(o, true);
    const hi = v.getUint32(o + 4, true);
    this.eAddr = hi > 0x1fffff ? -1 : hi * 0x1_0000_0000 + lo;
    this.eLen = v.getUint32(o + DESC_LEN, true);
    return null;
  }

  /** Append one element to the chain being walked, enforcing M3/M5/M6/M7/M8. */
  private addSegment(addr: number, len: number, write: boolean, slot: number): VirtioFault | null {
    const queue = this.index;
    if (++this.walkDescs > this.maxChain) {
      return fault(
        'ChainTooLong',
        'M3',
        `buffer at slot ${slot} has more than ${this.maxChain} descriptors`,
        {
          queue,
          index: slot,
          length: this.walkDescs,
        },
      );
    }
    if (len === 0 && this.rejectZeroLength) {
      return fault(
        'ZeroLengthDescriptor',
        'M6',
        `descriptor ${this.walkDescs} of the buffer at slot ${slot} has length 0 (policy: reject)`,
        { queue, index: slot, address: addr },
      );
    }
    const chains = this.chains;
    if (write) {
      chains.addWritable(addr, len);
    } else {
      if (chains.writableCount > 0) {
        return fault(
          'ReadableAfterWritable',
          'M5',
          `descriptor ${this.walkDescs} of the buffer at slot ${slot} is readable after a writable one`,
          { queue, index: slot, address: addr },
        );
      }
      chains.addReadable(addr, len);
    }
    const total = chains.readableLength + chains.writableLength;
    if (total > MAX_U32) {
      return fault(
        'ChainLengthOverflow',
        'M7',
        `buffer at slot ${slot} totals more than 2^32-1 bytes`,
        {
          queue,
          index: slot,
          length: total,
        },
      );
    }
    if (this.memory.check(addr, len) !== null) {
      return fault(
        'GuestMemoryOutOfRange',
        'M8',
        `buffer element at ${hex(addr)} (${len} bytes) of the buffer at slot ${slot} is outside guest memory`,
        { queue, index: slot, address: addr, length: len },
      );
    }
    return null;
  }

  push(chain: DescriptorChain, writtenLen: number): VirtioFault | null {
    const id = chain.id;
    const size = this.size;
    if (!Number.isInteger(id) || id < 0 || id >= size || this.flightSlots[id] === 0) {
      return this.fail(
        fault(
          'DuplicateUsedHead',
          'M15',
          `buffer id ${id} is not in flight (pushed twice, or never popped)`,
          {
            queue: this.index,
            index: id,
          },
        ),
      );
    }
    if (!Number.isInteger(writtenLen) || writtenLen < 0 || writtenLen > chain.writableLength) {
      return this.fail(
        fault(
          'UsedLengthTooLarge',
          'P8',
          `used length ${writtenLen} for buffer id ${id} exceeds its ${chain.writableLength} writable bytes`,
          { queue: this.index, index: id, length: writtenLen },
        ),
      );
    }
    const slots = this.flightSlots[id]!;
    const slot = this.nextUsed;
    const wrap = this.usedWrap;
    const base = this.descAddr + slot * DESC_SIZE;
    const memory = this.memory;
    // Used descriptors go to the next used slot in completion order (P3);
    // WRITE says the length is meaningful; the flags go last (P2) so the
    // driver never sees a used descriptor with a stale id or length.
    let bad = memory.write16(base + DESC_ID, id);
    if (bad === null) bad = memory.write32(base + DESC_LEN, writtenLen);
    const flags = usedBits(wrap) | (writtenLen > 0 ? PACKED_DESC_F_WRITE : 0);
    if (bad === null) bad = memory.write16(base + DESC_FLAGS, flags);
    if (bad !== null) return this.fail(bad.onQueue(this.index));

    this.flightSlots[id] = 0;
    this.buffersInFlight--;
    this.slotsInFlight -= slots;
    // P4: skip the rest of the buffer's slots; passing the end flips the wrap.
    let next = slot + slots;
    if (next >= size) {
      next -= size;
      this.usedWrap = !wrap;
    }
    this.nextUsed = next;
    this.usedSinceDecision += slots;
    const t = this.tracer;
    if (t !== null && t.active) {
      t.emit({
        op: 'device-push',
        queue: this.index,
        format: 'packed',
        head: slot,
        id,
        descCount: slots,
        len: writtenLen,
        idx: next,
        rule: slots > 1 ? 'P4' : 'P3',
        text:
          `device wrote used descriptor at slot ${slot}: id ${id}, len ${writtenLen} bytes written (P8), ` +
          `AVAIL=USED=${wrap ? 1 : 0} (P1), in completion order (P3)` +
          (slots > 1
            ? `; skips the buffer's ${slots} slots to slot ${next} (P4)`
            : `; next used slot ${next}`),
      });
      if (this.usedWrap !== wrap) this.traceWrap(t, 'used', this.usedWrap);
    }
    return null;
  }

  needsInterrupt(): boolean | VirtioFault {
    const memory = this.memory;
    const rawFlags = memory.read16(this.driverEventAddr + EVENT_FLAGS);
    if (typeof rawFlags !== 'number') return this.fail(rawFlags.onQueue(this.index));
    const mode = rawFlags & 3;
    const newIdx = this.nextUsed;
    const moved = this.usedSinceDecision;
    let send: boolean;
    let offWrap = 0;
    if (mode === PACKED_EVENT_FLAG_DISABLE) {
      send = false;
    } else if (mode === PACKED_EVENT_FLAG_DESC && this.features.eventIdx) {
      const ow = memory.read16(this.driverEventAddr + EVENT_OFF_WRAP);
      if (typeof ow !== 'number') return this.fail(ow.onQueue(this.index));
      offWrap = ow;
      send = packedNeedEvent(offWrap, this.size, this.usedWrap, newIdx, moved);
    } else {
      // ENABLE; also RESERVED and DESC without EVENT_IDX, where an
      // interrupt too many is harmless and one too few would hang the driver.
      send = true;
    }
    // Like QEMU's signalled_used: every decision starts a new window.
    this.usedSinceDecision = 0;
    this.signalledUsed = newIdx;
    const t = this.tracer;
    if (t !== null && t.active) {
      let why: string;
      if (mode === PACKED_EVENT_FLAG_DESC && this.features.eventIdx) {
        why =
          `DESC offset ${offWrap & ~EVENT_WRAP_BIT} wrap ${offWrap & EVENT_WRAP_BIT ? 1 : 0}; ` +
          `used index moved ${moved} slot(s) to ${newIdx} (wrap ${this.usedWrap ? 1 : 0}) and ` +
          (send ? 'passed it' : 'has not reached it');
      } else if (mode === PACKED_EVENT_FLAG_DESC) {
        why = 'DESC without EVENT_IDX, treated as ENABLE';
      } else {
        why = eventFlagName(mode);
      }
      t.emit({
        op: 'device-interrupt',
        queue: this.index,
        format: 'packed',
        idx: newIdx,
        sent: send,
        rule: 'P7',
        text: `driver event suppression says ${why}: interrupt ${send ? 'sent' : 'suppressed'} (P7)`,
      });
    }
    return send;
  }

  setNotification(enabled: boolean): VirtioFault | null {
    const memory = this.memory;
    let mode: number;
    if (!enabled) {
      mode = PACKED_EVENT_FLAG_DISABLE;
    } else if (this.features.eventIdx) {
      // Ask to be notified when the driver makes the next slot available;
      // off_wrap is written before the flags that make it meaningful.
      const offWrap = this.nextAvail | (this.availWrap ? EVENT_WRAP_BIT : 0);
      const bad = memory.write16(this.deviceEventAddr + EVENT_OFF_WRAP, offWrap);
      if (bad !== null) return this.fail(bad.onQueue(this.index));
      mode = PACKED_EVENT_FLAG_DESC;
    } else {
      mode = PACKED_EVENT_FLAG_ENABLE;
    }
    const bad = memory.write16(this.deviceEventAddr + EVENT_FLAGS, mode);
    if (bad !== null) return this.fail(bad.onQueue(this.index));
    const t = this.tracer;
    if (t !== null && t.active) {
      const text =
        mode === PACKED_EVENT_FLAG_DISABLE
          ? 'device wrote DISABLE into its event suppression: the driver need not notify new buffers (P7)'
          : mode === PACKED_EVENT_FLAG_DESC
            ? `device wrote DESC offset ${this.nextAvail} wrap ${this.availWrap ? 1 : 0}: notify me once slot ${this.nextAvail} is made available in that lap (P7)`
            : 'device wrote ENABLE into its event suppression: notify me on every new buffer (P7)';
      t.emit({
        op: 'device-suppress',
        queue: this.index,
        format: 'packed',
        idx: this.nextAvail,
        sent: enabled,
        rule: 'P7',
        text,
      });
    }
    return null;
  }

  snapshot(): PackedQueueSnapshot {
    const snap = readPackedRings(this.memory, this.index, this.layout, this.features.eventIdx);
    const inFlight = addChainsInFlight(snap, this.flightHead, this.flightSlots);
    snap.device = { ...this.positions(), signalledUsed: this.signalledUsed, inFlight };
    return snap;
  }

  // ---------------------------------------------------------------- tracing

  private tracePop(t: RingTracer, chain: DescriptorChain, headFlags: number, wrap: boolean): void {
    const n = chain.ringDescCount;
    let how: string;
    let rule: RuleId;
    if (chain.indirect) {
      rule = 'P6';
      how = `; it points to an indirect table of ${chain.descCount} entries where only WRITE counts (P6)`;
    } else if (n > 1) {
      rule = 'P4';
      const last = (chain.head + n - 1) % this.size;
      how = `; its NEXT list covers slots ${chain.head}..${last} and carries the id in the last one, so the device moves on to slot ${this.nextAvail} (P4)`;
    } else {
      rule = 'P1';
      how = '';
    }
    t.emit({
      op: 'device-pop',
      queue: this.index,
      format: 'packed',
      head: chain.head,
      id: chain.id,
      descCount: chain.descCount,
      len: chain.readableLength + chain.writableLength,
      idx: this.nextAvail,
      rule,
      text:
        `device saw slot ${chain.head} ${availUsedText(headFlags)} with wrap ${wrap ? 1 : 0}: ` +
        `buffer id ${chain.id} is available (P1), ${chain.readableLength} bytes to read, ` +
        `${chain.writableLength} bytes of room${how}`,
    });
  }

  protected wrapText(which: 'avail' | 'used', w: number): string {
    return which === 'avail'
      ? `device passed the end of the ring: its avail wrap counter is now ${w}, so available descriptors now read AVAIL=${w} USED=${1 - w} (P1)`
      : `device wrote past the end of the ring: its used wrap counter is now ${w}, so it marks used descriptors AVAIL=USED=${w} (P1)`;
  }
}
