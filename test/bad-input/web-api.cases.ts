/**
 * Bad requests to the app's API (issue 13 corpus), as a page or a script
 * with the token could send them over the WebSocket: each with the one
 * line the answer must carry.
 */
export interface ApiCase {
  name: string;
  command: unknown;
  kind: 'InvalidRequest' | 'NotFound' | 'Refused' | 'ParseError' | 'IoError' | 'Unsupported';
  message: string | RegExp;
}

const ref = { device: 'vser0', nr: 1 };
const BAD_REFS: [string, unknown, RegExp][] = [
  ['missing port', undefined, /^port: /],
  ['port as a string', 'vser0:1', /^port: /],
  [
    'nr as a string',
    { device: 'vser0', nr: 'x' },
    /^port\.nr: Invalid input: expected number, received string$/,
  ],
  ['negative nr', { device: 'vser0', nr: -1 }, /^port\.nr: Too small/],
  ['huge nr', { device: 'vser0', nr: 2 ** 40 }, /^port\.nr: Too big/],
  ['fractional nr', { device: 'vser0', nr: 1.5 }, /^port\.nr: /],
  ['empty device', { device: '', nr: 1 }, /^port\.device: /],
];
const PORT_COMMANDS = ['unplugPort', 'disconnectHost', 'writeHost', 'writeGuest'] as const;

