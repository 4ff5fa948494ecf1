/**
 * The guest agent's commands, answered as qemu-ga 7.2 answers them
 * (qga/commands.c, qga/commands-posix.c; transcript in
 * test/fixtures/qemu-7.2-samples/qga.log), over the simulated guest's system calls.
 *
 * guest-sync, guest-sync-delimited, guest-ping, guest-info,
 * guest-file-open/read/write/flush/close, and one vmchan extension that
 * qemu-ga does not have:
 *
 *   x-guest-file-poll {handle} -> {"mask": 21, "events": "IN|HUP"}
 *
 * the poll(2) mask of the handle's descriptor right now, without waiting,
 * so a host can watch a port's L6 states through the agent. (Bytes already
 * in the handle's stdio buffer do not show in it, as they would not in
 * poll(2).) Handles are numbered from 1000, as qemu-ga numbers them.
 *
 * Guest paths are those of the simulated guest: /dev/vportDpN,
 * /dev/virtio-ports/NAME, /dev/hvcK, /sys/class/virtio-ports/... There is
 * no writable file system, so modes that create files fail as opening a
 * missing file fails.
 */
import { isErrno, type Errno } from '../serial/guest/errno.js';
import {
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  pollNames,
  type GuestFiles,
} from '../serial/guest/files.js';
import { QemuError } from '../base/qemu-error.js';
import { base64Decode } from '../monitor/qmp-commands.js';
import { visitMembers, type QapiMembers, type QapiValue } from '../monitor/qapi.js';
import type { QDict, QObject } from '../monitor/qobject.js';
import { QEMU_VERSION_TEXT } from '../monitor/version.js';
import { StdioFile } from './stdio-file.js';

/** QGA_READ_COUNT_DEFAULT. */
const READ_COUNT_DEFAULT = 4096;
const FIRST_HANDLE = 1000;

/** fopen modes qemu-ga accepts, and the open(2) access they mean. */
const MODES: Record<string, number> = {
  r: O_RDONLY,
  rb: O_RDONLY,
  w: O_WRONLY,
  wb: O_WRONLY,
  a: O_WRONLY,
  ab: O_WRONLY,
  'r+': O_RDWR,
  'rb+': O_RDWR,
  'r+b': O_RDWR,
  'w+': O_RDWR,
  'wb+': O_RDWR,
  'w+b': O_RDWR,
  'a+': O_RDWR,
  'ab+': O_RDWR,
  'a+b': O_RDWR,
};

type RwState = 'new' | 'reading' | 'writing';

interface Handle {
  file: StdioFile;
  state: RwState;
}

/** error_setg_errno: "<text>: <strerror>". */
function withErrno(text: string, e: Errno): QemuError {
  return new QemuError(`${text}: ${e.message}`);
}

export interface AgentSession {
  /** guest-sync-delimited asked for 0xFF before the next response. */
  delimitNext: boolean;
}

type Result = QObject | QemuError;

interface AgentCommand {
  name: string;
  args: QapiMembers;
  run(args: { [key: string]: QapiValue }): Promise<Result> | Result;
}

export class AgentCommands {
  private readonly handles = new Map<number, Handle>();
  private nextHandle = FIRST_HANDLE;
  private readonly table: Map<string, AgentCommand>;

  constructor(
    private readonly files: GuestFiles,
    private readonly session: AgentSession,
  ) {
    const handleArg = { handle: { type: 'int' as const } };
    const commands: AgentCommand[] = [
      {
        name: 'guest-sync-delimited',
        args: { id: { type: 'int' } },
        run: (a) => {
          this.session.delimitNext = true;
          return a.id as number | bigint;
        },
      },
      { name: 'guest-sync', args: { id: { type: 'int' } }, run: (a) => a.id as number | bigint },
      { name: 'guest-ping', args: {}, run: () => ({}) },
      { name: 'guest-info', args: {}, run: () => this.info() },
      {
        name: 'guest-file-open',
        args: { path: { type: 'str' }, mode: { type: 'str', optional: true } },
        run: (a) => this.open(a.path as string, (a.mode as string | undefined) ?? 'r'),
      },
      {
        name: 'guest-file-close',
        args: handleArg,
        run: (a) => this.close(Number(a.handle)),
      },
      {
        name: 'guest-file-read',
        args: { ...handleArg, count: { type: 'int', optional: true } },
        run: (a) =>
          this.read(Number(a.handle), a.count === undefined ? undefined : Number(a.count)),
      },
      {
        name: 'guest-file-write',
        args: { ...handleArg, 'buf-b64': { type: 'str' }, count: { type: 'int', optional: true } },
        run: (a) =>
          this.write(
            Number(a.handle),
            a['buf-b64'] as string,
            a.count === undefined ? undefined : Number(a.count),
          ),
      },
      { name: 'guest-file-flush', args: handleArg, run: (a) => this.flush(Number(a.handle)) },
      { name: 'x-guest-file-poll', args: handleArg, run: (a) => this.poll(Number(a.handle)) },
    ];
    this.table = new Map(commands.map((c) => [c.name, c]));
  }

