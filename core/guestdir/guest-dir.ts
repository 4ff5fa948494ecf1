/**
 * `--guest-dir DIR`: the guest side of every port, from outside. Each port
 * the guest has appears as a unix socket DIR/NAME (names as in
 * workloads/port-names.ts), mode 0600; connecting to it is a guest program opening
 * the port, closing the connection is the program closing it, and the bytes
 * move with the guest's semantics (bridge.ts).
 *
 *   const dir = await GuestDir.open(lab, '/run/user/1000/vmchan-x/guest');
 *   // socat - UNIX-CONNECT:/run/user/1000/vmchan-x/guest/test1
 *   await dir.close();
 *
 * Opening is exclusive, as for a vport (L3): while a client holds a port,
 * or a guest program (a workload) has it open, another client gets one line,
 * "vmchan: port NAME is already open in the guest (EBUSY)", and is closed.
 * Consoles are exclusive here too (an hvc tty is not, but two people typing
 * into one console through one bridge helps nobody).
 *
 * Hot-plug: the directory follows the guest. A port appears when the guest
 * has set it up (node, hvc, name) and disappears when it is unplugged; a
 * client connected to an unplugged port gets end of file. The guest's
 * uevents ('guest-node') and the device's port events trigger a
 * reconciliation of the directory with the guest's ports.
 *
 * The directory is created (0700) if missing and removed at close if it was
 * created here and is empty; only socket files made here are removed.
 */
import fs from 'node:fs';
import { VmchanError } from '../base/error.js';
import net from 'node:net';
import path from 'node:path';
import { isChardevError } from '../chardev/chardev-error.js';
import { listenUnixPrivately, type OwnedSocketFile } from '../chardev/unix-socket-file.js';
import type { Lab } from '../engine/lab.js';
import type { DropDirection, DropReason } from '../serial/events.js';
import { isErrno } from '../serial/guest/errno.js';
import { PortStream } from '../workloads/port-stream.js';
import { ClientBridge, type BridgeStats } from './bridge.js';
import { guestPorts, type GuestPortEntry } from '../workloads/port-names.js';

/** The guest directory could not be made (or a port's socket in it). */
export class GuestDirError extends VmchanError<'GuestDirFailed'> {
  readonly domain = 'guestdir';
  readonly name = 'GuestDirError';
  constructor(message: string) {
    super('GuestDirFailed', message);
  }
}

export function isGuestDirError(value: unknown): value is GuestDirError {
  return value instanceof GuestDirError;
}

export interface GuestDirOptions {
  /** One line for the person running the lab (a socket that could not be made). */
  onNotice?: (line: string) => void;
}

/** One exposed port. */
interface Exposed {
  entry: GuestPortEntry;
  socketPath: string;
  server: net.Server;
  file: OwnedSocketFile;
  client: ClientBridge | null;
  /** A client is being connected to the guest (open in flight). */
  opening: boolean;
  /** Every connection, so closing never waits on a client that keeps its end open. */
  sockets: Set<net.Socket>;
}

export interface GuestSocket {
  /** Path of the unix socket. */
  path: string;
  port: GuestPortEntry;
  /** Is a client connected now? */
  inUse: boolean;
  /** The connected client's byte counts (the object keeps counting until it leaves). */
  client: BridgeStats | null;
}

export function busyLine(name: string): string {
  return `vmchan: port ${name} is already open in the guest (EBUSY)\n`;
}

/** One line, then the connection is closed (both ways: the client need not close its end). */
function refuse(socket: net.Socket, line: string): void {
  socket.end(line, () => socket.destroy());
}

export class GuestDir {
  private readonly exposed = new Map<string, Exposed>();
  private readonly unsubscribe: (() => void)[] = [];
  private reconciling: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private readonly notice: (line: string) => void;

  private constructor(
    private readonly lab: Lab,
    readonly dir: string,
    private readonly createdDir: boolean,
    options: GuestDirOptions,
  ) {
    this.notice = options.onNotice ?? (() => {});
    const kick = (): void => this.schedule();
    this.unsubscribe.push(
      lab.events.on('guest-node', kick),
      lab.events.on('port-added', kick),
      lab.events.on('port-removed', kick),
    );
  }

  /** Make (or reuse) the directory and put a socket there for every guest port. */
  static async open(
    lab: Lab,
    dir: string,
    options: GuestDirOptions = {},
  ): Promise<GuestDir | GuestDirError> {
    const abs = path.resolve(dir);
    let created = false;
    try {
      const st = fs.statSync(abs, { throwIfNoEntry: false });
      if (st === undefined) {
        fs.mkdirSync(abs, { recursive: true, mode: 0o700 });
        created = true;
      } else if (!st.isDirectory()) {
        return new GuestDirError(`guest dir ${abs} exists and is not a directory`);
      }
    } catch (error) {
      return new GuestDirError(`cannot create guest dir ${abs}: ${(error as Error).message}`);
    }
    const guestDir = new GuestDir(lab, abs, created, options);
    await guestDir.settled();
    return guestDir;
  }

