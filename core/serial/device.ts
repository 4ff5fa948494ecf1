/**
 * The virtio-serial device, as QEMU's hw/char/virtio-serial-bus.c: a
 * virtio console (C0) with up to max_ports ports, a control queue pair, and
 * the data paths of every port.
 *
 * Behaviours (ids from docs/CONFORMANCE.md):
 * - D1/D2: features and queue sizes from the options (defaults as QEMU:
 *   31 ports, MULTIPORT only when max_ports > 1, EMERG_WRITE on, data
 *   queues 128, control queues 32). Port checks (D3) live in registry.ts.
 * - D4: DEVICE_READY -> PORT_ADD for every port; PORT_READY -> CONSOLE_PORT,
 *   PORT_NAME, PORT_OPEN 1 if the host is there; PORT_OPEN from the guest
 *   sets guest_connected and emits VSERPORT_CHANGE. Without MULTIPORT port 0
 *   is guest-connected at DRIVER_OK. Reset or clearing DRIVER_OK disconnects
 *   every port and drops a half-sent element.
 * - D5: guest -> host is pushed to the backend; a short write throttles the
 *   port, which keeps its place inside the element and resumes when the
 *   backend drains. Throttling is per port.
 * - D6: host -> guest is pulled: canRead() is 0 unless the guest has the port
 *   open and receive buffers are posted; at most 4096 bytes per read, like
 *   QEMU's virtqueue_get_avail_bytes(..., 4096). Bytes that do not fit wait
 *   in the port (QEMU would drop them; here nothing is dropped silently).
 * - D7: transmit buffers while no host is connected are used with len 0 and
 *   counted as dropped. A host disconnect discards pending data, sends PORT_OPEN 0.
 * - D8: hot-plug sends PORT_ADD and a configuration change; hot-unplug
 *   discards queued guest data, sends PORT_REMOVE, emits DEVICE_DELETED.
 * - D9 (M10, M12): malformed guest input makes this device NEEDS_RESET
 *   naming the rule; other devices keep running.
 * - D10 (M11): a control message QEMU cannot act on (too short, unknown port
 *   id, DEVICE_READY or PORT_READY 0, an unknown event) is reported and
 *   ignored, as QEMU's handle_control_message does with error_report() and
 *   return: the device keeps running. The guest's PORT_OPEN 0 for a port
 *   the host just unplugged (the guest closed it before it saw PORT_REMOVE)
 *   is the everyday case.
 * - C1/C2: emergency writes go to the first host-connected console, even
 *   before the driver is set up. C3/C4: PORT_ADD at most once per port and
 *   reset, PORT_REMOVE only after PORT_ADD. C5: wrong-direction buffers are
 *   M10 faults.
 * - C8-C10 (legacy): not supported; the legacy interface is not offered
 *   (VERSION_1 is required, see VirtioDevice.checkFeatures).
 *
 * Policies where QEMU 7.2 does something else (options, QEMU noted):
 * - malformedControl 'ignore' is QEMU's (the default); 'needs-reset' is a
 *   vmchan extra for teaching, which stops the device naming M11;
 * - controlRxExhausted 'wait' (messages wait for control receive buffers) vs
 *   'drop' (QEMU: "host to guest notifications can get dropped") vs
 *   'needs-reset' (M12 taken strictly);
 * - a throttled element dropped at host disconnect is returned to the guest
 *   with len 0 (QEMU detaches it without returning it, leaking a descriptor).
 */
import type { Emitter } from '../base/emitter.js';
import {
  DROP_DIRECTION,
  type DropDirection,
  type DropReason,
  type EngineEvents,
} from './events.js';
import type { DescriptorChain } from '../virtio/chain.js';
import { gather, scatter } from '../virtio/chain.js';
import { TxBufferPool } from './tx-pool.js';
import { VirtioDevice, type PostTask } from '../virtio/device.js';
import type { ConfigWidth } from '../virtio/device-transport.js';
import { fault, isFault, type VirtioFault } from '../virtio/fault.js';
import { bit, Feature } from '../virtio/features.js';
import type { GuestMemory } from '../virtio/memory.js';
import type { ChainLimits } from '../virtio/queue.js';
import type { RingTracer } from '../virtio/trace.js';
import {
  BAD_PORT_ID,
  ControlEvent,
  DEFAULT_CONTROL_CODEC,
  controlMessage,
  decodeControl,
  describeControl,
  encodeControl,
  type ControlCodecOptions,
  type ControlMessage,
} from './control.js';
import type { ChardevEndpoint } from './endpoint.js';
import { PortFrontend, type ConsoleBackpressure, type PortBus } from './frontend.js';
import {
  CONFIG_COLS,
  CONFIG_EMERG_WR,
  CONFIG_MAX_NR_PORTS,
  CONFIG_ROWS,
  CONFIG_SIZE_WITH_EMERG,
  CONFIG_SIZE_WITHOUT_EMERG,
  CONTROL_RX_QUEUE,
  CONTROL_TX_QUEUE,
  VIRTIO_ID_CONSOLE,
  consoleQueueCount,
  queueRole,
} from './layout.js';
import { SerialPort, type PortProperties } from './port.js';

