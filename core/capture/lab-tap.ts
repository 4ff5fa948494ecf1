/**
 * The engine side of capture: a tap on a running Lab that turns what
 * crosses its virtio-serial devices into capture records for a sink (a
 * pcapng file for `vmchan run -w FILE`, the app's live list, a test's
 * MemorySink).
 *
 *   const tap = tapLab(lab, PcapngWriter.create(file), { ports: 'all' });
 *   tap.setPort('vser0', 2, false);   // not that one
 *   ...
 *   tap.stop();                       // flush and close the file
 *
 * What becomes a record (record.ts has the model):
 *   - engine 'data' (one buffer into or out of a port)  -> data record on
 *     the port's interface, host-to-guest or guest-to-host;
 *   - engine 'control' (both directions)                -> control record,
 *     the message re-encoded with the device's codec (the engine hands out
 *     the decoded message, not the bytes);
 *   - 'port-added' / 'port-removed', 'guest-open', 'host-open', 'throttle',
 *     'drop' (bytes and reason), 'needs-reset' (rule), 'emergency-write'
 *     -> event records with a line of text;
 *   - with `ring: true`, every operation of each device's RingTracer (device
 *     and guest driver side) -> ring records.
 * Every port gets an interface: the ports that exist when the tap starts at
 * once, hot-plugged ones when the engine reports them (mid-file).
 *
 * Cost. The tap listens to port-added/port-removed/device-deleted all the
 * time (rare events, and needed so that the interfaces are right whenever
 * capture is switched on). Everything else, 'data' above all, is subscribed
 * only while the Capture is active (a sink is attached and some port or
 * everything is switched on): producers check `events.has(type)` and
 * `tracer.active`, so with capture off for everything the device builds no
 * payloads at all. The switches are watched through a Capture subclass, so
 * `tap.capture.setAll()` works as well as `tap.setAll()`.
 *
 * Bytes are not copied here: the engine's data events carry either a fresh
 * copy of guest memory (gathered for the backend) or a copy of the host's
 * bytes (the backend may read into its buffer again: pooled reads), never a
 * view into guest memory, and sinks copy what they keep before `write`
 * returns (the CaptureSink contract).
 */
import type { Lab } from '../engine/lab.js';
import type { DropReason, EngineEvents } from '../serial/events.js';
import { BAD_PORT_ID, DEFAULT_CONTROL_CODEC, encodeControl } from '../serial/control.js';
import type { VirtioSerialDevice } from '../serial/device.js';
import { queueRole } from '../serial/layout.js';
import type { SerialPort } from '../serial/port.js';
import type { RingTraceEvent } from '../virtio/trace.js';
import {
  Capture,
  controlRecord,
  dataRecord,
  eventRecord,
  eventText,
  guestNodeName,
  nowNs,
  ringRecordFromTrace,
  type CaptureInterface,
  type CaptureSink,
  type Direction,
  type PortEventType,
} from './record.js';

export interface LabTapOptions {
  /**
   * What to capture from the start: 'all' (the default), or these ports,
   * each named by port name (`test1`), qdev id, guest node name (`vport0p2`)
   * or `device:nr` (`vser0:2`). A name that matches no port yet is switched
   * on when a matching port is plugged. `[]` starts with capture off.
   */
  ports?: 'all' | string[];
  /** Also record every ring operation (default false: several per buffer). */
  ring?: boolean;
  /**
   * How a port is described in the capture (the app names chardevs as its
   * configuration does); null or absent: by the lab's own view of the port.
   */
  describe?: (device: string, nr: number) => CaptureInterface | null;
}

export interface LabTap {
  readonly capture: Capture;
  /** Capture everything (ports without a switch of their own), or nothing. */
  setAll(on: boolean): void;
  /** One port's own switch; undefined makes it follow setAll again. */
  setPort(device: string, nr: number, on: boolean | undefined): void;
  /** Stop listening to the lab, flush and close the sink. */
  stop(): void;
}

