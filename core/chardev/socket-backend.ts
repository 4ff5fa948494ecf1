/**
 * socket: a unix or tcp stream socket, listening (server=on) or connecting.
 *
 * As QEMU's chardev/char-socket.c, with these choices:
 * - The host side is connected while one client is there (H3). QEMU stops
 *   accepting while connected, so a second client waits in the kernel's
 *   backlog until the first leaves; Node cannot pause accept(), so vmchan
 *   accepts the second client and closes it at once, counts it
 *   (stats.refusedClients) and says so through onNotice.
 * - wait=on never blocks start-up: the chardev is created at once, reports
 *   "waiting for connection on: ..." and `ready` settles at the first client.
 * - A client with reconnect=N retries every N seconds after a failed connect
 *   or a hang-up, reporting the failure once per outage as QEMU does
 *   ("Unable to connect character device ID: ..."); without reconnect, a
 *   failed first connect is an error and a later hang-up is final.
 * - tcp servers listen on the host given, 127.0.0.1 when none is (QEMU
 *   listens on every address for `host=`; a lab should not).
 * - Unix server sockets are created 0600 (unix-socket-file.ts).
 * - End of file from a tcp peer: what it sent before still reaches the
 *   guest, then the link is dropped (QEMU reads up to EOF and disconnects).
 *   A unix peer's close is a hang-up to QEMU (POLLHUP, tcp_chr_hup): what
 *   the port cannot take at that moment is lost, counted and reported (H4).
 * - hangUp() (the inspector's "Disconnect host") closes the current
 *   connection as if the peer went away: a server keeps listening for the
 *   next client, a client with reconnect=N dials again in N seconds; a
 *   client without reconnect refuses (its hang-up would be final).
 * - websocket=on (server): the HTTP upgrade, then binary frames (websocket.ts).
 * - abstract=on: a Linux abstract name, tight (QEMU's default) or padded
 *   (tight=off), as abstract-socket.ts makes each.
 * - Descriptors passed with SCM_RIGHTS (QMP getfd, add-fd): read only
 *   while a frontend asked for them (a QMP monitor, wantDescriptors()),
 *   through fd-passing.ts; the latest batch is held until the frontend takes
 *   it, the next batch comes or the connection ends (QEMU's tcp_chr_recv,
 *   tcp_get_msgfds, tcp_chr_free_connection). Behind a port the kernel
 *   closes passed descriptors at once (QEMU holds the latest batch unused).
 * Not modelled: tn3270, tls, service names for ports.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { SocketBackend } from './kinds/socket.js';
import { BackendEndpoint, type BackendOptions } from './backend-endpoint.js';
import {
  chardevError,
  describeSystemError,
  isChardevError,
  type ChardevError,
} from './chardev-error.js';
import { watchHangUp, type HangUpWatch } from './hup-watch.js';
import { StreamLink } from './stream-link.js';
import { TELNET_INIT, TelnetFilter } from './telnet.js';
import { WebSocketHandshakeFailed, acceptWebSocket } from './websocket.js';
import type { Duplex, Readable } from 'node:stream';
import { listenUnixPrivately, type OwnedSocketFile } from './unix-socket-file.js';
import { connectTightAbstract, listenTightAbstract } from './abstract-socket.js';
import { DescriptorReader, closeDescriptors, fdPassAddon } from './fd-passing.js';

export type SocketSpec = SocketBackend;

/**
 * Clients that may wait for the connected one to leave. QEMU listens with a
 * backlog of 1, which Linux lets hold 2 connections; beyond those the
 * kernel stops answering. vmchan keeps a few more and refuses past them.
 */
export const MAX_WAITING_CLIENTS = 16;

/** Where tcp listens and connects when the command line names no host. */
export const DEFAULT_TCP_HOST = '127.0.0.1';

export interface SocketStats {
  /** Clients accepted or connections made. */
  connections: number;
  /** Clients closed at once because MAX_WAITING_CLIENTS already waited (H3). */
  refusedClients: number;
  /** Clients waiting for the connected one to leave (H3, QEMU's listen backlog). */
  waitingClients: number;
  /** Connect attempts that failed (clients). */
  failedConnects: number;
}

type Address = { type: 'unix'; path: string } | { type: 'tcp'; host: string; port: string };

