/**
 * Simulated guest-physical memory: one or more non-overlapping regions with
 * little-endian accessors.
 *
 * Every access is range-checked against the regions and comes back as a
 * value or a VirtioFault (M8): nothing here throws, nothing reads past a
 * region into its neighbour, and nothing wraps around at 2^32 or 2^64. An
 * access that straddles two regions is refused, as it would be for a real
 * device doing DMA into non-contiguous RAM without splitting the access.
 */
import { fault, hex, type VirtioFault } from './fault.js';

export interface RegionSpec {
  /** Guest-physical base address. */
  base: number;
  /** Size in bytes. */
  size: number;
}

/** Entries in each memory's copyView cache (a power of two). */
const VIEW_CACHE = 64;

interface Region {
  base: number;
  end: number; // exclusive
  bytes: Uint8Array;
  view: DataView;
}

/**
 * One region as the fast paths see it (GuestMemory.span): the bytes of
 * guest-physical [base, base + bytes.length), read through `view` at
 * `addr - base`. Callers must not keep it beyond one operation.
 */
export interface MemorySpan {
  readonly base: number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
}

/** The largest address we model: above it JavaScript numbers lose integer precision. */
export const MAX_GUEST_ADDRESS = Number.MAX_SAFE_INTEGER;

export interface GuestMemoryOptions {
  /**
   * Back each region with a SharedArrayBuffer instead of an ArrayBuffer, so
   * that another thread can map the same guest memory (GuestMemory.attach
   * on what `shared` returns): the simulated guest in a worker beside the
   * device, as QEMU runs vCPU threads beside its I/O thread (issue 18's
   * measurement, bench/worker-guest.ts). Accesses stay plain, non-atomic
   * loads and stores, exactly as for unshared memory: ordering between
   * threads is the user's job, as barriers are a real driver's and
   * device's. Off by default; nothing in the engine shares its memory.
   */
  shared?: boolean;
}

/**
 * Guest memory as another thread maps it: each region's base and its
 * bytes. Structured-clonable (workerData, postMessage) without copying.
 */
export interface SharedGuestMemory {
  readonly regions: readonly { readonly base: number; readonly buffer: SharedArrayBuffer }[];
}

/** A region over `bytes` (which start at the region's base: views index by addr - base). */
function region(base: number, bytes: Uint8Array): Region {
  return {
    base,
    end: base + bytes.length,
    bytes,
    view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  };
}

/** The regions sorted by base, or the fault naming the first bad one (M8). */
function checkLayout(specs: readonly RegionSpec[]): RegionSpec[] | VirtioFault {
  if (specs.length === 0) {
    return fault('InvalidGuestMemoryLayout', 'M8', 'guest memory needs at least one region');
  }
  const sorted = [...specs].sort((a, b) => a.base - b.base);
  let previousEnd = -1;
  for (const spec of sorted) {
    if (
      !Number.isSafeInteger(spec.base) ||
      !Number.isSafeInteger(spec.size) ||
      spec.base < 0 ||
      spec.size <= 0 ||
      spec.base + spec.size > MAX_GUEST_ADDRESS
    ) {
      return fault(
        'InvalidGuestMemoryLayout',
        'M8',
        `region at ${hex(spec.base)} of ${spec.size} bytes is not a valid range`,
        { address: spec.base, length: spec.size },
      );
    }
    if (spec.base < previousEnd) {
      return fault(
        'InvalidGuestMemoryLayout',
        'M8',
        `region at ${hex(spec.base)} overlaps the region before it`,
        { address: spec.base, length: spec.size },
      );
    }
    previousEnd = spec.base + spec.size;
  }
  return sorted;
}

