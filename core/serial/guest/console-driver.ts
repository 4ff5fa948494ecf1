/**
 * The guest's virtio console driver, as Linux's drivers/char/virtio_console.c
 * (L1-L10), for one virtio-serial device.
 *
 * Probe (L1): negotiate SIZE and MULTIPORT (never EMERG_WRITE), read
 * max_nr_ports only with MULTIPORT, set up every queue, DRIVER_OK, fill the
 * control receive queue with page-sized buffers and send DEVICE_READY with
 * id 0xFFFFFFFF (C6). Without MULTIPORT port 0 is added at once, as a console.
 *
 * Control messages from the device (handle_control_message): PORT_ADD adds a
 * port (an existing one just gets PORT_READY again; an id beyond
 * max_nr_ports is ignored), PORT_REMOVE unplugs it (L10), CONSOLE_PORT makes
 * it a console hooked to hvcK and answers PORT_OPEN 1 (C7), RESIZE sets a
 * console's size, PORT_OPEN sets host_connected (waking waiters, SIGIO),
 * PORT_NAME names it once (sysfs name file and the /dev/virtio-ports link).
 * Messages for unknown ports are dropped, as Linux does.
 *
 * Interrupts become 'guest' tasks (one per queue, coalesced, like an IRQ
 * line that stays asserted until serviced); control messages are handled one
 * per task. Control messages to the device go one at a time, each waiting
 * until the device has used it (Linux spins on the control queue).
 */
import type { Emitter } from '../../base/emitter.js';
import type { DropReason, EngineEvents } from '../events.js';
import type { GuestAllocator } from '../../virtio/allocator.js';
import type { PostTask, TaskQueue } from '../../virtio/device.js';
import type { Interrupt, VirtioTransport } from '../../virtio/device-transport.js';
import { fault, isFault, type VirtioFault } from '../../virtio/fault.js';
import { bit, Feature, has } from '../../virtio/features.js';
import type { GuestMemory } from '../../virtio/memory.js';
import { releaseRings } from '../../virtio/device-rings.js';
import type { DriverQueue, QueueLayout } from '../../virtio/queue.js';
import { Status } from '../../virtio/status.js';
import type { RingTracer } from '../../virtio/trace.js';
import {
  BAD_PORT_ID,
  ControlEvent,
  DEFAULT_CONTROL_CODEC,
  controlMessage,
  decodeControl,
  encodeControl,
  type ControlCodecOptions,
  type ControlMessage,
} from '../control.js';
import {
  CONFIG_COLS,
  CONFIG_MAX_NR_PORTS,
  CONFIG_ROWS,
  CONTROL_RX_QUEUE,
  CONTROL_TX_QUEUE,
  queueRole,
  rxQueueOf,
  txQueueOf,
} from '../layout.js';
import type { CharDevice, GuestNamespace } from './namespace.js';
import type { WaitQueue } from './waitqueue.js';
import { HvcDevice, VportDevice, type PortFileHost } from './port-files.js';
import { GuestPort, type PortHost, type RxBuffer, type TxBuffer } from './port.js';
import { linuxTransportFeatures, negotiate, setupQueue, type Negotiated } from './virtio-driver.js';

export interface ConsoleDriverOptions {
  /** Accept RING_PACKED when the device offers it (Linux does). */
  acceptPacked?: boolean;
  /** RESIZE order and PORT_NAME NUL (see control.ts); Linux reads rows then cols. */
  codec?: Partial<ControlCodecOptions>;
  /** Receive buffer size: Linux uses PAGE_SIZE. */
  rxBufferSize?: number;
}

/** What the driver needs from the guest kernel around it. */
export interface GuestKernel {
  readonly memory: GuestMemory;
  readonly allocator: GuestAllocator;
  readonly post: PostTask;
  readonly events: Emitter<EngineEvents>;
  readonly namespace: GuestNamespace;
  /** Writers waiting for guest memory (L12), woken when a transmit buffer is freed. */
  readonly memoryWait: WaitQueue;
  /** A write found memory short and none came back since (L12). */
  memoryShort: boolean;
  /** Wake every port's waiters (memory came back: writers look again). */
  wakeAllPorts(): void;
  /** Free the used transmit buffers of every port of every device (reclaim under memory pressure). */
  reclaimTransmitBuffers(): void;
  /** hvc_alloc: the lowest free hvc index, now served by `console` (L11). */
  allocHvc(console: CharDevice): number;
  /** hvc_remove: the index has no console any more; its node stays (L11). */
  freeHvc(index: number): void;
}

