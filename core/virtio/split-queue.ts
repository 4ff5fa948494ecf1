/**
 * The split virtqueue (virtio 1.x section 2.7): descriptor table, available
 * ring and used ring, seen from the device (this file, as QEMU's
 * virtqueue_pop / virtqueue_push / virtio_should_notify) and from the driver
 * (split-driver.ts, as Linux's virtqueue_add_split and friends).
 *
 * The device side trusts nothing in guest memory. Every index is range
 * checked before use, every walk is bounded by counting, and every problem
 * comes back as a VirtioFault naming the conformance rule, so a hostile ring
 * can make the device give up (NEEDS_RESET) but never hang it, crash it or
 * make it touch memory outside the guest.
 *
 * The layout both sides share (and its checks) is split-ring.ts.
 */
import { ChainPool, type DescriptorChain } from './chain.js';
import { hex, VirtioFault } from './fault.js';
import type { GuestMemory } from './memory.js';
import {
  DEFAULT_CHAIN_LIMITS,
  needEvent,
  SPLIT_AVAIL_F_NO_INTERRUPT,
  SPLIT_DESC_F_INDIRECT,
  SPLIT_DESC_F_NEXT,
  SPLIT_DESC_F_WRITE,
  SPLIT_USED_F_NO_NOTIFY,
  type DeviceQueue,
  type DeviceQueueStatus,
  type QueueOptions,
  type SplitQueueSnapshot,
} from './queue.js';
import { plural, SplitQueueBase, traceFault } from './queue-base.js';
import type { RingTracer } from './trace.js';

// The format's entry point: the driver side and the ring layout are re-exported.
export { SplitDriverQueue } from './split-driver.js';
export { allocSplitQueue, releaseSplitQueue } from './split-ring.js';
import { checkSplitQueue, readSplitRings } from './split-ring.js';

/** The largest byte count a chain may describe (S5: it fits in 32 bits). */
const MAX_CHAIN_BYTES = 0xffff_ffff;

// ------------------------------------------------------------------ device

/**
 * A segment's origin in fault messages: ring index >= 0, or -1 - entry for
 * an indirect entry. Built only when a fault is, not once per segment walked.
 */
function whereName(where: number): string {
  return where >= 0 ? `descriptor ${where}` : `indirect table entry ${-1 - where}`;
}

/**
 * The device side of a split queue.
 *
 * Policies a reader must know:
 * - Chain length: a direct chain longer than the queue size is a loop
 *   (M3/S5); buffer descriptors in total (direct plus indirect entries) are
 *   capped at limits.maxChainLength (S3), and so is one indirect table (M4).
 * - Buffer address ranges (M8) are checked after the walk, so a chain whose
 *   lengths overflow 32 bits is reported as M7 even when its buffers could
 *   not all be in memory.
 * - A head popped again while still in flight is refused as M9: the driver
 *   reused descriptors the device still owns.
 * - With EVENT_IDX the first interrupt decision after reset always
 *   interrupts (QEMU's signalled_used_valid), later ones use
 *   vring_need_event against the used idx of the previous decision, which
 *   is what status.signalledUsed reports; without EVENT_IDX signalledUsed
 *   moves only when an interrupt is sent.
 * - Notifications with EVENT_IDX: while enabled, pop() keeps avail_event at
 *   last_avail_idx and setNotification(true) writes the current avail.idx
 *   (as QEMU does), so buffers left in the ring never swallow the next
 *   kick; setNotification(false) parks avail_event one behind
 *   last_avail_idx. used.flags is never written with EVENT_IDX.
 * - VIRTIO_F_IN_ORDER changes nothing here: chains are used in push order.
 */
export class SplitDeviceQueue extends SplitQueueBase implements DeviceQueue {
  private readonly maxChain: number;
  private readonly rejectZero: boolean;

  private lastAvail = 0;
  /** The avail.idx read last: S8 says it never goes back from there. */
  private shadowAvail = 0;
  private usedIdx = 0;
  private signalled: number | null = null;
  private notify = true;
  private readonly inFlightFlag: Uint8Array;
  private readonly inFlightWritable: Float64Array;
  private inFlightCount = 0;

