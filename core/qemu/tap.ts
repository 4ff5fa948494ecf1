/**
 * A traffic tap on a socket chardev of a real QEMU: vmchan sits between
 * QEMU's chardev and the host application, forwards every byte both ways
 * and hands each one to capture.
 *
 *   host app ──connect──▶ tap listener (new socket, 0600 / 127.0.0.1)
 *                          │ tap ──connect──▶ QEMU's chardev (server=on)
 *
 * Supported: chardevs on which QEMU listens (`-chardev socket,...,server=on`,
 * unix or tcp): vmchan connects to QEMU as the client and offers a new
 * listening socket to the application (mode A), or takes QEMU's own unix
 * path (inplace-tap.ts). The reverse (QEMU as the client, `server=off`, the
 * application listening) is reverse-tap.ts: with the user's consent QEMU's
 * chardev is re-pointed at the tap with chardev-change (`reverse` here
 * flips the directions) and changed back on close.
 *
 * Transparent proxy semantics. The guest can tell whether a host is
 * connected (QEMU sends it PORT_OPEN when a client connects; a guest read
 * with no host gets EOF at once, guest writes are dropped), so the tap
 * makes QEMU see exactly what it would without the tap: it connects to
 * QEMU's chardev when an application connects to the tap, and mirrors a
 * disconnect either way: when the application goes, the tap closes its
 * QEMU side too; when QEMU closes (chardev removed, QEMU gone), the tap
 * closes the application. The tap itself stays: the next application that
 * connects gets a new connection to QEMU's server. Holding QEMU's socket
 * between applications would instead keep the guest thinking a host is
 * there, block its reads and stall its writes until someone comes; that is
 * the opposite of what a tap should do. An end-of-file (a half-close) from
 * either side ends the session as well, as QEMU takes one from its client
 * as a disconnect; the data before it is delivered first.
 *
 * As with QEMU (which accepts one client per chardev), one application is
 * served at a time: a second one waits, connected but unread, until the
 * first leaves (at most 16 wait; more are closed).
 *
 * Backpressure: a side is read only while the other side's socket has
 * room (its write buffer below the high-water mark): the tap pauses the
 * reader when write() says the buffer is full and resumes it on 'drain'.
 * Memory per direction is bounded by the high-water mark plus one chunk.
 *
 * Capture: data records host-to-guest for application -> QEMU, guest-to-host
 * for QEMU -> application, and event records host-open / host-close for
 * each session (with the application's address in the text).
 */
import net from 'node:net';
import type { CaptureError } from '../capture/error.js';
import {
  dataRecord,
  eventRecord,
  nowNs,
  type CaptureInterface,
  type CaptureRecord,
  type CaptureSink,
  type Direction,
  type PortKind,
} from '../capture/record.js';
import { attachError, type AttachError } from './attach-error.js';
import {
  formatSocketSpec,
  type AttachedChardev,
  type AttachedTopology,
  type SocketSpec,
} from './attach-model.js';
import {
  describe,
  listenPrivately,
  parseListenSpec,
  type Listening,
  type ListenSpec,
} from './private-socket.js';

export interface TapPort {
  device: string;
  /** The guest's number for the device (D in vportDpN); 0 when unknown. */
  deviceIndex?: number;
  nr: number;
  kind: PortKind;
  name: string | null;
}

export interface TapOptions {
  /** The chardev id (for messages and the capture's interface description). */
  chardev: string;
  /** QEMU's listening socket (the chardev's address). */
  target: SocketSpec;
  /** Where applications connect: a unix path or loopback HOST:PORT (see parseListenSpec). */
  listen: string | ListenSpec;
  /** The port behind the chardev, for capture records. */
  port?: TapPort;
  /** Where the captured bytes and events go (a PcapngWriter, a MemorySink...). */
  sink?: CaptureSink;
  /** Write buffer high-water mark per direction (default: Node's 16 KiB). */
  highWaterMark?: number;
  /** Time allowed to connect to QEMU's chardev (default 3 s). */
  connectTimeoutMs?: number;
  /**
   * The reverse tap (reverse-tap.ts): QEMU is the one that connects to the
   * tap (its chardev re-pointed with chardev-change) and `target` is the
   * host application's own listening socket; directions flip accordingly.
   */
  reverse?: boolean;
}