/** One queue's interrupt: pending until its task runs (an IRQ line stays asserted until serviced). */
interface IrqLine {
  pending: boolean;
  readonly label: string;
  readonly run: () => void;
  readonly task: TaskQueue;
}

interface ControlSend {
  bytes: Uint8Array;
  resolve: () => void;
  /** The port it is about (null: DEVICE_READY): nothing goes out for it once unplugged. */
  port: GuestPort | null;
}

export interface ConsoleDriverStats {
  controlReceived: number;
  controlSent: number;
  /** Control messages Linux would drop (unknown port, too short). */
  controlIgnored: number;
}

export class VirtioConsoleDriver implements PortHost, PortFileHost {
  readonly memory: GuestMemory;
  readonly allocator: GuestAllocator;
  readonly post: PostTask;
  readonly rxBufferSize: number;
  readonly codec: ControlCodecOptions;
  readonly stats: ConsoleDriverStats = { controlReceived: 0, controlSent: 0, controlIgnored: 0 };
  negotiated: Negotiated | null = null;
  multiport = false;
  maxNrPorts = 1;
  /** Console size from the configuration space (SIZE without MULTIPORT). */
  configSize: { cols: number; rows: number } | null = null;
  private brokenBy: VirtioFault | null = null;
  private readonly ports = new Map<number, GuestPort>();
  private rxQueues: DriverQueue<RxBuffer>[] = [];
  private txQueues: DriverQueue<TxBuffer>[] = [];
  private controlRx: DriverQueue<RxBuffer> | null = null;
  private controlTx: DriverQueue<ControlSend> | null = null;
  /** Per queue: its interrupt line (see queueIrq). */
  private readonly irqLines: (IrqLine | undefined)[] = [];
  private configIrqPending = false;
  /** Driver queues by virtqueue index, for kick (set up at probe). */
  private readonly byIndex: (DriverQueue<unknown> | undefined)[] = [];
  private readonly sendQueue: ControlSend[] = [];
  private sending: { send: ControlSend; addr: number } | null = null;
  private readonly acceptPacked: boolean;
  /** Ring memory of every queue set up, given back at remove. */
  private readonly rings: QueueLayout[] = [];

  constructor(
    private readonly kernel: GuestKernel,
    readonly transport: VirtioTransport,
    /** The D of vportDpN: this device's index among the guest's virtio devices. */
    readonly virtioIndex: number,
    /** Name for events (the host-side device name when known). */
    readonly label: string,
    private readonly tracer: RingTracer | null,
    options: ConsoleDriverOptions = {},
  ) {
    this.memory = kernel.memory;
    this.allocator = kernel.allocator;
    this.post = kernel.post;
    this.rxBufferSize = options.rxBufferSize ?? 4096;
    this.codec = { ...DEFAULT_CONTROL_CODEC, ...options.codec };
    this.acceptPacked = options.acceptPacked ?? true;
  }

  get broken(): boolean {
    return this.brokenBy !== null;
  }

  /** Why the driver stopped (a device NEEDS_RESET or a ring fault), or null. */
  get brokenReason(): VirtioFault | null {
    return this.brokenBy;
  }

  /** Ports the driver knows, by id. */
  port(id: number): GuestPort | undefined {
    return this.ports.get(id);
  }

  get portList(): GuestPort[] {
    return [...this.ports.values()].sort((a, b) => a.id - b.id);
  }

  // ------------------------------------------------------------------ probe

