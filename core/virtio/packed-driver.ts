/**
 * The packed virtqueue, driver side: what Linux's virtqueue_add_packed,
 * virtqueue_kick_prepare_packed and virtqueue_get_buf_ctx_packed do, for the
 * simulated guest. The ring layout it shares with the device side is in
 * packed-ring.ts; packed-queue.ts re-exports this class.
 */
import type { Segment } from './chain.js';
import { fault, type VirtioFault } from './fault.js';
import type { GuestAllocator } from './allocator.js';
import type { GuestMemory } from './memory.js';
import {
  PACKED_DESC_F_INDIRECT,
  PACKED_DESC_F_NEXT,
  PACKED_DESC_F_WRITE,
  PACKED_EVENT_FLAG_DESC,
  PACKED_EVENT_FLAG_DISABLE,
  PACKED_EVENT_FLAG_ENABLE,
  type DriverQueue,
  type PackedQueueSnapshot,
  type QueueOptions,
  type UsedBuffer,
} from './queue.js';
import { PackedQueueBase } from './queue-base.js';
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

export class PackedDriverQueue<T> extends PackedQueueBase implements DriverQueue<T> {
  private readonly allocator: GuestAllocator;
  /** What getUsed() returns, refilled each call (see DriverQueue.getUsed). */
  private used: UsedBuffer<T> | null = null;

  /** Ring slots not taken by outstanding buffers (P5: never below 0). */
  private freeSlots: number;
  /** Free buffer ids, as a stack (Linux keeps them as a list through desc_extra). */
  private readonly freeIds: Uint16Array;
  private freeTop: number;
  /** Per id: ring slots recorded at add time, 0 when the id is free. */
  private readonly idSlots: Uint16Array;
  private readonly idHead: Uint16Array;
  /** Per id: writable bytes, to check the device's used length (P8). */
  private readonly idWritable: Float64Array;
  /** Per id: address of its indirect table, -1 for none. */
  private readonly idTable: Float64Array;
  private readonly tokens: (T | undefined)[];
  /** Ring slots made available since the last kickPrepare. */
  private added = 0;
  /** What the driver event flags hold, so unchanged values are not rewritten. */
  private eventShadow = PACKED_EVENT_FLAG_ENABLE;

  private constructor(options: QueueOptions, memory: GuestMemory, allocator: GuestAllocator) {
    super(options, memory);
    const size = this.size;
    this.allocator = allocator;
    this.freeSlots = size;
    this.freeIds = new Uint16Array(size);
    for (let i = 0; i < size; i++) this.freeIds[i] = size - 1 - i; // id 0 on top
    this.freeTop = size;
    this.idSlots = new Uint16Array(size);
    this.idHead = new Uint16Array(size);
    this.idWritable = new Float64Array(size);
    this.idTable = new Float64Array(size).fill(-1);
    this.tokens = new Array<T | undefined>(size);
  }

  /** The queue, or the fault that makes its layout unusable (P8, M8). */
  static create<T>(
    options: QueueOptions,
    memory: GuestMemory,
    allocator: GuestAllocator,
  ): PackedDriverQueue<T> | VirtioFault {
    const bad = checkPackedLayout(options.layout, options.index, memory);
    if (bad !== null) return bad;
    return new PackedDriverQueue<T>(options, memory, allocator);
  }

  get numFree(): number {
    return this.freeSlots;
  }

