/**
 * The in-process transport between a guest driver and a virtio device: the
 * register interface of virtio-pci "modern" (virtio 1.x, 4.1.4), with every
 * register access turned into a method call.
 *
 * | virtio-pci register                      | method                          |
 * |------------------------------------------|---------------------------------|
 * | device_feature_select / device_feature   | readDeviceFeatures() (64 bits)  |
 * | driver_feature_select / driver_feature   | writeDriverFeatures(bigint)     |
 * | num_queues                               | numQueues                       |
 * | device_status                            | readStatus() / writeStatus()    |
 * | config_generation                        | readConfigGeneration()          |
 * | queue_select + queue_size (read)         | queueMaxSize(q)                 |
 * | queue_size + queue_desc/driver/device    | configureQueue(q, addresses)    |
 * | queue_enable = 1                         | enableQueue(q)                  |
 * | notification capability (queue_notify)   | notify(q)                       |
 * | ISR status (read clears)                 | readIsr()                       |
 * | device-specific configuration            | readConfig() / writeConfig()    |
 * | MSI-X vectors                            | setInterruptHandler(handler)    |
 *
 * The guest driver sees a device only through this interface, so a second
 * device model (or a recorded one) can sit behind it unchanged.
 */
import type { VirtioFault } from './fault.js';

/** What the driver programs for one queue; the ring format follows RING_PACKED. */
export interface QueueAddresses {
  size: number;
  /** Split: descriptor table. Packed: descriptor ring. */
  descAddr: number;
  /** Split: available ring. Packed: driver event suppression. */
  driverAddr: number;
  /** Split: used ring. Packed: device event suppression. */
  deviceAddr: number;
}

export type Interrupt = { kind: 'queue'; queue: number } | { kind: 'config' };
export type InterruptHandler = (interrupt: Interrupt) => void;

/** Width of a configuration space access, in bytes. */
export type ConfigWidth = 1 | 2 | 4;

/** ISR status bits (virtio-pci 4.1.4.5). */
export const ISR_QUEUE = 1;
export const ISR_CONFIG = 2;

export interface VirtioTransport {
  /** Virtio device id (3 for a console). */
  readonly deviceId: number;
  /** Queues the device has (for the features negotiated so far). */
  readonly numQueues: number;
  readDeviceFeatures(): bigint;
  /** Features the driver accepts; checked when it sets FEATURES_OK (G4). */
  writeDriverFeatures(features: bigint): void;
  readDriverFeatures(): bigint;
  readStatus(): number;
  /** Writing 0 resets the device. */
  writeStatus(status: number): void;
  readConfigGeneration(): number;
  /** Read and clear the ISR status bits. */
  readIsr(): number;
  /** The largest size the device allows for queue `q`, 0 when there is no such queue. */
  queueMaxSize(queue: number): number;
  configureQueue(queue: number, addresses: QueueAddresses): VirtioFault | null;
  enableQueue(queue: number): VirtioFault | null;
  /** The driver kicks queue `q` (a notification for a queue that does not exist is M13). */
  notify(queue: number): void;
  /** Bounded access to the device configuration space (M14). */
  readConfig(offset: number, width: ConfigWidth): number | VirtioFault;
  writeConfig(offset: number, width: ConfigWidth, value: number): VirtioFault | null;
  /** Where queue and configuration-change interrupts go (one handler, like one MSI-X table). */
  setInterruptHandler(handler: InterruptHandler | null): void;
}
