import { describe, expect, test } from 'vitest';
import {
  parseQemuArgs,
  parseQemuCommandLine,
  type MachineErrorKind,
} from '../../core/machine/index.js';

interface Refusal {
  /** What the case is about, with the behaviour id it checks. */
  title: string;
  args: string[];
  kind: MachineErrorKind;
  /** QEMU 7.2's message. */
  message: string;
  /** The option at fault and its position in the argument list. */
  option: string;
  argIndex: number;
  key?: string;
  token?: string;
}

const ser = ['-device', 'virtio-serial'];

const refusals: Refusal[] = [
  // H2 syntax and values
  {
    title: "H2 a boolean that is not one: Parameter 'server' expects 'on' or 'off'",
    args: ['-chardev', 'socket,id=s,path=/tmp/s,server=maybe'],
    kind: 'InvalidValue',
    message: "Parameter 'server' expects 'on' or 'off'",
    option: '-chardev',
    argIndex: 0,
    key: 'server',
    token: 'server=maybe',
  },
  {
    title: 'H2 booleans are case-sensitive (ON is not on)',
    args: ['-chardev', 'socket,id=s,path=/tmp/s,server=ON'],
    kind: 'InvalidValue',
    message: "Parameter 'server' expects 'on' or 'off'",
    option: '-chardev',
    argIndex: 0,
    key: 'server',
  },
  {
    title: "H2 a key -chardev does not have: Invalid parameter 'bogus'",
    args: ['-chardev', 'socket,id=s,path=/tmp/s,bogus=1'],
    kind: 'InvalidParameter',
    message: "Invalid parameter 'bogus'",
    option: '-chardev',
    argIndex: 0,
    key: 'bogus',
    token: 'bogus=1',
  },
  {
    title: 'H2 a short form that is not a key (QEMU reads `socket` after id= as socket=on)',
    args: ['-chardev', 'id=s,socket,path=/tmp/s'],
    kind: 'InvalidParameter',
    message: "Invalid parameter 'socket'",
    option: '-chardev',
    argIndex: 0,
    key: 'socket',
  },
  {
    title: 'H2 a number that is not one',
    args: ['-chardev', 'socket,id=s,host=h,port=1,reconnect=soon'],
    kind: 'InvalidValue',
    message: "Parameter 'reconnect' expects a number",
    option: '-chardev',
    argIndex: 0,
    key: 'reconnect',
  },
  {
    title: 'H2 a size that is not one',
    args: ['-chardev', 'ringbuf,id=r,size=lots'],
    kind: 'InvalidValue',
    message: "Parameter 'size' expects a non-negative number below 2^64",
    option: '-chardev',
    argIndex: 0,
    key: 'size',
  },
  {
    title: "H2 an id that is not an identifier (a letter, then letters, digits, '-', '.', '_')",
    args: ['-chardev', 'pty,id=1abc'],
    kind: 'InvalidId',
    message: "Parameter 'id' expects an identifier",
    option: '-chardev',
    argIndex: 0,
    key: 'id',
    token: '1abc',
  },
  {
    title: 'H2 device ids follow the same rule',
    args: ['-device', 'virtio-serial,id=_vser'],
    kind: 'InvalidId',
    message: "Parameter 'id' expects an identifier",
    option: '-device',
    argIndex: 0,
    token: '_vser',
  },
  {
    title: 'H2 a duplicate chardev id',
    args: ['-chardev', 'pty,id=x', '-chardev', 'null,id=x'],
    kind: 'DuplicateId',
    message: "Duplicate ID 'x' for chardev",
    option: '-chardev',
    argIndex: 2,
    token: 'x',
  },
  {
    title: 'H2 a -chardev that takes the name -qmp already gave its chardev',
    args: ['-qmp', 'stdio', '-chardev', 'pty,id=compat_monitor0'],
    kind: 'DuplicateId',
    message: "Duplicate ID 'compat_monitor0' for chardev",
    option: '-chardev',
    argIndex: 2,
  },
  {
    title: 'H2 a duplicate device id (ports and controllers share one namespace)',
    args: [...ser, '-device', 'virtserialport,id=p', '-device', 'virtconsole,id=p'],
    kind: 'DuplicateId',
    message: "Duplicate ID 'p' for device",
    option: '-device',
    argIndex: 4,
  },
  {
    title: 'an option QEMU does not have',
    args: ['-m', '512', '-frobnicate'],
    kind: 'InvalidOption',
    message: 'invalid option',
    option: '-frobnicate',
    argIndex: 2,
  },
  {
    title: 'an option without its argument',
    args: ['-nographic', '-m'],
    kind: 'MissingArgument',
    message: 'requires an argument',
    option: '-m',
    argIndex: 1,
  },
  {
    title: 'JSON -device is not read yet',
    args: ['-device', '{"driver":"virtserialport"}'],
    kind: 'Unsupported',
    message: 'vmchan does not read the JSON form of -device yet',
    option: '-device',
    argIndex: 0,
  },
  // H1 chardev creation
  {
    title: 'H1 a chardev without id',
    args: ['-chardev', 'socket,path=/tmp/foo,server=on'],
    kind: 'MissingId',
    message: 'chardev: no id specified',
    option: '-chardev',
    argIndex: 0,
  },
  {
    title: 'H1 a chardev without backend',
    args: ['-chardev', 'id=x'],
    kind: 'MissingBackend',
    message: 'chardev: "x" missing backend',
    option: '-chardev',
    argIndex: 0,
  },
  {
    title: "H1 an unknown backend: 'foo' is not a valid char driver name",
    args: ['-chardev', 'foo,id=x'],
    kind: 'UnknownBackend',
    message: "'foo' is not a valid char driver name",
    option: '-chardev',
    argIndex: 0,
    key: 'backend',
    token: 'foo',
  },
  {
    title: 'H1 pipe without path',
    args: ['-chardev', 'pipe,id=p'],
    kind: 'BackendOption',
    message: 'chardev: pipe: no device path given',
    option: '-chardev',
    argIndex: 0,
  },
  {
    title: 'H1 file without path',
    args: ['-chardev', 'file,id=f'],
    kind: 'BackendOption',
    message: 'chardev: file: no filename given',
    option: '-chardev',
    argIndex: 0,
  },
  {
    title: 'H1 serial/tty without path',
    args: ['-chardev', 'tty,id=t'],
    kind: 'BackendOption',
    message: 'chardev: serial/tty: no device path given',
    option: '-chardev',
    argIndex: 0,
  },
  {
    title: 'H1 udp without remote port',
    args: ['-chardev', 'udp,id=u,host=10.0.0.1'],
    kind: 'BackendOption',
    message: 'chardev: udp: remote port not specified',
    option: '-chardev',
    argIndex: 0,
  },
  {
    title: 'H1 tcp socket without port',
    args: ['-chardev', 'socket,id=s,host=localhost'],
    kind: 'BackendOption',
    message: 'chardev: socket: no port given',
    option: '-chardev',
    argIndex: 0,
  },
  {
    title: 'H1 a socket with both path and host',
    args: ['-chardev', 'socket,id=s,path=/tmp/s,host=localhost,port=1'],
    kind: 'BackendOption',
    message: "None or one of 'path', 'fd' or 'host' option required.",
    option: '-chardev',
    argIndex: 0,
  },
  {
    title: 'H1 delay and nodelay together',
    args: ['-chardev', 'socket,id=s,host=h,port=1,delay=on,nodelay=on'],
    kind: 'BackendOption',
    message: "'delay' and 'nodelay' are mutually exclusive",
    option: '-chardev',
    argIndex: 0,
  },
  {
    title: 'H1 reconnect on a server socket',
    args: ['-chardev', 'socket,id=s,path=/tmp/s,server=on,reconnect=2'],
    kind: 'BackendOption',
    message: "'reconnect' option is incompatible with socket in server listen mode",
    option: '-chardev',
    argIndex: 0,
    key: 'reconnect',
    token: 'reconnect=2',
  },
  {
    title: 'H1 wait on a client socket',
    args: ['-chardev', 'socket,id=s,path=/tmp/s,nowait'],
    kind: 'BackendOption',
    message: "'wait' option is incompatible with socket in client connect mode",
    option: '-chardev',
    argIndex: 0,
    key: 'wait',
    token: 'nowait',
  },
  {
    title: 'H1 ringbuf size not a power of two',
    args: ['-chardev', 'ringbuf,id=r,size=1000'],
    kind: 'BackendOption',
    message: 'size of ringbuf chardev must be power of two',
    option: '-chardev',
    argIndex: 0,
    key: 'size',
    token: 'size=1000',
  },
  {
    title: 'H1 two stdio chardevs',
    args: ['-chardev', 'stdio,id=a', '-chardev', 'stdio,id=b'],
    kind: 'BackendOption',
    message: 'cannot use stdio by multiple character devices',
    option: '-chardev',
    argIndex: 2,
  },
  // H2 shorthands and monitors
  {
    title: "H2 a shorthand QEMU does not know: 'bogus:thing' is not a valid char driver",
    args: ['-qmp', 'bogus:thing'],
    kind: 'CompatSyntax',
    message: "'bogus:thing' is not a valid char driver",
    option: '-qmp',
    argIndex: 0,
  },
  {
    title: 'H2 tcp: without a port',
    args: ['-monitor', 'tcp:localhost'],
    kind: 'CompatSyntax',
    message: 'parse error: tcp:localhost',
    option: '-monitor',
    argIndex: 0,
  },
  {
    title: 'H2 a bad key inside a shorthand',
    args: ['-qmp', 'unix:/tmp/q,server=maybe'],
    kind: 'InvalidValue',
    message: "Parameter 'server' expects 'on' or 'off'",
    option: '-qmp',
    argIndex: 0,
  },
  {
    title: '-mon on a chardev that does not exist',
    args: ['-mon', 'chardev=nope'],
    kind: 'ChardevNotFound',
    message: 'chardev "nope" not found',
    option: '-mon',
    argIndex: 0,
  },
  {
    title: '-mon with an unknown mode',
    args: ['-chardev', 'pty,id=c', '-mon', 'chardev=c,mode=fancy'],
    kind: 'InvalidValue',
    message: "Parameter 'mode' does not accept value 'fancy'",
    option: '-mon',
    argIndex: 2,
  },
  {
    title: '-mon pretty on an HMP monitor',
    args: ['-chardev', 'pty,id=c', '-mon', 'chardev=c,pretty=on'],
    kind: 'InvalidValue',
    message: "'pretty' is not compatible with HMP monitors",
    option: '-mon',
    argIndex: 2,
  },
  {
    title: '-mon without chardev',
    args: ['-mon', 'mode=control'],
    kind: 'MissingParameter',
    message: "Parameter 'chardev' is missing",
    option: '-mon',
    argIndex: 0,
  },
  {
    title: "seed 002's `-mon ...,default` (gone from QEMU 7.2)",
    args: ['-chardev', 'stdio,mux=on,id=char0', '-mon', 'chardev=char0,mode=readline,default'],
    kind: 'InvalidParameter',
    message: "Invalid parameter 'default'",
    option: '-mon',
    argIndex: 2,
  },
  // D1 devices
  {
    title: "D1 max_ports that is not a number: Parameter 'max_ports' expects integer",
    args: ['-device', 'virtio-serial,max_ports=abc'],
    kind: 'InvalidValue',
    message: "Parameter 'max_ports' expects integer",
    option: '-device',
    argIndex: 0,
    key: 'max_ports',
    token: 'max_ports=abc',
  },
  {
    title: 'D1 max_ports beyond uint32',
    args: ['-device', 'virtio-serial,max_ports=5000000000'],
    kind: 'InvalidValue',
    message: "Parameter 'max_ports' expects uint32_t",
    option: '-device',
    argIndex: 0,
  },
  {
    title: 'D1 max_ports above 511 names the limit',
    args: ['-device', 'virtio-serial-pci,id=v,max_ports=512'],
    kind: 'DeviceLimit',
    message: 'maximum ports supported: 511',
    option: '-device',
    argIndex: 0,
    key: 'max_ports',
    token: 'max_ports=512',
  },
  {
    title: 'D1 max_ports=0',
    args: ['-device', 'virtio-serial,max_ports=0'],
    kind: 'DeviceLimit',
    message: 'Maximum number of serial ports not specified',
    option: '-device',
    argIndex: 0,
  },
  {
    title: 'D1 a boolean property that is not one',
    args: ['-device', 'virtio-serial,emergency-write=maybe'],
    kind: 'InvalidValue',
    message: "Parameter 'emergency-write' expects 'on' or 'off'",
    option: '-device',
    argIndex: 0,
  },
  {
    title: 'a property the controller does not have (named by its QOM type, virtio-serial-pci)',
    args: ['-device', 'virtio-serial,vectorz=2'],
    kind: 'PropertyNotFound',
    message: "Property 'virtio-serial-pci.vectorz' not found",
    option: '-device',
    argIndex: 0,
    key: 'vectorz',
  },
  {
    title: 'vectors is a PCI property: virtio-serial-device has none',
    args: ['-device', 'virtio-serial-device,vectors=2'],
    kind: 'PropertyNotFound',
    message: "Property 'virtio-serial-device.vectors' not found",
    option: '-device',
    argIndex: 0,
  },
  {
    title: 'a typo of a virtio-serial driver is refused, not silently ignored',
    args: ['-device', 'virtserialprot,chardev=x'],
    kind: 'UnknownDevice',
    message: "'virtserialprot' is not a valid device model name",
    option: '-device',
    argIndex: 0,
    key: 'driver',
    token: 'virtserialprot',
  },
  {
    title: '-device without a driver',
    args: ['-device', 'id=x'],
    kind: 'MissingParameter',
    message: "Parameter 'driver' is missing",
    option: '-device',
    argIndex: 0,
  },
  // ports
  {
    title: 'a port without any virtio-serial device',
    args: ['-chardev', 'pty,id=c', '-device', 'virtserialport,chardev=c'],
    kind: 'BusNotFound',
    message: "No 'virtio-serial-bus' bus found for device 'virtserialport'",
    option: '-device',
    argIndex: 2,
  },
  {
    title: 'virtioconsole is named by its type, virtconsole',
    args: ['-device', 'virtioconsole'],
    kind: 'BusNotFound',
    message: "No 'virtio-serial-bus' bus found for device 'virtconsole'",
    option: '-device',
    argIndex: 0,
  },
  {
    title: 'a port on a bus that does not exist',
    args: [...ser, '-device', 'virtserialport,bus=ser0.0'],
    kind: 'BusNotFound',
    message: "Bus 'ser0.0' not found",
    option: '-device',
    argIndex: 2,
    key: 'bus',
    token: 'bus=ser0.0',
  },
  {
    title: "the Fedora page's two-device example as written: its chardevs are never defined",
    args: [
      '-device', 'virtio-serial,id=ser0,max_ports=2',
      '-device', 'virtio-serial,id=ser1,max_ports=3',
      '-device', 'virtserialport,bus=ser0.0,chardev=portchar0,id=port0,name=org.fedoraproject.port.0',
    ], // prettier-ignore
    kind: 'ChardevNotFound',
    message: "Property 'virtserialport.chardev' can't find value 'portchar0'",
    option: '-device',
    argIndex: 4,
    key: 'chardev',
    token: 'portchar0',
  },
  {
    title: 'a port on a chardev another port has (scenario.log q16)',
    args: [
      '-chardev',
      'pty,id=c1',
      ...ser,
      '-device',
      'virtserialport,chardev=c1',
      '-device',
      'virtserialport,chardev=c1,name=dup',
    ],
    kind: 'ChardevInUse',
    message: "Property 'virtserialport.chardev' can't take value 'c1': Device 'c1' is in use",
    option: '-device',
    argIndex: 6,
    token: 'c1',
  },
  {
    title:
      'monitors come before devices whatever the order on the line: the port finds the chardev taken',
    args: ['-chardev', 'pty,id=c', ...ser, '-device', 'virtconsole,chardev=c', '-mon', 'chardev=c'],
    kind: 'ChardevInUse',
    message: "Property 'virtconsole.chardev' can't take value 'c': Device 'c' is in use",
    option: '-device',
    argIndex: 4,
  },
  {
    title: 'a device vmchan does not model still takes its chardev (isa-serial)',
    args: [
      '-chardev',
      'pty,id=c',
      '-device',
      'isa-serial,chardev=c',
      ...ser,
      '-device',
      'virtserialport,chardev=c',
    ],
    kind: 'ChardevInUse',
    message: "Property 'virtserialport.chardev' can't take value 'c': Device 'c' is in use",
    option: '-device',
    argIndex: 6,
  },
  {
    title: 'H1 a mux chardev takes four frontends, not five',
    args: [
      '-chardev', 'pty,mux=on,id=m', ...ser,
      '-device', 'virtserialport,chardev=m', '-device', 'virtserialport,chardev=m',
      '-device', 'virtserialport,chardev=m', '-device', 'virtserialport,chardev=m',
      '-device', 'virtserialport,chardev=m',
    ], // prettier-ignore
    kind: 'ChardevInUse',
    message: "Property 'virtserialport.chardev' can't take value 'm': Device 'm' is in use",
    option: '-device',
    argIndex: 12,
  },
  {
    title: "a property ports do not have: Property 'virtserialport.foo' not found",
    args: [...ser, '-device', 'virtserialport,foo=1'],
    kind: 'PropertyNotFound',
    message: "Property 'virtserialport.foo' not found",
    option: '-device',
    argIndex: 2,
    key: 'foo',
    token: 'foo=1',
  },
  {
    title: "D3 nr that is not a number: Parameter 'nr' expects integer",
    args: [...ser, '-device', 'virtserialport,nr=one'],
    kind: 'InvalidValue',
    message: "Parameter 'nr' expects integer",
    option: '-device',
    argIndex: 2,
  },
];