export const DEFAULT_MAX_PORTS = 31;
/** VIRTIO_QUEUE_MAX / 2 - 1: each port takes two queues and one pair is control. */
export const MAX_PORTS_LIMIT = 511;
export const DEFAULT_DATA_QUEUE_SIZE = 128;
export const DEFAULT_CONTROL_QUEUE_SIZE = 32;
/** QEMU asks virtqueue_get_avail_bytes for at most 4096 bytes per chardev read. */
export const RX_READ_CHUNK = 4096;
/** Guest bytes handed to the backend per write call, so a huge chain never needs a huge copy. */
const TX_WRITE_CHUNK = 64 * 1024;
/**
 * Transmit buffers kept for reuse. A socket's write callback (which returns
 * a buffer) runs on the next tick, so the chains of one engine batch are all
 * out at once: a few 32 KiB guest buffers, more while the host reads slowly.
 */
const TX_POOL_KEEP = 8;
/** Longest control message read from the guest (real ones are 8 bytes). */
const CONTROL_READ_LIMIT = 4096;

export type MalformedControlPolicy = 'needs-reset' | 'ignore';
export type ControlRxExhaustedPolicy = 'wait' | 'drop' | 'needs-reset';

export interface VirtioSerialOptions {
  /** qdev id (`-device virtio-serial-pci,id=vser0`), null when anonymous. */
  id: string | null;
  /** The bus ports plug into: `vser0.0` for id vser0. */
  bus: string;
  memory: GuestMemory;
  post: PostTask;
  events: Emitter<EngineEvents>;
  maxPorts?: number;
  emergencyWrite?: boolean;
  /** Offer RING_PACKED (QEMU's `packed=on`); the driver decides. */
  packed?: boolean;
  indirectDesc?: boolean;
  eventIdx?: boolean;
  dataQueueSize?: number;
  controlQueueSize?: number;
  /** Offer SIZE with this console size in the configuration space (QEMU offers no SIZE). */
  consoleSize?: { cols: number; rows: number } | null;
  codec?: Partial<ControlCodecOptions>;
  consoleBackpressure?: ConsoleBackpressure;
  malformedControl?: MalformedControlPolicy;
  controlRxExhausted?: ControlRxExhaustedPolicy;
  /** Control messages waiting for receive buffers before the oldest are dropped. */
  controlBacklog?: number;
  limits?: ChainLimits;
  tracer?: RingTracer;
}

export interface SerialDeviceStats {
  controlToGuest: number;
  controlToDevice: number;
  /** Malformed control messages ignored under malformedControl 'ignore'. */
  controlIgnored: number;
  /** Bytes dropped without a port to charge them to, by reason. */
  dropped: Partial<Record<DropReason, number>>;
}

interface Outgoing {
  message: ControlMessage;
  bytes: Uint8Array;
}

export class VirtioSerialDevice extends VirtioDevice implements PortBus {
  readonly id: string | null;
  readonly bus: string;
  readonly maxPorts: number;
  readonly emergencyWrite: boolean;
  readonly dataQueueSize: number;
  readonly controlQueueSize: number;
  readonly codec: ControlCodecOptions;
  readonly stats: SerialDeviceStats = {
    controlToGuest: 0,
    controlToDevice: 0,
    controlIgnored: 0,
    dropped: {},
  };
  private readonly events: Emitter<EngineEvents>;
  /** Is anyone listening for 'data'? Asked per receive chunk. */
  private readonly dataListened: { readonly on: boolean };
  private readonly offered: bigint;
  private readonly consoleSize: { cols: number; rows: number } | null;
  private readonly consoleBackpressure: ConsoleBackpressure;
  private readonly malformedPolicy: MalformedControlPolicy;
  private readonly exhaustedPolicy: ControlRxExhaustedPolicy;
  private readonly backlog: number;
  /** In plug order, like QEMU's QTAILQ: DEVICE_READY announces them in this order. */
  private readonly portList: SerialPort[] = [];
  private readonly byNr = new Map<number, SerialPort>();
  private readonly frontends = new Map<SerialPort, PortFrontend>();
  /** QEMU's ports_map: bit 0 stays reserved for a console (backward compatibility). */
  private readonly portsMap: Uint32Array;
  private outbox: Outgoing[] = [];
  /** Buffers transmit chains are gathered into, reused once the backend is done (tx-pool.ts). */
  private readonly txPool = new TxBufferPool(TX_WRITE_CHUNK, TX_POOL_KEEP);

