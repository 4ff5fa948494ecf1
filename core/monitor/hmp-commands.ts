/**
 * HMP's command table (hmp-commands.hx and hmp-commands-info.hx, the
 * commands vmchan has) and what each does, printed as QEMU prints it.
 * QEMU sorts its table by name at start-up, which is the order `help`
 * lists.
 */
import { buildChardev, checkChardevPairs, ChardevOpts } from '../machine/qemu-chardev.js';
import { idMessage, splitOpts } from '../machine/qemu-options.js';
import type { RunningMachine } from '../machine/running.js';
import { QemuError, isQemuError } from '../base/qemu-error.js';
import { deviceAdd } from './device-add.js';
import type { MonitorHub } from './hub.js';
import { ringbufCheck } from './machine-view.js';
import { infoQtree } from './qtree.js';
import { QEMU_PACKAGE, QEMU_VERSION_TEXT } from './version.js';

/** What a command needs from the monitor running it. */
export interface HmpContext {
  readonly machine: RunningMachine;
  readonly hub: MonitorHub;
  /** monitor_printf: text, newlines as CRLF. */
  print(text: string): void;
  /** Bytes as they are (ringbuf_read). */
  printBytes(bytes: Uint8Array): void;
  /** hmp_handle_error: "Error: <message>". */
  report(error: QemuError | null): void;
}

/** monitor_parse_arguments' types: s string, S? rest of line, s? optional, O opts, i integer. */
export type ArgType = 's' | 'S?' | 's?' | 'O' | 'i';

export interface HmpCommand {
  name: string;
  args: readonly [string, ArgType][];
  params: string;
  help: string;
  sub?: readonly HmpCommand[];
  run?: (hmp: HmpContext, args: Map<string, string | number>) => Promise<void> | void;
}

const INFO: readonly HmpCommand[] = [
  {
    name: 'chardev',
    args: [],
    params: '',
    help: 'show the character devices',
    run: (hmp) => {
      for (const c of hmp.machine.chardevs()) hmp.print(`${c.id}: filename=${c.filename}\n`);
    },
  },
  {
    name: 'qtree',
    args: [],
    params: '',
    help: 'show device tree',
    run: (hmp) => hmp.print(infoQtree(hmp.machine)),
  },
  {
    name: 'status',
    args: [],
    params: '',
    help: 'show the current VM status (running|paused)',
    run: (hmp) => hmp.print('VM status: running\n'),
  },
  {
    name: 'version',
    args: [],
    params: '',
    help: 'show the version of QEMU',
    run: (hmp) => hmp.print(`${QEMU_VERSION_TEXT} (${QEMU_PACKAGE})\n`),
  },
];

/** hmp-commands.hx, sorted by name as QEMU sorts its table at start-up. */
export const COMMANDS: readonly HmpCommand[] = [
  {
    name: 'chardev-add',
    args: [['args', 's']],
    params: 'args',
    help: 'add chardev',
    run: (hmp, a) => chardevAdd(hmp, a.get('args') as string),
  },
  {
    name: 'chardev-change',
    args: [
      ['id', 's'],
      ['args', 's'],
    ],
    params: 'id args',
    help: 'change chardev',
    run: (hmp, a) => chardevChange(hmp, a.get('id') as string, a.get('args') as string),
  },
  {
    name: 'chardev-remove',
    args: [['id', 's']],
    params: 'id',
    help: 'remove chardev',
    run: async (hmp, a) => hmp.report(await hmp.machine.chardevRemove(a.get('id') as string)),
  },
  {
    name: 'device_add',
    args: [['device', 'O']],
    params: 'driver[,prop=value][,...]',
    help: 'add device, like -device on the command line',
    run: (hmp, a) => hmpDeviceAdd(hmp, a.get('device') as string | undefined),
  },
  {
    name: 'device_del',
    args: [['id', 's']],
    params: 'device',
    help: 'remove device',
    run: (hmp, a) => hmp.report(hmp.machine.deviceDel(a.get('id') as string)),
  },
  {
    name: 'help|?',
    args: [['name', 'S?']],
    params: '[cmd]',
    help: 'show the help',
    run: (hmp, a) => help(hmp, a.get('name') as string | undefined),
  },
  {
    name: 'info',
    args: [['item', 's?']],
    params: '[subcommand]',
    help: 'show various information about the system state',
    sub: INFO,
    run: (hmp) => help(hmp, 'info'),
  },
  {
    name: 'quit|q',
    args: [],
    params: '',
    help: 'quit the emulator',
    run: (hmp) => hmp.hub.quit(),
  },
  {
    name: 'ringbuf_read',
    args: [
      ['device', 's'],
      ['size', 'i'],
    ],
    params: 'device size',
    help: 'Read from a ring buffer character device',
    run: (hmp, a) => ringbufRead(hmp, a.get('device') as string, a.get('size') as number),
  },
  {
    name: 'ringbuf_write',
    args: [
      ['device', 's'],
      ['data', 's'],
    ],
    params: 'device data',
    help: 'Write to a ring buffer character device',
    run: (hmp, a) => {
      const device = a.get('device') as string;
      const bad = ringbufCheck(hmp.machine, device);
      if (bad !== null) return hmp.report(bad);
      const data = new TextEncoder().encode(a.get('data') as string);
      hmp.report(hmp.machine.ringbufWrite(device, data));
    },
  },
];

