/**
 * Feature bits (G1 and the console bits of C0) and negotiation (G4).
 *
 * Feature sets are bigints because the transport bits live above bit 31.
 */
import { fault, type VirtioFault } from './fault.js';

export const Feature = {
  // console device (C0)
  CONSOLE_F_SIZE: 0,
  CONSOLE_F_MULTIPORT: 1,
  CONSOLE_F_EMERG_WRITE: 2,
  // transport and ring (G1)
  NOTIFY_ON_EMPTY: 24,
  ANY_LAYOUT: 27,
  RING_INDIRECT_DESC: 28,
  RING_EVENT_IDX: 29,
  VERSION_1: 32,
  ACCESS_PLATFORM: 33,
  RING_PACKED: 34,
  IN_ORDER: 35,
} as const;

export type FeatureName = keyof typeof Feature;

export function bit(n: number): bigint {
  return 1n << BigInt(n);
}

export function has(features: bigint, n: number): boolean {
  return (features & bit(n)) !== 0n;
}

export function featureSet(...bits: number[]): bigint {
  let f = 0n;
  for (const b of bits) f |= bit(b);
  return f;
}

/**
 * Feature -> features it depends on. A device never offers a feature without
 * its dependencies, and a driver may not accept one without them (G4).
 * Packed rings and in-order are only defined for modern (VERSION_1) devices.
 */
export const FEATURE_DEPENDENCIES: Readonly<Record<number, readonly number[]>> = {
  [Feature.RING_PACKED]: [Feature.VERSION_1],
  [Feature.IN_ORDER]: [Feature.VERSION_1],
};

/** Human descriptions in the words QEMU's x-query-virtio-status uses. */
export const FEATURE_DESCRIPTIONS: Readonly<Record<number, string>> = {
  [Feature.CONSOLE_F_SIZE]: 'VIRTIO_CONSOLE_F_SIZE: Size of virtio console is available',
  [Feature.CONSOLE_F_MULTIPORT]: 'VIRTIO_CONSOLE_F_MULTIPORT: Multiple ports for device supported',
  [Feature.CONSOLE_F_EMERG_WRITE]: 'VIRTIO_CONSOLE_F_EMERG_WRITE: Emergency write supported',
  [Feature.NOTIFY_ON_EMPTY]:
    'VIRTIO_F_NOTIFY_ON_EMPTY: Notify when device runs out of avail. descs. on VQ',
  [Feature.ANY_LAYOUT]: 'VIRTIO_F_ANY_LAYOUT: Device accepts arbitrary desc. layouts',
  [Feature.RING_INDIRECT_DESC]: 'VIRTIO_RING_F_INDIRECT_DESC: Indirect descriptors supported',
  [Feature.RING_EVENT_IDX]: 'VIRTIO_RING_F_EVENT_IDX: Used & avail. event fields enabled',
  [Feature.VERSION_1]: 'VIRTIO_F_VERSION_1: Device compliant for v1 spec (legacy)',
  [Feature.ACCESS_PLATFORM]: 'VIRTIO_F_IOMMU_PLATFORM: Device can be used on IOMMU platform',
  [Feature.RING_PACKED]: 'VIRTIO_F_RING_PACKED: Device supports packed VQs',
  [Feature.IN_ORDER]: 'VIRTIO_F_IN_ORDER: Device uses buffers in same order as made available',
};

/** Bits of the console device-specific range (0..23). */
export const DEVICE_FEATURE_MASK = (1n << 24n) - 1n;

export function featureBits(features: bigint): number[] {
  const out: number[] = [];
  for (let b = 0; b < 64; b++) if (has(features, b)) out.push(b);
  return out;
}

/** The first dependency a set lacks, as a fault, or null when the set is closed (G4). */
export function checkDependencies(features: bigint): VirtioFault | null {
  for (const b of featureBits(features)) {
    for (const dep of FEATURE_DEPENDENCIES[b] ?? []) {
      if (!has(features, dep)) {
        return fault(
          'FeatureDependencyMissing',
          'G4',
          `feature ${b} requires feature ${dep}, which is not in the set`,
          { index: b },
        );
      }
    }
  }
  return null;
}

/**
 * Validate what a driver accepts against what the device offered (G4):
 * a subset of the offer, closed under dependencies.
 */
export function validateAccepted(offered: bigint, accepted: bigint): VirtioFault | null {
  const extra = accepted & ~offered;
  if (extra !== 0n) {
    const first = featureBits(extra)[0]!;
    return fault(
      'FeatureNotOffered',
      'G4',
      `driver accepted feature ${first}, which was not offered`,
      {
        index: first,
      },
    );
  }
  return checkDependencies(accepted);
}