  constructor(options: VirtioSerialOptions) {
    const name = options.id ?? options.bus;
    super({
      deviceId: VIRTIO_ID_CONSOLE,
      name,
      memory: options.memory,
      post: options.post,
      limits: options.limits,
      tracer: options.tracer,
    });
    this.id = options.id;
    this.bus = options.bus;
    this.events = options.events;
    this.dataListened = options.events.flag('data');
    this.maxPorts = options.maxPorts ?? DEFAULT_MAX_PORTS;
    this.emergencyWrite = options.emergencyWrite ?? true;
    this.dataQueueSize = options.dataQueueSize ?? DEFAULT_DATA_QUEUE_SIZE;
    this.controlQueueSize = options.controlQueueSize ?? DEFAULT_CONTROL_QUEUE_SIZE;
    this.codec = { ...DEFAULT_CONTROL_CODEC, ...options.codec };
    this.consoleSize = options.consoleSize ?? null;
    this.consoleBackpressure = options.consoleBackpressure ?? 'drop';
    this.malformedPolicy = options.malformedControl ?? 'ignore';
    this.exhaustedPolicy = options.controlRxExhausted ?? 'wait';
    this.backlog = Math.max(1, options.controlBacklog ?? 4096);
    this.portsMap = new Uint32Array(Math.ceil(this.maxPorts / 32));
    this.portsMap[0] = 1; // mark_port_added(vser, 0)

    // Transport features as QEMU 7.2 offers them (x-query-virtio-status host-features).
    let f =
      bit(Feature.VERSION_1) |
      bit(Feature.RING_INDIRECT_DESC) |
      bit(Feature.RING_EVENT_IDX) |
      bit(Feature.ANY_LAYOUT) |
      bit(Feature.NOTIFY_ON_EMPTY);
    if (options.indirectDesc === false) f &= ~bit(Feature.RING_INDIRECT_DESC);
    if (options.eventIdx === false) f &= ~bit(Feature.RING_EVENT_IDX);
    if (options.packed) f |= bit(Feature.RING_PACKED);
    if (this.maxPorts > 1) f |= bit(Feature.CONSOLE_F_MULTIPORT);
    if (this.emergencyWrite) f |= bit(Feature.CONSOLE_F_EMERG_WRITE);
    if (this.consoleSize !== null) f |= bit(Feature.CONSOLE_F_SIZE);
    this.offered = f;
  }

  // ------------------------------------------------------------- public API

  get multiport(): boolean {
    return this.hasFeature(Feature.CONSOLE_F_MULTIPORT);
  }

  get ports(): readonly SerialPort[] {
    return this.portList;
  }

  port(nr: number): SerialPort | undefined {
    return this.byNr.get(nr);
  }

  /** Control messages waiting for guest receive buffers. */
  get pendingControl(): readonly ControlMessage[] {
    return this.outbox.map((o) => o.message);
  }

  /** find_free_port_id: the lowest number not in ports_map, or null (may be >= max_ports, as in QEMU). */
  findFreeNr(): number | null {
    for (let i = 0; i < this.portsMap.length; i++) {
      const free = ~this.portsMap[i]! >>> 0;
      if (free !== 0) return i * 32 + (31 - Math.clz32(free & -free));
    }
    return null;
  }

  /**
   * Plug a port in (virtser_port_device_realize + plug). The registry has run
   * the D3 checks and reserved the backend; this cannot fail.
   */
  plugPort(props: PortProperties, endpoint: ChardevEndpoint | null, hotplug: boolean): SerialPort {
    const port = new SerialPort(props);
    const frontend = new PortFrontend(port, endpoint, this, this.consoleBackpressure);
    this.frontends.set(port, frontend);
    this.portList.push(port);
    this.byNr.set(port.nr, port);
    this.portsMap[port.nr >> 5]! |= 1 << (port.nr & 31);
    frontend.realize();
    // add_port: PORT_ADD now if the guest can hear it (C3: once).
    this.announce(port);
    if (this.events.has('port-added')) {
      this.events.emit('port-added', {
        device: this.name,
        nr: port.nr,
        kind: port.kind,
        id: port.id,
        name: port.name,
        bus: this.bus,
        hotplug,
      });
    }
    // "Send an update to the guest about this new port added" (D8).
    if (hotplug) this.notifyConfigChange();
    return port;
  }

  /** chardev-change under a plugged port (a vmchan extra, see PortFrontend.changeBackend). */
  changeBackend(port: SerialPort, endpoint: ChardevEndpoint): void {
    this.frontends.get(port)?.changeBackend(endpoint);
  }

