/**
 * The part of the guest's file system the console driver populates, as
 * udev and sysfs would (L2):
 *
 *   /dev/vport0p1                              character device (a port)
 *   /dev/virtio-ports/test1 -> ../vport0p1     symlink udev makes from the name
 *   /dev/hvc0                                  character device (a console port)
 *   /sys/class/virtio-ports/vport0p1/name      "test1\n"
 *
 * Other parts (the CLI, the UI, a guest agent) list it and open by path.
 * Paths are absolute; directories exist while they hold something.
 */
import { errno, isErrno, type Errno } from './errno.js';

/** A device node's driver: what open() on it does (the cdev's file_operations.open). */
export interface CharDevice {
  /** For listings: `vport0p1`, `hvc0`. */
  readonly label: string;
  open(flags: number): Promise<FileOps | Errno>;
}

/** What an open file can do (file_operations), implemented by the driver. */
export interface FileOps {
  /**
   * Up to `count` bytes. With `into` (at least `count` long) they are copied
   * there, as read(2) copies into the caller's buffer, and the result is a
   * view of `into`; without it the result is a fresh array.
   */
  read(count: number, nonblock: boolean, into?: Uint8Array): Promise<Uint8Array | Errno>;
  write(data: Uint8Array, nonblock: boolean): Promise<number | Errno>;
  /**
   * Optional: a non-blocking read or write answered at once, null where it
   * would wait (EAGAIN). GuestFiles uses them to run a system call without
   * a promise when the engine lets it run now. The read lands in `into` at
   * offset `at` (room for `count` bytes there) and answers how many bytes
   * came (0: end of file): a program reading buffer after buffer into one
   * array at a moving offset needs no view of it per call.
   */
  readNowAt?(count: number, into: Uint8Array, at: number): number | Errno | null;
  writeNow?(data: Uint8Array): number | Errno | null;
  /** The poll mask right now. */
  poll(): number;
  /**
   * Optional: the read half of poll() (IN, HUP, ERR), for a program that
   * looks before each read whether it would wait; without the write half
   * (which reclaims used transmit buffers, as Linux's will_write_block) a
   * reader of many buffers does not look at the transmit queue per buffer.
   */
  pollRead?(): number;
  /** Park until something may have changed the poll mask (poll_wait). */
  pollWait(wake: () => void): () => void;
  lseek(offset: number, whence: number): number | Errno;
  /** O_ASYNC toggled (fasync): `signal` is how SIGIO reaches the owner. */
  fasync(on: boolean, signal: () => void): void;
  release(): Promise<void>;
}

export type GuestNode =
  | { kind: 'chardev'; device: CharDevice }
  | { kind: 'symlink'; target: string }
  | { kind: 'file'; read: () => string };

export interface NodeInfo {
  path: string;
  kind: 'chardev' | 'symlink' | 'file' | 'dir';
  /** Symlinks: where they point (as written, relative or absolute). */
  target?: string;
}

const MAX_SYMLINKS = 40; // Linux's MAXSYMLINKS