  /** virtcons_probe (L1, C6). Resolves once DEVICE_READY has been taken by the device. */
  async probe(): Promise<VirtioFault | null> {
    const wanted =
      bit(Feature.CONSOLE_F_SIZE) |
      bit(Feature.CONSOLE_F_MULTIPORT) |
      linuxTransportFeatures(this.acceptPacked);
    const negotiated = negotiate(this.transport, wanted);
    if (isFault(negotiated)) return negotiated;
    this.negotiated = negotiated;
    this.multiport = has(negotiated.features, Feature.CONSOLE_F_MULTIPORT);
    if (this.multiport) {
      const max = this.transport.readConfig(CONFIG_MAX_NR_PORTS, 4);
      if (isFault(max)) return this.failProbe(max);
      this.maxNrPorts = max;
    } else if (has(negotiated.features, Feature.CONSOLE_F_SIZE)) {
      const cols = this.transport.readConfig(CONFIG_COLS, 2);
      const rows = this.transport.readConfig(CONFIG_ROWS, 2);
      if (isFault(cols)) return this.failProbe(cols);
      if (isFault(rows)) return this.failProbe(rows);
      this.configSize = { cols, rows };
    }
    // init_vqs: every port's pair, and the control pair with MULTIPORT.
    const portCount = this.multiport ? this.maxNrPorts : 1;
    for (let id = 0; id < portCount; id++) {
      const rx = this.queueFor<RxBuffer>(rxQueueOf(id));
      if (isFault(rx)) return this.failProbe(rx);
      const tx = this.queueFor<TxBuffer>(txQueueOf(id));
      if (isFault(tx)) return this.failProbe(tx);
      this.rxQueues[id] = rx;
      this.txQueues[id] = tx;
    }
    if (this.multiport) {
      const crx = this.queueFor<RxBuffer>(CONTROL_RX_QUEUE);
      if (isFault(crx)) return this.failProbe(crx);
      const ctx = this.queueFor<ControlSend>(CONTROL_TX_QUEUE);
      if (isFault(ctx)) return this.failProbe(ctx);
      this.controlRx = crx;
      this.controlTx = ctx;
    }
    this.transport.setInterruptHandler((irq) => this.interrupt(irq));
    this.transport.writeStatus(this.transport.readStatus() | Status.DRIVER_OK);
    if (this.multiport) {
      this.fillControlQueue();
      await this.sendControlMessage(controlMessage(BAD_PORT_ID, ControlEvent.DEVICE_READY, 1));
    } else {
      // "For backward compatibility: Create a console port if we're running on older host."
      this.addPort(0);
    }
    return null;
  }

  /**
   * virtcons_remove: the device is going away. Every buffer and ring goes
   * back to the guest's allocator (remove_vqs, vp_del_vqs), so a controller
   * can be plugged and unplugged forever (D11).
   */
  remove(): void {
    for (const port of [...this.ports.values()]) this.unplugPort(port);
    this.transport.setInterruptHandler(null);
    this.transport.writeStatus(0);
    for (const q of [...this.rxQueues, this.controlRx]) {
      for (const buf of q?.detachUnused() ?? []) this.allocator.release(buf.addr);
    }
    for (const q of this.txQueues) {
      for (const buf of q?.detachUnused() ?? []) this.allocator.release(buf.addr);
    }
    // The control message in flight is among controlTx's tokens, but its bytes are ours.
    if (this.sending !== null) this.allocator.release(this.sending.addr);
    this.controlTx?.detachUnused();
    for (const layout of this.rings.splice(0)) releaseRings(this.allocator, layout);
    this.markBroken(fault('DeviceNeedsReset', 'G3', 'the device was removed'));
  }

  private queueFor<T>(index: number): DriverQueue<T> | VirtioFault {
    const q = setupQueue<T>(
      this.transport,
      index,
      this.negotiated!,
      this.memory,
      this.allocator,
      this.tracer,
      this.rings,
    );
    if (!isFault(q)) this.byIndex[index] = q;
    return q;
  }

  private failProbe(problem: VirtioFault): VirtioFault {
    this.transport.writeStatus(this.transport.readStatus() | Status.FAILED);
    this.markBroken(problem);
    return problem;
  }

  private fillControlQueue(): void {
    const q = this.controlRx!;
    while (q.numFree > 0) {
      const addr = this.allocator.alloc(this.rxBufferSize, 16);
      if (isFault(addr)) break;
      const r = q.add([], [{ addr, len: this.rxBufferSize }], { addr, size: this.rxBufferSize });
      if (isFault(r)) {
        this.allocator.release(addr);
        break;
      }
      this.kick(CONTROL_RX_QUEUE);
    }
  }

  // ------------------------------------------------------------- interrupts

  private interrupt(irq: Interrupt): void {
    if (irq.kind === 'queue') {
      this.queueIrq(irq.queue);
      return;
    }
    if (this.configIrqPending) return;
    this.configIrqPending = true;
    this.post('guest', `${this.label}: interrupt config change`, () => {
      this.configIrqPending = false;
      this.configChanged();
    });
  }

