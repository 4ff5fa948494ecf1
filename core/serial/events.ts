/**
 * Everything a person would want to see happen in an emulated machine, as
 * typed events on one Emitter per machine. Producers check `events.has(type)`
 * before building a payload, so a machine nobody watches pays nothing.
 *
 * Ports are named by device (the virtio-serial device's qdev id, `vser0`)
 * and port number (`nr`), the pair QEMU's `info qtree` shows.
 */
import type { ControlMessage } from './control.js';
import type { VirtioFault } from '../virtio/fault.js';
import type { TaskInfo } from '../virtio/device.js';

export type PortKind = 'virtserialport' | 'virtconsole';

export interface PortRef {
  device: string;
  nr: number;
}

/** Why bytes were discarded; every discarded byte carries one (no silent drops). */
export type DropReason =
  /**
   * D7: guest -> host data while no host is connected (used len 0), and
   * guest bytes a backend had taken but not yet handed to the OS when its
   * host went (or was hung up).
   */
  | 'host-disconnected'
  /** D5: a console port could not write and QEMU's console policy drops. */
  | 'console-backpressure'
  /** D8: guest -> host data still queued when the port was unplugged. */
  | 'unplugged'
  /** D4: a half-sent element dropped by reset or DRIVER_OK cleared. */
  | 'device-reset'
  /** Host bytes the device held when the guest closed the port (D6). */
  | 'guest-closed'
  /** Guest -> host data on a queue that has no port. */
  | 'no-port'
  /** C2: an emergency write with no connected console to take it. */
  | 'emergency-no-console'
  /** A control message the device could not deliver (policy 'drop' or backlog full). */
  | 'control-undelivered'
  /** L9: data for a serial port the guest has not opened. */
  | 'port-not-open'
  /** L3: unread data discarded at close (and L10: at unplug). */
  | 'closed-unread'
  /** Host bytes still queued in the backend when the host hung up. */
  | 'host-hung-up'
  /**
   * H4: host bytes QEMU never read because the port was not taking data when
   * a unix socket host hung up (the socket's HUP watch disconnects at once).
   */
  | 'hangup-unread'
  /** Host bytes a guest-dir bridge read from the port that its socket client never took (it left, or the port went). */
  | 'guest-client-gone'
  /** Either way: bytes a backend held when its chardev was closed, or was given after (chardev-remove, quit). */
  | 'chardev-closed'
  /** Guest -> host bytes a backend took that the OS then refused (udp: port unreachable; file: disk full). */
  | 'host-send-failed'
  /** Host -> guest datagrams a udp backend received with its queue for the guest full (udp has no flow control). */
  | 'host-overflow'
  /** Guest -> host bytes a ringbuf chardev held unread and overwrote with newer ones. */
  | 'ringbuf-overwritten';

export type DropDirection = 'to-guest' | 'to-host';

/** The way a reason's bytes go, for reasons that have one way only. */
export const DROP_DIRECTION: Partial<Record<DropReason, DropDirection>> = {
  'host-disconnected': 'to-host',
  'console-backpressure': 'to-host',
  'no-port': 'to-host',
  'guest-closed': 'to-guest',
  'port-not-open': 'to-guest',
  'closed-unread': 'to-guest',
  'host-hung-up': 'to-guest',
  'guest-client-gone': 'to-guest',
  'hangup-unread': 'to-guest',
  'host-send-failed': 'to-host',
  'host-overflow': 'to-guest',
  'ringbuf-overwritten': 'to-host',
};

export interface EngineEvents {
  /** A port was plugged into a device (at start or hot-plug, D8). */
  'port-added': PortRef & {
    kind: PortKind;
    id: string | null;
    name: string | null;
    bus: string;
    hotplug: boolean;
  };
  'port-removed': PortRef & { id: string | null; name: string | null };
  /** QMP DEVICE_DELETED (Q3). */
  'device-deleted': { device: string | null; path: string };
  /** QMP VSERPORT_CHANGE (Q3): guest opened/closed a port that has a qdev id. */
  'vserport-change': { id: string; open: boolean };
  /** The device saw the guest open or close a port (PORT_OPEN from the guest, D4). */
  'guest-open': PortRef & { open: boolean };
  /** The port's host side connected or went away. */
  'host-open': PortRef & { open: boolean };
  /** A control message, decoded, in either direction. */
  control: {
    device: string;
    direction: 'to-guest' | 'to-device';
    message: ControlMessage;
    text: string;
  };
  /** D5: the device stopped (on) or resumed (off) popping a port's transmit queue. */
  throttle: PortRef & { on: boolean };
  drop: {
    device: string;
    nr: number | null;
    /** Who discarded the bytes: the device (QEMU side), the guest driver, or a backend. */
    side: 'device' | 'guest' | 'backend';
    bytes: number;
    reason: DropReason;
    /**
     * Which way the bytes were going: host to guest or guest to host.
     * Absent only for bytes of no port's stream (control messages, emergency writes).
     */
    direction?: DropDirection;
    /** The chardev, for drops in a backend. */
    chardev?: string;
  };
  /**
   * D10 (M11): the device ignored a control message it cannot act on, as QEMU
   * does. `qemuReport` is QEMU's error_report() line for it (null when QEMU
   * says nothing); `text` is vmchan's description.
   */
  'control-ignored': { device: string; rule: string; qemuReport: string | null; text: string };
  /** G3/D9: a device entered NEEDS_RESET; `rule` names the broken rule. */
  'needs-reset': { device: string; rule: string; fault: VirtioFault };
  /** C1/C2: a byte written to emerg_wr, and the console port it went to (null: none). */
  'emergency-write': { device: string; nr: number | null; byte: number };
  /** Payload bytes crossing the device, for captures and throughput meters. */
  data: PortRef & { direction: 'to-host' | 'to-guest'; bytes: Uint8Array };
  /** A node appeared in or left the guest's /dev or /sys (a uevent). */
  'guest-node': { action: 'add' | 'remove'; path: string };
  /** The engine ran a task (step-mode view). */
  task: TaskInfo;
  /** A task threw: an engine bug, reported instead of crashing the machine. */
  'engine-error': { task: TaskInfo; message: string };
}