  add(
    readable: readonly Segment[],
    writable: readonly Segment[],
    token: T,
    indirect = false,
  ): number | VirtioFault {
    const queue = this.index;
    const nRead = readable.length;
    const total = nRead + writable.length;
    if (total === 0) {
      return fault('EmptyChain', 'M6', 'a packed buffer needs at least one element', { queue });
    }
    let writableBytes = 0;
    for (let i = 0; i < total; i++) {
      const seg = i < nRead ? readable[i]! : writable[i - nRead]!;
      if (!Number.isSafeInteger(seg.addr) || seg.addr < 0) {
        return fault('GuestMemoryOutOfRange', 'M8', `element ${i} has address ${seg.addr}`, {
          queue,
          index: i,
        });
      }
      if (!Number.isInteger(seg.len) || seg.len < 0 || seg.len > MAX_U32) {
        return fault('ChainLengthOverflow', 'M7', `element ${i} has length ${seg.len}, not a u32`, {
          queue,
          index: i,
        });
      }
      if (i >= nRead) writableBytes += seg.len;
    }
    // Like Linux: an indirect table when asked and negotiated, falling back
    // to direct descriptors when the table cannot be allocated.
    let table = -1;
    if (indirect && this.features.indirect) {
      const got = this.allocator.alloc(total * DESC_SIZE, DESC_SIZE);
      if (typeof got === 'number') table = got;
    }
    const slots = table >= 0 ? 1 : total;
    if (slots > this.freeSlots || this.freeTop === 0) {
      if (table >= 0) this.allocator.release(table);
      return fault(
        'QueueFull',
        'P5',
        `${slots} descriptor(s) needed, ${this.freeSlots} of ${this.size} ring slots free`,
        { queue, length: slots },
      );
    }
    const id = this.freeIds[--this.freeTop]!;
    const head = this.nextAvail;
    const headWrap = this.availWrap;
    const memory = this.memory;
    let headFlags: number;
    let slot = head;
    let wrap = headWrap;
    let bad: VirtioFault | null = null;
    if (table >= 0) {
      // Table entries: only WRITE is meaningful there (P6), id is reserved.
      for (let i = 0; i < total && bad === null; i++) {
        const seg = i < nRead ? readable[i]! : writable[i - nRead]!;
        const e = table + i * DESC_SIZE;
        bad = this.writeDesc(e, seg.addr, seg.len, 0);
        if (bad === null) bad = memory.write16(e + DESC_FLAGS, i < nRead ? 0 : PACKED_DESC_F_WRITE);
      }
      if (bad === null)
        bad = this.writeDesc(this.descAddr + head * DESC_SIZE, table, total * DESC_SIZE, id);
      headFlags = PACKED_DESC_F_INDIRECT | availBits(headWrap);
      if (++slot === this.size) {
        slot = 0;
        wrap = !wrap;
      }
    } else {
      headFlags = 0;
      for (let i = 0; i < total && bad === null; i++) {
        const seg = i < nRead ? readable[i]! : writable[i - nRead]!;
        const base = this.descAddr + slot * DESC_SIZE;
        // Linux writes the id into every descriptor; the device reads it
        // from the last one (P4).
        bad = this.writeDesc(base, seg.addr, seg.len, id);
        const flags =
          (i < total - 1 ? PACKED_DESC_F_NEXT : 0) |
          (i < nRead ? 0 : PACKED_DESC_F_WRITE) |
          availBits(wrap);
        if (i === 0) headFlags = flags;
        else if (bad === null) bad = memory.write16(base + DESC_FLAGS, flags);
        if (++slot === this.size) {
          slot = 0;
          wrap = !wrap;
        }
      }
    }
    // P5: the head's flags go last, so the device never sees a partial list.
    if (bad === null)
      bad = memory.write16(this.descAddr + head * DESC_SIZE + DESC_FLAGS, headFlags);
    if (bad !== null) {
      this.freeIds[this.freeTop++] = id;
      if (table >= 0) this.allocator.release(table);
      return bad.onQueue(queue);
    }
    this.idSlots[id] = slots;
    this.idHead[id] = head;
    this.idWritable[id] = writableBytes;
    this.idTable[id] = table;
    this.tokens[id] = token;
    this.freeSlots -= slots;
    this.added += slots;
    this.nextAvail = slot;
    this.availWrap = wrap;
    const t = this.tracer;
    if (t !== null && t.active) {
      const last = (head + slots - 1) % this.size;
      t.emit({
        op: 'driver-add',
        queue,
        format: 'packed',
        head,
        id,
        descCount: total,
        len: this.sumLen(readable) + writableBytes,
        idx: slot,
        rule: 'P5',
        text:
          `driver wrote buffer id ${id} into slot${slots > 1 ? `s ${head}..${last}` : ` ${head}`}` +
          (table >= 0 ? ` (one INDIRECT descriptor for a ${total}-entry table)` : '') +
          ` with ${availUsedText(headFlags)} (its wrap ${headWrap ? 1 : 0}), writing the head's flags last ` +
          `so the device never sees half a buffer (P5)`,
      });
      if (wrap !== headWrap) this.traceWrap(t, 'avail', wrap);
    }
    return id;
  }

  private writeDesc(base: number, addr: number, len: number, id: number): VirtioFault | null {
    const memory = this.memory;
    let bad = memory.write64(base, addr);
    if (bad === null) bad = memory.write32(base + DESC_LEN, len);
    if (bad === null) bad = memory.write16(base + DESC_ID, id);
    return bad;
  }

  private sumLen(segments: readonly Segment[]): number {
    let n = 0;
    for (let i = 0; i < segments.length; i++) n += segments[i]!.len;
    return n;
  }