/**
 * Which way the discarded bytes were going, by reason; undefined where one
 * reason covers both ways (unplug and reset drop guest and host bytes alike).
 */
const DROP_DIRECTION: Record<DropReason, Direction | undefined> = {
  'host-disconnected': 'guest-to-host',
  'console-backpressure': 'guest-to-host',
  unplugged: undefined,
  'device-reset': undefined,
  'guest-closed': 'host-to-guest',
  'no-port': 'guest-to-host',
  'emergency-no-console': 'guest-to-host',
  'control-undelivered': 'host-to-guest',
  'port-not-open': 'host-to-guest',
  'closed-unread': 'host-to-guest',
  'host-hung-up': 'host-to-guest',
  'hangup-unread': 'host-to-guest',
  'guest-client-gone': 'host-to-guest',
  'chardev-closed': undefined,
  'host-send-failed': 'guest-to-host',
  'host-overflow': 'host-to-guest',
  'ringbuf-overwritten': 'guest-to-host',
};

/** A Capture that says when a switch or a sink changed, so the tap can (un)subscribe. */
class TapCapture extends Capture {
  constructor(private readonly changed: () => void) {
    super();
  }
  override setAll(on: boolean): void {
    super.setAll(on);
    this.changed();
  }
  override setPort(device: string, port: number, on: boolean | undefined): void {
    super.setPort(device, port, on);
    this.changed();
  }
  override attach(sink: CaptureSink): () => void {
    const detach = super.attach(sink);
    this.changed();
    return detach;
  }
  // Also reached when a sink fails: Capture detaches it after its first error.
  override detach(sink: CaptureSink): void {
    super.detach(sink);
    this.changed();
  }
}

interface PortView {
  name: string | undefined;
  /** What event lines call the port: its name, else its guest node name. */
  label: string;
}

/**
 * Tap a lab into `sink`; with `null` the tap starts without a sink and costs
 * nothing until one attaches to `tap.capture` (a live-capture client).
 */
