/**
 * The in-place tap: a tap on a unix socket chardev QEMU listens on, at the
 * chardev's own path, so no host application, script or libvirtd has to be
 * re-pointed.
 *
 *   before:  app ──▶ /run/vm/agent.sock (QEMU listening)
 *   tapped:  app ──▶ /run/vm/agent.sock (vmchan) ──▶ /run/vm/.agent.sock~vmchan (QEMU)
 *
 * A listening unix socket stays bound to its inode, not its name: renaming
 * the node aside keeps QEMU listening on it, and connecting to the new name
 * reaches QEMU. So the tap binds its own socket first (in a private
 * directory beside the path, owner and mode made the same as QEMU's node),
 * writes the move to the journal (tap-journal.ts), renames QEMU's node
 * aside and its own socket into place: the path answers all along except
 * between two renames. Each client that connects is forwarded to QEMU by
 * ChardevTap, every byte captured.
 *
 * What the user sees during the switch: a client connected before the tap
 * keeps its direct connection to QEMU, uncaptured, until it reconnects;
 * `waitingForReconnect` says so (the app shows "tapped, waiting for the
 * next connection"). On close (detach), on SIGINT/SIGTERM and at the next
 * start after a crash (recoverMoves), the original node goes back.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { CaptureSink } from '../capture/record.js';
import { attachError, type AttachError } from './attach-error.js';
import type { AttachedTopology, SocketSpec } from './attach-model.js';
import { describe, type Listening } from './private-socket.js';
import { ChardevTap, tapPortOf, type TapPort } from './tap.js';
import { restoreMove, TapJournal, type MoveEntry } from './tap-journal.js';

/** sun_path holds 108 bytes including the terminating NUL. */
const SUN_PATH_MAX = 107;
const MOVED_SUFFIX = '~vmchan';

export interface InPlaceTapOptions {
  chardev: string;
  /** QEMU's listening unix socket (the chardev's address, server=on). */
  target: SocketSpec;
  port?: TapPort;
  sink?: CaptureSink;
  /** A client is connected to QEMU directly right now (query-chardev's frontend/connected state). */
  clientConnected?: boolean;
  journal?: TapJournal;
  highWaterMark?: number;
  connectTimeoutMs?: number;
}

/** Taps of this process that hold a moved path, for the signal handlers. */
const active = new Set<InPlaceTap>();
let handlersInstalled = false;

