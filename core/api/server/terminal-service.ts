/**
 * Terminal sessions for the app (terminal-contract.ts): a program at one end
 * of a channel, typed into by hand, its output streamed to every screen in
 * the batches.
 *
 * - guest side: a guest program that opens the port's node through the
 *   guest's system calls (PortStream: open, read, write, poll, SIGIO), so
 *   opening sends PORT_OPEN 1, closing PORT_OPEN 0, and a serial port that
 *   is open already answers EBUSY, all by the Linux driver's rules;
 * - host side: the port's host application, a client of the chardev's
 *   server socket as socat would be (QEMU's one-client rule applies), or the
 *   peer of an in-memory chardev;
 * - monitor: QEMU's HMP (core/monitor) for the app's machine on an
 *   in-memory endpoint; hot-plug through it is the machine's, so the
 *   topology follows.
 *
 * Nothing here grows without bound: typed bytes wait in a queue of at most
 * TERMINAL_INPUT_QUEUE bytes (more is refused), and each screen has an
 * Outbox that keeps at most TERMINAL_BATCH_BYTES per session until its next
 * batch, dropping the oldest and counting them.
 */
import { isVmchanError } from '../../base/error.js';
import { failWith } from './api-error.js';
import * as net from 'node:net';
import { isErrno } from '../../serial/guest/errno.js';
import { MemoryEndpoint } from '../../serial/memory-endpoint.js';
import { attachMonitor } from '../../monitor/index.js';
import { PortStream } from '../../workloads/port-stream.js';
import { socketOf } from './chardev-hosts.js';
import { fail, ok, type PortRef, type Result } from '../contract/contract.js';
import type { LabSession } from './lab-session.js';
import type { GuestConsoleOpened, HostSocket } from './session.js';
import { portLabel } from './lab-session.js';
import {
  TERMINAL_BATCH_BYTES,
  TERMINAL_INPUT_QUEUE,
  type TerminalOutput,
  type TerminalSession,
  type TerminalSide,
} from '../contract/terminal-contract.js';

/** Sessions kept at once (ended ones count until closed). */
export const MAX_TERMINALS = 32;
/** How long a guest open or a host connect may take before it counts as failed. */
const OPEN_TIMEOUT_MS = 3000;

export interface TerminalHost {
  /** The lab the sessions run on now. */
  session(): LabSession;
  /**
   * Where a host terminal connects when what is served is not the lab (an
   * attached QEMU's tap), or why it cannot; null: the lab's own way.
   */
  hostSocket?(ref: PortRef): HostSocket | string | null;
  /**
   * A console on the guest side that the served session opens itself (an
   * attached QEMU's guest agent), or why not; null: the lab's own way.
   */
  guestConsole?(ref: PortRef): Promise<GuestConsoleOpened | string> | null;
  /** Something the topology shows changed (a guest open, a monitor's hot-plug). */
  changed(): void;
}

/** What the service's dispatch hands over. */
export type TerminalCommand =
  | { cmd: 'openTerminal'; port: PortRef; side: TerminalSide }
  | { cmd: 'openMonitor' }
  | { cmd: 'terminalInput'; session: string; data: string; base64?: boolean | undefined }
  | { cmd: 'closeTerminal'; session: string }
  | { cmd: 'listTerminals' };

/** One running program behind a session. */
interface Program {
  /** Queue typed bytes; the count queued, or why not. */
  input(bytes: Uint8Array): number | string;
  /** Stop it (close the port, hang up, detach the monitor). */
  stop(): Promise<void>;
}

interface Live {
  info: TerminalSession;
  program: Program | null;
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms).unref());

/** `p`, or `fallback` when it takes longer than `ms`. */
function within<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => fallback)]);
}

// ---------------------------------------------------------------- outbox

interface Pending {
  chunks: Uint8Array[];
  bytes: number;
  dropped: number;
  ended: string | null;
}

/**
 * One screen's terminal output between two batches: per session the newest
 * TERMINAL_BATCH_BYTES at most, the rest counted as dropped.
 */
export class Outbox {
  private pending = new Map<string, Pending>();

  constructor(
    /** Told when the outbox goes from empty to not (the screen's bridge sends a batch). */
    private readonly kick: () => void,
    private readonly limit = TERMINAL_BATCH_BYTES,
  ) {}