  /**
   * A queue's interrupt as one guest task while it is pending. Its label,
   * handler and task queue are made once per queue: a transfer raises one
   * every few buffers.
   */
  private queueIrq(queue: number): void {
    let line = this.irqLines[queue];
    if (line === undefined) {
      const made: IrqLine = {
        pending: false,
        label: `${this.label}: interrupt queue ${queue}`,
        run: () => {
          made.pending = false;
          this.queueInterrupt(queue);
        },
        task: { device: this.label, queue },
      };
      line = this.irqLines[queue] = made;
    }
    if (line.pending) return;
    line.pending = true;
    this.post('guest', line.label, line.run, line.task);
  }

  private configChanged(): void {
    const status = this.transport.readStatus();
    if (status & Status.DEVICE_NEEDS_RESET) {
      this.markBroken(fault('DeviceNeedsReset', 'G3', `${this.label} needs a reset`));
      return;
    }
    // With MULTIPORT a config change means nothing to Linux (ports come as
    // control messages); without it, port 0's console size may have changed.
    if (!this.multiport && this.configSize !== null) {
      const cols = this.transport.readConfig(CONFIG_COLS, 2);
      const rows = this.transport.readConfig(CONFIG_ROWS, 2);
      if (isFault(cols) || isFault(rows)) return;
      this.configSize = { cols, rows };
      const port0 = this.ports.get(0);
      if (port0?.console) Object.assign(port0.console, { cols, rows });
    }
  }

  private queueInterrupt(queue: number): void {
    if (this.broken) return;
    const role = queueRole(queue);
    switch (role.role) {
      case 'control-rx':
        this.controlWork();
        return;
      case 'control-tx':
        this.controlSent();
        return;
      case 'rx': {
        const port = this.ports.get(role.port);
        if (port) this.inInterrupt(port);
        else this.flushBuffers(this.rxQueues[role.port]);
        return;
      }
      case 'tx': {
        const port = this.ports.get(role.port);
        if (port) {
          port.wake();
          // Someone waits for memory: what the device used here can be freed now.
          if (this.kernel.memoryShort || this.kernel.memoryWait.size > 0) port.reclaimConsumed();
        } else {
          this.flushBuffers(this.txQueues[role.port]);
        }
      }
    }
  }

  /** in_intr: take the next buffer, drop it for a closed serial port (L9), SIGIO, wake readers. */
  private inInterrupt(port: GuestPort): void {
    port.hasData();
    if (!port.guestConnected) port.discardData('port-not-open');
    port.sendSigio();
    port.wake();
  }

  /** flush_bufs: used buffers on the queues of a port that is gone are freed. */
  private flushBuffers(q: DriverQueue<RxBuffer | TxBuffer> | undefined): void {
    if (q === undefined) return;
    for (;;) {
      const used = q.getUsed();
      if (isFault(used)) return this.ringFault(used);
      if (used === null) return;
      this.allocator.release(used.token.addr);
      this.memoryReleased();
    }
  }

  get memoryShort(): boolean {
    return this.kernel.memoryShort;
  }

  memoryShortage(): void {
    this.kernel.memoryShort = true;
  }

  memoryReleased(): void {
    if (!this.kernel.memoryShort && this.kernel.memoryWait.size === 0) return;
    this.kernel.memoryShort = false;
    this.kernel.memoryWait.wakeAll();
    this.kernel.wakeAllPorts();
  }

  /** Every port's waiters, woken. */
  wakePorts(): void {
    for (const port of this.ports.values()) port.wake();
  }

  waitForMemory(what: string, retry: () => void): void {
    this.kernel.memoryWait.wait(() => this.post('guest', `${what} woken (memory)`, retry));
    this.kernel.reclaimTransmitBuffers();
  }

  /** Used transmit buffers of every port, freed (the kernel's reclaim). */
  reclaimTransmitBuffers(): void {
    this.kernel.reclaimTransmitBuffers();
  }

  /** This device's part of the kernel's reclaim. */
  reclaimOwnTransmitBuffers(): void {
    for (const port of this.ports.values()) port.reclaimConsumed();
  }

  // ------------------------------------------------------- control: receive

