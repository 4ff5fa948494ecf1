import { describe, expect, it } from 'vitest';
import {
  Feature,
  bit,
  checkDependencies,
  featureBits,
  featureSet,
  validateAccepted,
} from '../../core/virtio/features.js';
import { Status, statusDescriptions, statusNames } from '../../core/virtio/status.js';
import { VirtioFault } from '../../core/virtio/fault.js';

describe('feature bits', () => {
  it('G1 numbers the ring and transport bits as the spec does, and C0 the console bits', () => {
    expect(Feature.RING_INDIRECT_DESC).toBe(28);
    expect(Feature.RING_EVENT_IDX).toBe(29);
    expect(Feature.VERSION_1).toBe(32);
    expect(Feature.RING_PACKED).toBe(34);
    expect(Feature.IN_ORDER).toBe(35);
    expect(Feature.CONSOLE_F_SIZE).toBe(0);
    expect(Feature.CONSOLE_F_MULTIPORT).toBe(1);
    expect(Feature.CONSOLE_F_EMERG_WRITE).toBe(2);
    expect(featureBits(featureSet(Feature.VERSION_1, Feature.RING_PACKED))).toEqual([32, 34]);
    expect(bit(34)).toBe(0x4_0000_0000n);
  });

  it('G4 refuses a set that lacks a dependency and accepts every closed subset of the offer', () => {
    const offered = featureSet(
      Feature.CONSOLE_F_MULTIPORT,
      Feature.RING_EVENT_IDX,
      Feature.RING_INDIRECT_DESC,
      Feature.VERSION_1,
      Feature.RING_PACKED,
      Feature.IN_ORDER,
    );
    expect(checkDependencies(offered)).toBeNull();
    const offeredBits = featureBits(offered);
    // every subset of the offer: valid exactly when closed under dependencies
    for (let mask = 0; mask < 1 << offeredBits.length; mask++) {
      let set = 0n;
      offeredBits.forEach((b, i) => {
        if (mask & (1 << i)) set |= bit(b);
      });
      const needsV1 = (set & (bit(Feature.RING_PACKED) | bit(Feature.IN_ORDER))) !== 0n;
      const closed = !needsV1 || (set & bit(Feature.VERSION_1)) !== 0n;
      const r = validateAccepted(offered, set);
      if (closed) expect(r).toBeNull();
      else expect((r as VirtioFault).kind).toBe('FeatureDependencyMissing');
    }
  });

  it('G4 refuses accepting a feature that was not offered', () => {
    const r = validateAccepted(
      featureSet(Feature.VERSION_1),
      featureSet(Feature.VERSION_1, Feature.RING_EVENT_IDX),
    );
    expect(r).toBeInstanceOf(VirtioFault);
    expect((r as VirtioFault).kind).toBe('FeatureNotOffered');
    expect((r as VirtioFault).rule).toBe('G4');
  });
});

describe('device status', () => {
  it('names status bits in QEMU words', () => {
    const s = Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK;
    expect(s).toBe(15);
    expect(statusNames(s)).toEqual(['ACKNOWLEDGE', 'DRIVER', 'DRIVER_OK', 'FEATURES_OK']);
    expect(statusDescriptions(s)).toEqual([
      'VIRTIO_CONFIG_S_ACKNOWLEDGE: Valid virtio device found',
      'VIRTIO_CONFIG_S_DRIVER: Guest OS compatible with device',
      'VIRTIO_CONFIG_S_FEATURES_OK: Feature negotiation complete',
      'VIRTIO_CONFIG_S_DRIVER_OK: Driver setup and ready',
    ]);
    expect(Status.DEVICE_NEEDS_RESET).toBe(64);
  });
});
