/**
 * The registry of running vmchan sessions on this machine: what `vmchan
 * extcap --extcap-interfaces` lists as Wireshark interfaces.
 *
 * One directory per user, `$XDG_RUNTIME_DIR/vmchan/sessions` (else
 * `<tmp>/vmchan-<uid>/sessions`), mode 0700 and checked to be ours before
 * use. A session writes `<id>.json` (who it is, where its live-capture
 * socket listens) and its socket `<id>.sock` (0600) next to it, and removes
 * both when it stops. A session killed with SIGKILL leaves them behind: the
 * entry names its process id, and entries whose process is gone are ignored
 * (and removed) by {@link listSessions}.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { CaptureError, describeIoFailure } from './error.js';

export type SessionKind = 'lab' | 'attach';

const SessionEntrySchema = z.object({
  /** The extcap interface name: `vmchan-lab-<pid>` or `vmchan-attach-<pid>` (+ `-<n>` for a second one). */
  id: z.string().regex(/^vmchan-(lab|attach)-\d+(-\d+)?$/),
  kind: z.enum(['lab', 'attach']),
  pid: z.number().int().positive(),
  /** What the person sees in Wireshark's interface list. */
  description: z.string().max(200),
  /** The live-capture socket (core/capture/live-server.ts). */
  socket: z.string(),
  startedAt: z.string(),
});
export type SessionEntry = z.infer<typeof SessionEntrySchema>;

/** The registry directory (not created). `env` for tests. */
export function registryDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_RUNTIME_DIR'];
  if (xdg) return path.join(xdg, 'vmchan', 'sessions');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return path.join(env['TMPDIR'] || os.tmpdir(), `vmchan-${uid}`, 'sessions');
}

/** Create the registry directory 0700 (and its parent), refusing one that is not ours. */
export function ensureRegistryDir(dir = registryDir()): string | CaptureError {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(path.dirname(dir), 0o700);
    fs.chmodSync(dir, 0o700);
    const st = fs.lstatSync(dir);
    const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
    if (!st.isDirectory() || st.uid !== uid)
      return new CaptureError('IoError', 'session registry is not a directory owned by this user', {
        path: dir,
      });
    return dir;
  } catch (err) {
    return new CaptureError(
      'IoError',
      `cannot create the session registry: ${describeIoFailure(err)}`,
      { path: dir },
    );
  }
}

/** True while a process with this id exists (EPERM: it exists, just not ours). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface RegisteredSession {
  readonly entry: SessionEntry;
  /** Remove the entry and its socket file; safe to call twice. */
  unregister(): void;
}

let sequence = 0;

/**
 * Register a running session. The caller listens on `entry.socket` (the
 * registry is 0700, so the socket is reachable by this user only, and the
 * live server also makes it 0600).
 */
export function registerSession(
  kind: SessionKind,
  description: string,
  dir = registryDir(),
): RegisteredSession | CaptureError {
  const made = ensureRegistryDir(dir);
  if (made instanceof CaptureError) return made;
  const n = sequence++;
  const id = `vmchan-${kind}-${process.pid}${n === 0 ? '' : `-${n}`}`;
  const entry: SessionEntry = {
    id,
    kind,
    pid: process.pid,
    description: description.slice(0, 200),
    socket: path.join(dir, `${id}.sock`),
    startedAt: new Date().toISOString(),
  };
  const file = path.join(dir, `${id}.json`);
  try {
    fs.rmSync(entry.socket, { force: true }); // a stale one from an earlier process with our pid
    // Written under a temporary name and renamed, so a reader never sees half an entry.
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch (err) {
    return new CaptureError('IoError', `cannot register the session: ${describeIoFailure(err)}`, {
      path: file,
    });
  }
  let done = false;
  const unregister = (): void => {
    if (done) return;
    done = true;
    process.off('exit', unregister);
    fs.rmSync(file, { force: true });
    fs.rmSync(entry.socket, { force: true });
    // The last session out leaves no empty registry behind (tmp stays clean).
    for (const d of [dir, path.dirname(dir)]) {
      try {
        fs.rmdirSync(d);
      } catch {
        break; // another session's entry, or not ours to remove
      }
    }
  };
  // A crash that still runs exit handlers (an uncaught error) cleans up too.
  process.on('exit', unregister);
  return { entry, unregister };
}

/** The sessions running now; entries of processes that are gone are removed. */
export function listSessions(dir = registryDir()): SessionEntry[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: SessionEntry[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith('.json')) continue;
    const file = path.join(dir, name);
    let parsed: SessionEntry;
    try {
      const result = SessionEntrySchema.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
      if (!result.success) continue; // not ours to judge or remove
      parsed = result.data;
    } catch {
      continue;
    }
    if (!processAlive(parsed.pid)) {
      fs.rmSync(file, { force: true });
      fs.rmSync(parsed.socket, { force: true });
      continue;
    }
    out.push(parsed);
  }
  return out;
}

/** The running session with this interface id. */
export function findSession(id: string, dir = registryDir()): SessionEntry | undefined {
  return listSessions(dir).find((s) => s.id === id);
}
