/**
 * The driver side of a split virtqueue, shaped after Linux's
 * drivers/virtio/virtio_ring.c (virtqueue_add_split, virtqueue_kick_prepare,
 * virtqueue_get_buf, virtqueue_detach_unused_buf).
 *
 * Like Linux since 5.x, the driver keeps its own copy of each descriptor's
 * `next` and of every chain's length, and never reads them back from the
 * shared table: a device scribbling over the table cannot corrupt the free
 * list. What the device does write (the used ring) is validated before use.
 */
import type { GuestAllocator } from './allocator.js';
import type { Segment } from './chain.js';
import { hex, type VirtioFault } from './fault.js';
import type { GuestMemory } from './memory.js';
import {
  needEvent,
  SPLIT_AVAIL_F_NO_INTERRUPT,
  SPLIT_DESC_F_INDIRECT,
  SPLIT_DESC_F_NEXT,
  SPLIT_DESC_F_WRITE,
  SPLIT_USED_F_NO_NOTIFY,
  type DriverQueue,
  type QueueOptions,
  type SplitQueueSnapshot,
  type UsedBuffer,
} from './queue.js';
import { plural, SplitQueueBase, traceFault } from './queue-base.js';
import { checkSplitQueue, readSplitRings } from './split-ring.js';

function validSegment(seg: Segment): boolean {
  return (
    Number.isSafeInteger(seg.addr) &&
    seg.addr >= 0 &&
    Number.isInteger(seg.len) &&
    seg.len >= 0 &&
    seg.len <= 0xffff_ffff
  );
}

/**
 * Policies a reader must know:
 * - `add(..., indirect = true)` falls back to direct descriptors, as Linux
 *   does, when INDIRECT_DESC was not negotiated or the table cannot be
 *   allocated; an indirect chain takes one ring descriptor.
 * - avail.idx is published by kickPrepare(), not by add(): the ring entry is
 *   written at add time but stays invisible until then.
 * - disableCallbacks() with EVENT_IDX parks used_event one behind
 *   last_used_idx (avail.flags must stay 0 with EVENT_IDX); getUsed() moves
 *   used_event along while callbacks are enabled, as Linux does.
 * - getUsed() refuses ids that are not outstanding heads (UnknownUsedId) and
 *   lengths beyond what the chain offered (UsedLengthTooLarge).
 */
export class SplitDriverQueue<T> extends SplitQueueBase implements DriverQueue<T> {
  private readonly allocator: GuestAllocator;

  /** Private copy of each descriptor's next: the free list and chains run through it. */
  private readonly nextOf: Uint16Array;
  private freeHead = 0;
  private free: number;
  private readonly tokens: (T | undefined)[];
  private readonly outstanding: Uint8Array;
  /** Ring descriptors held by each outstanding head (1 for an indirect chain). */
  private readonly chainLen: Uint16Array;
  private readonly writableLen: Float64Array;
  /** Indirect table address per head, -1 when the chain is direct. */
  private readonly table: Float64Array;
  private outstandingCount = 0;
  private availShadow = 0;
  private published = 0;
  private lastUsed = 0;
  private callbacks = true;
  /** What getUsed() returns, refilled each call (see DriverQueue.getUsed). */
  private used: UsedBuffer<T> | null = null;

  constructor(options: QueueOptions, memory: GuestMemory, allocator: GuestAllocator) {
    super(options, memory);
    const size = this.size;
    this.allocator = allocator;
    this.nextOf = new Uint16Array(size);
    for (let i = 0; i < size - 1; i++) this.nextOf[i] = i + 1;
    this.free = size;
    this.tokens = new Array<T | undefined>(size).fill(undefined);
    this.outstanding = new Uint8Array(size);
    this.chainLen = new Uint16Array(size);
    this.writableLen = new Float64Array(size);
    this.table = new Float64Array(size).fill(-1);
  }

  /**
   * The queue, or the fault that makes its layout unusable (S1, M8). The
   * rings are expected to start zeroed (allocSplitQueue does that).
   */
  static create<T>(
    options: QueueOptions,
    memory: GuestMemory,
    allocator: GuestAllocator,
  ): SplitDriverQueue<T> | VirtioFault {
    const bad = checkSplitQueue(options.layout, options.index, memory);
    return bad ?? new SplitDriverQueue<T>(options, memory, allocator);
  }

  get numFree(): number {
    return this.free;
  }

  /** Buffers added and not yet reclaimed. */
  get outstandingBuffers(): number {
    return this.outstandingCount;
  }

