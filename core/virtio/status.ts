/** Device status bits (virtio 1.x, 2.1) and how to read them out loud. */

export const Status = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128,
} as const;

export type StatusName = keyof typeof Status;

/** The words QEMU's x-query-virtio-status uses for each bit. */
export const STATUS_DESCRIPTIONS: Readonly<Record<number, string>> = {
  [Status.ACKNOWLEDGE]: 'VIRTIO_CONFIG_S_ACKNOWLEDGE: Valid virtio device found',
  [Status.DRIVER]: 'VIRTIO_CONFIG_S_DRIVER: Guest OS compatible with device',
  [Status.FEATURES_OK]: 'VIRTIO_CONFIG_S_FEATURES_OK: Feature negotiation complete',
  [Status.DRIVER_OK]: 'VIRTIO_CONFIG_S_DRIVER_OK: Driver setup and ready',
  [Status.DEVICE_NEEDS_RESET]: 'VIRTIO_CONFIG_S_NEEDS_RESET: Device needs reset',
  [Status.FAILED]: 'VIRTIO_CONFIG_S_FAILED: Driver setup has failed',
};

const ORDER = [
  Status.ACKNOWLEDGE,
  Status.DRIVER,
  Status.FEATURES_OK,
  Status.DRIVER_OK,
  Status.DEVICE_NEEDS_RESET,
  Status.FAILED,
];

export function statusNames(status: number): StatusName[] {
  const names: StatusName[] = [];
  for (const [name, value] of Object.entries(Status) as [StatusName, number][]) {
    if (status & value) names.push(name);
  }
  return names;
}

export function statusDescriptions(status: number): string[] {
  return ORDER.filter((b) => status & b).map((b) => STATUS_DESCRIPTIONS[b]!);
}
