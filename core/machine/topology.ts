/**
 * The machine topology: chardevs (host side), virtio-serial devices, their
 * ports, monitors, and the options vmchan keeps but does not model.
 *
 * Plain data, JSON-serialisable, with zod schemas for the boundaries (a
 * saved file, the UI, the WebSocket API). The QEMU command-line parser and
 * the libvirt XML reader produce it; the printers and the engine consume it.
 *
 * Values are resolved the way QEMU resolves them, so two spellings of one
 * machine give one topology: defaults are filled in (max_ports 31, ringbuf
 * 64 KiB, wait=on for a server socket), aliases are resolved where QEMU
 * makes them equivalent (`virtioconsole` is `virtconsole`, `tty` is
 * `serial`), and every port carries the name of the bus it sits on even when
 * the command line left QEMU to choose it.
 */
import { z } from 'zod';
import { machineError, type MachineError } from './machine-error.js';
import { kindOf } from '../chardev/kinds/index.js';
import { ChardevSchema, ID_PATTERN, MAX_MUX_FRONTENDS } from '../chardev/spec.js';
import { CHARDEV_OPTS, COMMON_CHARDEV_KEYS, MODELLED_DEVICE_KEYS } from './qemu-tables.js';

// A chardev's spec is chardev's own (core/chardev/spec.ts, one record per kind in kinds/).
export {
  ChardevBackendSchema,
  ChardevSchema,
  DEFAULT_RINGBUF_SIZE,
  ID_PATTERN,
  MAX_MUX_FRONTENDS,
  SocketAddressSchema,
} from '../chardev/spec.js';
export type { ChardevBackend, ChardevKind, Chardev, SocketAddress } from '../chardev/spec.js';

/** D1: QEMU's default number of ports per device. */
export const DEFAULT_MAX_PORTS = 31;
/** D1: VIRTIO_QUEUE_MAX / 2 - 1; one queue pair per port plus the control pair. */
export const MAX_PORTS_LIMIT = 511;
/** The `nr` value QEMU treats as "not given" (VIRTIO_CONSOLE_BAD_ID). */
export const PORT_NR_UNSET = 0xffffffff;

export function isWellFormedId(id: string): boolean {
  return ID_PATTERN.test(id);
}

const Id = z.string().regex(ID_PATTERN, "Parameter 'id' expects an identifier");
const Uint32 = z
  .number()
  .int()
  .min(0)
  .max(0xffffffff - 1);

export const ControllerDriverSchema = z.enum([
  'virtio-serial',
  'virtio-serial-pci',
  'virtio-serial-device',
]);

export const VirtioSerialDeviceSchema = z.object({
  /** As written: `virtio-serial` is QEMU's alias of virtio-serial-pci on PCI machines. */
  driver: ControllerDriverSchema,
  id: Id.optional(),
  maxPorts: z.number().int().min(1).max(MAX_PORTS_LIMIT),
  /** MSI-X vectors (PCI only); QEMU's default is 2 when not given. */
  vectors: Uint32.optional(),
  emergencyWrite: z.boolean(),
  /** Ring format: packed=on offers VIRTIO_F_RING_PACKED. */
  packed: z.boolean(),
  eventIdx: z.boolean(),
  indirectDesc: z.boolean(),
  /** Device properties kept verbatim (addr, bus of the PCI slot, ioeventfd, ...). */
  ignoredKeys: z.record(z.string(), z.string()).optional(),
});
export type VirtioSerialDevice = z.infer<typeof VirtioSerialDeviceSchema>;

export const PortSchema = z.object({
  driver: z.enum(['virtserialport', 'virtconsole']),
  id: Id.optional(),
  /** The bus the port sits on, resolved (`vser0.0`, `virtio-serial-bus.0`). */
  bus: z.string().min(1),
  /** D3: left undefined when not given; the device picks the lowest free number. */
  nr: Uint32.optional(),
  name: z.string().optional(),
  /** A port without a chardev exists in the guest and has no host side. */
  chardev: Id.optional(),
});
export type Port = z.infer<typeof PortSchema>;

export const MonitorSchema = z
  .object({
    id: Id.optional(),
    chardev: Id,
    mode: z.enum(['control', 'readline']),
    pretty: z.boolean(),
  })
  .refine((m) => m.mode === 'control' || !m.pretty, {
    message: "'pretty' is not compatible with HMP monitors",
  });
export type Monitor = z.infer<typeof MonitorSchema>;

/** A command-line option kept verbatim. `option` is '' for a bare word (QEMU's implicit -hda). */
export const IgnoredOptionSchema = z.object({
  option: z.string(),
  arg: z.string().optional(),
});
export type IgnoredOption = z.infer<typeof IgnoredOptionSchema>;

export const TopologySchema = z.object({
  chardevs: z.array(ChardevSchema),
  devices: z.array(VirtioSerialDeviceSchema),
  ports: z.array(PortSchema),
  monitors: z.array(MonitorSchema),
  ignored: z.array(IgnoredOptionSchema),
});
export type Topology = z.infer<typeof TopologySchema>;

export function emptyTopology(): Topology {
  return { chardevs: [], devices: [], ports: [], monitors: [], ignored: [] };
}

