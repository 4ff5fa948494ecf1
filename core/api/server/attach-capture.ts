/**
 * Capture of an attached QEMU: the same pcapng as the lab's (one interface
 * per port, LINKTYPE_USER0), fed by what vmchan can see of a real VM:
 *
 * - data: the bytes every tap on a chardev forwards (core/qemu/tap.ts), in
 *   the channel's directions, with host-open / host-close per application;
 * - events: VSERPORT_CHANGE (guest open/close), DEVICE_DELETED, hot-plug,
 *   and host connect/disconnect learned by polling, as event records, at
 *   the time QEMU stamped them.
 *
 * The taps write into one Capture switchboard all the time; it drops
 * records at once while no file is recording (no sink), so a tap costs a
 * check per chunk when nobody captures. A second switchboard, `live`, has
 * every port switched on for live clients (vmchan extcap, Wireshark): the
 * file's switches are the app's, a live client's are its own filter.
 */
import { CaptureError } from '../../capture/error.js';
import { openCaptureFile } from '../../capture/ring-writer.js';
import {
  Capture,
  eventRecord,
  type CaptureInterface,
  type CaptureRecord,
  type CaptureSink,
  type PortEventType,
} from '../../capture/record.js';
import type { AttachEvent } from '../../qemu/attach-model.js';
import type { CaptureSwitches, Recorder } from './session.js';

const EVENT_OF: Partial<Record<AttachEvent['kind'], PortEventType>> = {
  'port-added': 'port-added',
  'port-removed': 'port-removed',
  'guest-open': 'guest-open',
  'guest-close': 'guest-close',
  'host-open': 'host-open',
  'host-close': 'host-close',
  'device-deleted': 'port-removed',
  note: 'note',
};

export class AttachCapture {
  private readonly capture = new Capture();
  /** Every port, for live clients (published by the service in the session registry). */
  readonly live = new Capture();
  private failure: CaptureError | null = null;

  constructor() {
    this.capture.onError((err) => {
      this.failure = err;
    });
    this.live.setAll(true);
  }

  /** The sink a tap writes into (it never fails the tap: a file error stops the recording). */
  readonly sink: CaptureSink = {
    addInterface: (iface) => {
      this.capture.addInterface(iface);
      this.live.addInterface(iface);
      return undefined;
    },
    write: (record) => {
      this.capture.write(record);
      this.live.write(record);
      return undefined;
    },
    flush: () => undefined,
    close: () => undefined,
  };

  /** A port the capture describes even before a tap carries its bytes. */
  describe(iface: CaptureInterface): void {
    if (this.capture.interfaceOf(iface.device, iface.port) === undefined)
      this.capture.addInterface(iface);
    if (this.live.interfaceOf(iface.device, iface.port) === undefined)
      this.live.addInterface(iface);
  }

  /** An attached machine's event as an event record, at QEMU's time. */
  event(e: AttachEvent): void {
    const type = EVENT_OF[e.kind];
    if (type === undefined || e.device === null) return;
    const record: CaptureRecord = eventRecord({
      time: BigInt(Math.round(e.time * 1000)) * 1000n,
      device: e.device,
      port: e.nr ?? undefined,
      portName: e.port ?? undefined,
      event: type,
      text: e.text,
    });
    this.capture.write(record);
    this.live.write(record);
  }

  /** Start writing `file`: every record from now on, by the switches. */
  record(file: string, switches: CaptureSwitches): Recorder | CaptureError {
    const opened = openCaptureFile(
      file,
      switches.ring ?? {},
      { comment: 'vmchan live capture (attached QEMU)' },
      switches.onStop,
    );
    if (opened instanceof CaptureError) return opened;
    const writer = opened.sink;
    this.failure = null;
    const start = this.capture.written;
    const detach = this.capture.attach(writer);
    for (const p of switches.ports ?? []) this.capture.setPort(p.device, p.nr, p.on);
    this.capture.setAll(switches.all ?? true);
    const capture = this.capture;
    let stopped = false;
    return {
      path: file,
      get records() {
        return capture.written - start;
      },
      get bytes() {
        return opened.size();
      },
      setAll: (on) => capture.setAll(on),
      setPort: (device, nr, on) => capture.setPort(device, nr, on),
      stop: () => {
        if (stopped) return this.failure;
        stopped = true;
        detach();
        const err = writer.close() ?? null;
        return this.failure ?? (err instanceof CaptureError ? err : null);
      },
    };
  }
}