  get empty(): boolean {
    return this.pending.size === 0;
  }

  private entry(session: string): Pending {
    let e = this.pending.get(session);
    if (e === undefined) {
      e = { chunks: [], bytes: 0, dropped: 0, ended: null };
      if (this.pending.size === 0) queueMicrotask(this.kick);
      this.pending.set(session, e);
    }
    return e;
  }

  push(session: string, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const e = this.entry(session);
    if (bytes.length >= this.limit) {
      e.dropped += e.bytes + bytes.length - this.limit;
      e.chunks = [bytes.slice(bytes.length - this.limit)];
      e.bytes = this.limit;
      return;
    }
    e.chunks.push(bytes.slice());
    e.bytes += bytes.length;
    while (e.bytes > this.limit) {
      const head = e.chunks[0]!;
      const excess = e.bytes - this.limit;
      if (head.length <= excess) {
        e.chunks.shift();
        e.bytes -= head.length;
        e.dropped += head.length;
      } else {
        e.chunks[0] = head.subarray(excess);
        e.bytes -= excess;
        e.dropped += excess;
      }
    }
  }

  end(session: string, reason: string): void {
    this.entry(session).ended = reason;
  }

  /** Everything pending, for the batch going out now (undefined when nothing is). */
  take(): TerminalOutput[] | undefined {
    if (this.pending.size === 0) return undefined;
    const out: TerminalOutput[] = [];
    for (const [session, e] of this.pending) {
      out.push({
        session,
        data: Buffer.concat(e.chunks).toString('base64'),
        dropped: e.dropped,
        ended: e.ended,
      });
    }
    this.pending.clear();
    return out;
  }
}

// --------------------------------------------------------------- service

export class TerminalService {
  private readonly sessions = new Map<string, Live>();
  private readonly outboxes = new Set<Outbox>();
  private next = 0;
  private monitors = 0;

  constructor(private readonly host: TerminalHost) {}

  /** A screen's outbox; its output goes into that screen's batches. */
  addScreen(kick: () => void): Outbox {
    const o = new Outbox(kick);
    this.outboxes.add(o);
    return o;
  }

  removeScreen(outbox: Outbox): void {
    this.outboxes.delete(outbox);
  }

  list(): TerminalSession[] {
    return [...this.sessions.values()].map((s) => ({ ...s.info }));
  }

  async execute(c: TerminalCommand): Promise<Result<unknown>> {
    switch (c.cmd) {
      case 'openTerminal':
        return this.openPort(c.port, c.side);
      case 'openMonitor':
        return this.openMonitor();
      case 'terminalInput': {
        const s = this.sessions.get(c.session);
        if (s === undefined) return fail('NotFound', `no terminal session '${c.session}'`);
        if (s.program === null || !s.info.open)
          return fail('Refused', `terminal ${s.info.title} has ended`);
        const bytes = c.base64
          ? new Uint8Array(Buffer.from(c.data, 'base64'))
          : new TextEncoder().encode(c.data);
        const n = s.program.input(bytes);
        return typeof n === 'string' ? fail('Refused', n) : ok({ queued: n });
      }
      case 'closeTerminal': {
        const s = this.sessions.get(c.session);
        if (s === undefined) return fail('NotFound', `no terminal session '${c.session}'`);
        this.sessions.delete(c.session);
        await this.stop(s);
        return ok({});
      }
      case 'listTerminals':
        return ok({ sessions: this.list() });
    }
  }