export const API_CASES: ApiCase[] = [
  { name: 'null', command: null, kind: 'InvalidRequest', message: /^Invalid input/ },
  { name: 'a number', command: 42, kind: 'InvalidRequest', message: /^Invalid input/ },
  { name: 'a string', command: 'hello', kind: 'InvalidRequest', message: /^Invalid input/ },
  { name: 'an array', command: [], kind: 'InvalidRequest', message: /^Invalid input/ },
  { name: 'no cmd', command: {}, kind: 'InvalidRequest', message: /^cmd: / },
  {
    name: 'unknown cmd',
    command: { cmd: 'formatDisk' },
    kind: 'InvalidRequest',
    message: /^cmd: /,
  },
  { name: 'cmd as a number', command: { cmd: 1 }, kind: 'InvalidRequest', message: /^cmd: / },
  {
    name: '__proto__ cmd',
    command: { cmd: '__proto__' },
    kind: 'InvalidRequest',
    message: /^cmd: /,
  },
  ...PORT_COMMANDS.flatMap((cmd) =>
    BAD_REFS.map(([what, port, message]) => ({
      name: `${cmd}: ${what}`,
      command: { cmd, port, ...(cmd.startsWith('write') ? { data: 'x' } : {}) },
      kind: 'InvalidRequest' as const,
      message,
    })),
  ),
  ...(['writeHost', 'writeGuest'] as const).flatMap((cmd) => [
    {
      name: `${cmd}: no data`,
      command: { cmd, port: ref },
      kind: 'InvalidRequest' as const,
      message: /^data: /,
    },
    {
      name: `${cmd}: data as a number`,
      command: { cmd, port: ref, data: 5 },
      kind: 'InvalidRequest' as const,
      message: /^data: /,
    },
    {
      name: `${cmd}: base64 as a string`,
      command: { cmd, port: ref, data: 'x', base64: 'yes' },
      kind: 'InvalidRequest' as const,
      message: /^base64: /,
    },
    {
      name: `${cmd}: a port that is not there`,
      command: { cmd, port: { device: 'vser9', nr: 3 }, data: 'x' },
      kind: 'NotFound' as const,
      message: /vser9/,
    },
  ]),
  ...(['unplugPort', 'disconnectHost'] as const).map((cmd) => ({
    name: `${cmd}: a port that is not there`,
    command: { cmd, port: { device: 'vser9', nr: 3 } },
    kind: 'NotFound' as const,
    message: /vser9/,
  })),
  {
    name: 'createDevice: no device',
    command: { cmd: 'createDevice' },
    kind: 'InvalidRequest',
    message: /^device: /,
  },
  {
    name: 'createDevice: bad id',
    command: { cmd: 'createDevice', device: { id: '1 bad' } },
    kind: 'Refused',
    message: "Parameter 'id' expects an identifier",
  },
  {
    name: 'createDevice: max_ports 0',
    command: { cmd: 'createDevice', device: { id: 'v', maxPorts: 0 } },
    kind: 'Refused',
    message: 'Maximum number of serial ports not specified',
  },
  {
    name: 'removeDevice: not there',
    command: { cmd: 'removeDevice', device: 'nope' },
    kind: 'NotFound',
    message: /nope/,
  },
  {
    name: 'removeChardev: not there',
    command: { cmd: 'removeChardev', id: 'nope' },
    kind: 'NotFound',
    message: /nope/,
  },
  {
    name: 'createChardev: unknown backend',
    command: { cmd: 'createChardev', chardev: { id: 'c', backend: { kind: 'telepathy' } } },
    kind: 'InvalidRequest',
    message: /^chardev\.backend\.kind: /,
  },
  {
    name: 'createChardev: tcp port 70000',
    command: { cmd: 'createChardev', chardev: { id: 'c', backend: { kind: 'tcp', port: 70000 } } },
    kind: 'InvalidRequest',
    message: /^chardev\.backend\.port: must be at most 65535/,
  },
  {
    name: 'createChardev: ringbuf size 3',
    command: { cmd: 'createChardev', chardev: { id: 'c', backend: { kind: 'ringbuf', size: 3 } } },
    // The ringbuf kind's own record checks the form (one rule on every face).
    kind: 'InvalidRequest',
    message: /power of two/,
  },
  {
    name: 'createChardev: ringbuf size 64G',
    command: {
      cmd: 'createChardev',
      chardev: { id: 'c', backend: { kind: 'ringbuf', size: 2 ** 36 } },
    },
    kind: 'InvalidRequest',
    message: /^chardev\.backend\.size: must be at most 1073741824/,
  },
  {
    name: 'createChardev: empty file path',
    command: { cmd: 'createChardev', chardev: { id: 'c', backend: { kind: 'file', path: '' } } },
    kind: 'InvalidRequest',
    message: /^chardev\.backend\.path: /,
  },
  {
    name: 'hotplugPort: no device to plug into',
    command: { cmd: 'hotplugPort', port: { driver: 'virtserialport', name: 'x' } },
    kind: 'Refused',
    message: /bus/,
  },
  {
    name: 'hotplugPort: unknown driver',
    command: { cmd: 'hotplugPort', port: { driver: 'virtio-blk', name: 'x' } },
    kind: 'InvalidRequest',
    message: /^port\.driver: /,
  },
  {
    name: 'step: count 0',
    command: { cmd: 'step', count: 0 },
    kind: 'InvalidRequest',
    message: /^count: Too small/,
  },
  {
    name: 'step: count 10^9',
    command: { cmd: 'step', count: 1e9 },
    kind: 'InvalidRequest',
    message: /^count: Too big/,
  },
  {
    name: 'loadLab: unknown lab',
    command: { cmd: 'loadLab', lab: 'mars' },
    kind: 'InvalidRequest',
    message: /^lab: /,
  },
  {
    name: 'importConfig: unknown format',
    command: { cmd: 'importConfig', format: 'yaml', text: 'x' },
    kind: 'InvalidRequest',
    message: /^format: /,
  },
  {
    name: 'importConfig: qemu line without a device',
    command: { cmd: 'importConfig', format: 'qemu', text: '-m 512' },
    kind: 'ParseError',
    message: 'no virtio-serial device on this command line (-device virtio-serial-pci,...)',
  },
  {
    name: 'importConfig: qemu syntax error',
    command: { cmd: 'importConfig', format: 'qemu', text: '-chardev bogus,id=x' },
    kind: 'ParseError',
    message: "-chardev bogus,id=x: 'bogus' is not a valid char driver name",
  },
  {
    name: 'importConfig: unbalanced quote',
    command: { cmd: 'importConfig', format: 'qemu', text: "-device 'virtio-serial" },
    kind: 'ParseError',
    message: /quote/,
  },
  {
    name: 'attach: empty address',
    command: { cmd: 'attach', address: '  ' },
    kind: 'InvalidRequest',
    message: /^address: /,
  },
  {
    name: 'attach: nothing listening',
    command: { cmd: 'attach', address: '/nonexistent/qmp.sock' },
    kind: 'IoError',
    message: /\/nonexistent\/qmp\.sock/,
  },
  {
    name: 'openCapture: empty path',
    command: { cmd: 'openCapture', path: '' },
    kind: 'InvalidRequest',
    message: /^path: /,
  },
  {
    name: 'openCapture: missing file',
    command: { cmd: 'openCapture', path: '/nonexistent/x.pcapng' },
    kind: 'IoError',
    message: /^cannot open capture: .*(ENOENT|no such file)/i,
  },
  {
    name: 'openCapture: /dev/zero',
    command: { cmd: 'openCapture', path: '/dev/zero' },
    kind: 'IoError',
    message:
      'not a capture file: it is a character device; vmchan reads captures from regular files',
  },
  {
    name: 'openCapture: a directory',
    command: { cmd: 'openCapture', path: '/tmp' },
    kind: 'IoError',
    message: 'not a capture file: it is a directory; vmchan reads captures from regular files',
  },
  {
    name: 'saveCapture: nothing captured',
    command: { cmd: 'saveCapture', path: '/tmp/never-written.pcapng' },
    kind: 'Refused',
    message: 'nothing captured yet: press Capture first',
  },
  {
    name: 'startCapture: a directory that is not there',
    command: { cmd: 'startCapture', path: '/nonexistent/dir/x.pcapng' },
    kind: 'IoError',
    message: /^\/nonexistent\/dir\/x\.pcapng: cannot create capture file: /,
  },
  {
    name: 'startCapture: /dev/null',
    command: { cmd: 'startCapture', path: '/dev/null' },
    kind: 'Refused',
    message:
      '/dev/null: cannot create capture file: it is a character device; a capture is written to a regular file',
  },
  {
    name: 'startCapture: a 5000-char path',
    command: { cmd: 'startCapture', path: 'x'.repeat(5000) },
    kind: 'InvalidRequest',
    message: /^path: Too big/,
  },
];
