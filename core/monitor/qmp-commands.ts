/**
 * The QMP commands (Q2), each with its arguments as QAPI declares them in
 * QEMU 7.2 and its errors in QEMU's words. They run against the
 * RunningMachine contract, so hot-plug through QMP, HMP, the CLI or the app
 * keeps one topology.
 */
import type { RunningMachine } from '../machine/running.js';
import { QemuError, isQemuError } from '../base/qemu-error.js';
import { chardevFromQmp } from './chardev-spec.js';
import { chardevAddFailure } from '../machine/chardev-errors.js';
import type { Chardev } from '../machine/topology.js';
import { deviceAdd, optsFromQdict } from './device-add.js';
import type { MonitorHub } from './hub.js';
import type { MonitorFds } from './monitor-fds.js';
import { closeDescriptors } from '../chardev/fd-passing.js';
import { ringbufCheck } from './machine-view.js';
import { visitMembers, type QapiMembers, type QapiValue } from './qapi.js';
import type { QDict, QObject } from './qobject.js';
import { qomGet, qomList } from './qom.js';
import { QEMU_PACKAGE, versionTriple } from './version.js';
import {
  queryVirtio,
  queryVirtioQueueElement,
  queryVirtioQueueStatus,
  queryVirtioStatus,
} from './qmp-virtio.js';

export interface CommandContext {
  machine: RunningMachine;
  hub: MonitorHub;
  /** The QMP monitor running the command: its getfd names and the descriptor sent with it. */
  monitor?: CommandMonitor;
}

/** What getfd, add-fd, closefd and chardev-add need of the monitor they run on. */
export interface CommandMonitor {
  readonly fds: MonitorFds;
  /**
   * qemu_chr_fe_get_msgfd: the descriptor that came with the command (null:
   * none), or why this monitor cannot receive any (the native part is missing).
   */
  takeDescriptor(): number | null | { refused: string };
}

type Args = { [key: string]: QapiValue };
type Result = QObject | QemuError | Promise<QObject | QemuError>;

export interface QmpCommand {
  name: string;
  /** Declared arguments; 'any' hands the raw dict over (QEMU's 'gen': false commands). */
  args: QapiMembers | 'any';
  run(ctx: CommandContext, args: Args, raw: QDict): Result;
}

const DATA_FORMAT = { enum: ['utf8', 'base64'] } as const;

/** qbase64_decode: g_base64_decode after QEMU's own character check. */
export function base64Decode(text: string): Uint8Array | QemuError {
  if (!/^[A-Za-z0-9+/=\n]*$/.test(text)) {
    return new QemuError('Base64 data contains invalid characters');
  }
  return Uint8Array.from(Buffer.from(text, 'base64'));
}

/** Bytes as QEMU hands a C string to JSON: up to the first NUL, invalid UTF-8 replaced. */
export function cString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return new TextDecoder().decode(nul < 0 ? bytes : bytes.subarray(0, nul));
}

const none: QapiMembers = {};

/**
 * getfd and add-fd take the descriptor that came with the command (SCM_RIGHTS
 * on the monitor's unix socket, core/chardev/fd-passing.ts): QEMU's error
 * when none did; refused, saying why, when this build cannot receive any.
 */
function passedDescriptor(ctx: CommandContext): number | QemuError {
  const fd = ctx.monitor?.takeDescriptor() ?? null;
  if (fd === null) return new QemuError('No file descriptor supplied via SCM_RIGHTS');
  if (typeof fd === 'number') return fd;
  return new QemuError(
    `vmchan does not emulate descriptors passed over the monitor here: ${fd.refused}; pass the descriptor to vmchan run and use -add-fd`,
  );
}

/** ChardevReturn: a pty's path, from its filename ("pty:/dev/pts/N"); else empty. */
function chardevReturn(machine: RunningMachine, spec: Chardev): QObject {
  if (spec.backend.kind !== 'pty') return {};
  const filename = machine.chardevs().find((c) => c.id === spec.id)?.filename ?? '';
  return filename.startsWith('pty:') ? { pty: filename.slice(4) } : {};
}