  /** Hot-unplug (remove_port + unrealize): D8. */
  unplugPort(port: SerialPort): void {
    if (this.byNr.get(port.nr) !== port) return;
    // Flush out any unconsumed guest data first.
    this.discardPendingTx(port, 'unplugged');
    while (this.discardOneTx(port.txQueue, port, 'unplugged'));
    this.dropInbound(port, 'unplugged');
    if (port.announced) this.sendControl(controlMessage(port.nr, ControlEvent.PORT_REMOVE, 1));
    port.announced = false;
    this.portList.splice(this.portList.indexOf(port), 1);
    this.byNr.delete(port.nr);
    // Port 0 stays reserved for a console even after a console leaves it.
    if (port.nr !== 0) this.portsMap[port.nr >> 5]! &= ~(1 << (port.nr & 31));
    this.frontends.get(port)?.unrealize();
    this.frontends.delete(port);
    if (this.events.has('port-removed')) {
      this.events.emit('port-removed', {
        device: this.name,
        nr: port.nr,
        id: port.id,
        name: port.name,
      });
    }
  }

  /** Send a console resize (RESIZE, payload order per the codec option). */
  resizeConsole(nr: number, cols: number, rows: number): boolean {
    const port = this.byNr.get(nr);
    if (port === undefined || !port.isConsole) return false;
    this.sendControl(controlMessage(nr, ControlEvent.RESIZE, 0, { cols, rows }));
    return true;
  }

  // ------------------------------------------------------ virtio contract

  protected offeredFeatures(): bigint {
    return this.offered;
  }

  protected queueCount(features: bigint): number {
    return consoleQueueCount(this.maxPorts, (features & bit(Feature.CONSOLE_F_MULTIPORT)) !== 0n);
  }

  protected queueSizeMax(queue: number): number {
    return queue === CONTROL_RX_QUEUE || queue === CONTROL_TX_QUEUE
      ? this.controlQueueSize
      : this.dataQueueSize;
  }

  protected configSpace(): Uint8Array {
    const bytes = new Uint8Array(
      this.emergencyWrite ? CONFIG_SIZE_WITH_EMERG : CONFIG_SIZE_WITHOUT_EMERG,
    );
    const view = new DataView(bytes.buffer);
    view.setUint16(CONFIG_COLS, this.consoleSize?.cols ?? 0, true);
    view.setUint16(CONFIG_ROWS, this.consoleSize?.rows ?? 0, true);
    view.setUint32(CONFIG_MAX_NR_PORTS, this.maxPorts, true);
    // emerg_wr reads as 0: it is a write-only doorbell.
    return bytes;
  }

  /** C1/C2: emerg_wr works in any device state; the low byte goes to a console. */
  protected override configWrite(offset: number, _width: ConfigWidth, value: number): void {
    if (!this.emergencyWrite || offset !== CONFIG_EMERG_WR || value === 0) return;
    this.emergencyWriteByte(value & 0xff);
  }

  protected processQueue(queue: number): boolean {
    const role = queueRole(queue);
    switch (role.role) {
      case 'control-tx':
        return this.stepControlTx();
      case 'control-rx':
        return this.stepControlRx();
      case 'tx':
        return this.stepTx(role.port, queue);
      case 'rx':
        return this.stepRx(role.port);
    }
  }

  protected override onDriverOk(): void {
    if (!this.multiport) {
      // "Non-multiport guests won't be able to tell us guest open/close
      // status": port 0 is guest-connected as soon as the guest is up.
      const port0 = this.byNr.get(0);
      if (port0) port0.guestConnected = true;
    }
    // Backends that stopped on canRead() == 0 may push now.
    for (const port of this.portList) this.frontends.get(port)?.guestWritable();
  }

  protected override onDriverOkCleared(): void {
    this.guestReset();
  }

  protected override onDeviceReset(): void {
    this.guestReset();
    if (this.outbox.length > 0) this.outbox = [];
    for (const port of this.portList) {
      port.announced = false;
      port.ready = false;
    }
  }

  protected override onNeedsReset(problem: VirtioFault): void {
    if (this.events.has('needs-reset')) {
      this.events.emit('needs-reset', { device: this.name, rule: problem.rule, fault: problem });
    }
  }

  // --------------------------------------------------------- PortBus (frontend)

  guestReadyBytes(port: SerialPort): number {
    if (!this.running || this.byNr.get(port.nr) !== port) return 0;
    if (this.multiport && !port.guestConnected) return 0;
    if (port.inboundBytes > 0) return 0;
    return this.hasAvailable(port.rxQueue) ? RX_READ_CHUNK : 0;
  }