  find(name: string): AgentCommand | undefined {
    return this.table.get(name);
  }

  async run(command: AgentCommand, raw: QDict): Promise<Result> {
    const args = visitMembers(raw, command.args);
    if (args instanceof QemuError) return args;
    return command.run(args);
  }

  /** Close every handle (the agent is stopping). */
  async closeAll(): Promise<void> {
    for (const [id, h] of [...this.handles]) {
      this.handles.delete(id);
      await h.file.close();
    }
  }

  private info(): Result {
    return {
      version: QEMU_VERSION_TEXT,
      supported_commands: [...this.table.keys()].map((name) => ({
        name,
        enabled: true,
        'success-response': true,
      })),
    };
  }

  private handle(id: number): Handle | QemuError {
    const h = this.handles.get(id);
    return h ?? new QemuError(`handle '${id}' has not been found`);
  }

  private async open(path: string, mode: string): Promise<Result> {
    const access = MODES[mode];
    if (access === undefined) return new QemuError(`invalid file open mode '${mode}'`);
    // qemu-ga opens, then sets O_NONBLOCK "to avoid ... hanging the agent".
    const fd = await this.files.open(path, access | O_NONBLOCK);
    if (isErrno(fd)) return withErrno(`failed to open file '${path}' (mode: '${mode}')`, fd);
    const id = this.nextHandle++;
    this.handles.set(id, { file: new StdioFile(this.files, fd), state: 'new' });
    return id;
  }

  private async close(id: number): Promise<Result> {
    const h = this.handle(id);
    if (h instanceof QemuError) return h;
    this.handles.delete(id);
    const e = await h.file.close();
    return e === null ? {} : withErrno('failed to close handle', e);
  }

  private async read(id: number, count: number | undefined): Promise<Result> {
    const h = this.handle(id);
    if (h instanceof QemuError) return h;
    const n = count ?? READ_COUNT_DEFAULT;
    if (count !== undefined && (count < 0 || count >= 0xffffffff)) {
      return new QemuError(`value '${count}' is invalid for argument count`);
    }
    // "explicitly flush when switching from writing to reading"
    if (h.state === 'writing') {
      const e = await h.file.flush();
      if (e !== null) return withErrno('failed to flush file', e);
      h.state = 'new';
    }
    const r = await h.file.read(n);
    if (r.error !== null) return withErrno('failed to read file', r.error);
    h.state = 'reading';
    return {
      count: r.bytes.length,
      'buf-b64': r.bytes.length > 0 ? Buffer.from(r.bytes).toString('base64') : undefined,
      eof: r.eof,
    };
  }

  private async write(id: number, b64: string, count: number | undefined): Promise<Result> {
    const h = this.handle(id);
    if (h instanceof QemuError) return h;
    if (h.state === 'reading') {
      const e = await h.file.seekCurrent();
      if (e !== null) return withErrno('failed to seek file', e);
      h.state = 'new';
    }
    const buf = base64Decode(b64);
    if (buf instanceof QemuError) return buf;
    const n = count ?? buf.length;
    if (n < 0 || n > buf.length) return new QemuError(`value '${n}' is invalid for argument count`);
    const r = await h.file.write(buf.subarray(0, n));
    if (r.error !== null) return withErrno('failed to write to file', r.error);
    h.state = 'writing';
    return { count: r.count, eof: false };
  }

  private async flush(id: number): Promise<Result> {
    const h = this.handle(id);
    if (h instanceof QemuError) return h;
    const e = await h.file.flush();
    if (e !== null) return withErrno('failed to flush file', e);
    h.state = 'new';
    return {};
  }

  private poll(id: number): Result {
    const h = this.handle(id);
    if (h instanceof QemuError) return h;
    const mask = this.files.pollNow(h.file.fd);
    if (isErrno(mask)) return withErrno('failed to poll file', mask);
    return { mask, events: pollNames(mask) };
  }
}
