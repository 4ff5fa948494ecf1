/**
 * Pure helpers for screens: colours (one meaning everywhere), units, the
 * throughput ring buffers behind the chart, event filters. The renderer
 * imports this; tests check it under Node.
 */
import type {
  ApiEvent,
  Direction,
  EventKind,
  PortSnapshot,
  ThroughputSample,
} from '../contract/contract.js';

/** Host to guest is always this colour, guest to host always the other, on every view. */
export const DIRECTION_COLOURS: Readonly<Record<Direction, string>> = {
  'host-to-guest': '#3d8bfd',
  'guest-to-host': '#f0a030',
};

export const DIRECTION_ARROWS: Readonly<Record<Direction, string>> = {
  'host-to-guest': '→ guest',
  'guest-to-host': '← host',
};

/** Shades of one direction's colour for several ports (same hue, different lightness). */
export function directionShade(direction: Direction, index: number): string {
  const hue = direction === 'host-to-guest' ? 214 : 36;
  const light = [58, 70, 46, 80, 38, 64][index % 6]!;
  return `hsl(${hue} 88% ${light}%)`;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 -> `1.5 KiB`. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '–';
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0
    ? `${v} B`
    : `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${UNITS[i]}`;
}

/** Bytes per second. */
export function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond < 0.5 ? '0 B/s' : `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** `10:02:01.123` in local time. */
export function formatClock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** Event kinds in groups a person filters by. */
export const EVENT_GROUPS: Readonly<Record<string, readonly EventKind[]>> = {
  ports: ['port-added', 'port-removed', 'device-deleted'],
  guest: ['guest-open', 'guest-close', 'guest-node'],
  host: ['host-open', 'host-close'],
  control: ['control'],
  flow: ['throttle-on', 'throttle-off', 'drop'],
  errors: ['needs-reset', 'error', 'emergency-write'],
  notes: ['note'],
};

export interface EventFilter {
  /** Port key (`vser0:2`) or null for every port (and device-wide events). */
  port: string | null;
  /** Kinds shown; empty: all. */
  kinds: ReadonlySet<EventKind>;
  text: string;
}

export function matchesEvent(e: ApiEvent, f: EventFilter): boolean {
  if (f.port !== null && (e.device === null || e.nr === null || `${e.device}:${e.nr}` !== f.port))
    return false;
  if (f.kinds.size > 0 && !f.kinds.has(e.kind)) return false;
  if (f.text !== '' && !e.text.toLowerCase().includes(f.text.toLowerCase())) return false;
  return true;
}

/** Keep the newest `max` items of `list` followed by `more` (a new array). */
export function appendBounded<T>(list: readonly T[], more: readonly T[], max: number): T[] {
  if (more.length === 0) return list as T[];
  const all =
    list.length + more.length <= max ? [...list, ...more] : [...list, ...more].slice(-max);
  return all;
}

/**
 * `more` merged into `list` in time order (`time`, then `seq`), the newest
 * `max` kept. Events mostly come in order (pushed at the end); a late one
 * (a rate-limited VSERPORT_CHANGE, a change polling found) goes to its
 * place among the newest, found by binary search.
 */
export function insertByTime<T extends { time: number; seq: number }>(
  list: readonly T[],
  more: readonly T[],
  max: number,
): T[] {
  if (more.length === 0) return list as T[];
  const out = [...list];
  const before = (a: T, b: T): boolean => a.time < b.time || (a.time === b.time && a.seq < b.seq);
  for (const e of more) {
    const last = out[out.length - 1];
    if (last === undefined || !before(e, last)) {
      out.push(e);
      continue;
    }
    let lo = 0;
    let hi = out.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(e, out[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    out.splice(lo, 0, e);
  }
  return out.length > max ? out.slice(-max) : out;
}

/**
 * Throughput history per port and direction, in fixed ring buffers: at
 * most `capacity` samples (60 s at 200 ms by default), rates in bytes/s.
 * Writing costs no allocation; reading fills the chart's point arrays.
 */
export class ThroughputHistory {
  readonly capacity: number;
  private readonly times: Float64Array;
  private readonly series = new Map<string, { toGuest: Float64Array; toHost: Float64Array }>();
  private head = 0;
  private count = 0;
  /** Latest rate per port (bytes/s) and totals since plug. */
  readonly latest = new Map<
    string,
    { toGuest: number; toHost: number; totalToGuest: number; totalToHost: number }
  >();

  constructor(capacity = 300) {
    this.capacity = capacity;
    this.times = new Float64Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  keys(): string[] {
    return [...this.series.keys()];
  }

  /** Forget ports that are gone. */
  retain(keys: readonly string[]): void {
    for (const k of [...this.series.keys()]) {
      if (!keys.includes(k)) {
        this.series.delete(k);
        this.latest.delete(k);
      }
    }
  }

  add(sample: ThroughputSample): void {
    const slot = this.head;
    this.times[slot] = sample.t;
    for (const s of this.series.values()) {
      s.toGuest[slot] = 0;
      s.toHost[slot] = 0;
    }
    const secs = sample.dt / 1000;
    for (const p of sample.ports) {
      let s = this.series.get(p.key);
      if (s === undefined) {
        s = { toGuest: new Float64Array(this.capacity), toHost: new Float64Array(this.capacity) };
        this.series.set(p.key, s);
      }
      const g = p.toGuest / secs;
      const h = p.toHost / secs;
      s.toGuest[slot] = g;
      s.toHost[slot] = h;
      this.latest.set(p.key, {
        toGuest: g,
        toHost: h,
        totalToGuest: p.totalToGuest,
        totalToHost: p.totalToHost,
      });
    }
    this.head = (this.head + 1) % this.capacity;
    this.count = Math.min(this.capacity, this.count + 1);
  }

  /**
   * Points for one series, oldest first, x in seconds relative to `now`
   * (negative: the past). Reuses `out` when it has the right length.
   */
  points(
    key: string | 'total',
    direction: Direction,
    now: number,
    out: { x: number; y: number }[] = [],
  ): { x: number; y: number }[] {
    out.length = this.count;
    const start = (this.head - this.count + this.capacity) % this.capacity;
    const list =
      key === 'total'
        ? [...this.series.values()]
        : [this.series.get(key)].filter((s) => s !== undefined);
    for (let i = 0; i < this.count; i++) {
      const slot = (start + i) % this.capacity;
      let y = 0;
      for (const s of list) y += direction === 'host-to-guest' ? s.toGuest[slot]! : s.toHost[slot]!;
      const p = out[i];
      const x = (this.times[slot]! - now) / 1000;
      if (p === undefined) out[i] = { x, y };
      else {
        p.x = x;
        p.y = y;
      }
    }
    return out;
  }

  /** Sum of the latest rates, each way. */
  totalRate(): { toGuest: number; toHost: number } {
    let toGuest = 0;
    let toHost = 0;
    for (const r of this.latest.values()) {
      toGuest += r.toGuest;
      toHost += r.toHost;
    }
    return { toGuest, toHost };
  }
}

/** Port names virt-manager offers for a channel. */
export const CHANNEL_NAME_PRESETS = [
  'org.qemu.guest_agent.0',
  'com.redhat.spice.0',
  'org.fedoraproject.port.0',
] as const;

/** `socat - UNIX-CONNECT:/run/.../test1`: how to reach a port's host side from a shell. */
export function connectHint(path: string | null): string | null {
  if (path === null) return null;
  if (path.startsWith('/')) return `socat - UNIX-CONNECT:${path}`;
  const i = path.lastIndexOf(':');
  return i > 0 ? `nc ${path.slice(0, i)} ${path.slice(i + 1)}` : null;
}

/** A port's state in three words, for the tree and the table. */
export function portStateText(p: PortSnapshot): string {
  return [
    p.guestOpen ? 'guest open' : 'guest closed',
    p.hostConnected ? 'host connected' : 'host absent',
    ...(p.throttled ? ['throttled'] : []),
  ].join(' · ');
}

/** The receive and transmit queue of port `nr` (virtio console layout: 0/1, then 2n+2/2n+3). */
export function queuePair(nr: number): { rx: number; tx: number } {
  return nr === 0 ? { rx: 0, tx: 1 } : { rx: 2 * nr + 2, tx: 2 * nr + 3 };
}
