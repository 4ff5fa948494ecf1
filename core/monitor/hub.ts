/**
 * What the monitors of one machine share: the QMP sessions that hear
 * broadcast events (SHUTDOWN after `quit`, VSERPORT_CHANGE through QEMU's
 * rate limit, which like QEMU's is one for all monitors), which ports were
 * hot-plugged (QOM's `hotplugged` property), and what `quit` does to the
 * machine.
 */
import type { RunningMachine } from '../machine/running.js';
import type { SerialPort } from '../serial/port.js';
import { QapiEventThrottle, type QmpEventsMode, type QmpTimestamp } from './event-throttle.js';
import type { QObject } from './qobject.js';
import { timestamp } from './timestamp.js';

export interface EventSink {
  /** `timestamp`: when the event was made (a rate-limited one is sent later); default now. */
  sendEvent(event: string, data: QObject, timestamp?: QmpTimestamp): void;
}

export interface HubOptions {
  /** What `quit` does after the reply went out (default: machine.close()). */
  onQuit?: () => void;
  /** QMP events: QEMU's rate limits ('qemu', the default) or every event at once ('all', Q5). */
  qmpEvents?: QmpEventsMode;
  /**
   * chardev-change under a virtio-serial port: 'qemu' (the default) refuses
   * as QEMU 7.2 does (virtio-console has no be_change handler); 'ports' is a
   * vmchan extra that swaps the backend under the running port.
   */
  chardevChange?: ChardevChangeMode;
}

export type ChardevChangeMode = 'qemu' | 'ports';
export const CHARDEV_CHANGE_MODES: readonly ChardevChangeMode[] = ['qemu', 'ports'];

export class MonitorHub {
  private readonly sinks = new Set<EventSink>();
  private readonly hotplugged = new WeakSet<SerialPort>();
  private readonly unsubscribe: (() => void)[];
  private readonly throttle: QapiEventThrottle;
  private quitting = false;

  constructor(
    readonly machine: RunningMachine,
    private readonly options: HubOptions = {},
  ) {
    const lab = machine.lab;
    this.throttle = new QapiEventThrottle((e) => {
      for (const sink of this.sinks) sink.sendEvent(e.event, e.data, e.timestamp);
    }, options.qmpEvents ?? 'qemu');
    this.unsubscribe = [
      lab.events.on('port-added', (e) => {
        if (!e.hotplug) return;
        const device = lab.registry.devices.find((d) => d.name === e.device);
        const port = device?.port(e.nr);
        if (port !== undefined) this.hotplugged.add(port);
      }),
      // qapi_event_send_vserport_change: stamped now, sent now or when the rate allows (Q5).
      lab.events.on('vserport-change', (e) => {
        this.throttle.queue({
          event: 'VSERPORT_CHANGE',
          data: { id: e.id, open: e.open },
          timestamp: timestamp(),
        });
      }),
    ];
  }

  add(sink: EventSink): () => void {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }

  /** May chardev-change swap a backend under a port (the vmchan extra)? */
  get portHotswap(): boolean {
    return this.options.chardevChange === 'ports';
  }

  wasHotplugged(port: SerialPort): boolean {
    return this.hotplugged.has(port);
  }

  /**
   * qmp_quit / hmp_quit: the command's reply goes first, then (as QEMU's main
   * loop does it) SHUTDOWN to every QMP session, then the machine goes.
   */
  quit(): void {
    if (this.quitting) return;
    this.quitting = true;
    setImmediate(() => {
      for (const sink of this.sinks) {
        sink.sendEvent('SHUTDOWN', { guest: false, reason: 'host-qmp-quit' });
      }
      // Let the event leave before the backends close.
      setImmediate(() => {
        if (this.options.onQuit !== undefined) this.options.onQuit();
        else void this.machine.close();
      });
    });
  }

  close(): void {
    for (const u of this.unsubscribe) u();
    this.throttle.close();
    this.sinks.clear();
  }
}