  add(
    readable: readonly Segment[],
    writable: readonly Segment[],
    token: T,
    indirect = false,
  ): number | VirtioFault {
    const nr = readable.length;
    const total = nr + writable.length;
    if (total === 0) {
      return this.fail('EmptyChain', 'M6', 'a chain needs at least one buffer');
    }
    let writeBytes = 0;
    for (let k = 0; k < total; k++) {
      const seg = k < nr ? readable[k]! : writable[k - nr]!;
      if (!validSegment(seg)) {
        return this.fail(
          'GuestMemoryOutOfRange',
          'M8',
          `buffer ${k} (${seg.addr}, ${seg.len}) is not a valid guest range`,
          k,
        );
      }
      if (k >= nr) writeBytes += seg.len;
    }

    let table = -1;
    if (indirect && this.indirectOk) {
      if (this.free === 0) return this.full(1);
      const got = this.allocator.alloc(16 * total, 16);
      if (typeof got === 'number') table = got;
    }
    const needed = table >= 0 ? 1 : total;
    if (this.free < needed) return this.full(needed);

    const head = this.freeHead;
    let e: VirtioFault | null = null;
    let last = head;
    if (table >= 0) {
      for (let k = 0; k < total && e === null; k++) {
        const seg = k < nr ? readable[k]! : writable[k - nr]!;
        const flags = (k < total - 1 ? SPLIT_DESC_F_NEXT : 0) | (k >= nr ? SPLIT_DESC_F_WRITE : 0);
        e = this.writeDesc(table + 16 * k, seg.addr, seg.len, flags, k < total - 1 ? k + 1 : 0);
      }
      e ??= this.writeDesc(
        this.descAddr + 16 * head,
        table,
        16 * total,
        SPLIT_DESC_F_INDIRECT,
        this.nextOf[head]!,
      );
    } else {
      let i = head;
      for (let k = 0; k < total && e === null; k++) {
        const seg = k < nr ? readable[k]! : writable[k - nr]!;
        const flags = (k < total - 1 ? SPLIT_DESC_F_NEXT : 0) | (k >= nr ? SPLIT_DESC_F_WRITE : 0);
        e = this.writeDesc(this.descAddr + 16 * i, seg.addr, seg.len, flags, this.nextOf[i]!);
        last = i;
        i = this.nextOf[i]!;
      }
    }
    // The slot is invisible to the device until kickPrepare publishes avail.idx.
    const slot = this.availShadow & this.mask;
    e ??= this.availWrite16(4 + 2 * slot, head);
    if (e) {
      if (table >= 0) this.allocator.release(table);
      return this.traceFault(e.onQueue(this.index));
    }

    this.freeHead = this.nextOf[last]!;
    this.free -= needed;
    this.tokens[head] = token;
    this.outstanding[head] = 1;
    this.outstandingCount++;
    this.chainLen[head] = needed;
    this.writableLen[head] = writeBytes;
    this.table[head] = table;
    this.availShadow = (this.availShadow + 1) & 0xffff;

    const t = this.tracer;
    if (t !== null && t.active) {
      let readBytes = 0;
      for (const s of readable) readBytes += s.len;
      const how =
        table >= 0
          ? `an indirect table of ${total} entries at ${hex(table)}, 1 ring descriptor`
          : plural(total, 'descriptor');
      const parts: string[] = [];
      if (nr > 0) parts.push(`${nr} readable (${plural(readBytes, 'byte')})`);
      if (total > nr) parts.push(`${total - nr} writable (${plural(writeBytes, 'byte')})`);
      const what = parts.join(' then ');
      t.emit({
        op: 'driver-add',
        queue: this.index,
        format: 'split',
        head,
        descCount: total,
        len: readBytes + writeBytes,
        idx: this.availShadow,
        rule: table >= 0 ? 'S6' : 'S4',
        text: `driver added head ${head}: ${what} in ${how}; avail.ring[${slot}] = ${head}, not visible until avail.idx is published`,
      });
    }
    return head;
  }