describe('malformed command lines are refused with QEMU 7.2 words, naming option and token (H1, H2, D1)', () => {
  test.each(refusals)('$title', (r) => {
    const result = parseQemuArgs(r.args);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const e = result.error;
    expect(e.kind).toBe(r.kind);
    expect(e.message).toBe(r.message);
    expect(e.option).toBe(r.option);
    expect(e.argIndex).toBe(r.argIndex);
    if (r.key !== undefined) expect(e.key).toBe(r.key);
    if (r.token !== undefined) expect(e.token).toBe(r.token);
    // QEMU's own line shape: "<option> <argument>: <message>"
    const arg = r.args[r.argIndex + 1];
    if (e.arg !== undefined) expect(e.toString()).toBe(`${r.option} ${arg}: ${r.message}`);
  });

  test('errors are values with a JSON form, never exceptions', () => {
    const r = parseQemuArgs(['-chardev', 'socket,id=s,path=/x,server=maybe']);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(JSON.parse(JSON.stringify(r.error))).toMatchObject({
      kind: 'InvalidValue',
      option: '-chardev',
      key: 'server',
    });
  });

  test('an unterminated quote in a pasted command line', () => {
    const r = parseQemuCommandLine(`qemu-system-x86_64 -append "console=ttyS0`);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.kind).toBe('ShellSyntax');
  });
});