  /** The sockets there now. */
  sockets(): GuestSocket[] {
    return [...this.exposed.values()].map((x) => ({
      path: x.socketPath,
      port: x.entry,
      inUse: x.client !== null || x.opening,
      client: x.client?.stats ?? null,
    }));
  }

  /** Resolves when the directory matches the guest's ports (after a hot-plug, say). */
  async settled(): Promise<void> {
    this.schedule();
    while (this.reconciling !== null) await this.reconciling;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.unsubscribe.splice(0)) off();
    while (this.reconciling !== null) await this.reconciling;
    await Promise.all([...this.exposed.values()].map((x) => this.unexpose(x)));
    this.exposed.clear();
    if (this.createdDir) {
      try {
        fs.rmdirSync(this.dir);
      } catch {
        // not empty (someone else's files) or gone: leave it
      }
    }
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.reconciling !== null) {
      this.again = true;
      return;
    }
    this.reconciling = (async () => {
      do {
        this.again = false;
        // Let the guest finish the task that announced the change (name, hvc) first.
        await new Promise((resolve) => setImmediate(resolve));
        await this.reconcile();
      } while (this.again && !this.closed);
      this.reconciling = null;
    })();
  }

  private async reconcile(): Promise<void> {
    const wanted = new Map(guestPorts(this.lab).map((e) => [e.fileName, e]));
    for (const [name, x] of [...this.exposed]) {
      const w = wanted.get(name);
      if (w === undefined || w.guestPath !== x.entry.guestPath || w.device !== x.entry.device) {
        this.exposed.delete(name);
        await this.unexpose(x);
      }
    }
    for (const [name, entry] of wanted) {
      if (this.closed) return;
      if (!this.exposed.has(name)) await this.expose(entry);
    }
  }

  private async expose(entry: GuestPortEntry): Promise<void> {
    const socketPath = path.join(this.dir, entry.fileName);
    // allowHalfOpen: a client that shut down its sending side still gets the guest's answers.
    const server = net.createServer({ allowHalfOpen: true });
    const file = await listenUnixPrivately(server, socketPath, entry.fileName);
    if (isChardevError(file)) {
      this.notice(`guest dir: port ${entry.fileName}: ${file.message}`);
      return;
    }
    const x: Exposed = {
      entry,
      socketPath,
      server,
      file,
      client: null,
      opening: false,
      sockets: new Set(),
    };
    server.on('connection', (socket) => {
      x.sockets.add(socket);
      socket.once('close', () => x.sockets.delete(socket));
      void this.connect(x, socket);
    });
    this.exposed.set(entry.fileName, x);
  }

  private async connect(x: Exposed, socket: net.Socket): Promise<void> {
    socket.on('error', () => {});
    const name = x.entry.fileName;
    // A client that already sent end of file only waits for late answers: the newcomer wins.
    if (x.client?.lingering === true && !x.opening) {
      const old = x.client;
      x.opening = true;
      await old.stop();
      x.opening = false;
      if (x.client === old) x.client = null;
    }
    if (x.client !== null || x.opening || this.closed) {
      refuse(socket, busyLine(name));
      return;
    }
    x.opening = true;
    const stream = await PortStream.open(this.lab.guest.files, x.entry.guestPath);
    x.opening = false;
    if (isErrno(stream)) {
      refuse(
        socket,
        stream.code === 'EBUSY'
          ? busyLine(name)
          : `vmchan: cannot open port ${name} in the guest: ${stream.toString()}\n`,
      );
      return;
    }
    if (socket.destroyed || this.closed || this.exposed.get(name) !== x) {
      socket.destroy();
      await stream.close();
      return;
    }
    const entry = x.entry;
    const drop = (bytes: number, reason: DropReason, direction: DropDirection): void => {
      const events = this.lab.events;
      if (!events.has('drop')) return;
      events.emit('drop', {
        device: entry.device,
        nr: entry.nr,
        side: 'guest',
        bytes,
        reason,
        direction,
      });
    };
    const bridge = new ClientBridge(
      stream,
      socket,
      // host bytes the guest read for a client that never took them
      (bytes) => drop(bytes, 'guest-client-gone', 'to-guest'),
      // client bytes read for the guest that the port never took (it went mid-write)
      (bytes) => drop(bytes, 'unplugged', 'to-host'),
    );
    x.client = bridge;
    void bridge.done.then(() => {
      if (x.client === bridge) x.client = null;
    });
  }

  private async unexpose(x: Exposed): Promise<void> {
    x.file.remove();
    // The client first: server.close() waits for every connection to end.
    const closing = new Promise<void>((resolve) => x.server.close(() => resolve()));
    await x.client?.stop();
    x.client = null;
    for (const socket of x.sockets) socket.destroy();
    await closing;
  }
}