  /** End every session (the lab is replaced or the service closes). */
  async endAll(reason: string): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) {
      if (s.info.open) for (const o of this.outboxes) o.end(s.info.id, reason);
      await this.stop(s);
    }
  }

  private async stop(s: Live): Promise<void> {
    s.info.open = false;
    const p = s.program;
    s.program = null;
    if (p !== null) await within(p.stop(), 1000, undefined);
    this.host.changed();
  }

  // ------------------------------------------------------------- output

  private emit(id: string, bytes: Uint8Array): void {
    for (const o of this.outboxes) o.push(id, bytes);
  }

  /** The program ended by itself: say why on every screen. */
  private ended(id: string, reason: string): void {
    const s = this.sessions.get(id);
    if (s === undefined || !s.info.open) return;
    s.info.open = false;
    s.program = null;
    for (const o of this.outboxes) o.end(id, reason);
    this.host.changed();
  }

  private register(info: Omit<TerminalSession, 'id' | 'open'>): TerminalSession | string {
    if (this.sessions.size >= MAX_TERMINALS)
      return `${MAX_TERMINALS} terminals are open already; close one first`;
    const full: TerminalSession = { ...info, id: `t${++this.next}`, open: true };
    this.sessions.set(full.id, { info: full, program: null });
    return full;
  }

  // ------------------------------------------------------------- ports

  private async openPort(ref: PortRef, side: TerminalSide): Promise<Result<unknown>> {
    const served = side === 'host' ? (this.host.hostSocket?.(ref) ?? null) : null;
    if (typeof served === 'string') return fail('Refused', served);
    if (served !== null) return this.openSocket(ref, served);
    const agentConsole = side === 'guest' ? (this.host.guestConsole?.(ref) ?? null) : null;
    if (agentConsole !== null) return this.openAgentConsole(ref, await agentConsole);
    const lab = this.host.session();
    const found = lab.port(ref);
    if (isVmchanError(found)) return failWith(found);
    const label = portLabel(found.port, found.device.name);
    return side === 'guest'
      ? this.openGuest(lab, ref, label)
      : this.openHost(lab, ref, label, found.port.chardev);
  }

  /** The node a guest program opens: hvcK, the by-name link, or vportDpN. */
  private guestNode(lab: LabSession, ref: PortRef): string | null {
    const device = lab.device(ref.device);
    const gp = device === undefined ? undefined : lab.lab.guest.driverFor(device)?.port(ref.nr);
    if (gp === undefined) return null;
    if (gp.console !== null) return `/dev/hvc${gp.console.hvc}`;
    const link = gp.name === null ? null : `/dev/virtio-ports/${gp.name}`;
    if (link !== null && lab.lab.guest.namespace.exists(link)) return link;
    return `/dev/${gp.devName}`;
  }

  private async openGuest(lab: LabSession, ref: PortRef, label: string): Promise<Result<unknown>> {
    const node = this.guestNode(lab, ref);
    if (node === null) return fail('Refused', `the guest has no device node for ${label} yet`);
    if (lab.lab.scheduler.mode === 'step') {
      return fail(
        'Refused',
        `open ${node}: the engine is paused; the guest runs no program until you press Run`,
      );
    }
    const files = lab.lab.guest.files;
    const opening = PortStream.open(files, node);
    const stream = await within(opening, OPEN_TIMEOUT_MS, null);
    if (stream === null) {
      // Too slow (the engine was paused meanwhile): whatever comes later is closed again.
      void opening.then((s) => (isErrno(s) ? undefined : s.close()));
      return fail('Refused', `open ${node}: no answer from the guest (is the engine running?)`);
    }
    if (isErrno(stream)) return fail('Refused', stream.toString());
    const info = this.register({ kind: 'guest', port: ref, title: `${label} · guest`, path: node });
    if (typeof info === 'string') {
      await stream.close();
      return fail('Refused', info);
    }
    const live = this.sessions.get(info.id)!;
    live.program = this.guestProgram(info.id, stream);
    this.host.changed();
    return ok(info);
  }

  private guestProgram(id: string, stream: PortStream): Program {
    const queue: Uint8Array[] = [];
    let queued = 0;
    let writing = false;
    const writer = async (): Promise<void> => {
      writing = true;
      while (queue.length > 0 && !stream.isClosed) {
        const chunk = queue[0]!;
        const r = await stream.write(chunk);
        queue.shift();
        queued -= chunk.length;
        if (isErrno(r)) {
          if (!stream.isClosed) this.ended(id, `write ${stream.path}: ${r.message} (${r.code})`);
          break;
        }
      }
      writing = false;
    };
    const reader = async (): Promise<void> => {
      for (;;) {
        const r = await stream.readSome(16 * 1024);
        if (stream.isClosed) return;
        if (r instanceof Uint8Array) {
          this.emit(id, r);
          continue;
        }
        if (r === 'eof') {
          // The host is not connected (L4): wait for it, as a terminal would stay.
          const w = await stream.waitForHost();
          if (w === 'closed') return;
          if (w === 'gone') {
            this.ended(id, `${stream.path}: the port was unplugged`);
            void stream.close();
            return;
          }
          continue;
        }
        this.ended(id, `read ${stream.path}: ${r.message} (${r.code})`);
        void stream.close();
        return;
      }
    };
    void reader();
    return {
      input: (bytes) => {
        if (queued + bytes.length > TERMINAL_INPUT_QUEUE) {
          return `${stream.path} is not taking bytes (${queued} queued; is the host side connected?)`;
        }
        queue.push(bytes);
        queued += bytes.length;
        if (!writing) void writer();
        return queued;
      },
      stop: () => stream.close(),
    };
  }

  private async openHost(
    lab: LabSession,
    ref: PortRef,
    label: string,
    chardev: string | null,
  ): Promise<Result<unknown>> {
    if (chardev === null) return fail('Refused', `${label} has no chardev (no host side)`);
    const endpoint = lab.machine.chardev(chardev);
    if (endpoint === undefined) return fail('NotFound', `chardev '${chardev}' not found`);
    if (endpoint.connected) {
      return fail(
        'Refused',
        `chardev '${chardev}' has a host application already (QEMU takes one client at a time)`,
      );
    }
    if (endpoint instanceof MemoryEndpoint) {
      const info = this.register({
        kind: 'host',
        port: ref,
        title: `${label} · host`,
        path: `memory:${chardev}`,
      });
      if (typeof info === 'string') return fail('Refused', info);
      this.sessions.get(info.id)!.program = this.peerProgram(info.id, endpoint, false);
      this.host.changed();
      return ok(info);
    }
    const address = socketOf(lab.machine.backend(chardev))?.listeningOn ?? null;
    if (address === null) {
      return fail(
        'Refused',
        `a host terminal is a client of a server socket chardev; '${chardev}' is not one (${endpoint.describe()})`,
      );
    }
    const where = address.type === 'unix' ? address.path : `${address.host}:${address.port}`;
    const socket =
      address.type === 'unix'
        ? net.createConnection({ path: address.path })
        : net.createConnection({ host: address.host, port: Number(address.port) });
    const connected = await new Promise<string | null>((resolve) => {
      socket.once('connect', () => resolve(null));
      socket.once('error', (e) => resolve(e.message));
    });
    if (connected !== null) return fail('IoError', `cannot connect to ${where}: ${connected}`);
    socket.on('error', () => {});
    // The backend adopts the client on its next turn; a refused one is closed.
    const adopted = await waitFor(() => endpoint.connected || socket.destroyed, OPEN_TIMEOUT_MS);
    if (!adopted || socket.destroyed || !endpoint.connected) {
      socket.destroy();
      return fail('Refused', `chardev '${chardev}' refused the connection`);
    }
    const info = this.register({
      kind: 'host',
      port: ref,
      title: `${label} · host`,
      path: address.type === 'unix' ? `unix:${address.path}` : `tcp:${where}`,
    });
    if (typeof info === 'string') {
      socket.destroy();
      return fail('Refused', info);
    }
    this.sessions.get(info.id)!.program = this.socketProgram(info.id, socket, where);
    this.host.changed();
    return ok(info);
  }

  /** A host terminal as a client of `target` (an attached QEMU's tap). */
  private async openSocket(ref: PortRef, target: HostSocket): Promise<Result<unknown>> {
    const a = target.address;
    const where = a.type === 'unix' ? a.path : `${a.host}:${a.port}`;
    const socket =
      a.type === 'unix'
        ? net.createConnection({ path: a.path })
        : net.createConnection({ host: a.host, port: a.port });
    const connected = await within(
      new Promise<string | null>((resolve) => {
        socket.once('connect', () => resolve(null));
        socket.once('error', (e) => resolve(e.message));
      }),
      OPEN_TIMEOUT_MS,
      'no answer',
    );
    if (connected !== null) {
      socket.destroy();
      return fail('IoError', `cannot connect to ${where}: ${connected}`);
    }
    socket.on('error', () => {});
    const info = this.register({
      kind: 'host',
      port: ref,
      title: `${target.label} · host`,
      path: a.type === 'unix' ? `unix:${a.path}` : `tcp:${where}`,
    });
    if (typeof info === 'string') {
      socket.destroy();
      return fail('Refused', info);
    }
    this.sessions.get(info.id)!.program = this.socketProgram(info.id, socket, where);
    this.host.changed();
    return ok(info);
  }

  /** A guest terminal through the guest's agent (guest-file-* on the port's node). */
  private async openAgentConsole(
    ref: PortRef,
    opened: GuestConsoleOpened | string,
  ): Promise<Result<unknown>> {
    if (typeof opened === 'string') return fail('Refused', opened);
    const con = opened.console;
    const info = this.register({
      kind: 'guest',
      port: ref,
      title: `${opened.label} · guest (qemu-ga)`,
      path: con.path,
    });
    if (typeof info === 'string') {
      await con.close();
      return fail('Refused', info);
    }
    let stopping = false;
    con.onData((b) => this.emit(info.id, b));
    con.onEnd((why) => {
      if (!stopping) this.ended(info.id, `${con.path} through qemu-ga: ${why}`);
    });
    this.sessions.get(info.id)!.program = {
      input: (bytes) => con.write(bytes),
      stop: async () => {
        stopping = true;
        await con.close();
      },
    };
    this.host.changed();
    return ok(info);
  }

  private socketProgram(id: string, socket: net.Socket, where: string): Program {
    let stopping = false;
    socket.on('data', (b: Buffer) => this.emit(id, b));
    socket.on('close', () => {
      if (!stopping) this.ended(id, `${where}: the connection was closed`);
    });
    return {
      input: (bytes) => {
        if (socket.destroyed) return `${where}: the connection is closed`;
        if (socket.writableLength + bytes.length > TERMINAL_INPUT_QUEUE)
          return `${where} is not taking bytes (${socket.writableLength} queued)`;
        socket.write(bytes);
        return socket.writableLength;
      },
      stop: () => {
        stopping = true;
        return new Promise<void>((resolve) => {
          if (socket.destroyed) return resolve();
          socket.once('close', () => resolve());
          socket.destroy();
        });
      },
    };
  }

  /** The host peer of an in-memory chardev (`monitor`: the HMP's own endpoint). */
  private peerProgram(id: string, endpoint: MemoryEndpoint, monitor: boolean): Program {
    const peer = endpoint.peer;
    const off = peer.onData((b) => {
      this.emit(id, b);
      // What a monitor prints may follow a hot-plug or a chardev-add: let the tree look again.
      if (monitor) this.host.changed();
    });
    peer.connect();
    return {
      input: (bytes) => {
        if (!peer.connected) return `chardev '${endpoint.id}' is not connected`;
        if (endpoint.pendingToGuest + bytes.length > TERMINAL_INPUT_QUEUE)
          return `chardev '${endpoint.id}' is not taking bytes (${endpoint.pendingToGuest} queued)`;
        peer.write(bytes);
        return endpoint.pendingToGuest;
      },
      stop: async () => {
        off();
        peer.disconnect();
      },
    };
  }

  // ------------------------------------------------------------ monitor

  private openMonitor(): Result<unknown> {
    const lab = this.host.session();
    const id = `vmchan-hmp${++this.monitors}`;
    const endpoint = new MemoryEndpoint({ id });
    let sessionId: string | null = null;
    let detach = (): void => {};
    const monitor = attachMonitor(lab.machine, endpoint, 'readline', {
      // `quit` ends this console, not the app's lab.
      onQuit: () => {
        if (sessionId !== null) this.ended(sessionId, 'quit: the monitor console closed');
        endpoint.peer.disconnect();
        detach();
      },
    });
    if (!('close' in monitor)) return fail('Refused', monitor.message);
    detach = () => monitor.close();
    const info = this.register({ kind: 'monitor', port: null, title: 'HMP monitor', path: id });
    if (typeof info === 'string') {
      monitor.close();
      return fail('Refused', info);
    }
    sessionId = info.id;
    const peer = this.peerProgram(info.id, endpoint, true);
    this.sessions.get(info.id)!.program = {
      input: (bytes) => peer.input(bytes),
      stop: async () => {
        await peer.stop();
        monitor.close();
      },
    };
    return ok(info);
  }
}

/** Poll `test` every 10 ms until it holds or `ms` passed. */
async function waitFor(test: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}