export type TapEventKind =
  'listening' | 'app-connected' | 'app-disconnected' | 'app-waiting' | 'error' | 'closed';

export interface TapEvent {
  time: number;
  kind: TapEventKind;
  chardev: string;
  /** The session (1, 2, ...) the event belongs to. */
  session: number | null;
  text: string;
}

export interface TapStats {
  /** Bytes forwarded application -> QEMU (host-to-guest) and QEMU -> application. */
  toGuest: number;
  toHost: number;
  sessions: number;
  /** Times a side was paused because the other side's buffer was full. */
  pauses: number;
  /** Capture errors (the first one detaches the sink). */
  captureErrors: number;
}

const MAX_WAITING = 16;

interface Session {
  id: number;
  app: net.Socket;
  qemu: net.Socket | undefined;
  peer: string;
  /** The QEMU side came up (host-open was recorded). */
  connected: boolean;
  closed: boolean;
}

export class ChardevTap {
  readonly stats: TapStats = { toGuest: 0, toHost: 0, sessions: 0, pauses: 0, captureErrors: 0 };
  private readonly listeners = new Set<(e: TapEvent) => void>();
  private session: Session | undefined;
  private readonly waiting: net.Socket[] = [];
  private closed = false;
  private nextSession = 1;
  private sink: CaptureSink | undefined;
  private captureProblem: CaptureError | undefined;
  private idle: (() => void)[] = [];

  private constructor(
    private readonly server: net.Server,
    private readonly listening: Listening,
    private readonly options: TapOptions,
  ) {
    this.sink = options.sink;
    server.on('connection', (s) => this.onConnection(s));
  }

  /** Listen for applications; connects to QEMU when one comes. */
  static async start(options: TapOptions): Promise<ChardevTap | AttachError> {
    if (options.reverse === true) {
      if (options.target.server) {
        return attachError(
          'InvalidArgument',
          `chardev ${options.chardev}: a reverse tap is for a chardev QEMU connects out with (server=off)`,
        );
      }
    } else if (!options.target.server) {
      return attachError(
        'Unsupported',
        `chardev ${options.chardev}: QEMU connects out to ${formatSocketSpec(options.target)} (server=off); ` +
          'the tap needs a chardev QEMU listens on (socket,...,server=on,wait=off)',
      );
    }
    const spec =
      typeof options.listen === 'string' ? parseListenSpec(options.listen) : options.listen;
    if ('kind' in spec) return spec;
    const sameUnix =
      spec.transport === 'unix' &&
      options.target.transport === 'unix' &&
      spec.path === options.target.path;
    if (sameUnix) {
      return attachError(
        'InvalidArgument',
        `the tap cannot listen on QEMU's own socket ${spec.path}: give it a new path for the application`,
      );
    }
    const server = ChardevTap.server();
    const listening = await listenPrivately(server, spec);
    if ('kind' in listening) return listening;
    return ChardevTap.adopt(server, listening, options);
  }

  /** A listening server as the tap wants it (paused connections, half-open allowed). */
  static server(): net.Server {
    return net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  }

  /**
   * A tap on a server that listens already (made by `server()`): the
   * in-place tap (inplace-tap.ts) binds its socket itself, beside QEMU's.
   */
  static adopt(server: net.Server, listening: Listening, options: TapOptions): ChardevTap {
    const tap = new ChardevTap(server, listening, options);
    if (options.sink && options.port) {
      const err = options.sink.addInterface(tap.captureInterface(options.port));
      if (err) tap.captureFailed(err);
    }
    tap.emit(
      'listening',
      null,
      `tap on chardev ${options.chardev}: applications connect to ${listening.address} (QEMU's side: ${formatSocketSpec(options.target)})`,
    );
    return tap;
  }

