/**
 * Facts about QEMU 7.2's command line that the parser and the printer share:
 * which options exist and whether they take an argument (qemu-options.hx),
 * the keys -chardev accepts and their types (chardev/char.c
 * qemu_chardev_opts), the backend names, and the properties of the
 * virtio-serial devices (taken from a real 7.2's device-list-properties,
 * test/fixtures/qemu-7.2-samples/qom.jsonl).
 */

/**
 * Every option of qemu-system-x86_64 7.2 and whether it takes an argument,
 * so a whole real command line can be pasted: unknown options are refused
 * ("invalid option") exactly as QEMU refuses them, known ones are kept.
 */
export const QEMU_OPTIONS: ReadonlyMap<string, { hasArg: boolean }> = new Map(
  (
    [
      // standard
      ['h', false],
      ['help', false],
      ['version', false],
      ['machine', true],
      ['M', true],
      ['cpu', true],
      ['accel', true],
      ['smp', true],
      ['numa', true],
      ['add-fd', true],
      ['set', true],
      ['global', true],
      ['boot', true],
      ['m', true],
      ['mem-path', true],
      ['mem-prealloc', false],
      ['k', true],
      ['audio-help', false],
      ['audiodev', true],
      ['soundhw', true],
      ['device', true],
      ['name', true],
      ['uuid', true],
      // block
      ['fda', true],
      ['fdb', true],
      ['hda', true],
      ['hdb', true],
      ['hdc', true],
      ['hdd', true],
      ['cdrom', true],
      ['blockdev', true],
      ['drive', true],
      ['mtdblock', true],
      ['sd', true],
      ['pflash', true],
      ['snapshot', false],
      ['fsdev', true],
      ['virtfs', true],
      ['iscsi', true],
      // usb
      ['usb', false],
      ['usbdevice', true],
      // display
      ['display', true],
      ['nographic', false],
      ['curses', false],
      ['alt-grab', false],
      ['ctrl-grab', false],
      ['no-quit', false],
      ['sdl', false],
      ['spice', true],
      ['portrait', false],
      ['rotate', true],
      ['vga', true],
      ['full-screen', false],
      ['g', true],
      ['vnc', true],
      ['win2k-hack', false],
      ['no-fd-bootchk', false],
      ['no-acpi', false],
      ['no-hpet', false],
      ['acpitable', true],
      ['smbios', true],
      // network
      ['nic', true],
      ['netdev', true],
      ['net', true],
      // character devices
      ['chardev', true],
      ['tpmdev', true],
      // boot
      ['bios', true],
      ['kernel', true],
      ['append', true],
      ['initrd', true],
      ['dtb', true],
      ['compat', true],
      ['fw_cfg', true],
      ['L', true],
      // debug / expert
      ['serial', true],
      ['parallel', true],
      ['monitor', true],
      ['qmp', true],
      ['qmp-pretty', true],
      ['mon', true],
      ['debugcon', true],
      ['virtioconsole', true],
      ['pidfile', true],
      ['singlestep', false],
      ['preconfig', false],
      ['S', false],
      ['overcommit', true],
      ['gdb', true],
      ['s', false],
      ['d', true],
      ['D', true],
      ['dfilter', true],
      ['seed', true],
      ['enable-kvm', false],
      ['xen-domid', true],
      ['xen-attach', false],
      ['xen-domid-restrict', false],
      ['no-reboot', false],
      ['no-shutdown', false],
      ['action', true],
      ['loadvm', true],
      ['daemonize', false],
      ['option-rom', true],
      ['rtc', true],
      ['icount', true],
      ['watchdog', true],
      ['watchdog-action', true],
      ['echr', true],
      ['incoming', true],
      ['only-migratable', false],
      ['nodefaults', false],
      ['chroot', true],
      ['runas', true],
      ['prom-env', true],
      ['semihosting', false],
      ['semihosting-config', true],
      ['old-param', false],
      ['sandbox', true],
      ['readconfig', true],
      ['no-user-config', false],
      ['trace', true],
      ['plugin', true],
      ['qtest', true],
      ['qtest-log', true],
      ['msg', true],
      ['dump-vmstate', true],
      ['enable-sync-profile', false],
      ['object', true],
    ] as const
  ).map(([name, hasArg]) => [`-${name}`, { hasArg }]),
);

export type ChardevOptType = 'string' | 'bool' | 'number' | 'size';

/**
 * The keys -chardev accepts in 7.2 and their types (qemu_chardev_opts). A
 * key outside this list is "Invalid parameter 'x'", whatever the backend;
 * a key in it that the backend does not use is accepted and ignored by QEMU.
 */
export const CHARDEV_OPTS: ReadonlyMap<string, ChardevOptType> = new Map<string, ChardevOptType>([
  ['backend', 'string'],
  ['path', 'string'],
  ['host', 'string'],
  ['port', 'string'],
  ['fd', 'string'],
  ['localaddr', 'string'],
  ['localport', 'string'],
  ['to', 'number'],
  ['ipv4', 'bool'],
  ['ipv6', 'bool'],
  ['wait', 'bool'],
  ['server', 'bool'],
  ['delay', 'bool'],
  ['nodelay', 'bool'],
  ['reconnect', 'number'],
  ['telnet', 'bool'],
  ['tn3270', 'bool'],
  ['tls-creds', 'string'],
  ['tls-authz', 'string'],
  ['websocket', 'bool'],
  ['width', 'number'],
  ['height', 'number'],
  ['cols', 'number'],
  ['rows', 'number'],
  ['mux', 'bool'],
  ['signal', 'bool'],
  ['name', 'string'],
  ['debug', 'number'],
  ['size', 'size'],
  ['chardev', 'string'],
  ['append', 'bool'],
  ['logfile', 'string'],
  ['logappend', 'bool'],
  ['mouse', 'bool'],
  ['clipboard', 'bool'],
  ['tight', 'bool'],
  ['abstract', 'bool'],
]);