export class GuestMemory {
  private readonly regions: Region[];
  /** Region of the last successful lookup: most accesses hit the same one. */
  private last: Region;
  /** Every region's bytes are a SharedArrayBuffer (create with `shared`, or attach). */
  private readonly isShared: boolean;
  /**
   * Views handed out by copyView, direct-mapped by address: the windows a
   * device copies out of are mostly the same few buffers again (a driver
   * re-posts what it reclaimed), and a fresh subarray per copy cost a
   * 4 KiB gather a quarter of its time. A view is a window on bytes that
   * never move (regions are fixed at creation), so a cached one stays right.
   * An empty slot's address is NaN, which equals no address.
   */
  private readonly viewAddr = new Float64Array(VIEW_CACHE).fill(Number.NaN);
  private readonly viewLen = new Float64Array(VIEW_CACHE);
  private readonly views: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(
    VIEW_CACHE,
  ).fill(undefined);

  private constructor(regions: Region[], shared: boolean) {
    this.regions = regions;
    this.last = regions[0]!;
    this.isShared = shared;
  }

  /** A single region of `size` bytes at guest-physical address 0 (or `base`). */
  static linear(size: number, base = 0): GuestMemory {
    const made = GuestMemory.create([{ base, size }]);
    if (made instanceof GuestMemory) return made;
    throw new TypeError(made.toString()); // programming error: bad constant layout
  }

  /**
   * Memory from a region list; a bad layout is a fault value, not an
   * exception. With `{ shared: true }` every region's bytes live in a
   * SharedArrayBuffer of its own (see GuestMemoryOptions).
   */
  static create(
    specs: readonly RegionSpec[],
    options: GuestMemoryOptions = {},
  ): GuestMemory | VirtioFault {
    const sorted = checkLayout(specs);
    if (!Array.isArray(sorted)) return sorted;
    const shared = options.shared === true;
    return new GuestMemory(
      sorted.map((spec) =>
        region(
          spec.base,
          shared ? new Uint8Array(new SharedArrayBuffer(spec.size)) : new Uint8Array(spec.size),
        ),
      ),
      shared,
    );
  }

  /**
   * The same guest memory in another thread: regions over the shared
   * buffers `shared` (from another GuestMemory's `shared`, sent through
   * workerData or postMessage). Checked as create() checks a layout (M8);
   * anything but a SharedArrayBuffer is refused, since a copy would be
   * memory of its own, not the guest's.
   */
  static attach(shared: SharedGuestMemory): GuestMemory | VirtioFault {
    for (const r of shared.regions) {
      if (!(r.buffer instanceof SharedArrayBuffer)) {
        return fault(
          'InvalidGuestMemoryLayout',
          'M8',
          `region at ${hex(r.base)} is not backed by a SharedArrayBuffer`,
          { address: r.base },
        );
      }
    }
    const specs = shared.regions.map((r) => ({ base: r.base, size: r.buffer.byteLength }));
    const sorted = checkLayout(specs);
    if (!Array.isArray(sorted)) return sorted;
    const byBase = new Map(shared.regions.map((r) => [r.base, r.buffer]));
    return new GuestMemory(
      sorted.map((s) => region(s.base, new Uint8Array(byBase.get(s.base)!))),
      true,
    );
  }

  /**
   * The shared buffers behind this memory, for GuestMemory.attach in
   * another thread; null for memory made without `{ shared: true }`.
   */
  get shared(): SharedGuestMemory | null {
    if (!this.isShared) return null;
    return {
      regions: this.regions.map((r) => ({
        base: r.base,
        buffer: r.bytes.buffer as SharedArrayBuffer,
      })),
    };
  }

  /** Region layout, for snapshots and the UI. */
  get layout(): RegionSpec[] {
    return this.regions.map((r) => ({ base: r.base, size: r.end - r.base }));
  }

  get totalSize(): number {
    let n = 0;
    for (const r of this.regions) n += r.end - r.base;
    return n;
  }

  /** The region holding [addr, addr+len), or undefined. */
  private find(addr: number, len: number): Region | undefined {
    const last = this.last;
    if (addr >= last.base && addr + len <= last.end) return last;
    for (const r of this.regions) {
      if (addr >= r.base && addr + len <= r.end) {
        this.last = r;
        return r;
      }
    }
    return undefined;
  }