  kickPrepare(): boolean | VirtioFault {
    const old = this.published;
    const now = this.availShadow;
    const e = this.availWrite16(2, now);
    if (e) return this.traceFault(e.onQueue(this.index));
    this.published = now;
    const t = this.tracer;
    if (t !== null && t.active && now !== old) {
      const n = (now - old) & 0xffff;
      t.emit({
        op: 'driver-publish',
        queue: this.index,
        format: 'split',
        idx: now,
        rule: 'S8',
        text: `driver published avail.idx ${old} -> ${now}: ${plural(n, 'new chain')} now visible to the device`,
      });
      if (now < old) this.traceWrap(t, 'avail.idx', 'S8');
    }

    let kick: boolean;
    let text = '';
    if (this.eventIdx) {
      const availEvent = this.usedRead16(4 + 8 * this.size);
      if (typeof availEvent !== 'number') return this.traceFault(availEvent.onQueue(this.index));
      kick = needEvent(availEvent, now, old);
      if (t !== null && t.active) {
        text = kick
          ? `avail.idx moved ${old} -> ${now}, passing avail_event ${availEvent}: the device asked for a kick there, driver notifies`
          : `avail.idx moved ${old} -> ${now} without passing avail_event ${availEvent}: no kick needed`;
      }
    } else {
      const flags = this.usedRead16(0);
      if (typeof flags !== 'number') return this.traceFault(flags.onQueue(this.index));
      kick = (flags & SPLIT_USED_F_NO_NOTIFY) === 0;
      if (t !== null && t.active) {
        text = kick
          ? `used.flags is ${flags} (no NO_NOTIFY): driver notifies the device`
          : 'used.flags has NO_NOTIFY: the device is busy consuming, driver skips the kick';
      }
    }
    if (t !== null && t.active) {
      t.emit({
        op: 'driver-notify',
        queue: this.index,
        format: 'split',
        idx: now,
        sent: kick,
        rule: 'S12',
        text,
      });
    }
    return kick;
  }

  getUsed(): UsedBuffer<T> | null | VirtioFault {
    const usedIdx = this.usedRead16(2);
    if (typeof usedIdx !== 'number') return this.traceFault(usedIdx.onQueue(this.index));
    if (usedIdx === this.lastUsed) return null;
    const pending = (usedIdx - this.lastUsed) & 0xffff;
    if (pending > this.outstandingCount) {
      return this.fail(
        'UnknownUsedId',
        'M15',
        `used.idx ${usedIdx} is ${pending} ahead of last_used_idx ${this.lastUsed}, but only ${this.outstandingCount} buffers are outstanding`,
        usedIdx,
        this.usedAddr + 2,
      );
    }
    const slot = this.lastUsed & this.mask;
    const elemOff = 4 + 8 * slot;
    const elem = this.usedAddr + elemOff;
    const id = this.usedRead32(elemOff);
    const len = this.usedRead32(elemOff + 4);
    if (typeof id !== 'number') return this.traceFault(id.onQueue(this.index));
    if (typeof len !== 'number') return this.traceFault(len.onQueue(this.index));
    if (id >= this.size || this.outstanding[id] !== 1) {
      return this.fail(
        'UnknownUsedId',
        'M15',
        `used.ring[${slot}] returns id ${id}, which is not a head the driver has outstanding`,
        id,
        elem,
      );
    }
    if (len > this.writableLen[id]!) {
      return this.fail(
        'UsedLengthTooLarge',
        'S9',
        `used.ring[${slot}] says ${len} bytes were written to head ${id}, which offered ${this.writableLen[id]}`,
        id,
        elem + 4,
        len,
      );
    }
    const token = this.tokens[id] as T;
    const freed = this.chainLen[id]!;
    const hadTable = this.table[id]! >= 0;
    this.detach(id);
    const before = this.lastUsed;
    this.lastUsed = (before + 1) & 0xffff;
    if (this.eventIdx && this.callbacks) {
      // Ask for the next interrupt right after this buffer, as Linux does.
      this.availWrite16(4 + 2 * this.size, this.lastUsed);
    }
    const t = this.tracer;
    if (t !== null && t.active) {
      t.emit({
        op: 'driver-reclaim',
        queue: this.index,
        format: 'split',
        head: id,
        len,
        idx: this.lastUsed,
        rule: 'S9',
        text: `driver reclaimed head ${id} (${plural(len, 'byte')} written by the device) from used.ring[${slot}]; last_used_idx ${before} -> ${this.lastUsed}, ${plural(freed, 'descriptor')} back on the free list${hadTable ? ', indirect table freed' : ''}`,
      });
      if (this.lastUsed === 0) this.traceWrap(t, 'last_used_idx', 'S11');
    }
    const used = this.used ?? (this.used = { token, len: len });
    used.token = token;
    used.len = len;
    return used;
  }

  disableCallbacks(): void {
    this.callbacks = false;
    let text: string;
    if (this.eventIdx) {
      // avail.flags must stay 0 with EVENT_IDX; an event index just behind
      // what we consumed is one the device will not cross for 65535 buffers.
      const value = (this.lastUsed - 1) & 0xffff;
      this.memory.write16(this.usedEventAddr, value);
      text = `driver parks used_event at ${value}, behind last_used_idx ${this.lastUsed}: the device will not cross it, so it will not interrupt`;
    } else {
      this.memory.write16(this.availAddr, SPLIT_AVAIL_F_NO_INTERRUPT);
      text = 'driver sets avail.flags NO_INTERRUPT: it will poll, the device should not interrupt';
    }
    const t = this.tracer;
    if (t !== null && t.active) {
      t.emit({
        op: 'driver-suppress',
        queue: this.index,
        format: 'split',
        idx: this.lastUsed,
        rule: this.eventIdx ? 'S11' : 'S10',
        text,
      });
    }
  }