/** A device with every QEMU default; `extra` overrides. */
export function defaultDevice(
  driver: VirtioSerialDevice['driver'],
  extra: Partial<VirtioSerialDevice> = {},
): VirtioSerialDevice {
  return {
    driver,
    maxPorts: DEFAULT_MAX_PORTS,
    emergencyWrite: true,
    packed: false,
    eventIdx: true,
    indirectDesc: true,
    ...extra,
  };
}

/**
 * The bus names of the devices, in order, as QEMU names them: `<id>.0` for a
 * device with an id (virtio_serial_pci_realize sets it "for command line
 * compatibility"), else `virtio-serial-bus.<n>` with n counting the devices
 * without an id (qbus_init_internal: lower-cased bus type plus a per-type
 * counter). The brief guessed `virtio-serial0.0` for the latter; that is
 * libvirt's name, which comes from libvirt giving the device id virtio-serial0.
 */
export function busNames(devices: readonly VirtioSerialDevice[]): string[] {
  let anonymous = 0;
  return devices.map((d) =>
    d.id !== undefined ? `${d.id}.0` : `virtio-serial-bus.${anonymous++}`,
  );
}

/** Index of the device whose bus is `bus`, or -1. */
export function deviceIndexForBus(devices: readonly VirtioSerialDevice[], bus: string): number {
  return busNames(devices).indexOf(bus);
}

/** Validate unknown data (a file, an API message) as a topology. */
export function parseTopology(
  data: unknown,
): { ok: true; value: Topology } | { ok: false; error: MachineError } {
  const r = TopologySchema.safeParse(data);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0];
  const path = issue === undefined ? '' : issue.path.join('.');
  return {
    ok: false,
    error: machineError('InvalidTopology', `${path}: ${issue?.message ?? 'invalid topology'}`, {
      key: path,
    }),
  };
}

/**
 * Cross-references a schema cannot see: unique ids per QEMU namespace,
 * ports on existing buses, chardevs that exist and are not shared beyond
 * what QEMU allows, ignoredKeys that would not be read back as modelled
 * keys. Returns every problem found (empty when consistent). Port numbers
 * (D3) are the device's business and are not checked here, nor are the ids
 * and chardevs of ignored -device options (the parser checks those).
 */
export function checkTopology(t: Topology): MachineError[] {
  const problems: MachineError[] = [];
  const bad = (message: string, token?: string): void => {
    problems.push(machineError('InvalidTopology', message, token === undefined ? {} : { token }));
  };

  const chardevIds = new Set<string>();
  for (const c of t.chardevs) {
    if (chardevIds.has(c.id)) bad(`Duplicate ID '${c.id}' for chardev`, c.id);
    chardevIds.add(c.id);
    const modelled = new Set([...COMMON_CHARDEV_KEYS, 'id', ...kindOf(c.backend).qemu.keys]);
    for (const key of Object.keys(c.ignoredKeys ?? {})) {
      if (!CHARDEV_OPTS.has(key)) bad(`chardev '${c.id}': Invalid parameter '${key}'`, key);
      else if (modelled.has(key))
        bad(`chardev '${c.id}': '${key}' is modelled and cannot be ignored`, key);
    }
    if (c.backend.kind === 'socket') {
      const s = c.backend;
      if (!s.server && s.wait) bad(`chardev '${c.id}': a client socket does not wait`, c.id);
      if (s.server && s.reconnect !== undefined) {
        bad(
          `chardev '${c.id}': 'reconnect' option is incompatible with socket in server listen mode`,
          c.id,
        );
      }
    }
  }

  const deviceIds = new Set<string>();
  const addDeviceId = (id: string | undefined): void => {
    if (id === undefined) return;
    if (deviceIds.has(id)) bad(`Duplicate ID '${id}' for device`, id);
    deviceIds.add(id);
  };
  for (const d of t.devices) {
    addDeviceId(d.id);
    for (const key of Object.keys(d.ignoredKeys ?? {})) {
      if (MODELLED_DEVICE_KEYS.includes(key) || key === 'id' || key === 'driver') {
        bad(`device '${d.id ?? d.driver}': '${key}' is modelled and cannot be ignored`, key);
      }
    }
  }
  for (const p of t.ports) addDeviceId(p.id);

  const buses = new Set(busNames(t.devices));
  const users = new Map<string, number>();
  const use = (chardev: string, who: string): void => {
    if (!chardevIds.has(chardev)) {
      bad(`${who}: chardev '${chardev}' not found`, chardev);
      return;
    }
    users.set(chardev, (users.get(chardev) ?? 0) + 1);
  };
  for (const p of t.ports) {
    if (!buses.has(p.bus)) bad(`Bus '${p.bus}' not found`, p.bus);
    if (p.chardev !== undefined) use(p.chardev, `port '${p.id ?? p.name ?? p.bus}'`);
  }
  const monitorIds = new Set<string>();
  for (const m of t.monitors) {
    if (m.id !== undefined) {
      if (monitorIds.has(m.id)) bad(`Duplicate ID '${m.id}' for mon`, m.id);
      monitorIds.add(m.id);
    }
    use(m.chardev, 'monitor');
  }
  for (const c of t.chardevs) {
    const n = users.get(c.id) ?? 0;
    const limit = c.mux ? MAX_MUX_FRONTENDS : 1;
    if (n > limit) bad(`Device '${c.id}' is in use`, c.id);
  }
  return problems;
}