export function tapLab(lab: Lab, sink: CaptureSink | null, options: LabTapOptions = {}): LabTap {
  const ring = options.ring ?? false;
  const specs = options.ports === undefined || options.ports === 'all' ? [] : options.ports;
  /** device -> nr -> how records name the port (kept after unplug for late records). */
  const views = new Map<string, Map<number, PortView>>();
  /** Device name -> the device, for codecs and tracers (a hot-plugged one joins at its first port). */
  const devices = new Map<string, VirtioSerialDevice>();
  let stopped = false;
  let live: (() => void)[] = [];
  const tracers = new Map<string, () => void>();

  const capture = new TapCapture(() => sync());

  // -- naming ---------------------------------------------------------------------------------

  /**
   * The D of vportDpN: the guest driver's virtio index once the guest has
   * probed the device; before boot, the device's position, which is what the
   * probe will give it in a guest with no other virtio device.
   */
  const deviceIndex = (device: VirtioSerialDevice): number =>
    lab.guest.driverFor(device)?.virtioIndex ?? Math.max(0, lab.registry.devices.indexOf(device));

  const describePort = (device: VirtioSerialDevice, port: SerialPort): CaptureInterface => {
    let chardev: CaptureInterface['chardev'];
    if (port.chardev !== null) {
      // describe() says `disconnected:` while no host is there; the interface
      // is written once, so keep the backend itself and leave the connection
      // state to the host-open events.
      const text = lab.chardev(port.chardev)?.describe() ?? 'unknown';
      chardev = { id: port.chardev, backend: text.replace(/^disconnected:/, '') };
    }
    return {
      device: device.name,
      deviceIndex: deviceIndex(device),
      port: port.nr,
      kind: port.kind,
      name: port.name ?? undefined,
      chardev,
    };
  };

  const viewOf = (device: string, nr: number): PortView | undefined => views.get(device)?.get(nr);
  const portName = (device: string, nr: number | undefined): string | undefined =>
    nr === undefined ? undefined : viewOf(device, nr)?.name;
  const label = (device: string, nr: number | undefined): string =>
    nr === undefined ? device : (viewOf(device, nr)?.label ?? `${device} port ${nr}`);

  const announce = (device: VirtioSerialDevice, port: SerialPort): void => {
    devices.set(device.name, device);
    const iface = options.describe?.(device.name, port.nr) ?? describePort(device, port);
    let byNr = views.get(device.name);
    if (!byNr) views.set(device.name, (byNr = new Map()));
    byNr.set(port.nr, {
      name: iface.name,
      label: iface.name ?? guestNodeName(iface.deviceIndex, iface.port),
    });
    capture.addInterface(iface);
    if (ring && live.length > 0) trace(device); // a device hot-plugged while ring capture runs
  };

  // -- port selection --------------------------------------------------------------------------

  const matches = (spec: string, device: VirtioSerialDevice, port: SerialPort): boolean => {
    if (spec === port.name || spec === port.id) return true;
    if (spec === `${device.name}:${port.nr}`) return true;
    return spec === guestNodeName(deviceIndex(device), port.nr);
  };

  const switchOnMatching = (device: VirtioSerialDevice, port: SerialPort): void => {
    if (specs.some((s) => matches(s, device, port))) capture.setPort(device.name, port.nr, true);
  };

  // -- records ---------------------------------------------------------------------------------

  const portEvent = (
    device: string,
    nr: number | undefined,
    event: PortEventType,
    more: { direction?: Direction; count?: number; rule?: string; reason?: string } = {},
  ): void => {
    if (!capture.wants(device, nr)) return;
    capture.write(
      eventRecord({
        time: nowNs(),
        device,
        port: nr,
        portName: portName(device, nr),
        event,
        ...more,
        text: eventText(event, label(device, nr), more),
      }),
    );
  };

  const onData = (e: EngineEvents['data']): void => {
    if (!capture.wants(e.device, e.nr)) return;
    capture.write(
      dataRecord({
        time: nowNs(),
        device: e.device,
        port: e.nr,
        portName: viewOf(e.device, e.nr)?.name,
        direction: e.direction === 'to-guest' ? 'host-to-guest' : 'guest-to-host',
        bytes: e.bytes,
      }),
    );
  };

  const onControl = (e: EngineEvents['control']): void => {
    const msg = e.message;
    const nr = msg.id === BAD_PORT_ID ? undefined : msg.id;
    if (!capture.wants(e.device, nr)) return;
    const codec = (devices.get(e.device) ?? lab.device(e.device))?.codec ?? DEFAULT_CONTROL_CODEC;
    capture.write(
      controlRecord({
        time: nowNs(),
        device: e.device,
        direction: e.direction === 'to-guest' ? 'device-to-driver' : 'driver-to-device',
        bytes: encodeControl(msg, codec),
        portName: portName(e.device, nr),
        resizeOrder: codec.resizeOrder,
      }),
    );
  };

  const onDrop = (e: EngineEvents['drop']): void => {
    const where =
      e.side === 'backend' ? `in chardev ${e.chardev ?? '(unknown)'}` : `by the ${e.side}`;
    portEvent(e.device, e.nr ?? undefined, 'drop', {
      // The event's own direction when it has one (unplug and reset drop both ways).
      direction:
        e.direction === undefined
          ? DROP_DIRECTION[e.reason]
          : e.direction === 'to-host'
            ? 'guest-to-host'
            : 'host-to-guest',
      count: e.bytes,
      reason: `${e.reason}, ${where}`,
    });
  };

  const onEmergency = (e: EngineEvents['emergency-write']): void => {
    const ch = e.byte >= 0x20 && e.byte < 0x7f ? ` '${String.fromCharCode(e.byte)}'` : '';
    const hex = `0x${e.byte.toString(16).padStart(2, '0')}`;
    portEvent(e.device, e.nr ?? undefined, 'note', {
      direction: 'guest-to-host',
      reason: `emergency write ${hex}${ch}${e.nr === null ? ', no connected console' : ''}`,
    });
  };

  const traceListener =
    (device: string) =>
    (ev: RingTraceEvent): void => {
      let nr: number | undefined;
      let direction: Direction | undefined;
      if (ev.queue >= 0) {
        const role = queueRole(ev.queue);
        if (role.role === 'rx' || role.role === 'tx') nr = role.port;
        direction =
          role.role === 'rx' || role.role === 'control-rx' ? 'host-to-guest' : 'guest-to-host';
      }
      if (!capture.wants(device, nr)) return;
      const r = ringRecordFromTrace(nowNs(), device, nr, ev, portName(device, nr));
      r.direction = direction;
      capture.write(r);
    };

  function trace(device: VirtioSerialDevice): void {
    if (tracers.has(device.name)) return;
    tracers.set(device.name, device.tracer.on(traceListener(device.name)));
  }

  // -- subscriptions ---------------------------------------------------------------------------

  const ev = lab.events;
  /** Subscribe to what costs the engine something only while capture is active. */
  function sync(): void {
    const want = !stopped && capture.active;
    if (want && live.length === 0) {
      live = [
        ev.on('data', onData),
        ev.on('control', onControl),
        ev.on('guest-open', (e) =>
          portEvent(e.device, e.nr, e.open ? 'guest-open' : 'guest-close'),
        ),
        ev.on('host-open', (e) => portEvent(e.device, e.nr, e.open ? 'host-open' : 'host-close')),
        ev.on('throttle', (e) => portEvent(e.device, e.nr, e.on ? 'throttle-on' : 'throttle-off')),
        ev.on('drop', onDrop),
        ev.on('needs-reset', (e) =>
          portEvent(e.device, undefined, 'needs-reset', { rule: e.rule, reason: e.fault.message }),
        ),
        ev.on('emergency-write', onEmergency),
      ];
      if (ring) {
        for (const d of lab.registry.devices) devices.set(d.name, d);
        for (const d of devices.values()) trace(d);
      }
    } else if (!want && live.length > 0) {
      for (const off of live) off();
      live = [];
      for (const off of tracers.values()) off();
      tracers.clear();
    }
  }

  const always = [
    ev.on('port-added', (e) => {
      const device = lab.device(e.device);
      const port = device?.port(e.nr);
      if (device === undefined || port === undefined) return;
      switchOnMatching(device, port);
      announce(device, port);
      portEvent(e.device, e.nr, 'port-added', {
        reason: e.hotplug ? `hot-plug, ${port.kind}` : port.kind,
      });
    }),
    ev.on('port-removed', (e) => {
      // The event first: once the interface is gone the port follows the global switch only.
      portEvent(e.device, e.nr, 'port-removed');
      capture.removeInterface(e.device, e.nr);
    }),
    ev.on('device-deleted', (e) => {
      if (e.device === null || lab.device(e.device) !== undefined) return; // a port, or still there
      tracers.get(e.device)?.();
      tracers.delete(e.device);
      devices.delete(e.device);
    }),
  ];

  // -- start -----------------------------------------------------------------------------------

  if (sink !== null) capture.attach(sink);
  for (const device of lab.registry.devices) {
    for (const port of device.ports) {
      switchOnMatching(device, port);
      announce(device, port);
    }
  }
  // Names given as `device:nr` for a port not plugged yet switch that slot on now.
  for (const spec of specs) {
    const m = /^(.+):(\d+)$/.exec(spec);
    const device = m ? lab.device(m[1]!) : undefined;
    if (m && device && device.port(Number(m[2])) === undefined) {
      capture.setPort(device.name, Number(m[2]), true);
    }
  }
  if (options.ports === undefined || options.ports === 'all') capture.setAll(true);
  sync();

  return {
    capture,
    setAll: (on) => capture.setAll(on),
    setPort: (device, nr, on) => capture.setPort(device, nr, on),
    stop: () => {
      if (stopped) return;
      stopped = true;
      for (const off of always) off();
      sync();
      capture.close();
    },
  };
}
