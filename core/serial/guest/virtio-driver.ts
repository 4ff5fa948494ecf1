/**
 * The guest's virtio core, the part of Linux's drivers/virtio that every
 * driver uses: feature negotiation in the order the spec prescribes
 * (virtio_dev_probe) and queue setup (vp_find_vqs), over the transport.
 */
import type { GuestAllocator } from '../../virtio/allocator.js';
import {
  allocateRings,
  createDriverQueue,
  releaseRings,
  ringFeaturesOf,
  ringFormatOf,
} from '../../virtio/device-rings.js';
import type { VirtioTransport } from '../../virtio/device-transport.js';
import { fault, isFault, type VirtioFault } from '../../virtio/fault.js';
import { bit, Feature } from '../../virtio/features.js';
import type { GuestMemory } from '../../virtio/memory.js';
import type { DriverQueue, QueueFormat, QueueLayout, RingFeatures } from '../../virtio/queue.js';
import { Status } from '../../virtio/status.js';
import type { RingTracer } from '../../virtio/trace.js';

export interface Negotiated {
  features: bigint;
  format: QueueFormat;
  ring: RingFeatures;
}

/**
 * Transport features Linux keeps (vring_transport_features): VERSION_1,
 * INDIRECT_DESC, EVENT_IDX, and RING_PACKED when the driver supports it.
 * ANY_LAYOUT and NOTIFY_ON_EMPTY are legacy-only and never accepted.
 */
export function linuxTransportFeatures(acceptPacked: boolean): bigint {
  let f = bit(Feature.VERSION_1) | bit(Feature.RING_INDIRECT_DESC) | bit(Feature.RING_EVENT_IDX);
  if (acceptPacked) f |= bit(Feature.RING_PACKED);
  return f;
}

/**
 * Reset, ACKNOWLEDGE, DRIVER, read the offer, accept `wanted & offered`,
 * FEATURES_OK and read it back (G4: the device may refuse). On refusal the
 * driver sets FAILED and returns the reason.
 */
export function negotiate(transport: VirtioTransport, wanted: bigint): Negotiated | VirtioFault {
  transport.writeStatus(0);
  let status = Status.ACKNOWLEDGE;
  transport.writeStatus(status);
  status |= Status.DRIVER;
  transport.writeStatus(status);
  const accepted = transport.readDeviceFeatures() & wanted;
  transport.writeDriverFeatures(accepted);
  status |= Status.FEATURES_OK;
  transport.writeStatus(status);
  if (!(transport.readStatus() & Status.FEATURES_OK)) {
    transport.writeStatus(status | Status.FAILED);
    return fault('FeatureNotOffered', 'G4', 'the device refused the accepted feature set');
  }
  return { features: accepted, format: ringFormatOf(accepted), ring: ringFeaturesOf(accepted) };
}

/** Set up queue `index` at the largest size the device allows, rings allocated in guest memory. */
export function setupQueue<T>(
  transport: VirtioTransport,
  index: number,
  negotiated: Negotiated,
  memory: GuestMemory,
  allocator: GuestAllocator,
  tracer: RingTracer | null,
  /** Told the rings' layout, so the caller can give them back (vp_del_vqs at remove). */
  rings?: QueueLayout[],
): DriverQueue<T> | VirtioFault {
  const size = transport.queueMaxSize(index);
  if (size === 0) {
    return fault('InvalidQueueIndex', 'M13', `the device has no queue ${index}`, { queue: index });
  }
  const layout = allocateRings(negotiated.format, size, memory, allocator);
  if (isFault(layout)) return layout.onQueue(index);
  const e =
    transport.configureQueue(index, {
      size,
      descAddr: layout.descAddr,
      driverAddr: layout.driverAddr,
      deviceAddr: layout.deviceAddr,
    }) ?? transport.enableQueue(index);
  if (e) {
    releaseRings(allocator, layout);
    return e;
  }
  const queue = createDriverQueue<T>(
    { index, layout, features: negotiated.ring, tracer },
    memory,
    allocator,
  );
  if (isFault(queue)) releaseRings(allocator, layout);
  else rings?.push(layout);
  return queue;
}