export function normalize(path: string): string {
  const parts: string[] = [];
  for (const p of path.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return '/' + parts.join('/');
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export class GuestNamespace {
  private readonly nodes = new Map<string, GuestNode>();
  /** Directories that exist even when empty (sysfs class dirs). */
  private readonly dirs = new Set<string>(['/', '/dev', '/sys', '/sys/class']);

  constructor(
    private readonly onChange: (action: 'add' | 'remove', path: string) => void = () => {},
  ) {}

  add(path: string, node: GuestNode): void {
    const p = normalize(path);
    this.nodes.set(p, node);
    for (let d = parentOf(p); d !== '/'; d = parentOf(d)) this.dirs.add(d);
    this.onChange('add', p);
  }

  /** A directory that stays while empty (like /sys/class/virtio-ports/vport0p1). */
  addDir(path: string): void {
    const p = normalize(path);
    for (let d = p; d !== '/'; d = parentOf(d)) this.dirs.add(d);
    this.onChange('add', p);
  }

  /** Remove a node, or a directory with everything below it. */
  remove(path: string): void {
    const p = normalize(path);
    const prefix = p + '/';
    let removed = false;
    for (const key of [...this.nodes.keys()]) {
      if (key === p || key.startsWith(prefix)) {
        this.nodes.delete(key);
        removed = true;
      }
    }
    for (const d of [...this.dirs]) {
      if (d === p || d.startsWith(prefix)) {
        this.dirs.delete(d);
        removed = true;
      }
    }
    if (removed) this.onChange('remove', p);
  }

  exists(path: string): boolean {
    const p = normalize(path);
    return this.nodes.has(p) || this.isDir(p);
  }

  /** Names directly inside `dir`, sorted like `ls`. */
  list(dir: string): string[] | Errno {
    const d = this.resolve(dir);
    if (typeof d !== 'string') return d;
    if (!this.isDir(d)) {
      return errno(this.nodes.has(d) ? 'ENOTDIR' : 'ENOENT', `ls ${dir}`);
    }
    const prefix = d === '/' ? '/' : d + '/';
    const names = new Set<string>();
    const consider = (key: string): void => {
      if (key.startsWith(prefix) && key !== d) names.add(key.slice(prefix.length).split('/')[0]!);
    };
    for (const key of this.nodes.keys()) consider(key);
    for (const key of this.dirs) consider(key);
    return [...names].sort();
  }

  /** lstat-like: what is at `path` without following a final symlink. */
  stat(path: string): NodeInfo | Errno {
    const p = normalize(path);
    const node = this.nodes.get(p);
    if (node === undefined) {
      return this.isDir(p) ? { path: p, kind: 'dir' } : errno('ENOENT', `stat ${path}`);
    }
    return node.kind === 'symlink'
      ? { path: p, kind: 'symlink', target: node.target }
      : { path: p, kind: node.kind };
  }

  readlink(path: string): string | Errno {
    const node = this.nodes.get(normalize(path));
    if (node === undefined) return errno('ENOENT', `readlink ${path}`);
    if (node.kind !== 'symlink') return errno('EINVAL', `readlink ${path}`);
    return node.target;
  }

  /** The absolute path `path` leads to after following symlinks. */
  resolve(path: string): string | Errno {
    let p = normalize(path);
    for (let hops = 0; hops <= MAX_SYMLINKS; hops++) {
      const node = this.nodes.get(p);
      if (node === undefined || node.kind !== 'symlink') {
        return node !== undefined || this.isDir(p) ? p : errno('ENOENT', path);
      }
      p = node.target.startsWith('/')
        ? normalize(node.target)
        : normalize(parentOf(p) + '/' + node.target);
    }
    return errno('EINVAL', `too many levels of symbolic links: ${path}`);
  }

  /** The node at `path`, symlinks followed. */
  lookup(path: string): GuestNode | Errno {
    const p = this.resolve(path);
    if (typeof p !== 'string') return p;
    const node = this.nodes.get(p);
    if (node === undefined) return errno('EISDIR', path);
    return node;
  }

  /** The text of a sysfs-like file (`cat /sys/class/virtio-ports/vport0p1/name`). */
  readFile(path: string): string | Errno {
    const node = this.lookup(path);
    if (isErrno(node)) return node;
    if (node.kind !== 'file') return errno('EINVAL', `read ${path}`);
    return node.read();
  }

  /** Every path under `dir` (default all), for the UI and tests. */
  walk(dir = '/'): NodeInfo[] {
    const d = normalize(dir);
    const prefix = d === '/' ? '/' : d + '/';
    const out: NodeInfo[] = [];
    for (const p of [...this.dirs].sort()) {
      if (p.startsWith(prefix)) out.push({ path: p, kind: 'dir' });
    }
    for (const [p, node] of [...this.nodes].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!p.startsWith(prefix)) continue;
      out.push(
        node.kind === 'symlink'
          ? { path: p, kind: 'symlink', target: node.target }
          : { path: p, kind: node.kind },
      );
    }
    return out;
  }

  private isDir(p: string): boolean {
    if (this.dirs.has(p)) return true;
    const prefix = p === '/' ? '/' : p + '/';
    for (const key of this.nodes.keys()) if (key.startsWith(prefix)) return true;
    return false;
  }
}