  /** The M8 fault for an access of `len` bytes at `addr` (for callers of span() that got null). */
  outOfRange(addr: number, len: number): VirtioFault {
    return fault(
      'GuestMemoryOutOfRange',
      'M8',
      `guest memory access of ${len} bytes at ${hex(addr)} is outside guest memory`,
      { address: addr, length: len },
    );
  }

  private static validArgs(addr: number, len: number): boolean {
    // Rejects NaN, negatives, fractions and anything that would lose precision.
    return (
      Number.isSafeInteger(addr) &&
      Number.isSafeInteger(len) &&
      addr >= 0 &&
      len >= 0 &&
      addr + len <= MAX_GUEST_ADDRESS
    );
  }

  /** null when [addr, addr+len) lies inside one region, else the fault (M8). */
  check(addr: number, len: number): VirtioFault | null {
    if (!GuestMemory.validArgs(addr, len)) return this.outOfRange(addr, len);
    if (len === 0) return null;
    return this.find(addr, len) ? null : this.outOfRange(addr, len);
  }

  /**
   * Fast path for fixed-size records read or written field by field (a
   * 16-byte descriptor, an 8-byte used element): range-check
   * [addr, addr+len) once and hand back its region, so the caller touches
   * the fields through `span.view` at `addr - span.base` without a range
   * check and a value-or-fault result per field. Allocates nothing (the
   * region object already exists). Null when the range is not inside one
   * region: the caller then takes its checked accessors, which name the
   * fault (M8) exactly as before.
   */
  span(addr: number, len: number): MemorySpan | null {
    if (!GuestMemory.validArgs(addr, len)) return null;
    return this.find(addr, len) ?? null;
  }

  read8(addr: number): number | VirtioFault {
    const r = GuestMemory.validArgs(addr, 1) ? this.find(addr, 1) : undefined;
    return r ? r.bytes[addr - r.base]! : this.outOfRange(addr, 1);
  }

  read16(addr: number): number | VirtioFault {
    const r = GuestMemory.validArgs(addr, 2) ? this.find(addr, 2) : undefined;
    return r ? r.view.getUint16(addr - r.base, true) : this.outOfRange(addr, 2);
  }

  read32(addr: number): number | VirtioFault {
    const r = GuestMemory.validArgs(addr, 4) ? this.find(addr, 4) : undefined;
    return r ? r.view.getUint32(addr - r.base, true) : this.outOfRange(addr, 4);
  }

  /**
   * A 64-bit little-endian value as a JavaScript number. Values above 2^53
   * cannot be guest addresses we model, so they come back as the fault for
   * the address they would name (the caller reports it as M8).
   */
  read64(addr: number): number | VirtioFault {
    const r = GuestMemory.validArgs(addr, 8) ? this.find(addr, 8) : undefined;
    if (!r) return this.outOfRange(addr, 8);
    const lo = r.view.getUint32(addr - r.base, true);
    const hi = r.view.getUint32(addr - r.base + 4, true);
    if (hi > 0x1fffff) {
      return fault(
        'GuestMemoryOutOfRange',
        'M8',
        `64-bit value at ${hex(addr)} (${hex(hi)}_${lo.toString(16).padStart(8, '0')}) is beyond any guest address`,
        { address: addr, length: 8 },
      );
    }
    return hi * 0x1_0000_0000 + lo;
  }

  write8(addr: number, value: number): VirtioFault | null {
    const r = GuestMemory.validArgs(addr, 1) ? this.find(addr, 1) : undefined;
    if (!r) return this.outOfRange(addr, 1);
    r.bytes[addr - r.base] = value;
    return null;
  }

  write16(addr: number, value: number): VirtioFault | null {
    const r = GuestMemory.validArgs(addr, 2) ? this.find(addr, 2) : undefined;
    if (!r) return this.outOfRange(addr, 2);
    r.view.setUint16(addr - r.base, value, true);
    return null;
  }