  /** control_work_handler, one message per task. */
  private controlWork(): void {
    const q = this.controlRx;
    if (q === null || this.broken) return;
    const used = q.getUsed();
    if (isFault(used)) return this.ringFault(used);
    if (used === null) return;
    const buf = used.token;
    const len = Math.min(used.len, buf.size);
    const bytes = this.memory.readBytes(buf.addr, len);
    // Post the buffer again first, as Linux does after handling.
    const again = q.add([], [{ addr: buf.addr, len: buf.size }], buf);
    if (isFault(again)) this.allocator.release(buf.addr);
    else this.kick(CONTROL_RX_QUEUE);
    if (isFault(bytes)) return this.ringFault(bytes);
    this.handleControl(bytes);
    this.post('guest', `${this.label}: control work`, () => this.controlWork());
  }

  private handleControl(bytes: Uint8Array): void {
    const msg = decodeControl(bytes, this.codec);
    if (isFault(msg)) {
      this.stats.controlIgnored++;
      return;
    }
    this.stats.controlReceived++;
    const port = this.ports.get(msg.id);
    if (port === undefined && msg.event !== ControlEvent.PORT_ADD) {
      // "No valid header at start of buffer. Drop it."
      this.stats.controlIgnored++;
      return;
    }
    switch (msg.event) {
      case ControlEvent.PORT_ADD:
        if (port !== undefined) {
          // "Port %u already added": tell the device we are ready anyway.
          void this.sendControl(port, ControlEvent.PORT_READY, 1);
        } else if (msg.id >= this.maxNrPorts) {
          this.stats.controlIgnored++; // "out-of-bound id"
        } else {
          this.addPort(msg.id);
        }
        return;
      case ControlEvent.PORT_REMOVE:
        this.unplugPort(port!);
        return;
      case ControlEvent.CONSOLE_PORT:
        if (msg.value === 0 || port!.isConsole) return;
        this.initConsole(port!);
        return;
      case ControlEvent.RESIZE:
        if (port!.console !== null && msg.rows !== undefined && msg.cols !== undefined) {
          port!.console.rows = msg.rows;
          port!.console.cols = msg.cols;
        }
        return;
      case ControlEvent.PORT_OPEN:
        this.hostConnection(port!, msg.value !== 0);
        return;
      case ControlEvent.PORT_NAME:
        this.namePort(port!, msg);
        return;
      default:
        this.stats.controlIgnored++;
    }
  }

  /** add_port (L2): node, receive buffers, console without MULTIPORT, PORT_READY. */
  private addPort(id: number): void {
    const port = new GuestPort(this, id, this.virtioIndex, this.rxQueues[id]!, this.txQueues[id]!);
    this.ports.set(id, port);
    const ns = this.kernel.namespace;
    ns.add(`/dev/${port.devName}`, { kind: 'chardev', device: new VportDevice(this, port) });
    ns.addDir(`/sys/class/virtio-ports/${port.devName}`);
    port.fillReceiveQueue();
    if (!this.multiport) this.initConsole(port);
    void this.sendControl(port, ControlEvent.PORT_READY, 1);
  }

  /** init_port_console (C7): hvcK, guest-connected, PORT_OPEN 1. */
  private initConsole(port: GuestPort): void {
    const hvc = this.kernel.allocHvc(new HvcDevice(this, port));
    const size = port.id === 0 && this.configSize !== null ? this.configSize : { cols: 0, rows: 0 };
    port.console = { hvc, cols: size.cols, rows: size.rows };
    port.guestConnected = true;
    void this.sendControl(port, ControlEvent.PORT_OPEN, 1);
  }

  private hostConnection(port: GuestPort, connected: boolean): void {
    port.hostConnected = connected;
    port.wake();
    // The host may have used buffers before it went: reclaim them now.
    port.reclaimConsumed();
    port.sendSigio();
  }

  /** PORT_NAME: once per port; the sysfs attribute and the udev link. */
  private namePort(port: GuestPort, msg: ControlMessage): void {
    if (port.name !== null || msg.name === undefined) return;
    port.name = msg.name;
    const ns = this.kernel.namespace;
    const name = msg.name;
    ns.add(`/sys/class/virtio-ports/${port.devName}/name`, {
      kind: 'file',
      read: () => `${name}\n`,
    });
    if (name !== '' && !name.includes('/')) {
      ns.add(`/dev/virtio-ports/${name}`, { kind: 'symlink', target: `../${port.devName}` });
    }
  }