function onSignal(signal: NodeJS.Signals): void {
  for (const t of [...active]) t.restoreNow();
  // Nobody else handles the signal: end as the default action would have.
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  handlersInstalled = false;
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function uninstallHandlers(): void {
  if (!handlersInstalled || active.size > 0) return;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  handlersInstalled = false;
}

export class InPlaceTap {
  private restored = false;
  private directClient: boolean;

  private constructor(
    readonly tap: ChardevTap,
    readonly entry: MoveEntry,
    private readonly journal: TapJournal,
    /** What could not be made the same as QEMU's node (an owner we may not give). */
    readonly notes: string[],
    clientConnected: boolean,
  ) {
    this.directClient = clientConnected;
    // The old client is gone once a new one comes through the tap (QEMU serves one at a time).
    tap.onEvent((e) => {
      if (e.kind === 'app-connected') this.directClient = false;
    });
  }

  static async start(options: InPlaceTapOptions): Promise<InPlaceTap | AttachError> {
    const t = options.target;
    if (t.transport !== 'unix' || !t.server) {
      return attachError(
        'Unsupported',
        `chardev ${options.chardev}: an in-place tap needs a unix socket QEMU listens on (server=on); ${t.transport === 'tcp' ? 'a tcp port cannot be taken while QEMU holds it: the tap listens on a new port instead' : 'QEMU is the client here: use the reverse tap'}`,
      );
    }
    const original = path.resolve(t.path);
    const moved = `${path.join(path.dirname(original), `.${path.basename(original)}`)}${MOVED_SUFFIX}`;
    if (Buffer.byteLength(moved) > SUN_PATH_MAX) {
      return attachError(
        'Unsupported',
        `chardev ${options.chardev}: ${original} is too long to move aside (${moved} exceeds ${SUN_PATH_MAX} bytes)`,
      );
    }
    let st: fs.Stats;
    try {
      st = fs.lstatSync(original);
    } catch (e) {
      return attachError('NotFound', `chardev ${options.chardev}: ${original}: ${describe(e)}`);
    }
    if (!st.isSocket())
      return attachError('Unsupported', `chardev ${options.chardev}: ${original} is not a socket`);
    if (fs.existsSync(moved)) {
      return attachError(
        'ListenFailed',
        `chardev ${options.chardev}: ${moved} exists (another tap, or one a crash left: run vmchan again to restore it)`,
      );
    }

    // Our socket first, private until it has QEMU's owner and mode.
    const server = ChardevTap.server();
    let dir: string;
    try {
      dir = fs.mkdtempSync(path.join(path.dirname(original), '.vmchan-tap-'));
    } catch (e) {
      return attachError(
        'ListenFailed',
        `cannot create a socket beside ${original}: ${describe(e)}`,
      );
    }
    const temp = path.join(dir, 's');
    const listenErr = await new Promise<Error | undefined>((resolve) => {
      server.once('error', resolve);
      server.listen({ path: temp }, () => {
        server.off('error', resolve);
        resolve(undefined);
      });
    });
    const cleanup = async (): Promise<void> => {
      await new Promise<void>((r) => server.close(() => r()));
      fs.rmSync(dir, { recursive: true, force: true });
    };
    if (listenErr !== undefined) {
      await cleanup();
      return attachError(
        'ListenFailed',
        `cannot listen beside ${original}: ${describe(listenErr)}`,
      );
    }
    const notes: string[] = [];
    try {
      fs.chmodSync(temp, st.mode & 0o7777);
    } catch (e) {
      notes.push(`mode ${(st.mode & 0o7777).toString(8)} not applied: ${describe(e)}`);
    }
    const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
    if (st.uid !== uid || (typeof process.getgid === 'function' && st.gid !== process.getgid())) {
      try {
        fs.chownSync(temp, st.uid, st.gid);
      } catch (e) {
        notes.push(`owner ${st.uid}:${st.gid} not applied: ${describe(e)}`);
      }
    }

    const journal = options.journal ?? new TapJournal();
    const entry: MoveEntry = {
      original,
      moved,
      chardev: options.chardev,
      pid: process.pid,
      time: Date.now(),
    };
    try {
      journal.add(entry);
    } catch (e) {
      await cleanup();
      return attachError(
        'ListenFailed',
        `cannot write the tap journal ${journal.file}: ${describe(e)}`,
      );
    }
    try {
      fs.renameSync(original, moved);
    } catch (e) {
      journal.remove(original);
      await cleanup();
      return attachError('ListenFailed', `cannot move ${original} aside: ${describe(e)}`);
    }
    let ino: number;
    try {
      fs.renameSync(temp, original);
      ino = fs.statSync(original).ino;
    } catch (e) {
      fs.renameSync(moved, original);
      journal.remove(original);
      await cleanup();
      return attachError('ListenFailed', `cannot listen at ${original}: ${describe(e)}`);
    }
    fs.rmSync(dir, { recursive: true, force: true });

    const listening: Listening = {
      address: original,
      spec: { transport: 'unix', path: original },
      close: async () => {
        await new Promise<void>((r) => server.close(() => r()));
        unlinkIfOurs(original, ino);
      },
    };
    const tap = ChardevTap.adopt(server, listening, {
      chardev: options.chardev,
      target: { ...t, path: moved },
      listen: listening.spec,
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.sink !== undefined ? { sink: options.sink } : {}),
      ...(options.highWaterMark !== undefined ? { highWaterMark: options.highWaterMark } : {}),
      ...(options.connectTimeoutMs !== undefined
        ? { connectTimeoutMs: options.connectTimeoutMs }
        : {}),
    });
    const inPlace = new InPlaceTap(tap, entry, journal, notes, options.clientConnected ?? false);
    inPlace.ino = ino;
    active.add(inPlace);
    installHandlers();
    return inPlace;
  }

  private ino = 0;

  get path(): string {
    return this.entry.original;
  }

  /** A client that connected before the tap still talks to QEMU directly (uncaptured) until it reconnects. */
  get waitingForReconnect(): boolean {
    return this.directClient;
  }

  /** Give the path back now, synchronously (signal handlers). */
  restoreNow(): string {
    if (this.restored) return `chardev ${this.entry.chardev}: already given back`;
    this.restored = true;
    active.delete(this);
    unlinkIfOurs(this.entry.original, this.ino);
    const line = restoreMove(this.entry);
    try {
      this.journal.remove(this.entry.original);
    } catch {
      // The journal is advice for a crash; the path is back either way.
    }
    return line;
  }

  /** Stop the tap (clients through it are hung up, as a detach should) and give the path back. */
  async close(): Promise<string> {
    if (this.restored) return `chardev ${this.entry.chardev}: already given back`;
    await this.tap.close();
    const line = this.restoreNow();
    uninstallHandlers();
    return line;
  }
}

/**
 * An in-place tap on chardev `chardevId` of an attached machine's topology
 * (`vmchan attach --tap CHARDEV`): QEMU's socket and the port behind it
 * found as tapChardev finds them.
 */
export async function tapChardevInPlace(
  topology: AttachedTopology,
  chardevId: string,
  options: { sink?: CaptureSink; journal?: TapJournal } = {},
): Promise<InPlaceTap | AttachError> {
  const chardev = topology.chardevs.find((c) => c.id === chardevId);
  if (chardev === undefined) {
    return attachError(
      'NotFound',
      `no chardev '${chardevId}' (have: ${topology.chardevs.map((c) => c.id).join(', ') || 'none'})`,
    );
  }
  if (chardev.socket === null) {
    return attachError(
      'Unsupported',
      `chardev ${chardevId} is a ${chardev.kind} backend (${chardev.filename}); the tap works on socket chardevs only`,
    );
  }
  const port = tapPortOf(topology, chardevId);
  return InPlaceTap.start({
    chardev: chardevId,
    target: chardev.socket,
    clientConnected: chardev.connected === true,
    ...(port !== undefined ? { port } : {}),
    ...(options.sink !== undefined ? { sink: options.sink } : {}),
    ...(options.journal !== undefined ? { journal: options.journal } : {}),
  });
}

function unlinkIfOurs(p: string, ino: number): void {
  try {
    if (fs.statSync(p).ino === ino) fs.unlinkSync(p);
  } catch {
    // Already gone.
  }
}

/** Connect to a unix path and report whether anything answers (tests, the app's state). */
export function answers(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path: p });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
