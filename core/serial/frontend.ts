/**
 * The chardev side of the `virtserialport` and `virtconsole` frontends, as
 * QEMU's hw/char/virtio-console.c: it connects a port to its backend
 * endpoint and translates between the two.
 *
 * The two kinds differ where QEMU makes them differ:
 * - a serial port follows the backend's opened/closed events (host_connected)
 *   and tells the backend when the guest opens or closes it;
 * - a console is host-connected as soon as it has a backend, ignores the
 *   backend's events (QEMU registers no event handler for consoles), offers
 *   its output to the backend whether or not the backend reports a peer
 *   (the backend sends it, as udp does, or discards and counts it, as a
 *   socket with no client does), and
 *   drops output the backend cannot take instead of throttling (QEMU's
 *   comment: the Linux hvc driver writes with spinlocks held, throttling
 *   would stall the guest kernel). Dropping is the default; 'throttle' is
 *   the option for a guest that can take it. Every dropped byte is counted.
 */
import type { DropReason } from './events.js';
import type { ChardevEndpoint, ChardevEvent } from './endpoint.js';
import type { SerialPort } from './port.js';

export type ConsoleBackpressure = 'drop' | 'throttle';

/** What the frontend needs from the device (virtio-serial-bus.c's exported functions). */
export interface PortBus {
  /** virtio_serial_guest_ready: bytes the guest can take now. */
  guestReadyBytes(port: SerialPort): number;
  /**
   * virtio_serial_write: host bytes for the guest. `bytes` may be reused by
   * the backend once this returns: what is kept is copied.
   */
  writeToGuest(port: SerialPort, bytes: Uint8Array): void;
  /** virtio_serial_open / virtio_serial_close. */
  hostOpened(port: SerialPort): void;
  hostClosed(port: SerialPort): void;
  /** virtio_serial_throttle_port. */
  setThrottled(port: SerialPort, on: boolean): void;
  /** A console's backend connected or went away: no state change, only an event. */
  hostSeen(port: SerialPort, open: boolean): void;
  /** VSERPORT_CHANGE and friends, after the guest opened or closed the port. */
  guestConnectionChanged(port: SerialPort, open: boolean): void;
  drop(port: SerialPort, reason: DropReason, bytes: number): void;
}

export class PortFrontend {
  private cancelWatch: (() => void) | null = null;

  constructor(
    private readonly port: SerialPort,
    private endpoint: ChardevEndpoint | null,
    private readonly bus: PortBus,
    private readonly consoleBackpressure: ConsoleBackpressure,
  ) {}

  /** virtconsole_realize: take the backend. The caller checked that it is free. */
  realize(): void {
    if (this.endpoint === null) return;
    this.attachHandlers(this.endpoint);
    // "For consoles we don't block guest data transfer just because nothing
    // is connected": a console with a backend is host-connected from the start.
    if (this.port.isConsole) this.bus.hostOpened(this.port);
  }

  /** virtconsole_unrealize: let go of the backend. */
  unrealize(): void {
    this.cancelWatch?.();
    this.cancelWatch = null;
    this.endpoint?.detach();
  }

  /**
   * chardev-change under this port (a vmchan extra: QEMU 7.2's virtio-console
   * registers no be_change handler and refuses). Follows qmp_chardev_change's
   * order: when the old backend had a peer and the new one has none the port
   * sees 'closed' first; then the new backend takes the handlers (it sends
   * 'opened' itself if a peer is already there), learns whether the guest has
   * the port open, and is asked for input. A write watch on the old backend
   * is dropped and the port unthrottled, so pending guest bytes go to the new one.
   */
  changeBackend(next: ChardevEndpoint): void {
    const old = this.endpoint;
    if (old !== null && old.connected && !next.connected) this.onBackendEvent('closed');
    if (this.cancelWatch !== null) {
      this.cancelWatch();
      this.cancelWatch = null;
      if (this.port.throttled) this.bus.setThrottled(this.port, false);
    }
    old?.detach();
    this.endpoint = next;
    this.attachHandlers(next);
    if (!this.port.isConsole) next.setFrontendOpen(this.port.guestConnected);
    next.acceptInput();
  }

  private attachHandlers(endpoint: ChardevEndpoint): void {
    endpoint.attach({
      canRead: () => this.bus.guestReadyBytes(this.port),
      read: (bytes) => this.bus.writeToGuest(this.port, bytes),
      // writeToGuest copies into guest memory, and copies what it cannot place yet.
      copiesWhatItKeeps: true,
      event: (event) => this.onBackendEvent(event),
    });
  }

  get hasBackend(): boolean {
    return this.endpoint !== null;
  }

  /**
   * flush_buf: guest bytes for the host. Returns how many count as consumed;
   * fewer than offered only when the port is now throttled. `handover`: the
   * array is the backend's to keep, `release` how to give it back
   * (ChardevEndpoint.write).
   */
  haveData(bytes: Uint8Array, handover = false, release?: (bytes: Uint8Array) => void): number {
    const endpoint = this.endpoint;
    const port = this.port;
    if (endpoint === null) {
      // QEMU: "If there's no backend, we can just say we consumed all data."
      this.bus.drop(port, 'host-disconnected', bytes.length);
      return bytes.length;
    }
    // QEMU's flush_buf writes whatever the backend's open state: a serial
    // port never gets here while its host is away (D7, decided by the
    // device), and a console's output is offered to the backend even when it
    // reports no peer, which then decides: udp (never 'opened') sends it, a
    // socket with no client discards and counts it ('no-peer').
    const taken = endpoint.write(bytes, handover, release);
    port.stats.toHost += taken;
    if (taken >= bytes.length) return taken;
    if (port.isConsole && this.consoleBackpressure === 'drop') {
      this.bus.drop(port, 'console-backpressure', bytes.length - taken);
      return bytes.length;
    }
    this.bus.setThrottled(port, true);
    if (this.cancelWatch === null) {
      this.cancelWatch = endpoint.addWriteWatch(() => {
        this.cancelWatch = null;
        this.bus.setThrottled(port, false);
      });
    }
    return taken;
  }

  /** set_guest_connected: tell the backend (serial ports only) and the monitor. */
  setGuestConnected(open: boolean): void {
    if (!this.port.isConsole) this.endpoint?.setFrontendOpen(open);
    this.bus.guestConnectionChanged(this.port, open);
  }

  /** guest_writable: the guest posted buffers, the backend may push again. */
  guestWritable(): void {
    this.endpoint?.acceptInput();
  }

  private onBackendEvent(event: ChardevEvent): void {
    if (this.port.isConsole) {
      this.bus.hostSeen(this.port, event === 'opened');
      return;
    }
    if (event === 'opened') {
      this.bus.hostOpened(this.port);
    } else {
      this.cancelWatch?.();
      this.cancelWatch = null;
      this.bus.hostClosed(this.port);
    }
  }
}