  kickPrepare(): boolean | VirtioFault {
    const memory = this.memory;
    const newIdx = this.nextAvail;
    const added = this.added;
    this.added = 0;
    const rawFlags = memory.read16(this.deviceEventAddr + EVENT_FLAGS);
    if (typeof rawFlags !== 'number') return this.fail(rawFlags.onQueue(this.index));
    const mode = rawFlags & 3;
    let send: boolean;
    let offWrap = 0;
    if (mode === PACKED_EVENT_FLAG_DESC && this.features.eventIdx) {
      const ow = memory.read16(this.deviceEventAddr + EVENT_OFF_WRAP);
      if (typeof ow !== 'number') return this.fail(ow.onQueue(this.index));
      offWrap = ow;
      send = packedNeedEvent(offWrap, this.size, this.availWrap, newIdx, added);
    } else {
      // Like Linux: anything but DISABLE asks for a kick.
      send = mode !== PACKED_EVENT_FLAG_DISABLE;
    }
    const t = this.tracer;
    if (t !== null && t.active) {
      const why =
        mode === PACKED_EVENT_FLAG_DESC && this.features.eventIdx
          ? `DESC offset ${offWrap & ~EVENT_WRAP_BIT} wrap ${offWrap & EVENT_WRAP_BIT ? 1 : 0}, and the ${added} slot(s) just made available ${send ? 'include' : 'do not reach'} it`
          : `${eventFlagName(mode)} after ${added} new slot(s)`;
      t.emit({
        op: 'driver-notify',
        queue: this.index,
        format: 'packed',
        idx: newIdx,
        sent: send,
        rule: 'P7',
        text: `device event suppression says ${why}: kick ${send ? 'sent' : 'suppressed'} (P7)`,
      });
    }
    return send;
  }

  getUsed(): UsedBuffer<T> | null | VirtioFault {
    const memory = this.memory;
    const queue = this.index;
    const slot = this.nextUsed;
    const wrap = this.usedWrap;
    const base = this.descAddr + slot * DESC_SIZE;
    const flags = memory.read16(base + DESC_FLAGS);
    if (typeof flags !== 'number') return this.fail(flags.onQueue(queue));
    // P1: used means AVAIL == USED == the driver's used wrap counter.
    if ((flags & AVAIL_USED) !== usedBits(wrap)) return null;
    const id = memory.read16(base + DESC_ID);
    if (typeof id !== 'number') return this.fail(id.onQueue(queue));
    const len = memory.read32(base + DESC_LEN);
    if (typeof len !== 'number') return this.fail(len.onQueue(queue));
    if (id >= this.size) {
      return this.fail(
        fault(
          'InvalidBufferId',
          'M2',
          `device used buffer id ${id} at slot ${slot}, not below the size ${this.size}`,
          {
            queue,
            index: id,
          },
        ),
      );
    }
    const slots = this.idSlots[id]!;
    if (slots === 0) {
      return this.fail(
        fault(
          'UnknownUsedId',
          'M15',
          `device used buffer id ${id} at slot ${slot}, which is not outstanding`,
          {
            queue,
            index: id,
          },
        ),
      );
    }
    // Without WRITE the length is reserved and ignored by drivers.
    const written = (flags & PACKED_DESC_F_WRITE) !== 0 ? len : 0;
    if (written > this.idWritable[id]!) {
      return this.fail(
        fault(
          'UsedLengthTooLarge',
          'P8',
          `device reports ${written} bytes written into buffer id ${id}, which has ${this.idWritable[id]} writable bytes`,
          { queue, index: id, length: written },
        ),
      );
    }
    const token = this.tokens[id] as T;
    this.release(id);
    // P4: skip by the slot count recorded when the buffer was added.
    let next = slot + slots;
    if (next >= this.size) {
      next -= this.size;
      this.usedWrap = !wrap;
    }
    this.nextUsed = next;
    if (this.eventShadow === PACKED_EVENT_FLAG_DESC) {
      // Like Linux: while waiting on a specific descriptor, keep asking
      // for the one after what was just reclaimed.
      memory.write16(
        this.driverEventAddr + EVENT_OFF_WRAP,
        next | (this.usedWrap ? EVENT_WRAP_BIT : 0),
      );
    }
    const t = this.tracer;
    if (t !== null && t.active) {
      t.emit({
        op: 'driver-reclaim',
        queue,
        format: 'packed',
        head: slot,
        id,
        descCount: slots,
        len: written,
        idx: next,
        rule: slots > 1 ? 'P4' : 'P1',
        text:
          `driver saw slot ${slot} ${availUsedText(flags)}, equal to its used wrap ${wrap ? 1 : 0}: ` +
          `buffer id ${id} is back with ${written} bytes written (P8); it frees ${slots} slot(s) and ` +
          `next looks at slot ${next}${slots > 1 ? ' (P4)' : ' (P1)'}`,
      });
      if (this.usedWrap !== wrap) this.traceWrap(t, 'used', this.usedWrap);
    }
    const used = this.used ?? (this.used = { token, len: written });
    used.token = token;
    used.len = written;
    return used;
  }