  write32(addr: number, value: number): VirtioFault | null {
    const r = GuestMemory.validArgs(addr, 4) ? this.find(addr, 4) : undefined;
    if (!r) return this.outOfRange(addr, 4);
    r.view.setUint32(addr - r.base, value >>> 0, true);
    return null;
  }

  write64(addr: number, value: number): VirtioFault | null {
    const r = GuestMemory.validArgs(addr, 8) ? this.find(addr, 8) : undefined;
    if (!r) return this.outOfRange(addr, 8);
    if (!Number.isSafeInteger(value) || value < 0) {
      return fault('GuestMemoryOutOfRange', 'M8', `value ${value} does not fit a guest address`, {
        address: addr,
        length: 8,
      });
    }
    const off = addr - r.base;
    r.view.setUint32(off, value % 0x1_0000_0000, true);
    r.view.setUint32(off + 4, Math.floor(value / 0x1_0000_0000), true);
    return null;
  }

  /**
   * A zero-copy view of [addr, addr+len). Writes through the view change
   * guest memory; callers hold it only for the duration of one operation.
   */
  view(addr: number, len: number): Uint8Array | VirtioFault {
    if (!GuestMemory.validArgs(addr, len)) return this.outOfRange(addr, len);
    if (len === 0) return new Uint8Array(0);
    const r = this.find(addr, len);
    if (!r) return this.outOfRange(addr, len);
    const off = addr - r.base;
    return r.bytes.subarray(off, off + len);
  }

  /**
   * The bytes of [addr, addr+len) for copying out of, or null when the range
   * is not inside one region (then outOfRange names the fault, M8). The
   * same view may be returned again for the same range: copy from it, do
   * not keep it or hang anything on it.
   */
  copyView(addr: number, len: number): Uint8Array | null {
    const slot = ((addr >>> 4) ^ (addr >>> 12)) & (VIEW_CACHE - 1);
    if (this.viewAddr[slot] === addr && this.viewLen[slot] === len) return this.views[slot]!;
    if (!GuestMemory.validArgs(addr, len)) return null;
    const r = this.find(addr, len);
    if (r === undefined) return null;
    const off = addr - r.base;
    const v = r.bytes.subarray(off, off + len);
    this.views[slot] = v;
    this.viewAddr[slot] = addr;
    this.viewLen[slot] = len;
    return v;
  }

  /** Copy guest bytes at addr into dst (dst.length bytes). */
  readInto(addr: number, dst: Uint8Array): VirtioFault | null {
    const src = this.view(addr, dst.length);
    if (!(src instanceof Uint8Array)) return src;
    dst.set(src);
    return null;
  }

  /**
   * Copy `len` guest bytes at addr into dst at offset `at` (the caller
   * checked that they fit). The only view made is the one a copy between
   * two arrays needs, made from the buffer (cheaper than subarray).
   */
  readIntoAt(addr: number, dst: Uint8Array, at: number, len: number): VirtioFault | null {
    if (!GuestMemory.validArgs(addr, len)) return this.outOfRange(addr, len);
    if (len === 0) return null;
    const r = this.find(addr, len);
    if (!r) return this.outOfRange(addr, len);
    const bytes = r.bytes;
    dst.set(new Uint8Array(bytes.buffer, bytes.byteOffset + (addr - r.base), len), at);
    return null;
  }

  /** A fresh copy of [addr, addr+len). */
  readBytes(addr: number, len: number): Uint8Array | VirtioFault {
    const src = this.view(addr, len);
    if (!(src instanceof Uint8Array)) return src;
    return src.slice();
  }

  /** Copy src into guest memory at addr. */
  writeBytes(addr: number, src: Uint8Array): VirtioFault | null {
    const dst = this.view(addr, src.length);
    if (!(dst instanceof Uint8Array)) return dst;
    dst.set(src);
    return null;
  }

  /** Fill [addr, addr+len) with one byte value. */
  fill(addr: number, len: number, value: number): VirtioFault | null {
    const dst = this.view(addr, len);
    if (!(dst instanceof Uint8Array)) return dst;
    dst.fill(value);
    return null;
  }
}
