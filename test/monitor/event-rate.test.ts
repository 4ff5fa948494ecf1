/**
 * Q5: VSERPORT_CHANGE through QEMU's event rate limit.
 *
 * QEMU 7.2 monitor/monitor.c: monitor_qapi_event_conf gives
 * QAPI_EVENT_VSERPORT_CHANGE a rate of 1 s, keyed by data "id"
 * (qapi_event_throttle_hash/equal). monitor_qapi_event_queue_no_reenter
 * sends an event at once when no timer is armed for its key and arms one;
 * while armed, the newest event replaces any stored one;
 * monitor_qapi_event_handler sends the stored event when the timer fires and
 * re-arms, or forgets the key when nothing is stored. The event keeps the
 * timestamp it was built with. Three quick open/close cycles of one port
 * therefore give 2 events on QEMU (first open, then the last close); the
 * app's timeline (engine events) still sees all 6.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RunningMachine } from '../../core/machine/running.js';
import { QapiEventThrottle, type QapiEvent } from '../../core/monitor/event-throttle.js';
import { MonitorHub, type EventSink } from '../../core/monitor/hub.js';
import type { QObject } from '../../core/monitor/qobject.js';
import type { QmpTimestamp } from '../../core/monitor/event-throttle.js';
import { bootLab, must, record } from '../serial/helpers.js';

const at = (seconds: number): QmpTimestamp => ({ seconds, microseconds: 0 });
const change = (id: string, open: boolean, seconds = 0): QapiEvent => ({
  event: 'VSERPORT_CHANGE',
  data: { id, open },
  timestamp: at(seconds),
});

afterEach(() => {
  vi.useRealTimers();
});

describe('Q5 QEMU rate-limits VSERPORT_CHANGE per port id', () => {
  it('Q5 a burst gives the first event at once and only the latest state a second later', () => {
    vi.useFakeTimers();
    const sent: QapiEvent[] = [];
    const throttle = new QapiEventThrottle((e) => sent.push(e));
    throttle.queue(change('p1', true, 1));
    throttle.queue(change('p1', false, 2));
    throttle.queue(change('p1', true, 3));
    throttle.queue(change('p1', false, 4));
    expect(sent).toEqual([change('p1', true, 1)]);
    vi.advanceTimersByTime(999);
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(1);
    // the stored (latest) event, with the timestamp it was made with
    expect(sent).toEqual([change('p1', true, 1), change('p1', false, 4)]);
    // sending re-armed the timer: the next change waits a full second again
    throttle.queue(change('p1', true, 5));
    expect(sent).toHaveLength(2);
    vi.advanceTimersByTime(1000);
    expect(sent.at(-1)).toEqual(change('p1', true, 5));
    // a quiet second forgets the key: the next change goes out at once
    vi.advanceTimersByTime(1000);
    throttle.queue(change('p1', false, 9));
    expect(sent.at(-1)).toEqual(change('p1', false, 9));
    throttle.close();
  });

  it('Q5 each port id has its own window; other events and mode all are not held', () => {
    vi.useFakeTimers();
    const sent: QapiEvent[] = [];
    const throttle = new QapiEventThrottle((e) => sent.push(e));
    throttle.queue(change('p1', true));
    throttle.queue(change('p2', true));
    throttle.queue({ event: 'DEVICE_DELETED', data: { path: '/x' }, timestamp: at(0) });
    throttle.queue({ event: 'DEVICE_DELETED', data: { path: '/x' }, timestamp: at(0) });
    expect(sent.map((e) => e.event)).toEqual([
      'VSERPORT_CHANGE',
      'VSERPORT_CHANGE',
      'DEVICE_DELETED',
      'DEVICE_DELETED',
    ]);
    throttle.close();

    const all: QapiEvent[] = [];
    const open = new QapiEventThrottle((e) => all.push(e), 'all');
    for (let i = 0; i < 6; i++) open.queue(change('p1', i % 2 === 0));
    expect(all).toHaveLength(6);
  });

  it('Q5 three quick open/close cycles: 2 QMP events, 6 on the engine timeline', async () => {
    const lab = await bootLab({
      devices: [
        {
          id: 'vser0',
          ports: [{ driver: 'virtserialport', id: 'port1', name: 'test1', chardev: 'c1' }],
        },
      ],
    });
    // Only the monitor's timers are fake: the engine's scheduler keeps running.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const machine = { lab } as unknown as RunningMachine;
    const hubs = (['qemu', 'all'] as const).map((mode) => {
      const hub = new MonitorHub(machine, { qmpEvents: mode });
      const seen: { event: string; data: QObject }[] = [];
      const sink: EventSink = { sendEvent: (event, data) => seen.push({ event, data }) };
      hub.add(sink);
      return { hub, seen };
    });
    const timeline = record(lab.events, 'vserport-change');
    for (let i = 0; i < 3; i++) {
      const fd = must(await lab.guest.files.open('/dev/virtio-ports/test1'));
      must(await lab.guest.files.close(fd));
    }
    await lab.settle();
    expect(timeline).toHaveLength(6);
    const [qemu, all] = hubs;
    expect(all!.seen).toHaveLength(6);
    expect(qemu!.seen.map((e) => e.data)).toEqual([{ id: 'port1', open: true }]);
    vi.advanceTimersByTime(1000);
    expect(qemu!.seen.map((e) => e.data)).toEqual([
      { id: 'port1', open: true },
      { id: 'port1', open: false },
    ]);
    for (const h of hubs) h.hub.close();
  });
});
