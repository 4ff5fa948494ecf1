/**
 * One place that knows which class implements which ring format, so devices
 * and drivers above ask for "a queue in the negotiated format" and never name
 * split or packed themselves.
 */
import type { GuestAllocator } from './allocator.js';
import type { VirtioFault } from './fault.js';
import { Feature, has } from './features.js';
import type { GuestMemory } from './memory.js';
import { layoutPackedQueue, PackedDeviceQueue, PackedDriverQueue } from './packed-queue.js';
import type {
  DeviceQueue,
  DriverQueue,
  QueueFormat,
  QueueLayout,
  QueueOptions,
  RingFeatures,
} from './queue.js';
import {
  allocSplitQueue,
  releaseSplitQueue,
  SplitDeviceQueue,
  SplitDriverQueue,
} from './split-queue.js';

/** The ring format and ring features a negotiated feature set implies. */
export function ringFormatOf(features: bigint): QueueFormat {
  return has(features, Feature.RING_PACKED) ? 'packed' : 'split';
}

export function ringFeaturesOf(features: bigint): RingFeatures {
  return {
    indirect: has(features, Feature.RING_INDIRECT_DESC),
    eventIdx: has(features, Feature.RING_EVENT_IDX),
    inOrder: has(features, Feature.IN_ORDER),
  };
}

export function createDeviceQueue(
  options: QueueOptions,
  memory: GuestMemory,
): DeviceQueue | VirtioFault {
  return options.layout.format === 'packed'
    ? PackedDeviceQueue.create(options, memory)
    : SplitDeviceQueue.create(options, memory);
}

export function createDriverQueue<T>(
  options: QueueOptions,
  memory: GuestMemory,
  allocator: GuestAllocator,
): DriverQueue<T> | VirtioFault {
  return options.layout.format === 'packed'
    ? PackedDriverQueue.create<T>(options, memory, allocator)
    : SplitDriverQueue.create<T>(options, memory, allocator);
}

/** Allocate and zero a queue's rings in guest memory, as a guest kernel does. */
export function allocateRings(
  format: QueueFormat,
  size: number,
  memory: GuestMemory,
  allocator: GuestAllocator,
): QueueLayout | VirtioFault {
  return format === 'packed'
    ? layoutPackedQueue(memory, allocator, size)
    : allocSplitQueue(memory, allocator, size);
}

/** Give back what allocateRings took. */
export function releaseRings(allocator: GuestAllocator, layout: QueueLayout): VirtioFault | null {
  return layout.format === 'packed'
    ? allocator.release(layout.descAddr)
    : releaseSplitQueue(allocator, layout);
}
