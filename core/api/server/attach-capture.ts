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
 * The taps write into one Capture, `live`, with every port switched on; it
 * drops records at once while nobody consumes (no sink), so a tap costs a
 * check per chunk when nobody captures. Its one encoder, `hub`, is a sink
 * on it while a live client (vmchan extcap, Wireshark) or the app's file
 * reads: the file keeps the ports the app's switches select (recorder.ts),
 * a live client whatever its own filter says, all from one encoding.
 */
import type { CaptureError } from '../../capture/error.js';
import { LiveHub } from '../../capture/live-server.js';
import {
  Capture,
  eventRecord,
  type CaptureInterface,
  type CaptureRecord,
  type CaptureSink,
  type PortEventType,
} from '../../capture/record.js';
import type { AttachEvent } from '../../qemu/attach-model.js';
import { recordFromHub } from './recorder.js';
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
  /** Every port: what live clients and the capture file are cut from. */
  readonly live = new Capture();
  /** The one encoder of `live` (a sink on it only while someone reads). */
  readonly hub: LiveHub;

  /** `onDrop`: told about each live client disconnected for falling behind. */
  constructor(onDrop: (reason: string) => void = () => {}) {
    this.live.setAll(true);
    this.hub = new LiveHub({
      source: this.live,
      writer: { comment: 'vmchan live capture (attached QEMU)' },
      onDrop,
    });
  }

  /** The sink a tap writes into (it never fails the tap: a file error stops the recording). */
  readonly sink: CaptureSink = {
    addInterface: (iface) => {
      this.live.addInterface(iface);
      return undefined;
    },
    write: (record) => {
      this.live.write(record);
      return undefined;
    },
    flush: () => undefined,
    close: () => undefined,
  };

  /** A port the capture describes even before a tap carries its bytes. */
  describe(iface: CaptureInterface): void {
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
    this.live.write(record);
  }

  /** Start writing `file`: every record from now on, by the switches. */
  record(file: string, switches: CaptureSwitches): Recorder | CaptureError {
    return recordFromHub(this.hub, file, switches);
  }
}
