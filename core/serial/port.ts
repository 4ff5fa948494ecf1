/**
 * A port as the device sees it (QEMU's VirtIOSerialPort): its qdev
 * properties, the two connection flags, the throttle state with the element
 * it stopped in (D5), host bytes waiting for guest buffers, and counters.
 */
import type { DropReason, PortKind } from './events.js';
import type { DescriptorChain } from '../virtio/chain.js';
import { rxQueueOf, txQueueOf } from './layout.js';

/** The properties of `-device virtserialport|virtconsole,...` (id, nr, name, chardev). */
export interface PortProperties {
  kind: PortKind;
  /** qdev id (`id=`), needed for VSERPORT_CHANGE and device_del. */
  id: string | null;
  nr: number;
  name: string | null;
  /** Chardev id (`chardev=`), null for a port with no backend. */
  chardev: string | null;
}

export interface PortStats {
  /** Guest -> host bytes the backend took. */
  toHost: number;
  /** Host -> guest bytes written into guest buffers. */
  toGuest: number;
  /** Bytes discarded by the device, by reason. */
  dropped: Partial<Record<DropReason, number>>;
}

export class SerialPort {
  readonly kind: PortKind;
  readonly id: string | null;
  readonly nr: number;
  readonly name: string | null;
  readonly chardev: string | null;
  /** The guest has the port open (PORT_OPEN 1 seen). */
  guestConnected = false;
  /** The host side is there (chardev opened; consoles: always, with a chardev). */
  hostConnected = false;
  /** D5: the backend is full; the transmit queue is not popped until it drains. */
  throttled = false;
  /** PORT_ADD was sent since the last reset (C3: never twice; C4: PORT_REMOVE only after). */
  announced = false;
  /** PORT_READY seen from the guest. */
  ready = false;
  /** D5: the element being written to the backend and how many of its bytes went. */
  pendingTx: DescriptorChain | null = null;
  pendingTxOffset = 0;
  /** Host bytes taken from the backend that did not fit in guest buffers yet. */
  inbound: Uint8Array[] = [];
  inboundBytes = 0;
  readonly stats: PortStats = { toHost: 0, toGuest: 0, dropped: {} };

  constructor(props: PortProperties) {
    this.kind = props.kind;
    this.id = props.id;
    this.nr = props.nr;
    this.name = props.name;
    this.chardev = props.chardev;
  }

  get isConsole(): boolean {
    return this.kind === 'virtconsole';
  }

  get rxQueue(): number {
    return rxQueueOf(this.nr);
  }

  get txQueue(): number {
    return txQueueOf(this.nr);
  }

  countDrop(reason: DropReason, bytes: number): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + bytes;
  }

  /** The `info qtree` line QEMU prints for a port. */
  describe(): string {
    const onOff = (b: boolean): string => (b ? 'on' : 'off');
    return `port ${this.nr}, guest ${onOff(this.guestConnected)}, host ${onOff(this.hostConnected)}, throttle ${onOff(this.throttled)}`;
  }
}
