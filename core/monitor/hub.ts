/**
 * What the monitors of one machine share: the QMP sessions that hear
 * broadcast events (SHUTDOWN after `quit`), which ports were hot-plugged
 * (QOM's `hotplugged` property), and what `quit` does to the machine.
 */
import type { RunningMachine } from '../machine/running.js';
import type { SerialPort } from '../serial/port.js';
import type { QObject } from './qobject.js';

export interface EventSink {
  sendEvent(event: string, data: QObject): void;
}

export interface HubOptions {
  /** What `quit` does after the reply went out (default: machine.close()). */
  onQuit?: () => void;
}

export class MonitorHub {
  private readonly sinks = new Set<EventSink>();
  private readonly hotplugged = new WeakSet<SerialPort>();
  private readonly unsubscribe: () => void;
  private quitting = false;

  constructor(
    readonly machine: RunningMachine,
    private readonly options: HubOptions = {},
  ) {
    const lab = machine.lab;
    this.unsubscribe = lab.events.on('port-added', (e) => {
      if (!e.hotplug) return;
      const device = lab.registry.devices.find((d) => d.name === e.device);
      const port = device?.port(e.nr);
      if (port !== undefined) this.hotplugged.add(port);
    });
  }

  add(sink: EventSink): () => void {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
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
    this.unsubscribe();
    this.sinks.clear();
  }
}