  writeToGuest(port: SerialPort, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    port.inbound.push(bytes);
    port.inboundBytes += bytes.length;
    this.drainInbound(port);
    // What the guest's buffers could not take yet waits here (QEMU keeps
    // the chardev's buffer the same way): a copy, since the backend may read
    // into `bytes` again once we return. Rare: the frontend asks only while
    // a buffer is posted, so only a short buffer or a fault leaves any.
    if (port.inboundBytes > 0) {
      const queued = port.inbound;
      for (let i = 0; i < queued.length; i++) {
        if (queued[i]!.buffer === bytes.buffer) queued[i] = queued[i]!.slice();
      }
    }
  }

  hostOpened(port: SerialPort): void {
    if (port.hostConnected) return;
    port.hostConnected = true;
    this.sendControl(controlMessage(port.nr, ControlEvent.PORT_OPEN, 1));
    this.emitHost(port, true);
  }

  hostClosed(port: SerialPort): void {
    port.hostConnected = false;
    if (port.throttled) this.setThrottled(port, false);
    this.discardPendingTx(port, 'host-disconnected');
    // discard_vq_data: whatever the guest queued goes, one chain per task.
    if (this.queue(port.txQueue) !== undefined) this.scheduleQueue(port.txQueue);
    this.sendControl(controlMessage(port.nr, ControlEvent.PORT_OPEN, 0));
    this.emitHost(port, false);
  }

  hostSeen(port: SerialPort, open: boolean): void {
    this.emitHost(port, open);
  }

  setThrottled(port: SerialPort, on: boolean): void {
    if (port.throttled === on) return;
    port.throttled = on;
    if (this.events.has('throttle')) {
      this.events.emit('throttle', { device: this.name, nr: port.nr, on });
    }
    if (!on && this.byNr.get(port.nr) === port) this.scheduleQueue(port.txQueue);
  }

  guestConnectionChanged(port: SerialPort, open: boolean): void {
    if (this.events.has('guest-open')) {
      this.events.emit('guest-open', { device: this.name, nr: port.nr, open });
    }
    if (port.id !== null && this.events.has('vserport-change')) {
      this.events.emit('vserport-change', { id: port.id, open });
    }
  }

  drop(
    port: SerialPort | null,
    reason: DropReason,
    bytes: number,
    direction: DropDirection | undefined = DROP_DIRECTION[reason],
    /** The port number for bytes of a queue whose port is gone. */
    nr: number | null = null,
  ): void {
    if (bytes <= 0) return;
    if (port) port.countDrop(reason, bytes);
    else this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + bytes;
    if (this.events.has('drop')) {
      this.events.emit('drop', {
        device: this.name,
        nr: port?.nr ?? nr,
        side: 'device',
        bytes,
        reason,
        ...(direction ? { direction } : {}),
      });
    }
  }

  // ------------------------------------------------------------ control

  /** handle_control_message (D4), with malformed input per policy (D9, M11). */
  private handleControl(bytes: Uint8Array): void {
    const msg = decodeControl(bytes, this.codec);
    if (isFault(msg)) {
      // QEMU: "The guest sent an invalid control packet", returned without a word.
      this.malformed(msg, null);
      return;
    }
    this.stats.controlToDevice++;
    if (this.events.has('control')) {
      this.events.emit('control', {
        device: this.name,
        direction: 'to-device',
        message: msg,
        text: describeControl(msg),
      });
    }
    if (msg.event === ControlEvent.DEVICE_READY) {
      if (msg.value === 0) {
        this.malformed(
          fault(
            'MalformedControlMessage',
            'M11',
            `DEVICE_READY with value 0: guest failure in adding device ${this.bus}`,
          ),
          `virtio-serial-bus: Guest failure in adding device ${this.bus}`,
        );
        return;
      }
      // "The device is up, we can now tell the device about all the ports."
      for (const port of this.portList) this.announce(port);
      return;
    }
    const port = msg.id === BAD_PORT_ID ? undefined : this.byNr.get(msg.id);
    if (port === undefined) {
      this.malformed(
        fault(
          'MalformedControlMessage',
          'M11',
          `unexpected port id ${msg.id} in ${msg.eventName} for device ${this.bus}`,
          { index: msg.id },
        ),
        `virtio-serial-bus: Unexpected port id ${msg.id} for device ${this.bus}`,
      );
      return;
    }
    switch (msg.event) {
      case ControlEvent.PORT_READY:
        if (msg.value === 0) {
          this.malformed(
            fault(
              'MalformedControlMessage',
              'M11',
              `PORT_READY with value 0: guest failure in adding port ${port.nr} for device ${this.bus}`,
              { index: port.nr },
            ),
            `virtio-serial-bus: Guest failure in adding port ${port.nr} for device ${this.bus}`,
          );
          return;
        }
        port.ready = true;
        // Now the guest is set up for this port: tell it what it is.
        if (port.isConsole) this.sendControl(controlMessage(port.nr, ControlEvent.CONSOLE_PORT, 1));
        if (port.name !== null) {
          this.sendControl(controlMessage(port.nr, ControlEvent.PORT_NAME, 1, { name: port.name }));
        }
        if (port.hostConnected)
          this.sendControl(controlMessage(port.nr, ControlEvent.PORT_OPEN, 1));
        return;
      case ControlEvent.PORT_OPEN:
        this.setGuestConnected(port, msg.value !== 0);
        return;
      default:
        this.malformed(
          fault(
            'MalformedControlMessage',
            'M11',
            `unknown event ${msg.event} (${msg.eventName}) from the driver for port ${port.nr}`,
            { index: msg.event },
          ),
          null, // QEMU's switch has no default: silently ignored
        );
    }
  }

