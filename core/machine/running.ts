/**
 * The contract of a running headless lab: an emulated machine (core/engine
 * Lab) built from a QEMU-style topology (./topology.ts), with real chardev
 * backends (core/chardev) on the host side. The CLI (`vmchan run`), the
 * monitors (QMP, HMP) and the app's API all drive a lab through this
 * interface, so hot-plug from any of them keeps one topology true.
 *
 * Implemented by `Machine` in ./machine.ts.
 */
import type { Lab } from '../engine/lab.js';
import type { FdSets } from '../chardev/fdsets.js';
import type { ChardevEndpoint } from '../serial/endpoint.js';
import type { QemuError } from '../base/qemu-error.js';
import type { Chardev, Port, Topology, VirtioSerialDevice } from './topology.js';

/** What `device_add virtserialport,...` / `virtconsole` carries. */
/** Where a chardev-add comes from. */
export interface ChardevAddFrom {
  /** A monitor's getfd names: a socket `fd=NAME` takes one (QEMU's socket_get_fd). */
  monitorFd?: (name: string) => number | null;
}

export interface PortAddRequest {
  driver: Port['driver'];
  id?: string;
  /** `vser0.0`; defaults like QEMU (the newest virtio-serial bus). */
  bus?: string;
  nr?: number;
  name?: string;
  chardev?: string;
}

export interface ChardevInfo {
  id: string;
  /** QEMU's query-chardev filename, `disconnected:` prefix included. */
  filename: string;
  /** query-chardev's frontend-open: the guest has the port open. */
  frontendOpen: boolean;
  /** Does a port (frontend) hold it? */
  busy: boolean;
}

export interface RunningMachine {
  /** The emulated machine: events, scheduler, guest, devices. */
  readonly lab: Lab;
  /** The fd sets (-add-fd): query-fdsets, remove-fd, `/dev/fdset/N` paths. */
  readonly fdSets: FdSets;
  /** The topology as it is now (hot-plug and unplug keep it current). */
  topology(): Topology;
  /** A chardev backend by id (real or in-memory). */
  chardev(id: string): ChardevEndpoint | undefined;
  /** Everything `query-chardev` / `info chardev` shows. */
  chardevs(): ChardevInfo[];
  /** `chardev-add`: create a real backend (socket, pipe, file, pty, null, ringbuf, udp, ...). */
  chardevAdd(spec: Chardev, from?: ChardevAddFrom): Promise<QemuError | null>;
  /** `chardev-remove`: refused while in use ("Chardev 'c1' is busy"); closes the backend. */
  chardevRemove(id: string): Promise<QemuError | null>;
  /**
   * `chardev-change` (QEMU 7.2's errors and order; see Machine.chardevChange).
   * `portHotswap`: a vmchan extra letting a port take the new backend, which
   * QEMU 7.2's virtio-console refuses.
   */
  chardevChange(spec: Chardev, options?: { portHotswap?: boolean }): Promise<QemuError | null>;
  /** `device_add` of a port (hot-plug once booted, D8; refusals of D3 in QEMU's words). */
  deviceAdd(request: PortAddRequest): QemuError | null;
  /**
   * `device_add virtio-serial-pci|virtio-serial-device` while running: QEMU's
   * checks and words ("Duplicate device ID 'x'", the max_ports limits), then
   * the fixed guest RAM must hold the device's rings (refused naming the
   * limit); the guest probes it and topology() lists it until device_del.
   */
  controllerAdd(device: VirtioSerialDevice): QemuError | null;
  /** `device_del` of a port or a device (DEVICE_DELETED follows as an engine event). */
  deviceDel(id: string): QemuError | null;
  /** ringbuf-write / ringbuf-read on ringbuf chardevs. */
  ringbufWrite(id: string, data: Uint8Array): QemuError | null;
  ringbufRead(id: string, size: number): Uint8Array | QemuError;
  /** Stop everything and remove what was created (socket files, runtime dir entries). */
  close(): Promise<void>;
}
