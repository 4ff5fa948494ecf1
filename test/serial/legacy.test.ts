/**
 * C8, C9 and C10 are the legacy (pre-1.0) rules. vmchan's console device
 * has no legacy interface: it always offers VERSION_1 and refuses a driver
 * that does not accept it, so none of the three can ever apply. These tests
 * hold that line, so the table's "not supported" stays true.
 */
import { describe, expect, it } from 'vitest';
import { Feature, bit, has } from '../../core/virtio/features.js';
import { Status } from '../../core/virtio/status.js';
import { RawDriver } from './helpers.js';

describe('legacy interface (C8 C9 C10)', () => {
  it('C8 C9 C10 the console device offers VERSION_1 and refuses a legacy driver (no VERSION_1)', () => {
    const raw = RawDriver.create({ driverOk: false });
    const device = raw.device;
    expect(has(device.readDeviceFeatures(), Feature.VERSION_1)).toBe(true);
    // A legacy driver would accept only the device bits; FEATURES_OK must not stick.
    device.writeStatus(0);
    device.writeStatus(Status.ACKNOWLEDGE | Status.DRIVER);
    device.writeDriverFeatures(bit(Feature.CONSOLE_F_MULTIPORT));
    device.writeStatus(Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    expect(device.readStatus() & Status.FEATURES_OK).toBe(0);
    expect(device.featureRefusal?.rule).toBe('G4');
    expect(device.featureRefusal?.message).toMatch(/VERSION_1/);
  });

  it('C8 configuration fields read little-endian whatever the host order (modern layout only)', () => {
    const raw = RawDriver.create({ device: { maxPorts: 0x1234 % 512 } });
    const cfg = raw.device;
    // max_nr_ports at offset 4, le32: byte 4 is the low byte.
    const low = cfg.readConfig(4, 1) as number;
    const high = cfg.readConfig(5, 1) as number;
    expect(low | (high << 8)).toBe(0x1234 % 512);
  });
});