  private setGuestConnected(port: SerialPort, open: boolean): void {
    port.guestConnected = open;
    if (!open) this.dropInbound(port, 'guest-closed');
    this.frontends.get(port)?.setGuestConnected(open);
    // The backend stopped when canRead() said 0; let it push now.
    if (open) this.frontends.get(port)?.guestWritable();
  }

  /**
   * A control message QEMU cannot act on (D10, M11). `qemuReport` is the line
   * QEMU's error_report() prints for it (null: QEMU ignores it silently).
   */
  private malformed(problem: VirtioFault, qemuReport: string | null): void {
    if (this.malformedPolicy === 'needs-reset') {
      this.fail(problem);
      return;
    }
    // QEMU 7.2: error_report() (or nothing) and carry on.
    this.stats.controlIgnored++;
    if (this.events.has('control-ignored')) {
      this.events.emit('control-ignored', {
        device: this.name,
        rule: problem.rule,
        qemuReport,
        text: problem.message,
      });
    }
    if (this.tracer.active) {
      this.tracer.emit({
        op: 'fault',
        queue: CONTROL_TX_QUEUE,
        format: this.hasFeature(Feature.RING_PACKED) ? 'packed' : 'split',
        rule: problem.rule,
        text: `${this.name}: ignored (policy 'ignore', as QEMU): ${problem.toString()}`,
        fault: problem,
      });
    }
  }

  /** PORT_ADD for a port the guest has not been told about (C3: never twice). */
  private announce(port: SerialPort): void {
    if (port.announced || !this.controlPathUp()) return;
    port.announced = true;
    this.sendControl(controlMessage(port.nr, ControlEvent.PORT_ADD, 1));
  }

  /** Can control messages reach the guest at all (MULTIPORT and control rx enabled)? */
  private controlPathUp(): boolean {
    return this.multiport && this.queueReady(CONTROL_RX_QUEUE);
  }

  /**
   * send_control_msg: queue a message for the guest. Like QEMU, nothing is
   * sent while the control queue is not set up (the guest learns the state
   * at DEVICE_READY / PORT_READY), and a port's messages wait for its PORT_ADD.
   */
  private sendControl(message: ControlMessage): void {
    if (!this.controlPathUp()) return;
    if (message.event !== ControlEvent.PORT_ADD && message.event !== ControlEvent.PORT_REMOVE) {
      const port = this.byNr.get(message.id);
      if (port === undefined || !port.announced) return;
    }
    if (this.outbox.length >= this.backlog) {
      const lost = this.outbox.shift()!;
      this.drop(null, 'control-undelivered', lost.bytes.length);
    }
    this.outbox.push({ message, bytes: encodeControl(message, this.codec) });
    this.scheduleQueue(CONTROL_RX_QUEUE);
  }

  /** Deliver one queued control message into a control receive buffer (M12 checked). */
  private stepControlRx(): boolean {
    if (this.outbox.length === 0) return false;
    const chain = this.pop(CONTROL_RX_QUEUE);
    if (chain === null) {
      if (!this.running) return false;
      if (this.exhaustedPolicy === 'drop') {
        for (const lost of this.outbox) this.drop(null, 'control-undelivered', lost.bytes.length);
        this.outbox = [];
      } else if (this.exhaustedPolicy === 'needs-reset') {
        this.fail(
          fault(
            'NoBuffers',
            'M12',
            `no control receive buffer posted for ${describeControl(this.outbox[0]!.message)}`,
            { queue: CONTROL_RX_QUEUE },
          ),
        );
      }
      return false; // 'wait': the guest's next kick on queue 2 brings us back
    }
    if (!this.checkDirection(chain, CONTROL_RX_QUEUE, 'receive')) return false;
    const out = this.outbox[0]!;
    if (chain.writableLength < out.bytes.length) {
      // CVE-2015-5745: QEMU once copied the message past a short buffer.
      this.fail(
        fault(
          'ControlBufferTooSmall',
          'M12',
          `control receive buffer of ${chain.writableLength} bytes is smaller than the ${out.bytes.length}-byte ${out.message.eventName} message`,
          { queue: CONTROL_RX_QUEUE, index: chain.id, length: chain.writableLength },
        ),
      );
      return false;
    }
    const written = scatter(this.memory, chain.writable, 0, out.bytes);
    if (isFault(written)) {
      this.fail(written.onQueue(CONTROL_RX_QUEUE));
      return false;
    }
    this.outbox.shift();
    if (!this.push(CONTROL_RX_QUEUE, chain, written)) return false;
    this.signalQueue(CONTROL_RX_QUEUE);
    this.stats.controlToGuest++;
    if (this.events.has('control')) {
      this.events.emit('control', {
        device: this.name,
        direction: 'to-guest',
        message: out.message,
        text: describeControl(out.message),
      });
    }
    return this.outbox.length > 0;
  }

