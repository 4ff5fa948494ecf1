/**
 * QEMU's file descriptor sets (monitor/misc.c in 7.2: monitor_fdset_add_fd,
 * qmp_query_fdsets, qmp_remove_fd, monitor_fdset_cleanup,
 * monitor_fdset_dup_fd_add; util/osdep.c qemu_open_internal and
 * qemu_dup_flags for `/dev/fdset/N` paths), over descriptors `vmchan run`
 * inherited (`-add-fd fd=N,set=S[,opaque=TEXT]`).
 *
 * Where vmchan differs, and why:
 * - QEMU dups each -add-fd descriptor (F_DUPFD_CLOEXEC) and closes the
 *   original; opening `/dev/fdset/S` dups a member again. Node has no dup(),
 *   so the set holds the inherited descriptor itself and a chardev that
 *   opens the set uses that descriptor, counted as a user: query-fdsets
 *   shows the inherited number (QEMU shows its dup's), and a descriptor
 *   removed while a chardev uses it leaves the list at once but is closed
 *   when the chardev lets go (QEMU closes its member at once; the chardev
 *   goes on with its own dup). The same descriptor added twice is listed
 *   twice under the one number.
 * - qemu_dup_flags sets the open flags with F_SETFL (O_APPEND) on the
 *   shared file description; Node cannot, so append=on only decides that
 *   nothing is truncated.
 * - QMP add-fd adds a descriptor received with the command (SCM_RIGHTS,
 *   fd-passing.ts); QEMU keeps that one as it is too (no dup).
 * - QEMU's -add-fd takes a descriptor only if FD_CLOEXEC is clear (every
 *   descriptor inherited across exec() has it clear, every one QEMU made
 *   has it set). Node 20 sets close-on-exec on the low inherited
 *   descriptors at start-up, so vmchan cannot ask that: a descriptor is
 *   "already in use" when it is the runtime's own (an anon_inode: epoll,
 *   eventfd, signalfd; a pipe or socket with both O_NONBLOCK and O_CLOEXEC,
 *   as libuv opens all of its own; Node's IPC channel).
 * The flags are read from /proc/self/fdinfo and /proc/self/fd (Linux): the
 * access mode and O_SYNC, which QEMU reads with fcntl.
 */
import fs from 'node:fs';
import { QemuError } from '../base/qemu-error.js';

/** Linux's open flags as /proc/self/fdinfo prints them (octal). */
const O_ACCMODE = 0o3;
const O_WRONLY = 0o1;
const O_CREAT = 0o100;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;
const O_SYNC = 0o4010000;
const O_CLOEXEC = 0o2000000;
const O_NONBLOCK = 0o4000;

/** The open flags of a descriptor this process holds; null when it is not open. */
export function descriptorFlags(fd: number): number | null {
  try {
    const text = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    const m = /^flags:\s*([0-7]+)/m.exec(text);
    return m === null ? null : Number.parseInt(m[1]!, 8);
  } catch {
    return null;
  }
}

/** Is `fd` one the Node runtime itself uses (see above)? */
function runtimeOwns(fd: number, flags: number): boolean {
  if (String(fd) === process.env['NODE_CHANNEL_FD']) return true;
  let target: string;
  try {
    target = fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return true;
  }
  if (target.startsWith('anon_inode:')) return true;
  const both = O_NONBLOCK | O_CLOEXEC;
  return /^(pipe|socket):/.test(target) && (flags & both) === both;
}

/** One descriptor of a set. */
interface Member {
  readonly fd: number;
  readonly opaque: string | undefined;
  /** remove-fd asked for it while a chardev used it: gone from the list, closed on release. */
  removed: boolean;
}

interface FdSet {
  readonly id: number;
  /** In the order added (query-fdsets lists them so). */
  members: Member[];
  /** Chardevs that opened the set (QEMU's dup_fds): its members stay open while any does. */
  users: number;
  /** Members remove-fd took out while the set had users: closed when the last user goes. */
  pendingClose: Member[];
}

