/**
 * The simulated guest: one kernel with its memory, the console driver for
 * each virtio-serial device it probed, the device nodes they made, and the
 * system calls programs use on them.
 *
 *   const guest = new Guest({ memory, post, events });
 *   await guest.probe(device);                  // virtcons_probe
 *   const fd = await guest.files.open('/dev/virtio-ports/test1');
 *   guest.namespace.list('/dev/virtio-ports');  // ['test1', ...]
 */
import { Emitter } from '../../base/emitter.js';
import type { EngineEvents } from '../events.js';
import { GuestAllocator } from '../../virtio/allocator.js';
import type { PostTask } from '../../virtio/device.js';
import type { VirtioTransport } from '../../virtio/device-transport.js';
import type { VirtioFault } from '../../virtio/fault.js';
import type { GuestMemory } from '../../virtio/memory.js';
import type { RingTracer } from '../../virtio/trace.js';
import {
  VirtioConsoleDriver,
  type ConsoleDriverOptions,
  type GuestKernel,
} from './console-driver.js';
import { GuestFiles } from './files.js';
import { GuestNamespace, type CharDevice, type FileOps } from './namespace.js';
import { errno, type Errno } from './errno.js';
import type { GuestPort } from './port.js';
import { WaitQueue } from './waitqueue.js';

/** HVC_ALLOC_TTY_ADAPTERS: the minors hvc_init registers (/dev/hvc0 to /dev/hvc7). */
export const HVC_TTY_MINORS = 8;

/** /dev/hvcK: opens whatever console has index K now; none is ENODEV (hvc_install). */
class HvcSlot implements CharDevice {
  constructor(
    private readonly consoles: ReadonlyMap<number, CharDevice>,
    private readonly index: number,
  ) {}

  get label(): string {
    return `hvc${this.index}`;
  }

  open(flags: number): Promise<FileOps | Errno> {
    const console = this.consoles.get(this.index);
    if (console === undefined)
      return Promise.resolve(errno('ENODEV', `open /dev/hvc${this.index}`));
    return console.open(flags);
  }
}

export interface GuestOptions {
  memory: GuestMemory;
  /** Allocator over `memory` (one is made when not given). */
  allocator?: GuestAllocator;
  post: PostTask;
  events?: Emitter<EngineEvents>;
  /** The index the first virtio device gets (the D of vportDpN; 0 in a guest with no other virtio device). */
  firstVirtioIndex?: number;
  console?: ConsoleDriverOptions;
}

export interface ProbeOptions {
  /** Name for events (the host-side device name). */
  label?: string;
  tracer?: RingTracer | null;
  console?: ConsoleDriverOptions;
  /** The virtio index to bind as (a driver re-bound to its device keeps the device's index). */
  index?: number;
}

export class Guest implements GuestKernel {
  readonly memory: GuestMemory;
  readonly allocator: GuestAllocator;
  readonly post: PostTask;
  readonly events: Emitter<EngineEvents>;
  readonly namespace: GuestNamespace;
  readonly files: GuestFiles;
  private readonly driverList: VirtioConsoleDriver[] = [];
  private readonly consoleDefaults: ConsoleDriverOptions;
  private nextVirtioIndex: number;
  readonly memoryWait = new WaitQueue();
  memoryShort = false;
  /** hvc index -> the console behind it (hvc_struct by index). */
  private readonly hvc = new Map<number, CharDevice>();
  private hvcRegistered = false;

  constructor(options: GuestOptions) {
    this.memory = options.memory;
    this.allocator = options.allocator ?? new GuestAllocator(options.memory);
    this.post = options.post;
    this.events = options.events ?? new Emitter<EngineEvents>();
    this.nextVirtioIndex = options.firstVirtioIndex ?? 0;
    this.consoleDefaults = options.console ?? {};
    this.namespace = new GuestNamespace((action, path) => {
      if (this.events.has('guest-node')) this.events.emit('guest-node', { action, path });
    });
    this.files = new GuestFiles(this.namespace, this.post);
  }

  get drivers(): readonly VirtioConsoleDriver[] {
    return this.driverList;
  }

  /** Every port of every device, for the UI. */
  ports(): GuestPort[] {
    return this.driverList.flatMap((d) => d.portList);
  }

  /**
   * Bind the console driver to a device (PCI probe). Runs as guest tasks and
   * settles when the driver has sent DEVICE_READY (or failed).
   */
  probe(
    transport: VirtioTransport,
    options: ProbeOptions = {},
  ): Promise<VirtioConsoleDriver | VirtioFault> {
    const index = options.index ?? this.nextVirtioIndex++;
    const driver = new VirtioConsoleDriver(
      this,
      transport,
      index,
      options.label ?? `virtio${index}`,
      options.tracer ?? null,
      { ...this.consoleDefaults, ...options.console },
    );
    this.driverList.push(driver);
    return new Promise((resolve) => {
      this.post('guest', `probe virtio${index}`, () => {
        void driver.probe().then((problem) => resolve(problem ?? driver));
      });
    });
  }

  /** The device is going away (PCI unplug): the driver lets go of it. */
  remove(driver: VirtioConsoleDriver): void {
    const i = this.driverList.indexOf(driver);
    if (i < 0) return;
    this.driverList.splice(i, 1);
    driver.remove();
  }

  driverFor(transport: VirtioTransport): VirtioConsoleDriver | undefined {
    return this.driverList.find((d) => d.transport === transport);
  }

  reclaimTransmitBuffers(): void {
    for (const driver of this.driverList) driver.reclaimOwnTransmitBuffers();
  }

  wakeAllPorts(): void {
    for (const driver of this.driverList) driver.wakePorts();
  }

  /**
   * hvc_alloc. The first console registers the hvc tty driver (hvc_init),
   * which creates /dev/hvc0 to /dev/hvc7 at once (L11); an index from 8 up
   * has a console but no node, as in Linux (8 tty minors).
   */
  allocHvc(console: CharDevice): number {
    if (!this.hvcRegistered) {
      this.hvcRegistered = true;
      for (let k = 0; k < HVC_TTY_MINORS; k++) {
        this.namespace.add(`/dev/hvc${k}`, { kind: 'chardev', device: new HvcSlot(this.hvc, k) });
      }
    }
    let k = 0;
    while (this.hvc.has(k)) k++;
    this.hvc.set(k, console);
    return k;
  }

  /** hvc_remove: the index is free again; its node stays. */
  freeHvc(index: number): void {
    this.hvc.delete(index);
  }
}
