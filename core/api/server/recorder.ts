/**
 * Live capture of a lab to a pcapng file: the engine's events become
 * capture records (core/capture/record.ts) written by PcapngWriter, one
 * interface per port. It listens only while it runs, so a lab that nobody
 * captures pays nothing (the device checks `events.has('data')`).
 *
 * Directions are the channel's: `to-guest` data and control messages the
 * device sends are host-to-guest; what the guest sends is guest-to-host.
 * A drop carries the direction of the bytes lost.
 *
 * What is captured follows the Capture's switches: a global one (every
 * port without a switch of its own) and each port's own, given at start
 * and flipped while it runs (`setAll`, `setPort`, as the lab tap's).
 */
import type { DropReason } from '../../serial/events.js';
import type { Lab } from '../../engine/lab.js';
import { CaptureError } from '../../capture/error.js';
import { openCaptureFile } from '../../capture/ring-writer.js';
import {
  Capture,
  controlRecord,
  dataRecord,
  eventRecord,
  nowNs,
  type CaptureInterface,
} from '../../capture/record.js';
import type { CaptureSwitches, Recorder } from './session.js';
import { DEFAULT_CONTROL_CODEC, encodeControl } from '../../serial/control.js';

/** Drops of bytes that were on their way to the host; the rest were going to the guest. */
const TO_HOST_DROPS: ReadonlySet<DropReason> = new Set<DropReason>([
  'host-disconnected',
  'console-backpressure',
  'unplugged',
  'device-reset',
  'no-port',
  'emergency-no-console',
]);

/** Which way the bytes of a drop were going: the event's own direction, else the reason's. */
export function dropDirection(
  reason: DropReason,
  direction?: 'to-guest' | 'to-host',
): 'guest-to-host' | 'host-to-guest' {
  if (direction !== undefined) return direction === 'to-host' ? 'guest-to-host' : 'host-to-guest';
  return TO_HOST_DROPS.has(reason) ? 'guest-to-host' : 'host-to-guest';
}

export type { CaptureSwitches } from './session.js';

export class CaptureRecorder implements Recorder {
  private readonly capture = new Capture();
  private readonly stops: (() => void)[] = [];
  private failure: CaptureError | null = null;
  private sizeOf: () => number = () => 0;

  private constructor(
    private readonly lab: Lab,
    readonly path: string,
    private readonly describe: (device: string, nr: number) => CaptureInterface | null,
  ) {}

  /** Start writing `path` (truncated); the error is one line about the file. */
  static start(
    lab: Lab,
    path: string,
    describe: (device: string, nr: number) => CaptureInterface | null,
    switches: CaptureSwitches = {},
  ): CaptureRecorder | CaptureError {
    const file = openCaptureFile(
      path,
      switches.ring ?? {},
      { comment: 'vmchan live capture' },
      switches.onStop,
    );
    if (file instanceof CaptureError) return file;
    const writer = file.sink;
    const r = new CaptureRecorder(lab, path, describe);
    r.sizeOf = file.size;
    r.capture.onError((err) => {
      r.failure = err;
    });
    for (const device of lab.registry.devices) {
      for (const port of device.ports) {
        const iface = describe(device.name, port.nr);
        if (iface !== null) r.capture.addInterface(iface);
      }
    }
    r.capture.attach(writer);
    for (const p of switches.ports ?? []) r.capture.setPort(p.device, p.nr, p.on);
    r.capture.setAll(switches.all ?? true);
    r.listen();
    return r;
  }

  /** Capture every port without a switch of its own (or none of them), from now on. */
  setAll(on: boolean): void {
    this.capture.setAll(on);
  }

  /** A port's own switch from now on; undefined: it follows setAll again. */
  setPort(device: string, nr: number, on: boolean | undefined): void {
    this.capture.setPort(device, nr, on);
  }

  /** Whether the records of a port are written now. */
  wants(device: string, nr: number): boolean {
    return this.capture.wants(device, nr);
  }

  /** Records written so far. */
  get records(): number {
    return this.capture.written;
  }

  /** Bytes of the (current) capture file, flushed or about to be. */
  get bytes(): number {
    return this.sizeOf();
  }

  /** The sink's first error (a full disk), if any. */
  get error(): CaptureError | null {
    return this.failure;
  }

  stop(): CaptureError | null {
    for (const s of this.stops.splice(0)) s();
    this.capture.flush();
    this.capture.close();
    return this.failure;
  }

  private portName(device: string, nr: number | null): string | undefined {
    if (nr === null) return undefined;
    return this.lab.device(device)?.port(nr)?.name ?? undefined;
  }

  private listen(): void {
    const ev = this.lab.events;
    const c = this.capture;
    this.stops.push(
      ev.on('data', (e) => {
        if (!c.wants(e.device, e.nr)) return;
        c.write(
          dataRecord({
            time: nowNs(),
            device: e.device,
            port: e.nr,
            portName: this.portName(e.device, e.nr),
            direction: e.direction === 'to-host' ? 'guest-to-host' : 'host-to-guest',
            bytes: e.bytes,
          }),
        );
      }),
      ev.on('control', (e) => {
        const bytes = encodeControl(e.message, DEFAULT_CONTROL_CODEC);
        const nr = e.message.id === 0xffffffff ? null : e.message.id;
        if (!c.wants(e.device, nr ?? undefined)) return;
        c.write(
          controlRecord({
            time: nowNs(),
            device: e.device,
            direction: e.direction === 'to-guest' ? 'device-to-driver' : 'driver-to-device',
            bytes,
            portName: this.portName(e.device, nr),
          }),
        );
      }),
      ev.on('port-added', (e) => {
        const iface = this.describe(e.device, e.nr);
        if (iface !== null) c.addInterface(iface);
        this.event(e.device, e.nr, 'port-added', e.hotplug ? 'hot-plug' : undefined);
      }),
      ev.on('port-removed', (e) => {
        this.event(e.device, e.nr, 'port-removed');
        c.removeInterface(e.device, e.nr);
      }),
      ev.on('guest-open', (e) => this.event(e.device, e.nr, e.open ? 'guest-open' : 'guest-close')),
      ev.on('host-open', (e) => this.event(e.device, e.nr, e.open ? 'host-open' : 'host-close')),
      ev.on('throttle', (e) => this.event(e.device, e.nr, e.on ? 'throttle-on' : 'throttle-off')),
      ev.on('drop', (e) => {
        if (!c.wants(e.device, e.nr ?? undefined)) return;
        c.write(
          eventRecord({
            time: nowNs(),
            device: e.device,
            port: e.nr ?? undefined,
            portName: this.portName(e.device, e.nr),
            event: 'drop',
            count: e.bytes,
            direction: dropDirection(e.reason, e.direction),
            reason: `${e.reason}, by the ${e.side}`,
          }),
        );
      }),
      ev.on('needs-reset', (e) => {
        if (!c.wants(e.device, undefined)) return;
        c.write(
          eventRecord({
            time: nowNs(),
            device: e.device,
            event: 'needs-reset',
            rule: e.rule,
            reason: e.fault.message,
          }),
        );
      }),
    );
  }

  private event(
    device: string,
    nr: number,
    event:
      | 'port-added'
      | 'port-removed'
      | 'guest-open'
      | 'guest-close'
      | 'host-open'
      | 'host-close'
      | 'throttle-on'
      | 'throttle-off',
    reason?: string,
  ): void {
    if (!this.capture.wants(device, nr)) return;
    this.capture.write(
      eventRecord({
        time: nowNs(),
        device,
        port: nr,
        portName: this.portName(device, nr),
        event,
        reason,
      }),
    );
  }
}