/** What query-fdsets returns for one set (FdsetInfo). */
export interface FdsetInfo {
  'fdset-id': number;
  fds: Array<{ fd: number; opaque?: string }>;
}

/** A descriptor a chardev got from `/dev/fdset/N`; release() when the chardev closes. */
export interface FdsetOpen {
  readonly fd: number;
  /** The member is a regular file (writes never wait). */
  readonly regularFile: boolean;
  release(): void;
}

/** The open flags QEMU's file chardev asks for (char-file.c): O_WRONLY|O_CREAT and O_APPEND or O_TRUNC. */
export function fileChardevFlags(append: boolean): number {
  return O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
}

/** `/dev/fdset/ID` -> ID; undefined for another path; null when ID does not parse (qemu_parse_fd). */
export function fdsetIdOf(path: string): number | null | undefined {
  const prefix = '/dev/fdset/';
  if (!path.startsWith(prefix)) return undefined;
  const text = path.slice(prefix.length);
  if (!/^\s*\+?[0-9]+$/.test(text)) return null;
  const id = Number(text.trim());
  return id <= 0x7fffffff ? id : null;
}

/** Why opening a `/dev/fdset/N` path failed: an errno name, as QEMU's open reports it. */
export type FdsetOpenErrno = 'ENOENT' | 'EACCES' | 'EINVAL' | 'EBADF';

export class FdSets {
  private readonly sets = new Map<number, FdSet>();
  /** Monitors connected now (QEMU's mon_refcount). */
  private monitors = 0;

  /**
   * `-add-fd fd=FD,set=SET[,opaque=TEXT]`: vl.c parse_add_fd's checks in its
   * order and words; -1 stands for a missing fd or set.
   */
  addFromCommandLine(fd: number, set: number, opaque: string | undefined): QemuError | null {
    if (fd < 0) return new QemuError('fd option is required and must be non-negative');
    if (fd <= 2) return new QemuError('fd cannot be a standard I/O stream');
    // QEMU asks FD_CLOEXEC (clear on every inherited descriptor); Node marks
    // inherited ones too, so vmchan asks whether the runtime owns it.
    const flags = descriptorFlags(fd);
    if (flags === null || runtimeOwns(fd, flags)) {
      return new QemuError('fd is not valid or already in use');
    }
    if (set < 0) return new QemuError('set option is required and must be non-negative');
    let s = this.sets.get(set);
    if (s === undefined) {
      s = { id: set, members: [], users: 0, pendingClose: [] };
      this.sets.set(set, s);
    }
    s.members.push({ fd, opaque, removed: false });
    return null;
  }

  /**
   * QMP add-fd (qmp_add_fd, monitor_fdset_add_fd): a descriptor received
   * with the command joins set `setId`, made when missing (a negative id is
   * refused then); with no id, a new set takes the lowest id from 0 up that
   * no set has. On failure the caller closes `fd`.
   */
  addFromMonitor(
    fd: number,
    setId: number | undefined,
    opaque: string | undefined,
  ): { 'fdset-id': number; fd: number } | QemuError {
    let s = setId === undefined ? undefined : this.sets.get(setId);
    if (s === undefined) {
      if (setId !== undefined && setId < 0) {
        return new QemuError("Parameter 'fdset-id' expects a non-negative value");
      }
      let id = setId;
      if (id === undefined) {
        id = 0;
        while (this.sets.has(id)) id++;
      }
      s = { id, members: [], users: 0, pendingClose: [] };
      this.sets.set(id, s);
    }
    s.members.push({ fd, opaque, removed: false });
    return { 'fdset-id': s.id, fd };
  }

