/**
 * Event history kept per port: the window's event list is bounded (the newest
 * N), so a busy port's thousands of events would push a quiet port's
 * open/close out of it. The state changes of each port (its guest and host
 * side opening and closing, plug, unplug, faults) are also kept in a small
 * bounded history of their own, and the timeline merges the two in time order.
 */
import type { ApiEvent, EventKind } from '../contract/contract.js';

/** The kinds a port's own history keeps (rare, and what a person looks for). */
export const STATE_KINDS: ReadonlySet<EventKind> = new Set<EventKind>([
  'guest-open',
  'guest-close',
  'host-open',
  'host-close',
  'port-added',
  'port-removed',
  'device-deleted',
  'needs-reset',
]);

/** Events kept per port in its own history. */
export const PER_PORT = 200;

export const portKeyOf = (e: ApiEvent): string | null =>
  e.device === null || e.nr === null ? null : `${e.device}:${e.nr}`;

export class PortHistory {
  private readonly byPort = new Map<string, ApiEvent[]>();

  add(events: readonly ApiEvent[]): void {
    for (const e of events) {
      if (!STATE_KINDS.has(e.kind)) continue;
      const key = portKeyOf(e);
      if (key === null) continue;
      let list = this.byPort.get(key);
      if (list === undefined) this.byPort.set(key, (list = []));
      list.push(e);
      if (list.length > PER_PORT) list.splice(0, list.length - PER_PORT);
    }
  }

  /**
   * The recent list with the port histories' older events before it, in
   * time order (sequence order: the service numbers events as they happen);
   * `port` limits the histories to one port.
   */
  merged(recent: readonly ApiEvent[], port: string | null = null): ApiEvent[] {
    const oldest = recent[0]?.seq ?? Infinity;
    const older: ApiEvent[] = [];
    for (const [key, list] of this.byPort) {
      if (port !== null && key !== port) continue;
      for (const e of list) if (e.seq < oldest) older.push(e);
    }
    if (older.length === 0) return recent as ApiEvent[];
    older.sort((a, b) => a.seq - b.seq);
    return [...older, ...recent];
  }

  clear(): void {
    this.byPort.clear();
  }
}
