/**
 * Bad QEMU argument lines (issue 13 corpus): each with the one line that
 * must come back (QEMU 7.2's words where QEMU has them). A `RegExp`
 * matches the whole line; a string is the whole line.
 */
export interface ArgCase {
  args: string[];
  message: string | RegExp;
}

const UINT_PROPS = ['max_ports', 'vectors'] as const;
const BAD_UINTS: [string, string][] = [
  ['-1', 'uint32_t'],
  ['99999999999', 'uint32_t'],
  ['abc', 'integer'],
  ['1.5', 'integer'],
  ['0x', 'integer'],
];
const DEVICE_BOOLS = ['packed', 'event_idx', 'indirect_desc', 'emergency-write'] as const;
const BAD_BOOLS = ['maybe', '2', 'onn', 'TRUE!'];
const SOCKET_BOOLS = ['server', 'wait', 'nodelay'] as const;
const BAD_IDS = ['1abc', 'a b', 'a/b', '-x', '_x', 'é'];
const BACKENDS_NEEDING = [
  ['file', 'chardev: file: no filename given'],
  ['pipe', 'chardev: pipe: no device path given'],
  ['socket', 'chardev: socket: no address given (path=, host= or fd=)'],
] as const;

export const QEMU_ARG_CASES: ArgCase[] = [
  // Option syntax.
  { args: ['-foo'], message: '-foo: invalid option' },
  { args: ['-chardev'], message: '-chardev: requires an argument' },
  { args: ['-device'], message: '-device: requires an argument' },
  { args: ['-mon'], message: '-mon: requires an argument' },
  { args: ['-device', ''], message: "-device : Parameter 'driver' is missing" },
  { args: ['-chardev', ''], message: '-chardev : chardev: no id specified' },
  { args: ['-chardev', ','], message: '-chardev ,: chardev: no id specified' },
  { args: ['-chardev', 'null'], message: '-chardev null: chardev: no id specified' },
  {
    args: ['-chardev', 'bogus,id=x'],
    message: "-chardev bogus,id=x: 'bogus' is not a valid char driver name",
  },
  {
    args: ['-chardev', 'null,id=a,bogus=1'],
    message: "-chardev null,id=a,bogus=1: Invalid parameter 'bogus'",
  },
  {
    args: ['-chardev', 'null,id=a', '-chardev', 'null,id=a'],
    message: "-chardev null,id=a: Duplicate ID 'a' for chardev",
  },
  {
    args: ['-chardev', 'stdio,id=a', '-chardev', 'stdio,id=b'],
    message: '-chardev stdio,id=b: cannot use stdio by multiple character devices',
  },
  ...BAD_IDS.map((id) => ({
    args: ['-chardev', `null,id=${id}`],
    message: `-chardev null,id=${id}: Parameter 'id' expects an identifier`,
  })),
  ...BACKENDS_NEEDING.map(([kind, why]) => ({
    args: ['-chardev', `${kind},id=x`],
    message: `-chardev ${kind},id=x: ${why}`,
  })),
  ...SOCKET_BOOLS.flatMap((key) =>
    BAD_BOOLS.map((v) => ({
      args: ['-chardev', `socket,id=s,path=/tmp/s,${key}=${v}`],
      message: `-chardev socket,id=s,path=/tmp/s,${key}=${v}: Parameter '${key}' expects 'on' or 'off'`,
    })),
  ),
  // ringbuf sizes: powers of two that fit QEMU's int; a bigger one is refused, never wrapped.
  {
    args: ['-chardev', 'ringbuf,id=r,size=1000'],
    message: '-chardev ringbuf,id=r,size=1000: size of ringbuf chardev must be power of two',
  },
  ...['64G', '4G', '2G', '1T', '4294967296', '8589934592'].map((size) => ({
    args: ['-chardev', `ringbuf,id=r,size=${size}`],
    message: `-chardev ringbuf,id=r,size=${size}: size of ringbuf chardev must be at most 1G (${size} does not fit QEMU's int)`,
  })),
  ...['-1', 'abc', '12Q'].map((size) => ({
    args: ['-chardev', `ringbuf,id=r,size=${size}`],
    message: `-chardev ringbuf,id=r,size=${size}: Parameter 'size' expects a non-negative number below 2^64`,
  })),
  // Device properties.
  ...UINT_PROPS.flatMap((key) =>
    BAD_UINTS.map(([v, type]) => ({
      args: ['-device', `virtio-serial,${key}=${v}`],
      message: `-device virtio-serial,${key}=${v}: Parameter '${key}' expects ${type}`,
    })),
  ),
  ...BAD_UINTS.map(([v, type]) => ({
    args: ['-device', 'virtio-serial', '-device', `virtserialport,nr=${v}`],
    message: `-device virtserialport,nr=${v}: Parameter 'nr' expects ${type}`,
  })),
  ...DEVICE_BOOLS.flatMap((key) =>
    BAD_BOOLS.slice(0, 2).map((v) => ({
      args: ['-device', `virtio-serial,${key}=${v}`],
      message: `-device virtio-serial,${key}=${v}: Parameter '${key}' expects 'on' or 'off'`,
    })),
  ),
  {
    args: ['-device', 'virtio-serial,max_ports=0'],
    message: '-device virtio-serial,max_ports=0: Maximum number of serial ports not specified',
  },
  {
    args: ['-device', 'virtio-serial,max_ports=600'],
    message: '-device virtio-serial,max_ports=600: maximum ports supported: 511',
  },
  {
    args: ['-device', 'virtio-serial,id=a', '-device', 'virtio-serial,id=a'],
    message: "-device virtio-serial,id=a: Duplicate ID 'a' for device",
  },
  {
    args: ['-device', 'virtio-serial,help'],
    message: "-device virtio-serial,help: Property 'virtio-serial-pci.help' not found",
  },
  // Unknown and misspelt drivers: named as such, never as a missing bus.
  ...[
    'virtioserialport',
    'virtconsol',
    'virtserialprot',
    'virtio-serail',
    'virtio-serial-pcii',
  ].map((d) => ({
    args: ['-device', d],
    message: `-device ${d}: '${d}' is not a valid device model name`,
  })),
  ...['virtserialprot', 'virtconsle'].map((d) => ({
    args: ['-device', 'virtio-serial', '-device', `${d},bus=virtio-serial-bus.0`],
    message: `-device ${d},bus=virtio-serial-bus.0: '${d}' is not a valid device model name`,
  })),
  // Ports and buses.
  {
    args: ['-device', 'virtserialport,chardev=nope'],
    message:
      "-device virtserialport,chardev=nope: No 'virtio-serial-bus' bus found for device 'virtserialport'",
  },
  {
    args: ['-device', 'virtconsole'],
    message: "-device virtconsole: No 'virtio-serial-bus' bus found for device 'virtconsole'",
  },
  {
    args: ['-device', 'virtio-serial', '-device', 'virtserialport,bus=nope.0'],
    message: "-device virtserialport,bus=nope.0: Bus 'nope.0' not found",
  },
  {
    args: ['-device', 'virtio-serial', '-device', 'virtserialport,chardev=missing'],
    message:
      "-device virtserialport,chardev=missing: Property 'virtserialport.chardev' can't find value 'missing'",
  },
  {
    args: ['-device', 'virtio-serial', '-device', 'virtserialport,nr=0'],
    message:
      /^-device virtserialport,bus=virtio-serial-bus\.0,nr=0: Port number 0 on virtio-serial devices reserved for virtconsole devices for backward compatibility\.$/,
  },
  {
    args: [
      '-device',
      'virtio-serial',
      '-device',
      'virtserialport,name=a',
      '-device',
      'virtserialport,name=a',
    ],
    message:
      /^-device virtserialport,bus=virtio-serial-bus\.0,name=a: virtio-serial-bus: A port already exists by name a$/,
  },
  {
    args: [
      '-device',
      'virtio-serial',
      '-device',
      'virtconsole,nr=1',
      '-device',
      'virtconsole,nr=1',
    ],
    message:
      /^-device virtconsole,bus=virtio-serial-bus\.0,nr=1: virtio-serial-bus: A port already exists at id 1$/,
  },
  {
    args: ['-device', 'virtio-serial,max_ports=2', '-device', 'virtserialport,nr=5'],
    message:
      /^-device virtserialport,bus=virtio-serial-bus\.0,nr=5: virtio-serial-bus: Out-of-range port id specified, max\. allowed: 1$/,
  },
  ...(
    [
      ['null,id=a,mux=maybe', 'mux'],
      ['file,id=a,path=/tmp/f,append=maybe', 'append'],
      ['null,id=a,logappend=maybe', 'logappend'],
      ['socket,id=a,path=/tmp/s,server=on,telnet=maybe', 'telnet'],
    ] as const
  ).map(([arg, key]) => ({
    args: ['-chardev', arg],
    message: new RegExp(
      `^-chardev ${arg}: (Parameter '${key}' expects 'on' or 'off'|Invalid parameter '${key}')$`,
    ),
  })),
  // Monitors.
  { args: ['-mon', 'chardev=nope'], message: '-mon chardev=nope: chardev "nope" not found' },
  {
    args: ['-mon', 'chardev=x,mode=weird'],
    message: "-mon chardev=x,mode=weird: Parameter 'mode' does not accept value 'weird'",
  },
  { args: ['-qmp', 'bogus:x'], message: "-qmp bogus:x: 'bogus:x' is not a valid char driver" },
];