  /** Return an outstanding id and its slots and table to the free pools. */
  private release(id: number): void {
    this.freeSlots += this.idSlots[id]!;
    this.idSlots[id] = 0;
    this.tokens[id] = undefined;
    const table = this.idTable[id]!;
    if (table >= 0) {
      this.allocator.release(table);
      this.idTable[id] = -1;
    }
    this.freeIds[this.freeTop++] = id;
  }

  disableCallbacks(): void {
    if (this.eventShadow === PACKED_EVENT_FLAG_DISABLE) return;
    this.eventShadow = PACKED_EVENT_FLAG_DISABLE;
    // The layout was checked against memory at creation: this cannot fail.
    this.memory.write16(this.driverEventAddr + EVENT_FLAGS, PACKED_EVENT_FLAG_DISABLE);
    this.traceSuppress();
  }

  enableCallbacks(): boolean | VirtioFault {
    const memory = this.memory;
    if (this.features.eventIdx) {
      // Interrupt me once the next used slot is written; off_wrap before flags.
      memory.write16(
        this.driverEventAddr + EVENT_OFF_WRAP,
        this.nextUsed | (this.usedWrap ? EVENT_WRAP_BIT : 0),
      );
    }
    if (this.eventShadow === PACKED_EVENT_FLAG_DISABLE) {
      this.eventShadow = this.features.eventIdx ? PACKED_EVENT_FLAG_DESC : PACKED_EVENT_FLAG_ENABLE;
      memory.write16(this.driverEventAddr + EVENT_FLAGS, this.eventShadow);
    }
    this.traceSuppress();
    // Like virtqueue_enable_cb: used buffers already waiting mean the
    // caller must poll again, since no interrupt will come for them.
    const flags = memory.read16(this.descAddr + this.nextUsed * DESC_SIZE + DESC_FLAGS);
    if (typeof flags !== 'number') return this.fail(flags.onQueue(this.index));
    return (flags & AVAIL_USED) !== usedBits(this.usedWrap);
  }

  detachUnused(): T[] {
    const out: T[] = [];
    for (let id = 0; id < this.size; id++) {
      if (this.idSlots[id] === 0) continue;
      out.push(this.tokens[id] as T);
      this.release(id);
    }
    return out;
  }

  snapshot(): PackedQueueSnapshot {
    const snap = readPackedRings(this.memory, this.index, this.layout, this.features.eventIdx);
    addChainsInFlight(snap, this.idHead, this.idSlots);
    snap.driver = { ...this.positions(), numFree: this.freeSlots };
    return snap;
  }

  // ---------------------------------------------------------------- tracing

  private traceSuppress(): void {
    const t = this.tracer;
    if (t === null || !t.active) return;
    const text =
      this.eventShadow === PACKED_EVENT_FLAG_DISABLE
        ? 'driver wrote DISABLE into its event suppression: the device should not interrupt (P7)'
        : this.eventShadow === PACKED_EVENT_FLAG_DESC
          ? `driver wrote DESC offset ${this.nextUsed} wrap ${this.usedWrap ? 1 : 0}: interrupt me once slot ${this.nextUsed} is used in that lap (P7)`
          : 'driver wrote ENABLE into its event suppression: interrupt me on every used buffer (P7)';
    t.emit({
      op: 'driver-suppress',
      queue: this.index,
      format: 'packed',
      idx: this.nextUsed,
      sent: this.eventShadow !== PACKED_EVENT_FLAG_DISABLE,
      rule: 'P7',
      text,
    });
  }

  protected wrapText(which: 'avail' | 'used', w: number): string {
    return which === 'avail'
      ? `driver passed the end of the ring: its avail wrap counter is now ${w}, so it marks new descriptors AVAIL=${w} USED=${1 - w} (P1)`
      : `driver read past the end of the ring: its used wrap counter is now ${w}, so used descriptors now read AVAIL=USED=${w} (P1)`;
  }
}