  /** control_out: one guest control message per step. */
  private stepControlTx(): boolean {
    const chain = this.pop(CONTROL_TX_QUEUE);
    if (chain === null) return false;
    if (!this.checkDirection(chain, CONTROL_TX_QUEUE, 'transmit')) return false;
    const bytes = new Uint8Array(Math.min(chain.readableLength, CONTROL_READ_LIMIT));
    const got = gather(this.memory, chain.readable, 0, bytes);
    if (isFault(got)) {
      this.fail(got.onQueue(CONTROL_TX_QUEUE));
      return false;
    }
    this.handleControl(bytes);
    if (!this.running) return false; // the message put the device in NEEDS_RESET
    if (!this.push(CONTROL_TX_QUEUE, chain, 0)) return false;
    this.signalQueue(CONTROL_TX_QUEUE);
    return true;
  }

  // ---------------------------------------------------------------- data

  /** do_flush_queued_data, one element per step (D5, D7). */
  private stepTx(nr: number, queue: number): boolean {
    const port = this.byNr.get(nr);
    if (port === undefined) return this.discardOneTx(queue, null, 'no-port', nr);
    if (!port.hostConnected) return this.discardOneTx(queue, port, 'host-disconnected');
    if (port.throttled) return false;
    let chain = port.pendingTx;
    if (chain === null) {
      chain = this.pop(queue);
      if (chain === null) return false;
      if (!this.checkDirection(chain, queue, 'transmit')) return false;
      port.pendingTx = chain;
      port.pendingTxOffset = 0;
    }
    const frontend = this.frontends.get(port)!;
    const total = chain.readableLength;
    let offset = port.pendingTxOffset;
    while (offset < total) {
      // The one copy out of guest memory, into a buffer the backend may keep
      // as it is (gather fills all of it, so it needs no zeroing first).
      // 'data' listeners may keep the bytes they are given, so a buffer they
      // see is never reused: a fresh one then, a pooled one otherwise.
      const size = Math.min(TX_WRITE_CHUNK, total - offset);
      const pooled = !this.events.has('data');
      const bytes = pooled ? this.txPool.take(size) : Buffer.allocUnsafeSlow(size);
      const got = gather(this.memory, chain.readable, offset, bytes);
      if (isFault(got)) {
        if (pooled) this.txPool.release(bytes);
        this.fail(got.onQueue(queue));
        return false;
      }
      const release = pooled ? this.txPool.release : undefined;
      const taken = frontend.haveData(bytes, true, release);
      // Nothing taken: nobody holds the buffer (a backend keeps only what it takes).
      if (taken === 0 && pooled) this.txPool.release(bytes);
      if (taken > 0 && this.events.has('data')) {
        // A listener that came during haveData() gets bytes of its own.
        const seen = pooled ? Buffer.from(bytes.subarray(0, taken)) : bytes.subarray(0, taken);
        this.events.emit('data', { device: this.name, nr, direction: 'to-host', bytes: seen });
      }
      offset += taken;
      if (port.throttled) {
        // Keep our place inside the element; resume at the write watch.
        port.pendingTxOffset = offset;
        return false;
      }
    }
    port.pendingTx = null;
    port.pendingTxOffset = 0;
    if (!this.push(queue, chain, 0)) return false;
    this.signalQueue(queue);
    return true;
  }

  /** discard_vq_data, one chain: used with len 0, bytes counted (D7, D8). */
  private discardOneTx(
    queue: number,
    port: SerialPort | null,
    reason: DropReason,
    /** The queue's port number when no port holds it any more ('no-port'). */
    nr: number | null = null,
  ): boolean {
    const chain = this.pop(queue);
    if (chain === null) return false;
    if (!this.checkDirection(chain, queue, 'transmit')) return false;
    this.drop(port, reason, chain.readableLength, 'to-host', nr);
    if (!this.push(queue, chain, 0)) return false;
    this.signalQueue(queue);
    return true;
  }