const COMMANDS: QmpCommand[] = [
  {
    name: 'query-version',
    args: none,
    run: () => ({ qemu: versionTriple(), package: QEMU_PACKAGE }),
  },
  {
    name: 'query-status',
    args: none,
    run: () => ({ running: true, singlestep: false, status: 'running' }),
  },
  {
    name: 'query-chardev',
    args: none,
    run: ({ machine }) =>
      machine.chardevs().map((c) => ({
        label: c.id,
        filename: c.filename,
        'frontend-open': c.frontendOpen,
      })),
  },
  {
    name: 'chardev-add',
    args: 'any',
    run: async ({ machine, monitor }, _args, raw) => {
      const spec = chardevFromQmp(raw);
      if (isQemuError(spec)) return spec;
      if (machine.chardevs().some((c) => c.id === spec.id)) {
        return new QemuError(`Chardev with id '${spec.id}' already exists`);
      }
      // socket_get_fd with a current monitor: `fd` names one of its getfd descriptors.
      const refused = await machine.chardevAdd(spec, {
        monitorFd: (name) => monitor?.fds.take(name) ?? null,
      });
      if (refused !== null) return chardevAddFailure(spec.id, refused);
      return chardevReturn(machine, spec);
    },
  },
  {
    // qmp_chardev_change (QEMU 7.2): same arguments as chardev-add.
    name: 'chardev-change',
    args: 'any',
    run: async ({ machine, hub }, _args, raw) => {
      const spec = chardevFromQmp(raw);
      if (isQemuError(spec)) return spec;
      const refused = await machine.chardevChange(spec, { portHotswap: hub.portHotswap });
      if (refused !== null) return refused;
      return chardevReturn(machine, spec);
    },
  },
  {
    name: 'chardev-remove',
    args: { id: { type: 'str' } },
    run: async ({ machine }, args) => (await machine.chardevRemove(args.id as string)) ?? {},
  },
  {
    name: 'device_add',
    args: 'any',
    run: ({ machine }, _args, raw) => {
      const { props, id } = optsFromQdict(raw);
      return deviceAdd(machine, props, id) ?? {};
    },
  },
  {
    name: 'device_del',
    args: { id: { type: 'str' } },
    run: ({ machine }, args) => machine.deviceDel(args.id as string) ?? {},
  },
  {
    name: 'qom-list',
    args: { path: { type: 'str' } },
    run: ({ machine, hub }, args) => qomList(machine, hub, args.path as string),
  },
  {
    name: 'qom-get',
    args: { path: { type: 'str' }, property: { type: 'str' } },
    run: ({ machine, hub }, args) =>
      qomGet(machine, hub, args.path as string, args.property as string),
  },
  {
    name: 'ringbuf-write',
    args: {
      device: { type: 'str' },
      data: { type: 'str' },
      format: { type: DATA_FORMAT, optional: true },
    },
    run: ({ machine }, args) => {
      const device = args.device as string;
      const bad = ringbufCheck(machine, device);
      if (bad !== null) return bad;
      const data =
        args.format === 'base64'
          ? base64Decode(args.data as string)
          : new TextEncoder().encode(args.data as string);
      if (isQemuError(data)) return data;
      return machine.ringbufWrite(device, data) ?? {};
    },
  },
  {
    name: 'ringbuf-read',
    args: {
      device: { type: 'str' },
      size: { type: 'int' },
      format: { type: DATA_FORMAT, optional: true },
    },
    run: ({ machine }, args) => {
      const device = args.device as string;
      const bad = ringbufCheck(machine, device);
      if (bad !== null) return bad;
      const size = Number(args.size);
      if (size <= 0) return new QemuError('size must be greater than zero');
      const data = machine.ringbufRead(device, size);
      if (isQemuError(data)) return data;
      return args.format === 'base64' ? Buffer.from(data).toString('base64') : cString(data);
    },
  },
  {
    name: 'quit',
    args: none,
    run: ({ hub }) => {
      hub.quit();
      return {};
    },
  },
  // File descriptors (monitor/misc.c in QEMU 7.2). The sets come from -add-fd
  // and add-fd (core/chardev/fdsets.ts); names from getfd (monitor-fds.ts).
  {
    name: 'query-fdsets',
    args: none,
    run: ({ machine }) => machine.fdSets.query(),
  },
  {
    name: 'remove-fd',
    args: { 'fdset-id': { type: 'int' }, fd: { type: 'int', optional: true } },
    run: ({ machine }, args) =>
      machine.fdSets.remove(
        Number(args['fdset-id']),
        args.fd === undefined ? undefined : Number(args.fd),
      ) ?? {},
  },
  {
    name: 'add-fd',
    args: { 'fdset-id': { type: 'int', optional: true }, opaque: { type: 'str', optional: true } },
    // qmp_add_fd: the descriptor joins a set; on failure it is closed.
    run: (ctx, args) => {
      const fd = passedDescriptor(ctx);
      if (isQemuError(fd)) return fd;
      const added = ctx.machine.fdSets.addFromMonitor(
        fd,
        args['fdset-id'] === undefined ? undefined : Number(args['fdset-id']),
        args.opaque === undefined ? undefined : String(args.opaque),
      );
      if (isQemuError(added)) closeDescriptors([fd]);
      return added;
    },
  },
  {
    // qmp_getfd: the name gets the descriptor (one it had is closed).
    name: 'getfd',
    args: { fdname: { type: 'str' } },
    run: (ctx, args) => {
      const fd = passedDescriptor(ctx);
      if (isQemuError(fd)) return fd;
      const name = String(args.fdname);
      if (/^[0-9]/.test(name)) {
        closeDescriptors([fd]);
        return new QemuError("Parameter 'fdname' expects a name not starting with a digit");
      }
      ctx.monitor?.fds.set(name, fd);
      return {};
    },
  },
  {
    name: 'closefd',
    args: { fdname: { type: 'str' } },
    run: ({ monitor }, args) =>
      monitor?.fds.close(String(args.fdname)) === true
        ? {}
        : new QemuError(`File descriptor named '${String(args.fdname)}' not found`),
  },
  {
    // vmchan's extension: every dropped byte of the lab by port, direction and reason.
    name: 'x-vmchan-query-drops',
    args: none,
    run: ({ machine }) =>
      machine.lab.drops.list().map((c) => ({
        device: c.device,
        ...(c.nr === null ? {} : { port: c.nr }),
        ...(c.direction === null ? {} : { direction: c.direction }),
        ...(c.chardev === null ? {} : { chardev: c.chardev }),
        side: c.side,
        reason: c.reason,
        bytes: c.bytes,
      })),
  },
  {
    name: 'x-query-virtio',
    args: none,
    run: ({ machine }) => queryVirtio(machine),
  },
  {
    name: 'x-query-virtio-status',
    args: { path: { type: 'str' } },
    run: ({ machine }, args) => queryVirtioStatus(machine, args.path as string),
  },
  {
    name: 'x-query-virtio-queue-status',
    args: { path: { type: 'str' }, queue: { type: 'uint16' } },
    run: ({ machine }, args) =>
      queryVirtioQueueStatus(machine, args.path as string, args.queue as number),
  },
  {
    name: 'x-query-virtio-queue-element',
    args: {
      path: { type: 'str' },
      queue: { type: 'uint16' },
      index: { type: 'uint16', optional: true },
    },
    run: ({ machine }, args) =>
      queryVirtioQueueElement(
        machine,
        args.path as string,
        args.queue as number,
        args.index as number | undefined,
      ),
  },
];

/** The command table; qmp_capabilities and query-commands belong to the server. */
export const QMP_COMMANDS: ReadonlyMap<string, QmpCommand> = new Map(
  COMMANDS.map((c) => [c.name, c]),
);

/** Run a command: arguments checked as QAPI would, then the command itself. */
export function runCommand(command: QmpCommand, ctx: CommandContext, raw: QDict): Result {
  if (command.args === 'any') return command.run(ctx, {}, raw);
  const args = visitMembers(raw, command.args);
  if (isQemuError(args)) return args;
  return command.run(ctx, args, raw);
}
