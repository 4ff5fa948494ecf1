/**
 * Reading a QEMU command line into a Topology, in QEMU's own order:
 *
 * 1. the arguments, left to right (softmmu/vl.c): unknown options and
 *    missing arguments are refused, each -chardev/-device/-mon is split
 *    into keys, its id checked (well-formed, not a duplicate within its
 *    list) and its typed keys parsed; -qmp/-monitor shorthands become a
 *    chardev plus a monitor at this point;
 * 2. every chardev is created, in order (qemu_create_early_backends);
 * 3. every monitor (qemu_create_late_backends);
 * 4. every -device, in order (qemu_create_cli_devices).
 *
 * QEMU stops at the first error, and so does this: the error is the one
 * QEMU 7.2 would print, with the argument, key and token it concerns.
 * Options outside the virtio-serial topology are kept verbatim in
 * `ignored`, so a real command line can be pasted whole.
 */
import {
  machineError,
  note,
  type MachineError,
  type MachineNote,
  type MachineResult,
  type MachineWhere,
} from './machine-error.js';
import { buildChardev, checkChardevPairs, ChardevOpts } from './qemu-chardev.js';
import { buildDevice, type DeviceContext } from './qemu-device.js';
import {
  buildMonitor,
  checkMonPairs,
  monOpts,
  parseMonitorShorthand,
  type MonOpts,
} from './qemu-monitor.js';
import { findId, flagDeprecation, idMessage, splitOpts, type OptPair } from './qemu-options.js';
import { QEMU_OPTIONS } from './qemu-tables.js';
import { splitShellWords } from './shell-words.js';
import type { IgnoredOption, Monitor, Port, Topology } from './topology.js';

type Where = Required<Pick<MachineWhere, 'argIndex' | 'option'>> & { arg?: string };

/** `qemu-system-x86_64`, `/usr/bin/qemu-kvm`, `kvm`: a program name, not an option. */
export function isQemuProgram(word: string): boolean {
  const base = word.split('/').pop() ?? word;
  return /^(qemu(-system-[\w-]+|-kvm)?|kvm)(\.exe)?$/.test(base);
}

/** Split a pasted command line with shell rules, then parse it. */
export function parseQemuCommandLine(text: string): MachineResult<Topology> {
  const split = splitShellWords(text);
  if (!split.ok) return { ok: false, error: split.error, notes: [] };
  return parseQemuArgs(split.words);
}

class IdList {
  private readonly ids = new Set<string>();
  constructor(private readonly listName: string) {}

  /** qemu_opts_create: a malformed or duplicate id is refused; no id is fine. */
  add(id: string | undefined): MachineError | undefined {
    if (id === undefined) return undefined;
    const bad = idMessage(id);
    if (bad !== undefined) return machineError('InvalidId', bad, { key: 'id', token: id });
    if (this.ids.has(id)) {
      return machineError('DuplicateId', `Duplicate ID '${id}' for ${this.listName}`, {
        key: 'id',
        token: id,
      });
    }
    this.ids.add(id);
    return undefined;
  }
}

interface Pending<T> {
  where: Where;
  value: T;
}

