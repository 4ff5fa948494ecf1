/**
 * QEMU's rate limit on QAPI events (monitor/monitor.c, QEMU 7.2): some
 * events carry a rate in monitor_qapi_event_conf, and of those only
 * VSERPORT_CHANGE matters here (1 s, keyed by its "id").
 *
 * monitor_qapi_event_queue_no_reenter: with no timer armed for the key the
 * event goes out at once and a timer is armed for `rate`; while it is armed
 * a new event is stored, replacing any stored before. When the timer fires
 * (monitor_qapi_event_handler) a stored event goes out and the timer is
 * armed again; with nothing stored the key is forgotten. A stored event
 * keeps the timestamp it was made with (qmp_event_build_dict stamps it
 * before queuing), so it can arrive up to a second after its time.
 *
 * Timers are the global setTimeout/clearTimeout, so vitest's fake timers
 * drive them in tests; they are unref'd and never keep the process alive.
 */
import { QDict, type QObject } from './qobject.js';

export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

export interface QapiEvent {
  event: string;
  data: QObject;
  timestamp: QmpTimestamp;
}

/** 'qemu': QEMU's rate limits (the default); 'all': every event at once (teaching). */
export type QmpEventsMode = 'qemu' | 'all';

export const QMP_EVENTS_MODES: readonly QmpEventsMode[] = ['qemu', 'all'];

interface RateConf {
  rateMs: number;
  /** The part of `data` that tells streams of the event apart (QEMU's hash and equal functions). */
  key: (data: QObject) => string;
}

function field(name: string): (data: QObject) => string {
  return (data) => {
    let value: unknown;
    if (data instanceof QDict) value = data.get(name);
    else if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
      value = (data as Record<string, unknown>)[name];
    }
    return typeof value === 'string' ? value : '';
  };
}

/** monitor_qapi_event_conf, for the events vmchan raises. */
export const QEMU_EVENT_RATES: ReadonlyMap<string, RateConf> = new Map([
  ['VSERPORT_CHANGE', { rateMs: 1000, key: field('id') }],
]);

interface Slot {
  timer: ReturnType<typeof setTimeout>;
  stored: QapiEvent | null;
}

export class QapiEventThrottle {
  private readonly slots = new Map<string, Slot>();
  private closed = false;

  constructor(
    private readonly emit: (event: QapiEvent) => void,
    private readonly mode: QmpEventsMode = 'qemu',
    private readonly rates: ReadonlyMap<string, RateConf> = QEMU_EVENT_RATES,
  ) {}

  /** monitor_qapi_event_queue: send now, or store for the armed timer. */
  queue(event: QapiEvent): void {
    if (this.closed) return;
    const conf = this.mode === 'qemu' ? this.rates.get(event.event) : undefined;
    if (conf === undefined) {
      this.emit(event);
      return;
    }
    const key = `${event.event}\u0000${conf.key(event.data)}`;
    const slot = this.slots.get(key);
    if (slot !== undefined) {
      slot.stored = event; // replaces a prior stored event
      return;
    }
    this.emit(event);
    this.arm(key, conf.rateMs, { timer: undefined as never, stored: null });
  }

  /** Drop every timer and stored event (the machine is going). */
  close(): void {
    this.closed = true;
    for (const slot of this.slots.values()) clearTimeout(slot.timer);
    this.slots.clear();
  }

  private arm(key: string, rateMs: number, slot: Slot): void {
    slot.timer = setTimeout(() => this.fire(key, rateMs), rateMs);
    slot.timer.unref?.();
    this.slots.set(key, slot);
  }

  /** monitor_qapi_event_handler */
  private fire(key: string, rateMs: number): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    if (slot.stored === null) {
      this.slots.delete(key);
      return;
    }
    const event = slot.stored;
    slot.stored = null;
    this.emit(event);
    this.arm(key, rateMs, slot);
  }
}