  // The chain being walked lives in the pool (no allocation per pop).
  private readonly chains: ChainPool;
  private sSegs = 0;
  /** Index (walk order) of the first buffer outside guest memory, -1 while none (M8, reported last). */
  private sOutside = -1;
  /**
   * Where each segment came from: ring index >= 0, or -1 - entry for an
   * indirect entry. Indexed by sSegs, never truncated: resetting an array's
   * length on every walk was a quarter of the walk's time.
   */
  private readonly sWhere: number[] = [];
  // The descriptor read last by readDesc (fields of one 16-byte entry).
  private dAddr = 0;
  private dLen = 0;
  private dFlags = 0;
  private dNext = 0;

  constructor(options: QueueOptions, memory: GuestMemory) {
    super(options, memory);
    const limits = options.limits ?? DEFAULT_CHAIN_LIMITS;
    this.maxChain = limits.maxChainLength;
    this.rejectZero = limits.zeroLengthDescriptors === 'reject';
    this.inFlightFlag = new Uint8Array(this.size);
    this.inFlightWritable = new Float64Array(this.size);
    this.chains = new ChainPool(this.size);
  }

  /** The queue, or the fault that makes its layout unusable (S1, M8). Touches no guest memory. */
  static create(options: QueueOptions, memory: GuestMemory): SplitDeviceQueue | VirtioFault {
    const bad = checkSplitQueue(options.layout, options.index, memory);
    return bad ?? new SplitDeviceQueue(options, memory);
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  get status(): DeviceQueueStatus {
    return {
      lastAvailIdx: this.lastAvail,
      usedIdx: this.usedIdx,
      signalledUsed: this.signalled,
    };
  }

  hasAvailable(): boolean | VirtioFault {
    const availIdx = this.availRead16(2);
    if (typeof availIdx !== 'number') return this.traceFault(availIdx.onQueue(this.index));
    const bad = this.checkAvailIdx(availIdx);
    if (bad) return bad;
    return availIdx !== this.lastAvail;
  }

  pop(): DescriptorChain | null | VirtioFault {
    const availIdx = this.availRead16(2);
    if (typeof availIdx !== 'number') return this.traceFault(availIdx.onQueue(this.index));
    const bad = this.checkAvailIdx(availIdx);
    if (bad) return bad;
    if (availIdx === this.lastAvail) return null;

    if (this.inFlightCount >= this.size) {
      return this.fail(
        'TooManyBuffersInFlight',
        'M9',
        `${this.inFlightCount} chains are already in flight on a queue of ${this.size}: the driver made more buffers available than it has descriptors`,
        this.lastAvail,
      );
    }
    const ringOff = 4 + 2 * (this.lastAvail & this.mask);
    const head = this.availRead16(ringOff);
    if (typeof head !== 'number') return this.traceFault(head.onQueue(this.index));
    if (head >= this.size) {
      return this.fail(
        'InvalidDescriptorIndex',
        'M2',
        `avail.ring[${this.lastAvail & this.mask}] names head ${head}, outside the table of ${this.size}`,
        head,
        this.availAddr + ringOff,
      );
    }
    if (this.inFlightFlag[head] === 1) {
      return this.fail(
        'HeadAlreadyInFlight',
        'M9',
        `head ${head} was made available again while the device still holds it`,
        head,
        this.availAddr + ringOff,
      );
    }
    const chain = this.walk(head);
    if (chain instanceof VirtioFault) return this.traceFault(chain);

    const before = this.lastAvail;
    this.lastAvail = (before + 1) & 0xffff;
    this.inFlightFlag[head] = 1;
    this.inFlightWritable[head] = chain.writableLength;
    this.inFlightCount++;
    if (this.eventIdx && this.notify) {
      // Keep avail_event at what we consumed, so the driver kicks for the
      // next buffer it adds (S12); QEMU does the same in virtqueue_pop.
      this.usedWrite16(4 + 8 * this.size, this.lastAvail);
    }
    const t = this.tracer;
    if (t !== null && t.active) this.tracePop(t, chain, before);
    return chain;
  }

  push(chain: DescriptorChain, writtenLen: number): VirtioFault | null {
    const head = chain.id;
    if (!Number.isInteger(head) || head < 0 || head >= this.size || this.inFlightFlag[head] !== 1) {
      return this.fail(
        'DuplicateUsedHead',
        'M15',
        `head ${head} is not in flight: it was never popped or has already been returned`,
        head,
      );
    }
    const room = this.inFlightWritable[head]!;
    if (!Number.isInteger(writtenLen) || writtenLen < 0 || writtenLen > room) {
      return this.fail(
        'UsedLengthTooLarge',
        'S9',
        `used len ${writtenLen} for head ${head} is not within its ${room} writable bytes`,
        head,
        undefined,
        writtenLen,
      );
    }
    const slot = this.usedIdx & this.mask;
    const elem = 4 + 8 * slot;
    // S9: the element (id and len) must be complete before used.idx tells
    // the driver it exists.
    const e =
      this.usedWrite32(elem, head) ??
      this.usedWrite32(elem + 4, writtenLen) ??
      this.usedWrite16(2, (this.usedIdx + 1) & 0xffff);
    if (e) return this.traceFault(e.onQueue(this.index));
    const before = this.usedIdx;
    this.usedIdx = (before + 1) & 0xffff;
    this.inFlightFlag[head] = 0;
    this.inFlightCount--;
    const t = this.tracer;
    if (t !== null && t.active) {
      t.emit({
        op: 'device-push',
        queue: this.index,
        format: 'split',
        head,
        len: writtenLen,
        idx: this.usedIdx,
        rule: 'S9',
        text: `device returned head ${head} with ${plural(writtenLen, 'byte')} written: used.ring[${slot}] = {id ${head}, len ${writtenLen}} first, then used.idx ${before} -> ${this.usedIdx}`,
      });
      if (this.usedIdx === 0) this.traceWrap(t, 'used.idx', 'S11');
    }
    return null;
  }

  needsInterrupt(): boolean | VirtioFault {
    const t = this.tracer;
    if (!this.eventIdx) {
      const flags = this.availRead16(0);
      if (typeof flags !== 'number') return this.traceFault(flags.onQueue(this.index));
      const send = (flags & SPLIT_AVAIL_F_NO_INTERRUPT) === 0;
      if (send) this.signalled = this.usedIdx;
      if (t !== null && t.active) {
        t.emit({
          op: 'device-interrupt',
          queue: this.index,
          format: 'split',
          idx: this.usedIdx,
          sent: send,
          rule: 'S10',
          text: send
            ? `avail.flags is ${flags} (no NO_INTERRUPT): device interrupts the driver at used.idx ${this.usedIdx}`
            : `avail.flags has NO_INTERRUPT: the driver is polling, so the device does not interrupt (used.idx ${this.usedIdx})`,
        });
      }
      return send;
    }
    const usedEvent = this.availRead16(4 + 2 * this.size);
    if (typeof usedEvent !== 'number') return this.traceFault(usedEvent.onQueue(this.index));
    const old = this.signalled;
    const now = this.usedIdx;
    const send = old === null || needEvent(usedEvent, now, old);
    this.signalled = now;
    if (t !== null && t.active) {
      let text: string;
      if (old === null) {
        text = `first interrupt decision since reset: no earlier point to compare used_event ${usedEvent} with, so the device interrupts (as QEMU does); used.idx is ${now}`;
      } else if (send) {
        text = `used.idx moved ${old} -> ${now}, passing used_event ${usedEvent}: the driver asked to be interrupted there, so the device interrupts`;
      } else {
        text = `used.idx moved ${old} -> ${now} without passing used_event ${usedEvent}: interrupt suppressed`;
      }
      t.emit({
        op: 'device-interrupt',
        queue: this.index,
        format: 'split',
        idx: now,
        sent: send,
        rule: 'S11',
        text,
      });
    }
    return send;
  }

  setNotification(enabled: boolean): VirtioFault | null {
    this.notify = enabled;
    let e: VirtioFault | null;
    let text: string;
    let availIdx = this.lastAvail;
    if (this.eventIdx && enabled) {
      // Ask for a kick past what is published now, not past what was
      // consumed (QEMU and vhost do the same): buffers the device leaves in
      // the ring must not swallow the kick for the next one.
      const live = this.memory.read16(this.availAddr + 2);
      if (typeof live !== 'number') return this.traceFault(live.onQueue(this.index));
      const bad = this.checkAvailIdx(live);
      if (bad) return bad;
      availIdx = live;
    }
    if (!this.eventIdx) {
      e = this.memory.write16(this.usedAddr, enabled ? 0 : SPLIT_USED_F_NO_NOTIFY);
      text = enabled
        ? 'device clears used.flags NO_NOTIFY: the driver should kick after adding buffers'
        : 'device sets used.flags NO_NOTIFY: it is already processing, kicks would be wasted';
    } else {
      // used.flags stays 0 with EVENT_IDX (S12); avail_event does the job.
      // To suppress, park avail_event just behind what was consumed: the
      // driver's window [old, new) will not contain it again for 65535 adds.
      const value = enabled ? availIdx : (this.lastAvail - 1) & 0xffff;
      e = this.memory.write16(this.availEventAddr, value);
      text = enabled
        ? `device sets avail_event = avail.idx ${value}: the driver kicks once avail.idx moves past ${value}${value !== this.lastAvail ? ` (${(value - this.lastAvail) & 0xffff} still to pop)` : ''}`
        : `device parks avail_event at ${value}, behind last_avail_idx ${this.lastAvail}: the driver will not cross it, so it will not kick`;
    }
    if (e) return this.traceFault(e.onQueue(this.index));
    const t = this.tracer;
    if (t !== null && t.active) {
      t.emit({
        op: 'device-suppress',
        queue: this.index,
        format: 'split',
        idx: this.lastAvail,
        rule: 'S12',
        text,
      });
    }
    return null;
  }

  snapshot(): SplitQueueSnapshot {
    const snap = readSplitRings(this.memory, this.index, this.layout, this.eventIdx);
    const heads: number[] = [];
    for (let i = 0; i < this.size; i++) if (this.inFlightFlag[i] === 1) heads.push(i);
    snap.device = {
      lastAvailIdx: this.lastAvail,
      usedIdx: this.usedIdx,
      signalledUsed: this.signalled,
      inFlight: heads,
    };
    // Re-walk rather than remember: the driver may not touch descriptors it
    // has made available, and pop() stays free of bookkeeping allocations.
    for (const head of heads) {
      const descriptors = [head];
      let idx = head;
      while (descriptors.length < this.size) {
        const flags = this.memory.read16(this.descAddr + 16 * idx + 12);
        const next = this.memory.read16(this.descAddr + 16 * idx + 14);
        if (typeof flags !== 'number' || typeof next !== 'number') {
          snap.unreadable.push(`descriptor ${idx} of in-flight head ${head} is unreadable`);
          break;
        }
        if ((flags & SPLIT_DESC_F_NEXT) === 0 || (flags & SPLIT_DESC_F_INDIRECT) !== 0) break;
        if (next >= this.size) break;
        descriptors.push(next);
        idx = next;
      }
      snap.chainsInFlight.push({ head, descriptors });
    }
    return snap;
  }

  // ---------------------------------------------------------------- walking

  /** M1, S8: avail.idx is at most `size` ahead of what was consumed and never goes back. */
  private checkAvailIdx(availIdx: number): VirtioFault | null {
    const pending = (availIdx - this.lastAvail) & 0xffff;
    if (pending > this.size) {
      return this.fail(
        'AvailIndexTooFarAhead',
        'M1',
        `avail.idx ${availIdx} is ${pending} ahead of last_avail_idx ${this.lastAvail}, more than the ${this.size} entries of the ring`,
        availIdx,
        this.availAddr + 2,
      );
    }
    const seen = (this.shadowAvail - this.lastAvail) & 0xffff;
    if (pending < seen) {
      return this.fail(
        'AvailIndexWentBackwards',
        'S8',
        `avail.idx went backwards from ${this.shadowAvail} to ${availIdx}: published buffers cannot be taken back`,
        availIdx,
        this.availAddr + 2,
      );
    }
    this.shadowAvail = availIdx;
    return null;
  }

  /**
   * Read the 16-byte descriptor at `base` into dAddr/dLen/dFlags/dNext.
   *
   * Why a fast path: this runs for every descriptor of every chain, and four
   * checked accessors (read64, read32, two read16) each validate the
   * arguments, look up the region and return a value-or-fault union. The
   * table's range was checked once when the queue (or indirect table) was
   * set up, so one span() check for the whole entry and four DataView reads
   * do the same job without allocating.
   *
   * dAddr is -1 when the 64-bit address is beyond any guest address (2^53).
   * When the entry is not inside one region (not reachable for a checked
   * table; kept so a fault is never lost) the checked accessors run in the
   * old order: an address fault leaves dAddr -1, a len or flags fault is
   * returned, and dNext is -1 so the walk reads `next` checked when needed.
   */
  private readDesc(base: number): VirtioFault | null {
    const r = this.memory.span(base, 16);
    if (r !== null) {
      this.decodeDesc(r.view, base - r.base);
      return null;
    }
    const mem = this.memory;
    const addr = mem.read64(base);
    this.dNext = -1;
    if (typeof addr !== 'number') {
      this.dAddr = -1;
      return null;
    }
    const len = mem.read32(base + 8);
    const flags = mem.read16(base + 12);
    if (typeof len !== 'number') return len;
    if (typeof flags !== 'number') return flags;
    this.dAddr = addr;
    this.dLen = len;
    this.dFlags = flags;
    return null;
  }

  /** The 16-byte descriptor at byte `o` of `v` into dAddr/dLen/dFlags/dNext (no checks: the caller's span is). */
  private decodeDesc(v: DataView, o: number): void {
    const lo = v.getUint32(o, true);
    const hi = v.getUint32(o + 4, true);
    this.dAddr = hi > 0x1fffff ? -1 : hi * 0x1_0000_0000 + lo;
    this.dLen = v.getUint32(o + 8, true);
    this.dFlags = v.getUint16(o + 12, true);
    this.dNext = v.getUint16(o + 14, true);
  }

  private walk(head: number): DescriptorChain | VirtioFault {
    const mem = this.memory;
    const chains = this.chains;
    chains.begin();
    this.sSegs = 0;
    this.sOutside = -1;
    let idx = head;
    let ringCount = 0;
    let indirect = false;
    for (;;) {
      if (++ringCount > this.size) {
        return this.fault(
          'DescriptorChainLoop',
          'M3',
          `chain from head ${head} runs past ${this.size} descriptors, the queue size (S5): it loops back at descriptor ${idx}`,
          idx,
        );
      }
      const base = this.descAddr + 16 * idx;
      const table = this.descView;
      if (table !== null) {
        // The ring's own table, range-checked once at create (M8): read in place.
        this.decodeDesc(table, this.descOff + 16 * idx);
      } else {
        const unreadable = this.readDesc(base);
        if (unreadable !== null) return unreadable.onQueue(this.index);
      }
      const addr = this.dAddr;
      if (addr < 0) {
        return this.fault(
          'GuestMemoryOutOfRange',
          'M8',
          `descriptor ${idx} holds an address beyond any guest memory`,
          idx,
          base,
        );
      }
      const len = this.dLen;
      const flags = this.dFlags;
      if ((flags & SPLIT_DESC_F_INDIRECT) !== 0) {
        if (!this.indirectOk) {
          return this.fault(
            'IndirectNotNegotiated',
            'S6',
            `descriptor ${idx} is INDIRECT but VIRTIO_RING_F_INDIRECT_DESC was not negotiated`,
            idx,
            addr,
          );
        }
        if ((flags & SPLIT_DESC_F_NEXT) !== 0) {
          return this.fault(
            'IndirectWithNext',
            'S6',
            `descriptor ${idx} has both INDIRECT and NEXT: an indirect table must end the chain`,
            idx,
            addr,
          );
        }
        // S7: WRITE on the pointer descriptor means nothing; the table's
        // own entries say which buffers are writable.
        const bad = this.walkTable(idx, addr, len);
        if (bad) return bad;
        indirect = true;
        break;
      }
      const bad = this.segment(addr, len, (flags & SPLIT_DESC_F_WRITE) !== 0, idx);
      if (bad) return bad;
      if ((flags & SPLIT_DESC_F_NEXT) === 0) break;
      const next = this.dNext >= 0 ? this.dNext : mem.read16(base + 14);
      if (typeof next !== 'number') return next.onQueue(this.index);
      if (next >= this.size) {
        return this.fault(
          'InvalidDescriptorIndex',
          'M2',
          `descriptor ${idx} chains to ${next}, outside the table of ${this.size}`,
          next,
          base + 14,
        );
      }
      idx = next;
    }

    // M8 last, so that a chain whose lengths overflow (M7) is named as such:
    // segment() checked each buffer's range as it went and kept the first
    // one outside guest memory, reported only now that the walk is through.
    const total = this.sSegs;
    const outside = this.sOutside;
    if (outside >= 0) {
      const seg = chains.segmentAt(outside);
      const where = this.sWhere[outside]!;
      const what = where >= 0 ? `descriptor ${where}` : `indirect table entry ${-1 - where}`;
      return this.fault(
        'GuestMemoryOutOfRange',
        'M8',
        `${what}: buffer at ${hex(seg.addr)} of ${plural(seg.len, 'byte')} is outside guest memory`,
        where >= 0 ? where : -1 - where,
        seg.addr,
        seg.len,
      );
    }
    return chains.commit(
      head,
      head,
      ringCount,
      // Every descriptor read: the ring ones (the table pointer included) and the table entries.
      indirect ? total + 1 : ringCount,
      indirect,
    );
  }

  /** M4, S6: one level of indirection, entries from index 0, len/16 of them. */
  private walkTable(ringIdx: number, table: number, len: number): VirtioFault | null {
    const mem = this.memory;
    if (len === 0 || len % 16 !== 0) {
      return this.fault(
        'InvalidIndirectTableLength',
        'M4',
        `descriptor ${ringIdx} points to an indirect table of ${len} bytes, which is ${len === 0 ? 'empty' : 'not a multiple of 16'}`,
        ringIdx,
        table,
        len,
      );
    }
    const entries = len / 16;
    if (entries > this.maxChain) {
      return this.fault(
        'InvalidIndirectTableLength',
        'M4',
        `descriptor ${ringIdx} points to an indirect table of ${entries} entries, more than the ${this.maxChain} this device accepts`,
        ringIdx,
        table,
        len,
      );
    }
    if (mem.check(table, len) !== null) {
      return this.fault(
        'GuestMemoryOutOfRange',
        'M8',
        `indirect table of descriptor ${ringIdx} at ${hex(table)} (${len} bytes) is outside guest memory`,
        ringIdx,
        table,
        len,
      );
    }
    let e = 0;
    let steps = 0;
    for (;;) {
      if (++steps > entries) {
        return this.fault(
          'DescriptorChainLoop',
          'M3',
          `indirect table at ${hex(table)} loops: more than its ${entries} entries walked, back at entry ${e}`,
          e,
          table + 16 * e,
        );
      }
      const base = table + 16 * e;
      const unreadable = this.readDesc(base);
      if (unreadable !== null) return unreadable.onQueue(this.index);
      const addr = this.dAddr;
      if (addr < 0) {
        return this.fault(
          'GuestMemoryOutOfRange',
          'M8',
          `indirect table entry ${e} holds an address beyond any guest memory`,
          e,
          base,
        );
      }
      const dlen = this.dLen;
      const flags = this.dFlags;
      if ((flags & SPLIT_DESC_F_INDIRECT) !== 0) {
        return this.fault(
          'NestedIndirectDescriptor',
          'M4',
          `indirect table entry ${e} is itself INDIRECT: only one level of indirection is allowed (S6)`,
          e,
          base,
        );
      }
      const bad = this.segment(addr, dlen, (flags & SPLIT_DESC_F_WRITE) !== 0, -1 - e);
      if (bad) return bad;
      if ((flags & SPLIT_DESC_F_NEXT) === 0) return null;
      const next = this.dNext >= 0 ? this.dNext : mem.read16(base + 14);
      if (typeof next !== 'number') return next.onQueue(this.index);
      if (next >= entries) {
        return this.fault(
          'InvalidDescriptorIndex',
          'M2',
          `indirect table entry ${e} chains to ${next}, outside its ${entries} entries`,
          next,
          base + 14,
        );
      }
      e = next;
    }
  }

  /** Add one buffer to the chain being walked (S3 cap, S4/M5 order, M6, M7). */
  private segment(addr: number, len: number, write: boolean, where: number): VirtioFault | null {
    if (++this.sSegs > this.maxChain) {
      return this.fault(
        'ChainTooLong',
        'S3',
        `chain has more than ${this.maxChain} buffer descriptors, the most this device accepts (at ${whereName(where)})`,
        where >= 0 ? where : -1 - where,
      );
    }
    if (len === 0 && this.rejectZero) {
      return this.fault(
        'ZeroLengthDescriptor',
        'M6',
        `${whereName(where)} has length 0, which this device refuses (zeroLengthDescriptors: 'reject')`,
        where >= 0 ? where : -1 - where,
        addr,
      );
    }
    const chains = this.chains;
    if (write) {
      chains.addWritable(addr, len);
    } else {
      if (chains.writableCount > 0) {
        return this.fault(
          'ReadableAfterWritable',
          'M5',
          `${whereName(where)} is device-readable but follows a writable one: readable buffers come first (S4)`,
          where >= 0 ? where : -1 - where,
          addr,
        );
      }
      chains.addReadable(addr, len);
    }
    if (chains.readableLength + chains.writableLength > MAX_CHAIN_BYTES) {
      return this.fault(
        'ChainLengthOverflow',
        'M7',
        `chain length passes 2^32 - 1 bytes at ${whereName(where)} (S5: the total must fit in 32 bits)`,
        where >= 0 ? where : -1 - where,
        addr,
        len,
      );
    }
    this.sWhere[this.sSegs - 1] = where;
    if (this.sOutside < 0 && this.memory.check(addr, len) !== null) this.sOutside = this.sSegs - 1;
    return null;
  }

  // ---------------------------------------------------------------- tracing

  protected traceFault(f: VirtioFault): VirtioFault {
    return traceFault(
      this.tracer,
      this.index,
      'split',
      f,
      '',
      '; the device stops using this queue and sets NEEDS_RESET (G3)',
    );
  }

  private tracePop(t: RingTracer, chain: DescriptorChain, before: number): void {
    const parts: string[] = [];
    if (chain.readable.length > 0) {
      parts.push(`${chain.readable.length} readable, ${plural(chain.readableLength, 'byte')}`);
    }
    if (chain.writable.length > 0) {
      parts.push(`${chain.writable.length} writable, ${plural(chain.writableLength, 'byte')}`);
    }
    const via = chain.indirect ? ' through an indirect table' : '';
    t.emit({
      op: 'device-pop',
      queue: this.index,
      format: 'split',
      head: chain.head,
      descCount: chain.descCount,
      len: chain.readableLength + chain.writableLength,
      idx: this.lastAvail,
      rule: chain.indirect ? 'S6' : 'S4',
      text: `device popped head ${chain.head} (${plural(chain.readable.length + chain.writable.length, 'buffer')}${via}: ${parts.join('; ')}); last_avail_idx ${before} -> ${this.lastAvail}`,
    });
    if (this.lastAvail === 0) this.traceWrap(t, 'last_avail_idx', 'S8');
  }
}