/** The descriptor under a net.Socket (its libuv handle's), or undefined when it has none. */
function socketFd(socket: net.Socket): number | undefined {
  return (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
}

/**
 * The sun_path a connected unix socket is bound to ('' for none, as a
 * socketpair's end or a client), from /proc/net/unix by the socket's inode:
 * Node has no getsockname for unix sockets. An abstract name prints as
 * nothing, as QEMU's %s of a path starting with NUL does.
 */
function unixLocalPath(socket: net.Socket): string {
  const fd = socketFd(socket);
  if (typeof fd !== 'number' || fd < 0) return '';
  try {
    const inode = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`))?.[1];
    if (inode === undefined) return '';
    for (const line of fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[6] === inode) return cols[7] === undefined || cols[7].startsWith('@') ? '' : cols[7];
    }
  } catch {
    // No /proc: the filename shows no path.
  }
  return '';
}

function bracket(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export class SocketChardev extends BackendEndpoint {
  readonly kind = 'socket' as const;
  readonly stats: SocketStats = {
    connections: 0,
    refusedClients: 0,
    waitingClients: 0,
    failedConnects: 0,
  };
  private address: Address;
  private readonly listenMode: boolean;
  private readonly nodelay: boolean;
  /**
   * abstract=on: a Linux abstract name, no file; 'tight' (QEMU's default:
   * the name's own length, through abstract-socket.ts) or 'padded'
   * (tight=off: the whole sun_path, as Node binds a leading NUL).
   */
  private readonly abstractForm: 'tight' | 'padded' | null;
  /** telnet=on: negotiate on connect and strip IAC commands (telnet.ts). */
  private readonly telnet: boolean;
  /** websocket=on: the HTTP upgrade, then binary frames (websocket.ts). */
  private readonly websocket: boolean;
  private readonly reconnectMs: number;
  private server: net.Server | null = null;
  private socketFile: OwnedSocketFile | null = null;
  private socket: net.Socket | null = null;
  private link: StreamLink | null = null;
  /** tcp: `local <-> remote` of the current connection, numeric, as QEMU prints it. */
  private localText = '';
  private remoteText = '';
  private readonly waits: boolean;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Server: clients that connected while one was served, in arrival order (QEMU's backlog). */
  private readonly waiting: net.Socket[] = [];
  private connectErrorReported = false;
  private hupWatch: HangUpWatch | null = null;
  /** False once the hang-up watch could not start (no perl): EOF then delivers, as for tcp. */
  private hupWatchUsable = true;
  /** fd=N: the descriptor as written (describe() shows it as QEMU does). */
  private fdText: string | null = null;
  /** fd=N, connected: a unix socket's own path, or null for tcp (qemu_chr_compute_filename). */
  private fdUnixPath: string | null = null;
  /** A frontend takes passed descriptors (wantDescriptors): connections read them from now on. */
  private passDescriptors = false;
  /** The latest batch of passed descriptors nobody took yet (QEMU's read_msgfds). */
  private heldDescriptors: number[] = [];

  private constructor(spec: SocketSpec, address: Address, options: BackendOptions) {
    super({ ...options, waitForPeer: spec.server && spec.wait });
    this.address = address;
    this.waits = spec.server && spec.wait;
    this.listenMode = spec.server;
    this.nodelay = spec.nodelay;
    this.telnet = spec.telnet === true;
    this.websocket = spec.websocket === true;
    this.abstractForm = spec.abstract !== true ? null : spec.tight === false ? 'padded' : 'tight';
    this.reconnectMs = spec.server ? 0 : (spec.reconnect ?? 0) * 1000;
  }

  static async open(
    spec: SocketSpec,
    options: BackendOptions,
  ): Promise<SocketChardev | ChardevError> {
    const a = spec.address;
    if (a.type === 'fd') return SocketChardev.openFd(spec, a.fd, options);
    let address: Address;
    if (a.type === 'unix') {
      address = { type: 'unix', path: a.path };
    } else {
      if (!/^\d+$/.test(a.port) || Number(a.port) > 65535) {
        return chardevError(
          'Unsupported',
          `port '${a.port}' is not a port number (service names are not supported)`,
          options.id,
        );
      }
      address = { type: 'tcp', host: a.host === '' ? DEFAULT_TCP_HOST : a.host, port: a.port };
    }
    const chardev = new SocketChardev(spec, address, options);
    const failed = spec.server ? await chardev.startServer() : await chardev.startClient();
    return failed ?? chardev;
  }

  /**
   * fd=N: a socket this process inherited (`vmchan run` started with it open,
   * as libvirt passes QEMU its sockets): a listening socket for server=on,
   * a connected one otherwise. On the command line the string must be a
   * number (QEMU's socket_get_fd with no monitor).
   */
  private static async openFd(
    spec: SocketSpec,
    text: string,
    options: BackendOptions,
  ): Promise<SocketChardev | ChardevError> {
    // socket_get_fd: with a current monitor (chardev-add) the string is a
    // getfd name whose descriptor the chardev takes; without one
    // (the command line) qemu_strtoi of the string.
    let fd: number;
    if (options.monitorFd !== undefined) {
      const named = options.monitorFd(text);
      if (named === null) {
        return chardevError(
          'OpenFailed',
          `File descriptor named '${text}' has not been found`,
          options.id,
        );
      }
      fd = named;
    } else {
      if (!/^[0-9]+$/.test(text) || Number(text) > 0x7fffffff) {
        return chardevError('Unsupported', `Unable to parse FD number ${text}`, options.id);
      }
      fd = Number(text);
    }
    try {
      if (!fs.fstatSync(fd).isSocket()) {
        // socket_get_fd closes what it took (a command-line descriptor stays the parent's).
        if (options.monitorFd !== undefined) closeDescriptors([fd]);
        return chardevError(
          'WrongFileType',
          `File descriptor '${text}' is not a socket`,
          options.id,
        );
      }
    } catch (error) {
      return chardevError(
        'OpenFailed',
        `File descriptor '${fd}' cannot be used: ${describeSystemError(error)}`,
        options.id,
      );
    }
    const chardev = new SocketChardev(spec, { type: 'unix', path: `fd:${fd}` }, options);
    chardev.fdText = text;
    if (!spec.server) {
      const socket = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
      socket.pause();
      chardev.adopt(socket);
      return chardev;
    }
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    server.on('connection', (socket) => chardev.accept(socket));
    chardev.server = server;
    const failed = await new Promise<Error | null>((resolve) => {
      server.once('error', resolve);
      server.listen({ fd }, () => {
        server.off('error', resolve);
        resolve(null);
      });
    });
    if (failed !== null) {
      chardev.server = null;
      server.close();
      return chardevError(
        'ListenFailed',
        `Failed to listen on file descriptor '${fd}': ${describeSystemError(failed)}`,
        options.id,
      );
    }
    const bound = server.address();
    if (typeof bound === 'string') chardev.address = { type: 'unix', path: bound };
    else if (bound !== null)
      chardev.address = { type: 'tcp', host: bound.address, port: String(bound.port) };
    chardev.watchErrors(server, 'listener error');
    return chardev;
  }

  describe(): string {
    const a = this.address;
    const server = this.listenMode ? ',server=on' : '';
    // An fd address: qemu_chr_socket_address's `disconnected:fd:N` until a
    // connection, then qemu_chr_compute_filename from the socket's addresses.
    if (this.fdText !== null) {
      if (this.socket === null) return `disconnected:fd:${this.fdText}${server}`;
      if (this.fdUnixPath !== null) return `unix:${this.fdUnixPath}${server}`;
      return `tcp:${this.localText}${server} <-> ${this.remoteText}`;
    }
    if (this.socket === null) {
      if (a.type === 'unix') return `disconnected:unix:${a.path}${server}`;
      return `disconnected:${this.protocolName}:${a.host}:${a.port}${server}`;
    }
    if (a.type === 'unix') return `unix:${a.path}${server}`;
    return `${this.protocolName}:${this.localText}${server} <-> ${this.remoteText}`;
  }

  /** qemu_chr_compute_filename's prefix for a tcp address. */
  private get protocolName(): string {
    return this.telnet ? 'telnet' : this.websocket ? 'websocket' : 'tcp';
  }

  /** Where a server listens (tcp: the real port, also when 0 was asked for). */
  get listeningOn(): Address | null {
    return this.server === null ? null : this.address;
  }

  // ----------------------------------------------------------- server

  private async startServer(): Promise<ChardevError | null> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    server.on('connection', (socket) => this.accept(socket));
    this.server = server;
    const a = this.address;
    if (a.type === 'unix' && this.abstractForm !== null) {
      const failed =
        this.abstractForm === 'tight'
          ? await listenTightAbstract(server, a.path)
          : await new Promise<Error | null>((resolve) => {
              server.once('error', resolve);
              server.listen(`\0${a.path}`, () => {
                server.off('error', resolve);
                resolve(null);
              });
            });
      if (failed !== null) {
        this.server = null;
        server.close();
        return chardevError(
          'ListenFailed',
          `Failed to bind socket to @${a.path}: ${describeSystemError(failed)}`,
          this.id,
        );
      }
    } else if (a.type === 'unix') {
      const file = await listenUnixPrivately(server, a.path, this.id);
      if (isChardevError(file)) {
        this.server = null;
        return file;
      }
      this.socketFile = file;
    } else {
      const failed = await new Promise<Error | null>((resolve) => {
        server.once('error', resolve);
        server.listen({ host: a.host, port: Number(a.port) }, () => {
          server.off('error', resolve);
          resolve(null);
        });
      });
      if (failed !== null) {
        this.server = null;
        server.close();
        return chardevError(
          'ListenFailed',
          `Failed to bind socket: ${describeSystemError(failed)} (${a.host}:${a.port})`,
          this.id,
        );
      }
      // As QEMU: the address becomes the bound one (numeric host, real port).
      const bound = server.address() as net.AddressInfo;
      this.address = { type: 'tcp', host: bound.address, port: String(bound.port) };
    }
    this.watchErrors(server, 'listener error');
    // QEMU blocks here ("QEMU waiting for connection on: ..."); the lab only says so.
    if (this.waits)
      this.notice(`chardev ${this.id}: waiting for connection on: ${this.describe()}`);
    return null;
  }

  /**
   * A client arrived. QEMU stops accepting while a client is connected
   * (char-socket.c: tcp_chr_new_client clears the listener's client func,
   * tcp_chr_disconnect sets it again), so a second client sits in the
   * kernel's listen backlog, connected at the TCP level, its bytes waiting,
   * and is served when the first leaves (issue 14 item 2). Node has already
   * accepted it, so it waits here instead: paused (pauseOnConnect keeps its
   * bytes in the socket), in order, at most MAX_WAITING_CLIENTS of them.
   */
  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.socket === null) {
      this.adopt(socket);
      return;
    }
    if (this.waiting.length >= MAX_WAITING_CLIENTS) {
      this.stats.refusedClients++;
      socket.destroy();
      this.notice(
        `chardev ${this.id}: refused a client: ${MAX_WAITING_CLIENTS} already wait for the connected one to leave (${this.describe()})`,
      );
      return;
    }
    socket.on('error', () => {}); // a waiting client that resets just leaves the queue
    socket.once('close', () => {
      const i = this.waiting.indexOf(socket);
      if (i >= 0) this.waiting.splice(i, 1);
    });
    this.waiting.push(socket);
    this.stats.waitingClients = this.waiting.length;
  }

  /** The connected client left: serve the next waiting one, as QEMU's listener accepts it then. */
  private serveNextWaiting(): void {
    while (this.socket === null && !this.closed && this.waiting.length > 0) {
      const next = this.waiting.shift()!;
      this.stats.waitingClients = this.waiting.length;
      if (next.destroyed || next.readyState === 'closed') continue;
      this.adopt(next);
    }
  }

  // ----------------------------------------------------------- client

  private async startClient(): Promise<ChardevError | null> {
    const failed = await this.connectOnce();
    if (failed === null) return null;
    if (this.reconnectMs <= 0) return chardevError('ConnectFailed', failed, this.id);
    this.reportConnectError(failed);
    this.scheduleReconnect();
    return null;
  }

  /** One connect attempt; null on success, else QEMU's message. */
  private async connectOnce(): Promise<string | null> {
    const a = this.address;
    const target = a.type === 'unix' ? `'${a.path}'` : `'${a.host}:${a.port}'`;
    const socket = await this.dial();
    if (socket instanceof Error) {
      this.stats.failedConnects++;
      return `Failed to connect to ${target}: ${describeSystemError(socket)}`;
    }
    return new Promise((resolve) => {
      socket.pause();
      const onError = (error: Error): void => {
        this.stats.failedConnects++;
        socket.destroy();
        resolve(`Failed to connect to ${target}: ${describeSystemError(error)}`);
      };
      const onConnect = (): void => {
        socket.off('error', onError);
        if (this.closed) {
          socket.destroy();
          resolve(null);
          return;
        }
        this.connectErrorReported = false;
        this.adopt(socket);
        resolve(null);
      };
      // A tight abstract socket comes connected from its helper.
      if (socket.connecting) {
        socket.once('error', onError);
        socket.once('connect', onConnect);
      } else onConnect();
    });
  }

  /** A socket connecting (or, for a tight abstract name, connected) to the address. */
  private async dial(): Promise<net.Socket | Error> {
    const a = this.address;
    if (a.type === 'tcp')
      return net.connect({ host: a.host, port: Number(a.port), allowHalfOpen: true });
    if (this.abstractForm === 'tight') return connectTightAbstract(a.path);
    const path = this.abstractForm === 'padded' ? `\0${a.path}` : a.path;
    return net.connect({ path, allowHalfOpen: true });
  }

  private reportConnectError(message: string): void {
    if (this.connectErrorReported) return;
    this.connectErrorReported = true;
    this.notice(`Unable to connect character device ${this.id}: ${message}`);
  }

  private scheduleReconnect(): void {
    if (this.reconnectMs <= 0 || this.closed || this.reconnectTimer !== null) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closed || this.socket !== null) return;
      void this.connectOnce().then((failed) => {
        if (failed === null || this.closed) return;
        this.reportConnectError(failed);
        this.scheduleReconnect();
      });
    }, this.reconnectMs);
  }

  // ------------------------------------------------------- connection

  private adopt(socket: net.Socket): void {
    this.stats.connections++;
    this.watchErrors(socket, 'connection error');
    if (this.nodelay && this.address.type === 'tcp') socket.setNoDelay(true);
    this.socket = socket;
    if (this.address.type === 'tcp' || socket.remoteAddress !== undefined) {
      this.localText = `${bracket(socket.localAddress ?? '')}:${socket.localPort ?? ''}`;
      this.remoteText = `${bracket(socket.remoteAddress ?? '')}:${socket.remotePort ?? ''}`;
    }
    if (this.fdText !== null) {
      this.fdUnixPath = socket.remoteAddress !== undefined ? null : unixLocalPath(socket);
    }
    if (!this.websocket) {
      this.connect(socket, this.descriptorReader(socket) ?? socket, socket);
      return;
    }
    // websocket=on: the connection holds the listener (a second client waits)
    // but counts as open only once the handshake succeeded (websocket.ts).
    acceptWebSocket(
      socket,
      (result) => {
        if (this.socket !== socket) {
          if (!(result instanceof WebSocketHandshakeFailed)) result.destroy();
          return;
        }
        if (result instanceof WebSocketHandshakeFailed) {
          this.notice(`chardev ${this.id}: WebSocket handshake failed: ${result.message}`);
          socket.destroy();
          this.socket = null;
          if (this.listenMode) this.serveNextWaiting();
          return;
        }
        this.connect(socket, result, result);
      },
      (bytes) =>
        this.notice(
          `chardev ${this.id}: a WebSocket client sent a text frame; closed as QEMU does (binary frames only), ${bytes} bytes discarded`,
        ),
    );
  }

  /**
   * The frontend takes passed descriptors (a QMP monitor): connections made
   * from now on are read with recvmsg (fd-passing.ts). Null, or why not.
   */
  wantDescriptors(): string | null {
    const addon = fdPassAddon();
    if (typeof addon === 'string') return addon;
    this.passDescriptors = true;
    return null;
  }

  /** qemu_chr_fe_get_msgfd (tcp_get_msgfds with one slot): the first, the rest closed. */
  takeDescriptor(): number | null {
    const [first, ...rest] = this.heldDescriptors;
    this.heldDescriptors = [];
    closeDescriptors(rest);
    return first ?? null;
  }

  /** The latest batch replaces (and closes) the one before, as tcp_chr_recv does. */
  private holdDescriptors(fds: number[]): void {
    closeDescriptors(this.heldDescriptors);
    this.heldDescriptors = fds;
  }

  /** A recvmsg reader for a unix connection when descriptors are wanted; else null (Node reads). */
  private descriptorReader(socket: net.Socket): DescriptorReader | null {
    if (!this.passDescriptors || this.address.type !== 'unix') return null;
    const addon = fdPassAddon();
    const fd = socketFd(socket);
    if (typeof addon === 'string' || typeof fd !== 'number' || fd < 0) return null;
    let reader: DescriptorReader;
    try {
      reader = new DescriptorReader(addon, fd, (fds) => this.holdDescriptors(fds));
    } catch (error) {
      // No epoll set for it (out of descriptors): this connection is read as before.
      this.notice(
        `chardev ${this.id}: descriptors sent on this connection cannot be received (${describeSystemError(error)})`,
      );
      return null;
    }
    // Read errors (ECONNRESET) now come from the reader, not the socket.
    this.watchErrors(reader, 'connection error');
    return reader;
  }

  /** The connection (raw, or the WebSocket's payload stream) carries bytes now. */
  private connect(socket: net.Socket, input: Readable, stream: Duplex): void {
    // QEMU sends its telnet negotiation before the connection counts as open
    // (tcp_chr_telnet_init, then tcp_chr_connect).
    const telnet = this.telnet ? new TelnetFilter() : null;
    if (telnet !== null) stream.write(TELNET_INIT);
    this.link = new StreamLink({
      input,
      output: stream,
      owned: true,
      // A plain connection reads into reused buffers (pooled-reads.ts); the
      // telnet filter and the descriptor reader keep their own reads.
      pooledReads: telnet === null && input === socket,
      events: {
        data: (chunk, release) => {
          if (telnet === null) {
            this.hostBytes(chunk, release);
            return;
          }
          const data = telnet.filter(chunk);
          if (data.length > 0) this.hostBytes(data);
        },
        drain: () => this.writable(),
        end: () => this.hostEnded(),
        gone: () => this.dropConnection(socket),
        // The peer left (EPIPE): what it sent before is read, delivered or counted (H4), then EOF ends it.
        writeFailed: (error) => {
          this.failed('connection error', error);
          this.peerHungUp();
        },
      },
    });
    this.peerConnected();
    this.link.start();
  }

  /** The connection ended (either side): forget it, tell the frontend, maybe reconnect. */
  private dropConnection(socket: net.Socket): void {
    if (this.socket !== socket) return;
    this.stopHangUpWatch();
    this.socket = null;
    // tcp_chr_free_connection closes the batch nobody took.
    this.holdDescriptors([]);
    const link = this.link;
    this.link = null;
    // Guest bytes still in this process go with the connection: measured before it is closed.
    const unsent = link?.queued ?? 0;
    link?.close();
    this.peerDisconnected(unsent);
    this.scheduleReconnect();
    if (this.listenMode) this.serveNextWaiting();
  }

  /** H4: a unix peer's close is a hang-up to QEMU (POLLHUP); a tcp FIN is not. */
  protected override hangUpAtEnd(): boolean {
    return this.address.type === 'unix' && this.hupWatchUsable;
  }

  protected override startHangUpWatch(): void {
    const socket = this.socket;
    if (this.hupWatch !== null || socket === null) return;
    this.hupWatch = watchHangUp(
      socket,
      () => {
        this.hupWatch = null;
        if (this.socket === socket) this.peerHungUp();
      },
      (reason) => {
        this.hupWatch = null;
        this.hupWatchUsable = false;
        this.notice(`chardev ${this.id}: ${reason}; host bytes wait for the guest after a hang-up`);
      },
    );
  }

  protected override stopHangUpWatch(): void {
    this.hupWatch?.stop();
    this.hupWatch = null;
  }

  protected override peerFinished(): void {
    if (this.socket !== null) this.dropConnection(this.socket);
  }

  protected override hangUpRefusal(): string | null {
    if (this.listenMode || this.reconnectMs > 0) return null;
    return `chardev '${this.id}' is a socket client without reconnect: a hang-up would be final (QEMU does not dial again); remove the chardev instead`;
  }

  /** Close the current connection; a server keeps listening, a client with reconnect dials again. */
  protected override dropPeer(): void {
    if (this.socket !== null) this.dropConnection(this.socket);
  }

  override get queuedToHost(): number {
    return this.link?.queued ?? 0;
  }

  /** Guest bytes of socket writes not finished, the write in flight whole (StreamLink.unfinished). */
  get unfinishedToHost(): number {
    return this.link?.unfinished ?? 0;
  }

  protected transmit(
    bytes: Uint8Array,
    handover: boolean,
    release?: (bytes: Uint8Array) => void,
  ): number {
    return this.link?.write(bytes, handover, release) ?? 0;
  }

  protected override canTransmit(): boolean {
    return this.link?.hasRoom() ?? false;
  }

  protected override pauseSource(): void {
    this.link?.pause();
  }

  protected override resumeSource(): void {
    this.link?.resume();
  }

  protected async teardown(): Promise<void> {
    this.stopHangUpWatch();
    this.holdDescriptors([]);
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    for (const w of this.waiting.splice(0)) w.destroy();
    const socket = this.socket;
    this.socket = null;
    this.link?.close();
    this.link = null;
    socket?.destroy();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.socketFile?.remove();
    this.socketFile = null;
  }
}