  /** Where applications connect (a path, or HOST:PORT with the real port). */
  get address(): string {
    return this.listening.address;
  }

  /** The same, as a socket address. */
  get listenSpec(): ListenSpec {
    return this.listening.spec;
  }

  get chardev(): string {
    return this.options.chardev;
  }

  /** An application is connected right now. */
  get connected(): boolean {
    return this.session !== undefined && !this.session.closed;
  }

  /** The first capture error, when the sink failed (it is detached then). */
  get captureError(): CaptureError | undefined {
    return this.captureProblem;
  }

  onEvent(listener: (e: TapEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Resolves when no session is active or waiting (tests, benchmarks). */
  whenIdle(): Promise<void> {
    if (!this.session && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Stop listening, end the session and waiting connections, remove the socket file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.waiting.splice(0)) s.destroy();
    if (this.session) this.endSession(this.session, 'the tap was closed', true);
    await this.listening.close();
    this.sink?.flush();
    this.emit('closed', null, `tap on chardev ${this.options.chardev} closed`);
  }

  // ---- sessions --------------------------------------------------------------------------

  private onConnection(app: net.Socket): void {
    app.on('error', () => {});
    if (this.closed) {
      app.destroy();
      return;
    }
    if (this.session) {
      if (this.waiting.length >= MAX_WAITING) {
        app.destroy();
        this.emit(
          'error',
          null,
          `tap on chardev ${this.options.chardev}: too many applications waiting; closed one`,
        );
        return;
      }
      this.waiting.push(app);
      app.once('close', () => {
        const i = this.waiting.indexOf(app);
        if (i >= 0) this.waiting.splice(i, 1);
      });
      this.emit(
        'app-waiting',
        null,
        `an application waits for the tap on ${this.options.chardev} (QEMU serves one host at a time)`,
      );
      return;
    }
    this.begin(app);
  }

  private begin(app: net.Socket): void {
    const id = this.nextSession++;
    const peer = describePeer(app, this.listening.spec);
    const session: Session = { id, app, qemu: undefined, peer, connected: false, closed: false };
    this.session = session;
    this.stats.sessions++;
    const t = this.options.target;
    const qemu =
      t.transport === 'unix'
        ? net.createConnection({ path: t.path, allowHalfOpen: true })
        : net.createConnection({ host: t.host, port: t.port, allowHalfOpen: true });
    session.qemu = qemu;
    qemu.pause();
    const timer = setTimeout(() => {
      qemu.destroy(new Error('ETIMEDOUT'));
    }, this.options.connectTimeoutMs ?? 3_000);
    qemu.once('connect', () => {
      clearTimeout(timer);
      if (session.closed) {
        qemu.destroy();
        return;
      }
      session.connected = true;
      qemu.setNoDelay(true);
      app.setNoDelay(true);
      this.record(
        eventRecordFor(
          this.options,
          'host-open',
          `${peer} connected through the tap (session ${id})`,
        ),
      );
      this.emit(
        'app-connected',
        id,
        `session ${id}: ${peer} connected; tap connected to QEMU's chardev ${this.options.chardev} at ${formatSocketSpec(t)}`,
      );
      // reverse: the accepted side is QEMU, the connected one the host application
      const reverse = this.options.reverse === true;
      this.forward(session, app, qemu, reverse ? 'guest-to-host' : 'host-to-guest');
      this.forward(session, qemu, app, reverse ? 'host-to-guest' : 'guest-to-host');
      app.resume();
      qemu.resume();
    });
    qemu.on('error', (e) => {
      clearTimeout(timer);
      // After the connection was up, an error is followed by 'close', handled below.
      if (session.closed || session.connected) return;
      this.emit(
        'error',
        id,
        `session ${id}: cannot reach QEMU's chardev ${this.options.chardev} at ${formatSocketSpec(t)}: ${describe(e)}; closing the application's connection`,
      );
      this.endSession(session, 'QEMU side unreachable', true);
    });
    // Mirror the disconnect. QEMU takes end-of-file from its client as a
    // disconnect (and while the guest does not read, it does not even look,
    // only a hang-up is seen), so an end-of-file from either side ends the
    // session: the other side gets its pending data, then end-of-file, then
    // the socket is closed (at the latest after 2 s if its reader is stuck).
    let first: 'app' | 'qemu' | undefined;
    const down = { app: false, qemu: false };
    const finish = (s: net.Socket): void => {
      if (s.destroyed) return;
      const killer = setTimeout(() => s.destroy(), 2_000);
      killer.unref();
      s.end(() => {
        clearTimeout(killer);
        s.destroy();
      });
    };
    const onEnd = (side: 'app' | 'qemu'): void => {
      first ??= side;
      finish(app);
      finish(qemu);
    };
    const onClose = (side: 'app' | 'qemu'): void => {
      down[side] = true;
      first ??= side;
      if (session.closed) return;
      if (down.app && down.qemu) {
        this.endSession(
          session,
          first === 'app' ? 'the application disconnected' : 'QEMU closed the chardev connection',
          false,
        );
        return;
      }
      finish(side === 'app' ? qemu : app);
    };
    qemu.once('close', () => onClose('qemu'));
    app.once('close', () => onClose('app'));
    qemu.once('end', () => onEnd('qemu'));
    app.once('end', () => onEnd('app'));
  }

  /** Forward `from` -> `to`, capturing, pausing `from` while `to` is full. */
  private forward(session: Session, from: net.Socket, to: net.Socket, direction: Direction): void {
    let waitingForDrain = false;
    const hwm = this.options.highWaterMark;
    from.on('data', (chunk: Buffer) => {
      // After an end-of-file the session is over: nothing more is delivered.
      if (session.closed || to.writableEnded) return;
      if (direction === 'host-to-guest') this.stats.toGuest += chunk.length;
      else this.stats.toHost += chunk.length;
      if (this.sink && this.options.port) {
        this.record(
          dataRecord({
            time: nowNs(),
            device: this.options.port.device,
            port: this.options.port.nr,
            portName: this.options.port.name ?? undefined,
            direction,
            bytes: chunk,
          }),
        );
      }
      const room = to.write(chunk);
      const full = !room || (hwm !== undefined && to.writableLength >= hwm);
      if (full && !waitingForDrain) {
        waitingForDrain = true;
        this.stats.pauses++;
        from.pause();
        to.once('drain', () => {
          waitingForDrain = false;
          if (!session.closed) from.resume();
        });
      }
    });
  }

  private endSession(session: Session, why: string, destroy: boolean): void {
    if (session.closed) return;
    session.closed = true;
    if (destroy) {
      session.app.destroy();
      session.qemu?.destroy();
    }
    if (session.connected) {
      this.record(
        eventRecordFor(
          this.options,
          'host-close',
          `${session.peer} left the tap: ${why} (session ${session.id})`,
        ),
      );
    }
    this.emit(
      'app-disconnected',
      session.id,
      `session ${session.id}: ${why}; ${this.stats.toGuest} bytes to the guest, ${this.stats.toHost} to the host so far`,
    );
    if (this.session === session) this.session = undefined;
    this.sink?.flush();
    const next = this.waiting.shift();
    if (next && !this.closed && !next.destroyed) {
      this.begin(next);
      return;
    }
    if (!this.session && this.waiting.length === 0) {
      const idle = this.idle;
      this.idle = [];
      for (const r of idle) r();
    }
  }

  // ---- capture -----------------------------------------------------------------------------

  private captureInterface(port: TapPort): CaptureInterface {
    const t = this.options.target;
    const backend =
      t.transport === 'unix' ? `unix:${t.path},server=on` : `tcp:${formatSocketSpec(t)},server=on`;
    return {
      device: port.device,
      deviceIndex: port.deviceIndex ?? 0,
      port: port.nr,
      kind: port.kind,
      name: port.name ?? undefined,
      chardev: { id: this.options.chardev, backend },
    };
  }

  private record(r: CaptureRecord | undefined): void {
    if (!r || !this.sink) return;
    const err = this.sink.write(r);
    if (err) this.captureFailed(err);
  }

  private captureFailed(err: CaptureError): void {
    this.stats.captureErrors++;
    this.captureProblem ??= err;
    this.sink = undefined;
    this.emit('error', null, `capture stopped: ${err.message} (forwarding goes on)`);
  }

  private emit(kind: TapEventKind, session: number | null, text: string): void {
    const e: TapEvent = { time: Date.now(), kind, chardev: this.options.chardev, session, text };
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch {
        // A listener's bug must not break forwarding.
      }
    }
  }
}

function eventRecordFor(
  options: TapOptions,
  event: 'host-open' | 'host-close',
  reason: string,
): CaptureRecord | undefined {
  const p = options.port;
  if (!p) return undefined;
  return eventRecord({
    time: nowNs(),
    device: p.device,
    port: p.nr,
    portName: p.name ?? undefined,
    event,
    reason,
  });
}

function describePeer(s: net.Socket, spec: ListenSpec): string {
  if (spec.transport === 'unix') return `an application on ${spec.path}`;
  return s.remoteAddress
    ? `an application from ${s.remoteAddress}:${s.remotePort}`
    : 'an application';
}

/** The port behind chardev `chardevId`, as its capture records name it (undefined: no port uses it). */
export function tapPortOf(topology: AttachedTopology, chardevId: string): TapPort | undefined {
  const port = topology.ports.find((p) => p.chardev === chardevId);
  if (port === undefined) return undefined;
  return {
    device: port.device,
    deviceIndex: Math.max(
      0,
      topology.devices.findIndex((d) => d.name === port.device),
    ),
    nr: port.nr,
    kind: port.kind,
    name: port.name,
  };
}

/**
 * Set up a tap for chardev `chardevId` of an attached machine's topology:
 * finds QEMU's socket and the port behind it.
 */
export async function tapChardev(
  topology: AttachedTopology,
  chardevId: string,
  listen: string | ListenSpec,
  options: { sink?: CaptureSink; highWaterMark?: number; connectTimeoutMs?: number } = {},
): Promise<ChardevTap | AttachError> {
  const chardev: AttachedChardev | undefined = topology.chardevs.find((c) => c.id === chardevId);
  if (!chardev) {
    return attachError(
      'NotFound',
      `no chardev '${chardevId}' (have: ${topology.chardevs.map((c) => c.id).join(', ') || 'none'})`,
    );
  }
  if (!chardev.socket) {
    return attachError(
      'Unsupported',
      `chardev ${chardevId} is a ${chardev.kind} backend (${chardev.filename}); the tap works on socket chardevs only`,
    );
  }
  if (chardev.socket.server && chardev.connected === true) {
    return attachError(
      'InvalidArgument',
      `chardev ${chardevId} already has a host client connected (${chardev.filename}); QEMU serves one at a time: disconnect it first`,
    );
  }
  const tapOptions: TapOptions = { chardev: chardevId, target: chardev.socket, listen };
  const port = tapPortOf(topology, chardevId);
  if (port) tapOptions.port = port;
  if (options.sink) tapOptions.sink = options.sink;
  if (options.highWaterMark !== undefined) tapOptions.highWaterMark = options.highWaterMark;
  if (options.connectTimeoutMs !== undefined)
    tapOptions.connectTimeoutMs = options.connectTimeoutMs;
  return ChardevTap.start(tapOptions);
}
