/**
 * The journal of QEMU socket nodes an in-place tap moved aside
 * (inplace-tap.ts): one small JSON file under the user's runtime directory
 * ($XDG_RUNTIME_DIR/vmchan/, else the temp dir's vmchan-UID/), mode 0600 in
 * a 0700 directory. An entry is written before the move and removed after
 * the path is given back, so a vmchan that was killed (SIGKILL, a crash)
 * leaves enough behind for the next start to put every path back
 * (`recoverMoves`).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface MoveEntry {
  /** The path QEMU's chardev socket had, where the tap listens now. */
  original: string;
  /** Where QEMU's socket node waits meanwhile (same directory). */
  moved: string;
  /** The chardev's id (for messages). */
  chardev: string;
  /** The vmchan process that made the move. */
  pid: number;
  /** When (ms since the Unix epoch). */
  time: number;
}

/** The journal's directory: $XDG_RUNTIME_DIR/vmchan, or vmchan-UID in the temp dir. */
export function journalDir(): string {
  const xdg = process.env['XDG_RUNTIME_DIR'];
  if (xdg !== undefined && xdg !== '' && fs.existsSync(xdg)) return path.join(xdg, 'vmchan');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return path.join(os.tmpdir(), `vmchan-${uid}`);
}

const MAX_ENTRIES = 1024;

export class TapJournal {
  readonly file: string;

  constructor(dir: string = journalDir()) {
    this.file = path.join(dir, 'tap-moves.json');
  }

  entries(): MoveEntry[] {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return [];
    }
    try {
      const parsed = JSON.parse(text) as unknown;
      return Array.isArray(parsed) ? parsed.filter(isEntry) : [];
    } catch {
      // A torn write (killed mid-way): nothing to trust in it.
      return [];
    }
  }

  add(entry: MoveEntry): void {
    const all = this.entries().filter((e) => e.original !== entry.original);
    all.push(entry);
    this.write(all.slice(-MAX_ENTRIES));
  }

  remove(original: string): void {
    this.write(this.entries().filter((e) => e.original !== original));
  }

  private write(all: MoveEntry[]): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    // write then rename: a kill in between leaves the old journal, never half of one
    const temp = `${this.file}.${process.pid}`;
    fs.writeFileSync(temp, JSON.stringify(all), { mode: 0o600 });
    fs.renameSync(temp, this.file);
  }
}

function isEntry(x: unknown): x is MoveEntry {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as Record<string, unknown>;
  return (
    typeof e['original'] === 'string' &&
    typeof e['moved'] === 'string' &&
    typeof e['chardev'] === 'string' &&
    typeof e['pid'] === 'number' &&
    typeof e['time'] === 'number'
  );
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Give back every path a vmchan that is gone left moved: our listening
 * socket at the original path (dead with its process) is removed and QEMU's
 * node renamed back. A move of a vmchan still running is left alone. One
 * line per path, for the user.
 */
export function recoverMoves(journal: TapJournal = new TapJournal()): string[] {
  const lines: string[] = [];
  for (const e of journal.entries()) {
    if (e.pid !== process.pid && alive(e.pid)) continue;
    if (e.pid === process.pid) continue; // ours, live: detach gives it back
    lines.push(restoreMove(e));
    journal.remove(e.original);
  }
  return lines;
}

/** Put QEMU's node back at its path; what was done, in one line. */
export function restoreMove(e: MoveEntry): string {
  if (!fs.existsSync(e.moved)) {
    return `chardev ${e.chardev}: ${e.moved} is gone (QEMU removed its socket); nothing to give back at ${e.original}`;
  }
  try {
    const st = fs.lstatSync(e.original, { throwIfNoEntry: false });
    if (st !== undefined) {
      if (!st.isSocket())
        return `chardev ${e.chardev}: ${e.original} is now something else; QEMU's socket stays at ${e.moved}`;
      fs.unlinkSync(e.original); // the tap's socket, whose listener is gone
    }
    fs.renameSync(e.moved, e.original);
    return `chardev ${e.chardev}: QEMU's socket is back at ${e.original}`;
  } catch (err) {
    return `chardev ${e.chardev}: cannot move ${e.moved} back to ${e.original}: ${(err as Error).message}`;
  }
}