  /** qmp_query_fdsets: the sets by descending id, each set's descriptors in the order added. */
  query(): FdsetInfo[] {
    return [...this.sets.values()]
      .sort((a, b) => b.id - a.id)
      .map((s) => ({
        'fdset-id': s.id,
        fds: s.members.map((m) =>
          m.opaque === undefined ? { fd: m.fd } : { fd: m.fd, opaque: m.opaque },
        ),
      }));
  }

  /** qmp_remove_fd, with its error text. */
  remove(setId: number, fd: number | undefined): QemuError | null {
    const s = this.sets.get(setId);
    const notFound = (): QemuError =>
      new QemuError(
        `File descriptor named '${fd === undefined ? `fdset-id:${setId}` : `fdset-id:${setId}, fd:${fd}`}' not found`,
      );
    if (s === undefined) return notFound();
    if (fd === undefined) {
      for (const m of s.members) m.removed = true;
    } else {
      const m = s.members.find((x) => x.fd === fd);
      if (m === undefined) return notFound();
      m.removed = true;
    }
    this.cleanup(s);
    return null;
  }

  /**
   * monitor_fdset_dup_fd_add for qemu_open's `flags`: the first member whose
   * access mode is the one asked for (EACCES when none is, ENOENT when there is
   * no such set), then qemu_dup_flags' O_SYNC check and truncation.
   */
  open(setId: number, flags: number): FdsetOpen | FdsetOpenErrno {
    const s = this.sets.get(setId);
    if (s === undefined) return 'ENOENT';
    let chosen: Member | undefined;
    let chosenFlags = 0;
    for (const m of s.members) {
      const f = descriptorFlags(m.fd);
      if (f === null) return 'EBADF';
      if ((f & O_ACCMODE) === (flags & O_ACCMODE)) {
        chosen = m;
        chosenFlags = f;
        break;
      }
    }
    if (chosen === undefined) return 'EACCES';
    if ((flags & O_SYNC) !== (chosenFlags & O_SYNC)) return 'EINVAL';
    let regularFile: boolean;
    try {
      regularFile = fs.fstatSync(chosen.fd).isFile();
      if ((flags & O_TRUNC) !== 0) fs.ftruncateSync(chosen.fd, 0);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return code === 'EBADF' ? 'EBADF' : 'EINVAL';
    }
    s.users++;
    let released = false;
    return {
      fd: chosen.fd,
      regularFile,
      release: () => {
        if (released) return;
        released = true;
        s.users--;
        if (s.users === 0) this.cleanup(s);
      },
    };
  }

  /** A monitor connected (QEMU's mon_refcount++). */
  monitorOpened(): void {
    this.monitors++;
  }

  /** A monitor went away: mon_refcount--, then monitor_fdsets_cleanup. */
  monitorClosed(): void {
    if (this.monitors > 0) this.monitors--;
    for (const s of [...this.sets.values()]) this.cleanup(s);
  }

  /** Close every descriptor (the process is ending). */
  closeAll(): void {
    for (const s of this.sets.values()) {
      for (const m of [...s.members, ...s.pendingClose]) closeQuietly(m.fd);
    }
    this.sets.clear();
  }

  /**
   * monitor_fdset_cleanup: a member goes (closed) when removed, or when
   * nothing opened the set and no monitor is connected; a set with no members
   * and no users goes. A removed member a chardev still writes to is closed
   * when the last user releases the set (vmchan has no dup of it).
   */
  private cleanup(s: FdSet): void {
    const keep: Member[] = [];
    for (const m of s.members) {
      if (m.removed || (s.users === 0 && this.monitors === 0)) {
        if (s.users === 0) closeQuietly(m.fd);
        else s.pendingClose.push(m);
      } else keep.push(m);
    }
    s.members = keep;
    if (s.users === 0) {
      for (const m of s.pendingClose) closeQuietly(m.fd);
      s.pendingClose = [];
    }
    if (s.members.length === 0 && s.users === 0) this.sets.delete(s.id);
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed: nothing to release
  }
}