  /** discard_throttle_data: the element a throttled port stopped in. */
  private discardPendingTx(port: SerialPort, reason: DropReason): void {
    const chain = port.pendingTx;
    if (chain === null) return;
    port.pendingTx = null;
    this.drop(port, reason, chain.readableLength - port.pendingTxOffset, 'to-host');
    port.pendingTxOffset = 0;
    // Returned with len 0 so the guest gets its descriptor back (QEMU detaches it).
    if (this.running && this.push(port.txQueue, chain, 0)) this.signalQueue(port.txQueue);
  }

  /** handle_input: the guest posted receive buffers. */
  private stepRx(nr: number): boolean {
    const port = this.byNr.get(nr);
    if (port === undefined) return false;
    if (port.inboundBytes > 0) this.drainInbound(port);
    if (port.inboundBytes === 0 && port.hostConnected && (port.guestConnected || !this.multiport)) {
      this.frontends.get(port)?.guestWritable();
    }
    return false;
  }

  /** write_to_port: host bytes into as many receive chains as they need. */
  private drainInbound(port: SerialPort): void {
    const queue = port.rxQueue;
    let pushed = false;
    while (port.inboundBytes > 0) {
      const chain = this.pop(queue);
      if (chain === null) break;
      if (!this.checkDirection(chain, queue, 'receive')) return;
      const written = this.fillChain(port, chain);
      if (written < 0) return;
      if (!this.push(queue, chain, written)) return;
      pushed = true;
    }
    if (pushed) this.signalQueue(queue);
  }

  /** Move inbound bytes into one chain; -1 after a fault. */
  private fillChain(port: SerialPort, chain: DescriptorChain): number {
    let written = 0;
    while (port.inboundBytes > 0 && written < chain.writableLength) {
      const head = port.inbound[0]!;
      const n = scatter(this.memory, chain.writable, written, head);
      if (isFault(n)) {
        this.fail(n.onQueue(port.rxQueue));
        return -1;
      }
      if (n > 0 && this.dataListened.on) {
        this.events.emit('data', {
          device: this.name,
          nr: port.nr,
          direction: 'to-guest',
          // A copy: `head` may be a view of a buffer the backend reuses (pooled reads).
          bytes: head.slice(0, n),
        });
      }
      written += n;
      port.inboundBytes -= n;
      port.stats.toGuest += n;
      if (n === head.length) port.inbound.shift();
      else port.inbound[0] = head.subarray(n);
      if (n === 0) break;
    }
    return written;
  }

  private dropInbound(port: SerialPort, reason: DropReason): void {
    if (port.inboundBytes === 0) return;
    this.drop(port, reason, port.inboundBytes, 'to-guest');
    port.inbound = [];
    port.inboundBytes = 0;
  }

  /** C5/M10: a receive chain must be writable only, a transmit chain readable only. */
  private checkDirection(
    chain: DescriptorChain,
    queue: number,
    kind: 'receive' | 'transmit',
  ): boolean {
    const wrong = kind === 'receive' ? chain.readable.length : chain.writable.length;
    if (wrong === 0) return true;
    this.fail(
      fault(
        'WrongBufferDirection',
        'M10',
        kind === 'receive'
          ? `receive queue ${queue} got a chain with ${wrong} device-readable descriptor(s) (C5)`
          : `transmit queue ${queue} got a chain with ${wrong} device-writable descriptor(s) (C5)`,
        { queue, index: chain.id },
      ),
    );
    return false;
  }

  // ------------------------------------------------------------ the rest

  /** guest_reset: every port guest-disconnected, half-sent elements dropped (D4). */
  private guestReset(): void {
    for (const port of this.portList) {
      if (port.pendingTx !== null) {
        this.drop(
          port,
          'device-reset',
          port.pendingTx.readableLength - port.pendingTxOffset,
          'to-host',
        );
        port.pendingTx = null;
        port.pendingTxOffset = 0;
      }
      if (port.throttled) this.setThrottled(port, false);
      this.dropInbound(port, 'device-reset');
      if (port.guestConnected) {
        port.guestConnected = false;
        this.frontends.get(port)?.setGuestConnected(false);
      }
    }
  }

  private emergencyWriteByte(byte: number): void {
    const console = this.portList.find((p) => p.isConsole && p.hostConnected) ?? null;
    if (this.events.has('emergency-write')) {
      this.events.emit('emergency-write', { device: this.name, nr: console?.nr ?? null, byte });
    }
    if (console === null) {
      this.drop(null, 'emergency-no-console', 1);
      return;
    }
    const frontend = this.frontends.get(console)!;
    const taken = frontend.haveData(Uint8Array.of(byte));
    if (taken === 0) this.drop(console, 'console-backpressure', 1);
  }

  private emitHost(port: SerialPort, open: boolean): void {
    if (this.events.has('host-open')) {
      this.events.emit('host-open', { device: this.name, nr: port.nr, open });
    }
  }
}