/** search_dispatch_table: a name matches any of the command's aliases. */
export function matches(cmd: HmpCommand, name: string): boolean {
  return cmd.name.split('|').includes(name);
}

/** help_cmd: every command, or the one named (`help info chardev`), as `name params -- help`. */
export function help(hmp: HmpContext, name: string | undefined): void {
  const words = name === undefined ? [] : name.split(/[ \t]+/).filter((w) => w !== '');
  const dump = (cmd: HmpCommand, prefix: string): void =>
    hmp.print(`${prefix}${cmd.name} ${cmd.params} -- ${cmd.help}\n`);
  if (words.length === 0) {
    for (const cmd of COMMANDS) dump(cmd, '');
    return;
  }
  let table: readonly HmpCommand[] = COMMANDS;
  for (let i = 0; i < words.length; i++) {
    const cmd = table.find((c) => matches(c, words[i]!));
    if (cmd === undefined) {
      hmp.print(`unknown command: '${words.slice(0, i + 1).join(' ')}'\n`);
      return;
    }
    if (cmd.sub !== undefined && i + 1 === words.length) {
      for (const sub of cmd.sub) dump(sub, `${words.slice(0, i + 1).join(' ')} `);
      return;
    }
    if (cmd.sub === undefined) {
      dump(
        cmd,
        words
          .slice(0, i)
          .map((w) => `${w} `)
          .join(''),
      );
      return;
    }
    table = cmd.sub;
  }
}

/** hmp_chardev_add: option errors print, then "Parsing chardev args failed". */
async function chardevAdd(hmp: HmpContext, text: string): Promise<void> {
  const pairs = splitOpts(text, 'backend');
  const id = pairs.find((x) => x.key === 'id')?.value;
  const optsError =
    (id === undefined ? undefined : idMessage(id)) ?? checkChardevPairs(pairs)?.message;
  if (optsError !== undefined) {
    hmp.print(`${optsError}\n`);
    hmp.report(new QemuError('Parsing chardev args failed'));
    return;
  }
  const built = buildChardev(new ChardevOpts(id, pairs), { stdioInUse: false, daemonize: false });
  if (!built.ok) return hmp.report(new QemuError(built.error.message));
  hmp.report(await hmp.machine.chardevAdd(built.chardev));
}

/** hmp_chardev_change: the backend from `args` (which must not name an id), then chardev-change. */
async function chardevChange(hmp: HmpContext, id: string, text: string): Promise<void> {
  const pairs = splitOpts(text, 'backend');
  const optsError = checkChardevPairs(pairs)?.message;
  if (optsError !== undefined) {
    hmp.print(`${optsError}\n`);
    hmp.report(new QemuError('Parsing chardev args failed'));
    return;
  }
  if (pairs.some((x) => x.key === 'id'))
    return hmp.report(new QemuError("Unexpected 'id' parameter"));
  const built = buildChardev(new ChardevOpts(id, pairs), { stdioInUse: false, daemonize: false });
  if (!built.ok) return hmp.report(new QemuError(built.error.message));
  hmp.report(await hmp.machine.chardevChange(built.chardev, { portHotswap: hmp.hub.portHotswap }));
}

/** hmp_device_add: the `O` argument's pairs, then device_add as QMP runs it. */
function hmpDeviceAdd(hmp: HmpContext, text: string | undefined): void {
  const props = new Map<string, string>();
  let id: string | undefined;
  for (const pair of text === undefined ? [] : splitOpts(text, 'driver')) {
    if (pair.key === 'id') id ??= pair.value;
    else props.set(pair.key, pair.value);
  }
  hmp.report(deviceAdd(hmp.machine, props, id));
}

/** hmp_ringbuf_read: bytes up to the first NUL, backslashes doubled, controls as \uXXXX. */
function ringbufRead(hmp: HmpContext, device: string, size: number): void {
  const bad = ringbufCheck(hmp.machine, device);
  if (bad !== null) return hmp.report(bad);
  if (size <= 0) return hmp.report(new QemuError('size must be greater than zero'));
  const data = hmp.machine.ringbufRead(device, size);
  if (isQemuError(data)) return hmp.report(data);
  const out: number[] = [];
  for (const ch of data) {
    if (ch === 0) break;
    if (ch === 0x5c) out.push(0x5c, 0x5c);
    else if (ch === 0x0a)
      out.push(0x0d, 0x0a); // monitor_puts
    else if ((ch < 0x20 && ch !== 0x0a && ch !== 0x09) || ch === 0x7f) {
      out.push(...new TextEncoder().encode(`\\u${ch.toString(16).toUpperCase().padStart(4, '0')}`));
    } else out.push(ch);
  }
  hmp.printBytes(Uint8Array.from(out));
  hmp.print('\n');
}