  /** unplug_port (L10): wake everyone, clear both flags, SIGIO, remove the nodes. */
  private unplugPort(port: GuestPort): void {
    this.ports.delete(port.id);
    if (port.guestConnected) {
      port.sendSigio(); // "Let the app know the port is going down", before the flag goes
      port.guestConnected = false;
      port.hostConnected = false;
      port.wake();
    }
    const ns = this.kernel.namespace;
    // hvc_remove: /dev/hvcK stays (a static tty minor); opening it now fails ENODEV.
    if (port.console !== null) this.kernel.freeHvc(port.console.hvc);
    // remove_port_data: unread data goes, consumed buffers come back.
    port.discardData('closed-unread');
    port.reclaimConsumed();
    port.unplugged = true;
    if (
      port.name !== null &&
      ns.readlink(`/dev/virtio-ports/${port.name}`) === `../${port.devName}`
    ) {
      ns.remove(`/dev/virtio-ports/${port.name}`);
    }
    ns.remove(`/sys/class/virtio-ports/${port.devName}`);
    ns.remove(`/dev/${port.devName}`);
  }

  // ---------------------------------------------------------- control: send

  /**
   * send_control_msg for a port: nothing once the port is gone (Linux:
   * unplug_port clears port->portdev, so a later release sends no PORT_OPEN 0)
   * or without MULTIPORT.
   */
  sendControl(port: GuestPort, event: number, value: number): Promise<void> {
    if (port.unplugged || !this.multiport || this.broken) return Promise.resolve();
    return this.sendControlMessage(controlMessage(port.id, event, value), port);
  }

  private sendControlMessage(msg: ControlMessage, port: GuestPort | null = null): Promise<void> {
    if (this.broken || this.controlTx === null) return Promise.resolve();
    return new Promise((resolve) => {
      this.sendQueue.push({ bytes: encodeControl(msg, this.codec), resolve, port });
      this.pumpControl();
    });
  }

  /** One message in flight at a time, like Linux's c_ovq_lock and spin. */
  private pumpControl(): void {
    const q = this.controlTx;
    if (this.sending !== null || q === null) return;
    const next = this.sendQueue.shift();
    if (next === undefined) return;
    // Linux sends each message at once, under the port's portdev; here it may
    // have waited behind another, so a port unplugged meanwhile gets nothing.
    if (this.broken || next.port?.unplugged === true) {
      next.resolve();
      this.pumpControl();
      return;
    }
    const addr = this.allocator.alloc(next.bytes.length, 16);
    if (isFault(addr)) {
      next.resolve();
      return;
    }
    this.memory.writeBytes(addr, next.bytes);
    const r = q.add([{ addr, len: next.bytes.length }], [], next);
    if (isFault(r)) {
      this.allocator.release(addr);
      next.resolve();
      this.ringFault(r);
      return;
    }
    this.sending = { send: next, addr };
    this.stats.controlSent++;
    this.kick(CONTROL_TX_QUEUE);
  }

  private controlSent(): void {
    const q = this.controlTx;
    if (q === null) return;
    for (;;) {
      const used = q.getUsed();
      if (isFault(used)) return this.ringFault(used);
      if (used === null) break;
      if (this.sending !== null && used.token === this.sending.send) {
        this.allocator.release(this.sending.addr);
        this.sending = null;
      }
      used.token.resolve();
    }
    this.pumpControl();
  }

  // ---------------------------------------------------------- PortHost

  kick(queue: number): void {
    const q = this.byIndex[queue];
    if (q === undefined) return;
    const r = q.kickPrepare();
    if (isFault(r)) return this.ringFault(r);
    if (r) this.transport.notify(queue);
  }

  ringFault(problem: VirtioFault): void {
    this.markBroken(problem);
  }

  dropped(port: GuestPort, reason: DropReason, bytes: number): void {
    if (this.kernel.events.has('drop')) {
      this.kernel.events.emit('drop', {
        device: this.label,
        nr: port.id,
        side: 'guest',
        bytes,
        reason,
        direction: 'to-guest',
      });
    }
  }

  /** The device needs a reset or a ring broke: every waiter wakes to EIO. */
  private markBroken(problem: VirtioFault): void {
    if (this.brokenBy !== null) return;
    this.brokenBy = problem;
    for (const port of this.ports.values()) port.wake();
    const pending = this.sendQueue.splice(0);
    if (this.sending !== null) pending.push(this.sending.send);
    this.sending = null;
    for (const s of pending) s.resolve();
  }
}