/** Backend names QEMU 7.2 (Linux build) accepts; `tty` and `parport` are deprecated aliases. */
export const CHARDEV_BACKEND_NAMES: ReadonlySet<string> = new Set([
  'null',
  'socket',
  'udp',
  'msmouse',
  'wctablet',
  'braille',
  'testdev',
  'vc',
  'ringbuf',
  'memory',
  'file',
  'pipe',
  'pty',
  'stdio',
  'serial',
  'tty',
  'parallel',
  'parport',
  'spicevmc',
  'spiceport',
  'qemu-vdagent',
  'dbus',
  'mux',
]);

/** Keys every backend uses (qemu_chr_parse_common and the mux wrapper). */
export const COMMON_CHARDEV_KEYS = ['backend', 'mux', 'logfile', 'logappend'];

export type PropType = 'bool' | 'uint32' | 'str' | 'int32' | 'OnOffAuto';

/** Properties every virtio device has (hw/virtio/virtio.c), as 7.2 lists them. */
const VIRTIO_COMMON_PROPS: ReadonlyArray<readonly [string, PropType]> = [
  ['indirect_desc', 'bool'],
  ['event_idx', 'bool'],
  ['notify_on_empty', 'bool'],
  ['any_layout', 'bool'],
  ['iommu_platform', 'bool'],
  ['packed', 'bool'],
  ['queue_reset', 'bool'],
  ['use-started', 'bool'],
  ['use-disabled-flag', 'bool'],
  ['x-disable-legacy-check', 'bool'],
];

/** virtio-serial's own properties (DEFINE_VIRTIO_SERIAL_PROPERTIES). */
const VIRTIO_SERIAL_PROPS: ReadonlyArray<readonly [string, PropType]> = [
  ['max_ports', 'uint32'],
  ['emergency-write', 'bool'],
];

/** virtio-pci proxy properties, from 7.2's device-list-properties of virtio-serial-pci. */
const VIRTIO_PCI_PROPS: ReadonlyArray<readonly [string, PropType]> = [
  ['failover_pair_id', 'str'],
  ['romfile', 'str'],
  ['addr', 'int32'],
  ['romsize', 'uint32'],
  ['x-pcie-lnksta-dllla', 'bool'],
  ['rombar', 'uint32'],
  ['x-pcie-extcap-init', 'bool'],
  ['acpi-index', 'uint32'],
  ['multifunction', 'bool'],
  ['migrate-extra', 'bool'],
  ['ats', 'bool'],
  ['x-ignore-backend-features', 'bool'],
  ['x-pcie-pm-init', 'bool'],
  ['aer', 'bool'],
  ['x-pcie-flr-init', 'bool'],
  ['x-pcie-lnkctl-init', 'bool'],
  ['x-ats-page-aligned', 'bool'],
  ['page-per-vq', 'bool'],
  ['x-pcie-deverr-init', 'bool'],
  ['virtio-pci-bus-master-bug-migration', 'bool'],
  ['modern-pio-notify', 'bool'],
  ['x-disable-pcie', 'bool'],
  ['vectors', 'uint32'],
  ['class', 'uint32'],
  ['ioeventfd', 'bool'],
  ['disable-legacy', 'OnOffAuto'],
  ['disable-modern', 'bool'],
];

export type ControllerDriver = 'virtio-serial' | 'virtio-serial-pci' | 'virtio-serial-device';
export type PortDriver = 'virtserialport' | 'virtconsole';

/** The QOM type each accepted driver name resolves to (qdev_alias_table; QEMU names errors by it). */
export const DEVICE_TYPE_NAMES: Readonly<Record<string, string>> = {
  'virtio-serial': 'virtio-serial-pci',
  'virtio-serial-pci': 'virtio-serial-pci',
  'virtio-serial-device': 'virtio-serial-device',
  virtserialport: 'virtserialport',
  virtconsole: 'virtconsole',
  virtioconsole: 'virtconsole',
};

const pciProps = new Map<string, PropType>([
  ...VIRTIO_PCI_PROPS,
  ...VIRTIO_COMMON_PROPS,
  ...VIRTIO_SERIAL_PROPS,
]);
const mmioProps = new Map<string, PropType>([...VIRTIO_COMMON_PROPS, ...VIRTIO_SERIAL_PROPS]);

/** Properties per QOM type, besides the qdev generics driver, id and bus. */
export const DEVICE_PROPS: Readonly<Record<string, ReadonlyMap<string, PropType>>> = {
  'virtio-serial-pci': pciProps,
  'virtio-serial-device': mmioProps,
  virtserialport: new Map<string, PropType>([
    ['nr', 'uint32'],
    ['name', 'str'],
    ['chardev', 'str'],
  ]),
  virtconsole: new Map<string, PropType>([
    ['nr', 'uint32'],
    ['name', 'str'],
    ['chardev', 'str'],
  ]),
};

/** Device properties the topology models; the rest are kept verbatim in `ignoredKeys`. */
export const MODELLED_DEVICE_KEYS = [
  'max_ports',
  'vectors',
  'emergency-write',
  'packed',
  'event_idx',
  'indirect_desc',
];

/** The bus type ports need (TYPE_VIRTIO_SERIAL_BUS). */
export const VIRTIO_SERIAL_BUS_TYPE = 'virtio-serial-bus';

/** A mux chardev serves at most this many frontends: chardev's own (core/chardev/limits.ts). */
export { MAX_MUX_FRONTENDS } from '../chardev/limits.js';