/** Parse QEMU arguments (an argv without the shell). The program name may lead. */
export function parseQemuArgs(argv: readonly string[]): MachineResult<Topology> {
  const notes: MachineNote[] = [];
  const args = argv.length > 0 && isQemuProgram(argv[0] as string) ? argv.slice(1) : [...argv];
  const fail = (error: MachineError, where: MachineWhere): MachineResult<Topology> => ({
    ok: false,
    error: error.at(where),
    notes,
  });

  const chardevIds = new IdList('chardev');
  const deviceIds = new IdList('device');
  const monIds = new IdList('mon');
  const chardevs: Pending<ChardevOpts>[] = [];
  const mons: Pending<MonOpts>[] = [];
  const devices: Pending<{ id: string | undefined; pairs: OptPair[] }>[] = [];
  const ignored: { argIndex: number; entry: IgnoredOption }[] = [];
  let monitorIndex = 0;
  let daemonize = false;

  const keep = (where: Where): void => {
    const entry: IgnoredOption = { option: where.option };
    if (where.arg !== undefined) entry.arg = where.arg;
    ignored.push({ argIndex: where.argIndex, entry });
    notes.push(note('Ignored', 'not part of the virtio-serial topology; kept as written', where));
  };
  const deprecations = (pairs: readonly OptPair[], where: Where): void => {
    for (const p of pairs) {
      const message = flagDeprecation(p);
      if (message !== undefined)
        notes.push(note('Deprecated', message, { ...where, key: p.key, token: p.raw }));
    }
  };

  // 1. The arguments, left to right.
  for (let i = 0; i < args.length;) {
    const word = args[i] as string;
    const argIndex = i;
    if (!word.startsWith('-') || word === '-') {
      // QEMU takes a bare word as the first disk image (an implicit -hda).
      ignored.push({ argIndex, entry: { option: '', arg: word } });
      notes.push(
        note('Ignored', 'a bare word is a disk image for QEMU; kept as written', {
          argIndex,
          arg: word,
        }),
      );
      i++;
      continue;
    }
    const option = word.startsWith('--') ? word.slice(1) : word;
    const spec = QEMU_OPTIONS.get(option);
    if (spec === undefined) {
      return fail(machineError('InvalidOption', 'invalid option', { token: word }), {
        argIndex,
        option: word,
      });
    }
    let arg: string | undefined;
    if (spec.hasArg) {
      if (i + 1 >= args.length) {
        return fail(machineError('MissingArgument', 'requires an argument', { token: word }), {
          argIndex,
          option: word,
        });
      }
      arg = args[i + 1] as string;
      i += 2;
    } else {
      i++;
    }
    const where: Where = arg === undefined ? { argIndex, option } : { argIndex, option, arg };
    const text = arg ?? '';

    switch (option) {
      case '-chardev': {
        const pairs = splitOpts(text, 'backend');
        const id = findId(text);
        const idError = chardevIds.add(id);
        if (idError !== undefined) return fail(idError, where);
        deprecations(pairs, where);
        const keyError = checkChardevPairs(pairs);
        if (keyError !== undefined) return fail(keyError, where);
        chardevs.push({ where, value: new ChardevOpts(id, pairs) });
        break;
      }
      case '-device': {
        if (text.startsWith('{')) {
          return fail(
            machineError('Unsupported', 'vmchan does not read the JSON form of -device yet'),
            where,
          );
        }
        const pairs = splitOpts(text, 'driver');
        const id = findId(text);
        const idError = deviceIds.add(id);
        if (idError !== undefined) return fail(idError, where);
        deprecations(pairs, where);
        devices.push({ where, value: { id, pairs } });
        break;
      }
      case '-mon': {
        const pairs = splitOpts(text, 'chardev');
        const id = findId(text);
        const idError = monIds.add(id);
        if (idError !== undefined) return fail(idError, where);
        deprecations(pairs, where);
        const keyError = checkMonPairs(pairs);
        if (keyError !== undefined) return fail(keyError, where);
        mons.push({ where, value: monOpts(id, pairs) });
        break;
      }
      case '-qmp':
      case '-qmp-pretty':
      case '-monitor': {
        // vl.c: `-monitor none` (anything starting with "none") asks for no monitor.
        if (option === '-monitor' && text.startsWith('none')) {
          keep(where);
          break;
        }
        const mode = option === '-monitor' ? 'readline' : 'control';
        const parsed = parseMonitorShorthand(text, mode, option === '-qmp-pretty', monitorIndex);
        if (!parsed.ok)
          return fail(machineError(parsed.kind, parsed.message, { token: text }), where);
        if (parsed.chardevPairs !== undefined) {
          const idError = chardevIds.add(parsed.label);
          if (idError !== undefined) return fail(idError, where);
          const keyError = checkChardevPairs(parsed.chardevPairs);
          if (keyError !== undefined) return fail(keyError, where);
          chardevs.push({ where, value: new ChardevOpts(parsed.label, parsed.chardevPairs) });
          notes.push(
            note('Implied', `the monitor's chardev is named '${parsed.label}'`, {
              ...where,
              token: parsed.label,
            }),
          );
        }
        const idError = monIds.add(parsed.label);
        if (idError !== undefined) return fail(idError, where);
        mons.push({ where, value: parsed.mon });
        monitorIndex++;
        break;
      }
      default:
        if (option === '-daemonize') daemonize = true;
        keep(where);
    }
  }

  // 2. Chardevs.
  const ctx: DeviceContext = { devices: [], chardevs: new Map() };
  let stdioInUse = false;
  for (const { where, value } of chardevs) {
    const built = buildChardev(value, { stdioInUse, daemonize });
    if (!built.ok) return fail(built.error, where);
    if (built.chardev.backend.kind === 'stdio') stdioInUse = true;
    ctx.chardevs.set(built.chardev.id, { chardev: built.chardev, users: 0 });
    for (const n of built.notes) notes.push({ ...where, ...n });
  }

  // 3. Monitors.
  const monitors: Monitor[] = [];
  for (const { where, value } of mons) {
    const built = buildMonitor(value, ctx);
    if (!built.ok) return fail(built.error, where);
    monitors.push(built.monitor);
  }

  // 4. Devices.
  const ports: Port[] = [];
  for (const { where, value } of devices) {
    const built = buildDevice(value.id, value.pairs, ctx);
    if (!built.ok) return fail(built.error, where);
    for (const n of built.notes) notes.push({ ...where, ...n });
    if (built.made === 'controller') ctx.devices.push(built.device);
    else if (built.made === 'port') ports.push(built.port);
    else keep(where);
  }

  ignored.sort((a, b) => a.argIndex - b.argIndex);
  const topology: Topology = {
    chardevs: [...ctx.chardevs.values()].map((e) => e.chardev),
    devices: ctx.devices,
    ports,
    monitors,
    ignored: ignored.map((e) => e.entry),
  };
  return { ok: true, value: topology, notes };
}