  enableCallbacks(): boolean | VirtioFault {
    this.callbacks = true;
    const mem = this.memory;
    const e = this.eventIdx
      ? mem.write16(this.usedEventAddr, this.lastUsed)
      : mem.write16(this.availAddr, 0);
    if (e) return this.traceFault(e.onQueue(this.index));
    const usedIdx = mem.read16(this.usedAddr + 2);
    if (typeof usedIdx !== 'number') return this.traceFault(usedIdx.onQueue(this.index));
    const idle = usedIdx === this.lastUsed;
    const t = this.tracer;
    if (t !== null && t.active) {
      const how = this.eventIdx
        ? `sets used_event = last_used_idx ${this.lastUsed}: interrupt after the next used buffer`
        : 'clears avail.flags NO_INTERRUPT';
      const then = idle
        ? 'nothing is pending'
        : `but used.idx is already ${usedIdx}: buffers are pending, poll again`;
      t.emit({
        op: 'driver-suppress',
        queue: this.index,
        format: 'split',
        idx: this.lastUsed,
        rule: this.eventIdx ? 'S11' : 'S10',
        text: `driver ${how}; ${then}`,
      });
    }
    return idle;
  }

  detachUnused(): T[] {
    const out: T[] = [];
    for (let head = 0; head < this.size; head++) {
      if (this.outstanding[head] !== 1) continue;
      out.push(this.tokens[head] as T);
      this.detach(head);
    }
    // As Linux does for reset and unplug: the detached buffers are taken
    // back from the available ring too, so a re-enabled queue starts clean.
    this.availShadow = (this.availShadow - out.length) & 0xffff;
    this.published = this.availShadow;
    this.memory.write16(this.availAddr + 2, this.availShadow);
    return out;
  }

  snapshot(): SplitQueueSnapshot {
    const snap = readSplitRings(this.memory, this.index, this.layout, this.eventIdx);
    snap.driver = { freeHead: this.freeHead, numFree: this.free, lastUsedIdx: this.lastUsed };
    return snap;
  }

  // ---------------------------------------------------------------- helpers

  private writeDesc(
    at: number,
    addr: number,
    len: number,
    flags: number,
    next: number,
  ): VirtioFault | null {
    const mem = this.memory;
    // Fast path, once per descriptor of every add: one range check for the
    // whole 16-byte entry, then plain DataView stores. add() has already
    // checked addr (safe, non-negative) and len (32 bits); the table is
    // inside guest memory (checked at setup, or from the allocator).
    const r = mem.span(at, 16);
    if (r !== null) {
      const v = r.view;
      const o = at - r.base;
      v.setUint32(o, addr % 0x1_0000_0000, true);
      v.setUint32(o + 4, Math.floor(addr / 0x1_0000_0000), true);
      v.setUint32(o + 8, len, true);
      v.setUint16(o + 12, flags, true);
      v.setUint16(o + 14, next, true);
      return null;
    }
    // Not inside one region: the checked writes name the fault.
    return (
      mem.write64(at, addr) ??
      mem.write32(at + 8, len) ??
      mem.write16(at + 12, flags) ??
      mem.write16(at + 14, next)
    );
  }

  /** Put a chain back on the free list (its own links are still in nextOf) and drop its state. */
  private detach(head: number): void {
    const n = this.chainLen[head]!;
    let last = head;
    for (let k = 1; k < n; k++) last = this.nextOf[last]!;
    this.nextOf[last] = this.freeHead;
    this.freeHead = head;
    this.free += n;
    const table = this.table[head]!;
    if (table >= 0) {
      this.allocator.release(table);
      this.table[head] = -1;
    }
    this.tokens[head] = undefined;
    this.outstanding[head] = 0;
    this.outstandingCount--;
  }

  private full(needed: number): VirtioFault {
    const never = needed > this.size;
    return this.fail(
      'QueueFull',
      never ? 'S5' : 'M9',
      never
        ? `a direct chain of ${needed} descriptors can never fit a queue of ${this.size}`
        : `${plural(needed, 'descriptor')} needed, ${this.free} free: wait for the device to use some`,
      undefined,
      undefined,
      needed,
    );
  }

  protected traceFault(f: VirtioFault): VirtioFault {
    return traceFault(this.tracer, this.index, 'split', f, 'driver side: ');
  }
}
