/**
 * A client for the QEMU Machine Protocol (QMP), for attaching to a real QEMU.
 *
 * One connection to one monitor socket (unix path or HOST:PORT): read the
 * greeting, negotiate with qmp_capabilities, then commands and events.
 * Commands carry unique ids and may be pipelined; replies are matched by id,
 * not by order. Events go to subscribers with QEMU's timestamp.
 *
 * Every failure is a QmpError value (qmp-error.ts); nothing here throws at
 * the caller or rejects a promise. A QEMU monitor socket serves one client
 * at a time: a second client's connect succeeds but no greeting ever comes,
 * which is reported as SocketTaken rather than a bare timeout.
 */
import net from 'node:net';
import type { z } from 'zod';
import { JsonObjectStream, stringifyJson, type JsonValue } from './json-stream.js';
import { formatQmpAddress, parseQmpAddress, type QmpAddress } from './qmp-address.js';
import { commandFailed, isQmpError, qmpError, QmpError } from './qmp-error.js';
import {
  chardevInfoSchema,
  chardevReturnSchema,
  commandInfoSchema,
  emptyReturnSchema,
  errorReplySchema,
  eventSchema,
  greetingSchema,
  knownEventSchemas,
  objectPropertyInfoSchema,
  virtioInfoSchema,
  virtioQueueElementSchema,
  virtioStatusSchema,
  virtQueueStatusSchema,
  type ChardevBackend,
  type ChardevInfo,
  type ChardevReturn,
  type CommandInfo,
  type DeviceAddArgs,
  type ObjectPropertyInfo,
  type QmpEvent,
  type QmpEventMap,
  type QmpGreeting,
  type VirtioInfo,
  type VirtioQueueElement,
  type VirtioStatus,
  type VirtQueueStatus,
} from './qmp-types.js';

export interface QmpReconnectOptions {
  /** First wait after a lost connection (default 200 ms). */
  initialDelayMs?: number;
  /** Longest wait between attempts (default 5 s). */
  maxDelayMs?: number;
  /** Growth of the wait per failed attempt (default 2). */
  factor?: number;
  /** Give up after this many failed attempts in a row (default: never). */
  maxAttempts?: number;
}

export interface QmpClientOptions {
  /** Time allowed for the TCP/unix connect itself (default 5 s). */
  connectTimeoutMs?: number;
  /**
   * Time allowed for the greeting after connecting (default 3 s). QEMU
   * greets at once; silence means another client holds the socket.
   */
  greetingTimeoutMs?: number;
  /** Default time allowed per command (default 10 s; 0 waits forever). */
  commandTimeoutMs?: number;
  /** Capabilities to enable in qmp_capabilities, when the server offers them (default none). */
  capabilities?: string[];
  /**
   * Send the next command only after the last one's reply (default false:
   * pipelined, as QEMU allows). virt-qemu-qmp-proxy (libvirt.ts) reads one
   * whole JSON document per socket read and stalls on two.
   */
  oneAtATime?: boolean;
  /**
   * Reconnect after the connection drops (not after close() or quit):
   * true for the defaults, or tuning. Commands issued while reconnecting
   * fail at once with Disconnected rather than wait in a queue.
   */
  reconnect?: boolean | QmpReconnectOptions;
  /** Prefix of command ids (default "vmchan"). */
  idPrefix?: string;
}

export type QmpClientState = 'ready' | 'reconnecting' | 'closed';

export interface QmpCommandOptions {
  /** Time allowed for this command; overrides the client's default. 0 waits forever. */
  timeoutMs?: number;
}

export type QmpEventListener<D = Record<string, JsonValue>> = (event: QmpEvent<D>) => void;
export type QmpStateListener = (state: QmpClientState, reason?: QmpError) => void;

interface Pending {
  command: string;
  resolve: (value: JsonValue | QmpError) => void;
  timer: NodeJS.Timeout | undefined;
}

/** One socket's worth of state; a reconnect makes a new one. */
interface Link {
  socket: net.Socket;
  stream: JsonObjectStream;
  greeting: QmpGreeting | undefined;
  closed: boolean;
  /** Messages waiting for delivery right after setup (see adopt). */
  backlog?: Array<{ [key: string]: JsonValue }>;
  /** Why we broke the link ourselves (bad data), for the state change that follows. */
  breakReason?: QmpError;
  /** Settles the connect attempt that owns this link (until negotiation is done). */
  onSetup: ((outcome: QmpGreeting | QmpError) => void) | undefined;
}

const DEFAULTS = {
  connectTimeoutMs: 5_000,
  greetingTimeoutMs: 3_000,
  commandTimeoutMs: 10_000,
};

export class QmpClient {
  private link: Link | undefined;
  private currentGreeting: QmpGreeting;
  private currentState: QmpClientState = 'ready';
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private readonly listeners = new Map<string, Set<QmpEventListener>>();
  private readonly stateListeners = new Set<QmpStateListener>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  /** A quit was sent: the connection closing is its expected result. */
  private quitting = false;
  private readonly idPrefix: string;

  private constructor(
    readonly address: QmpAddress,
    private readonly options: QmpClientOptions,
    link: Link,
    greeting: QmpGreeting,
  ) {
    this.link = link;
    this.currentGreeting = greeting;
    this.idPrefix = options.idPrefix ?? 'vmchan';
    this.adopt(link);
  }

  /**
   * Connect to a monitor socket, read its greeting and negotiate
   * capabilities. `address` is a unix socket path or HOST:PORT (see
   * parseQmpAddress). The result is a ready client or the reason it is not.
   */
  static async connect(
    address: string | QmpAddress,
    options: QmpClientOptions = {},
  ): Promise<QmpClient | QmpError> {
    const parsed = typeof address === 'string' ? parseQmpAddress(address) : address;
    if (isQmpError(parsed)) return parsed;
    const setup = await openLink(parsed, options);
    if (isQmpError(setup)) return setup;
    return new QmpClient(parsed, options, setup.link, setup.greeting);
  }

  /** The greeting of the current connection: QEMU's version and capabilities. */
  get greeting(): QmpGreeting {
    return this.currentGreeting;
  }

  get state(): QmpClientState {
    return this.currentState;
  }

  /** The address as messages show it (the socket path, or HOST:PORT). */
  get addressText(): string {
    return formatQmpAddress(this.address);
  }

  // ---- commands ---------------------------------------------------------------

  /**
   * Send any command; resolves to its "return" value or a QmpError
   * (CommandFailed with QEMU's class and desc, Timeout, Disconnected...).
   */
  execute(
    command: string,
    args?: Record<string, unknown>,
    options: QmpCommandOptions = {},
  ): Promise<JsonValue | QmpError> {
    if (this.options.oneAtATime !== true) return this.send(command, args, options);
    const next = this.inFlight.then(() => this.send(command, args, options));
    this.inFlight = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  /** The last command sent, settled (oneAtATime). */
  private inFlight: Promise<void> = Promise.resolve();

  private send(
    command: string,
    args: Record<string, unknown> | undefined,
    options: QmpCommandOptions,
  ): Promise<JsonValue | QmpError> {
    const link = this.link;
    if (this.currentState === 'closed' || !link || link.closed) {
      return Promise.resolve(
        qmpError(
          'Disconnected',
          this.currentState === 'closed'
            ? `${command}: the QMP client for ${this.addressText} is closed`
            : `${command}: not connected to ${this.addressText} (reconnecting)`,
          command,
        ),
      );
    }
    const id = `${this.idPrefix}-${this.nextId++}`;
    const message: Record<string, unknown> = { execute: command, id };
    if (args !== undefined) message['arguments'] = args;
    let line: string;
    try {
      line = stringifyJson(message) + '\n';
    } catch (e) {
      // A circular or otherwise unencodable argument is the caller's slip;
      // still a value, never an exception.
      return Promise.resolve(
        qmpError(
          'ProtocolError',
          `${command}: cannot encode the arguments as JSON (${(e as Error).message})`,
          command,
        ),
      );
    }
    const timeoutMs =
      options.timeoutMs ?? this.options.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs;
    return new Promise((resolve) => {
      const entry: Pending = { command, resolve, timer: undefined };
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          // A late reply finds no entry and is dropped.
          this.pending.delete(id);
          resolve(
            qmpError(
              'Timeout',
              `${command}: no reply from QEMU at ${this.addressText} within ${timeoutMs} ms`,
              command,
            ),
          );
        }, timeoutMs);
      }
      this.pending.set(id, entry);
      link.socket.write(line);
    });
  }

  queryCommands(options?: QmpCommandOptions): Promise<CommandInfo[] | QmpError> {
    return this.typed('query-commands', undefined, commandInfoSchema.array(), options);
  }

  queryChardev(options?: QmpCommandOptions): Promise<ChardevInfo[] | QmpError> {
    return this.typed('query-chardev', undefined, chardevInfoSchema.array(), options);
  }

  chardevAdd(
    id: string,
    backend: ChardevBackend,
    options?: QmpCommandOptions,
  ): Promise<ChardevReturn | QmpError> {
    return this.typed('chardev-add', { id, backend }, chardevReturnSchema, options);
  }

  /** chardev-change: re-point a chardev its frontend keeps (virtio-serial ports support it). */
  chardevChange(
    id: string,
    backend: ChardevBackend,
    options?: QmpCommandOptions,
  ): Promise<ChardevReturn | QmpError> {
    return this.typed('chardev-change', { id, backend }, chardevReturnSchema, options);
  }

  chardevRemove(id: string, options?: QmpCommandOptions): Promise<QmpError | undefined> {
    return this.noValue('chardev-remove', { id }, options);
  }

  /** device_add: e.g. {driver: 'virtserialport', bus: 'vser0.0', chardev: 'c2', name: 'org.x', id: 'port2'}. */
  deviceAdd(args: DeviceAddArgs, options?: QmpCommandOptions): Promise<QmpError | undefined> {
    const clean: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(args)) if (v !== undefined) clean[k] = v;
    return this.noValue('device_add', clean, options);
  }

  /** device_del returns at once; the DEVICE_DELETED event says when the guest let go. */
  deviceDel(id: string, options?: QmpCommandOptions): Promise<QmpError | undefined> {
    return this.noValue('device_del', { id }, options);
  }

  qomList(path: string, options?: QmpCommandOptions): Promise<ObjectPropertyInfo[] | QmpError> {
    return this.typed('qom-list', { path }, objectPropertyInfoSchema.array(), options);
  }

  /** qom-get: the property's value as QEMU gives it (number, string, bool, object...). */
  qomGet(
    path: string,
    property: string,
    options?: QmpCommandOptions,
  ): Promise<JsonValue | QmpError> {
    return this.execute('qom-get', { path, property }, options);
  }

  /** x-query-virtio: every realized virtio device with its QOM path. */
  xQueryVirtio(options?: QmpCommandOptions): Promise<VirtioInfo[] | QmpError> {
    return this.typed('x-query-virtio', undefined, virtioInfoSchema.array(), options);
  }

  xQueryVirtioStatus(path: string, options?: QmpCommandOptions): Promise<VirtioStatus | QmpError> {
    return this.typed('x-query-virtio-status', { path }, virtioStatusSchema, options);
  }

  xQueryVirtioQueueStatus(
    path: string,
    queue: number,
    options?: QmpCommandOptions,
  ): Promise<VirtQueueStatus | QmpError> {
    return this.typed(
      'x-query-virtio-queue-status',
      { path, queue },
      virtQueueStatusSchema,
      options,
    );
  }

  /** The element at `index` of a queue, or at its head when index is omitted. */
  xQueryVirtioQueueElement(
    path: string,
    queue: number,
    index?: number,
    options?: QmpCommandOptions,
  ): Promise<VirtioQueueElement | QmpError> {
    const args = index === undefined ? { path, queue } : { path, queue, index };
    return this.typed('x-query-virtio-queue-element', args, virtioQueueElementSchema, options);
  }

  /** ringbuf-write: data is UTF-8 text, or base64 with format 'base64'. */
  ringbufWrite(
    device: string,
    data: string,
    format: 'utf8' | 'base64' = 'utf8',
    options?: QmpCommandOptions,
  ): Promise<QmpError | undefined> {
    return this.noValue('ringbuf-write', { device, data, format }, options);
  }

  /** ringbuf-read: up to `size` bytes, as UTF-8 text or base64. */
  async ringbufRead(
    device: string,
    size: number,
    format: 'utf8' | 'base64' = 'utf8',
    options?: QmpCommandOptions,
  ): Promise<string | QmpError> {
    const value = await this.execute('ringbuf-read', { device, size, format }, options);
    if (isQmpError(value)) return value;
    if (typeof value !== 'string') return this.shapeError('ringbuf-read', 'a string', value);
    return value;
  }

  /**
   * Ask QEMU to exit. QEMU answers, then closes the connection; that close
   * is the expected outcome, so it ends this client without reconnecting.
   */
  async quit(options?: QmpCommandOptions): Promise<QmpError | undefined> {
    this.quitting = true;
    const result = await this.execute('quit', undefined, options);
    if (isQmpError(result)) {
      this.quitting = false;
      return result;
    }
    return undefined;
  }

  // ---- events -------------------------------------------------------------------

  /**
   * Subscribe to an event by name ('*' for all). Known events (QmpEventMap)
   * arrive with their data checked and typed. Returns the unsubscribe call.
   */
  on<K extends keyof QmpEventMap>(event: K, listener: QmpEventListener<QmpEventMap[K]>): () => void;
  on(event: string, listener: QmpEventListener): () => void;
  on(event: string, listener: QmpEventListener<never>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    const l = listener as QmpEventListener;
    set.add(l);
    return () => {
      set.delete(l);
    };
  }

  /**
   * The next event named `event` (that `match` accepts), or Timeout. Call
   * it before the action that causes the event: past events are not kept.
   */
  waitForEvent<K extends keyof QmpEventMap>(
    event: K,
    options?: { timeoutMs?: number; match?: (e: QmpEvent<QmpEventMap[K]>) => boolean },
  ): Promise<QmpEvent<QmpEventMap[K]> | QmpError>;
  waitForEvent(
    event: string,
    options?: { timeoutMs?: number; match?: (e: QmpEvent) => boolean },
  ): Promise<QmpEvent | QmpError>;
  waitForEvent(
    event: string,
    options: { timeoutMs?: number; match?: (e: QmpEvent<never>) => boolean } = {},
  ): Promise<QmpEvent<never> | QmpError> {
    const timeoutMs =
      options.timeoutMs ?? this.options.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs;
    if (this.currentState === 'closed') {
      return Promise.resolve(
        qmpError(
          'Disconnected',
          `cannot wait for ${event}: the QMP client for ${this.addressText} is closed`,
        ),
      );
    }
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (value: QmpEvent<never> | QmpError): void => {
        off();
        offState();
        if (timer) clearTimeout(timer);
        resolve(value);
      };
      const off = this.on(event, (e) => {
        const typed = e as QmpEvent<never>;
        if (options.match && !options.match(typed)) return;
        settle(typed);
      });
      // While reconnecting an event may still come; once closed it cannot.
      const offState = this.onStateChange((state, reason) => {
        if (state !== 'closed') return;
        settle(
          qmpError(
            'Disconnected',
            `no ${event} event: ${reason?.message ?? `the QMP client for ${this.addressText} was closed`}`,
          ),
        );
      });
      if (timeoutMs > 0) {
        timer = setTimeout(
          () =>
            settle(
              qmpError(
                'Timeout',
                `no ${event} event from ${this.addressText} within ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
      }
    });
  }

  /** Follow the connection: 'reconnecting' (with the reason), 'ready' again, or 'closed'. */
  onStateChange(listener: QmpStateListener): () => void {
    this.stateListeners.add(listener);
    return () => {
      this.stateListeners.delete(listener);
    };
  }

  // ---- closing --------------------------------------------------------------------

  /**
   * Close the connection for good: stops reconnecting, answers every
   * command still waiting with Disconnected, and ends the socket politely.
   */
  async close(): Promise<void> {
    if (this.currentState === 'closed' && !this.link) return;
    this.setState('closed');
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const link = this.link;
    this.link = undefined;
    this.failPending(qmpError('Disconnected', `the QMP client for ${this.addressText} was closed`));
    if (link) await endLink(link);
  }

  // ---- internals ------------------------------------------------------------------

  private async typed<S extends z.ZodType>(
    command: string,
    args: Record<string, unknown> | undefined,
    schema: S,
    options?: QmpCommandOptions,
  ): Promise<z.infer<S> | QmpError> {
    const value = await this.execute(command, args, options);
    if (isQmpError(value)) return value;
    const parsed = schema.safeParse(value);
    if (!parsed.success) return this.shapeError(command, 'the documented shape', value);
    return parsed.data;
  }

  private async noValue(
    command: string,
    args: Record<string, unknown>,
    options?: QmpCommandOptions,
  ): Promise<QmpError | undefined> {
    const value = await this.typed(command, args, emptyReturnSchema, options);
    return isQmpError(value) ? value : undefined;
  }

  private shapeError(command: string, expected: string, got: unknown): QmpError {
    return qmpError(
      'ProtocolError',
      `${command}: QEMU's reply is not ${expected}: ${preview(got)}`,
      command,
    );
  }

  /** Take over a link after its setup: from now on its messages are ours. */
  private adopt(link: Link): void {
    link.socket.removeAllListeners('data');
    link.socket.on('data', (chunk: Buffer) => this.onData(link, chunk));
    link.socket.removeAllListeners('close');
    link.socket.on('close', () => this.onLinkClosed(link));
    // A pending setup handler has finished its job.
    link.onSetup = undefined;
    // Messages that arrived together with the negotiation reply (events,
    // typically) were parked on the link. Deliver them on the next turn of
    // the event loop, so that code subscribing right after `await connect()`
    // sees them; anything arriving meanwhile queues behind them.
    const parked = parkedMessages.get(link) ?? [];
    parkedMessages.delete(link);
    const wasClosed = link.closed || link.socket.destroyed;
    if (parked.length === 0 && !wasClosed) return;
    link.backlog = parked;
    setImmediate(() => {
      const backlog = link.backlog ?? [];
      link.backlog = undefined;
      for (const message of backlog) {
        if (this.link !== link) break;
        this.onMessage(link, message);
      }
      // The socket may have closed between the end of setup and now.
      if (wasClosed) this.onLinkClosed(link);
    });
  }

  private onData(link: Link, chunk: Buffer): void {
    for (const item of link.stream.push(chunk)) {
      if (link.backlog && item.kind === 'object') {
        link.backlog.push(item.value);
        continue;
      }
      if (item.kind === 'error') {
        this.breakLink(
          link,
          qmpError(
            'ProtocolError',
            `QEMU at ${this.addressText} sent ${item.message}: ${preview(item.text)}`,
          ),
        );
        return;
      }
      this.onMessage(link, item.value);
    }
  }

  private onMessage(link: Link, message: { [key: string]: JsonValue }): void {
    if ('event' in message) {
      this.dispatchEvent(message);
      return;
    }
    if (!('return' in message) && !('error' in message)) {
      this.breakLink(
        link,
        qmpError('ProtocolError', `QEMU at ${this.addressText} sent ${preview(message)}`),
      );
      return;
    }
    const id = message['id'];
    // Replies without an id answer input QEMU could not parse; we always
    // send ids, so there is nobody to hand such a reply to.
    if (typeof id !== 'string') return;
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    if ('error' in message) {
      const err = errorReplySchema.safeParse(message);
      entry.resolve(
        err.success
          ? commandFailed(entry.command, err.data.error.class, err.data.error.desc)
          : qmpError(
              'ProtocolError',
              `${entry.command}: malformed error reply ${preview(message)}`,
              entry.command,
            ),
      );
      return;
    }
    entry.resolve(message['return'] as JsonValue);
  }

  private dispatchEvent(message: { [key: string]: JsonValue }): void {
    const parsed = eventSchema.safeParse(withObjectData(message));
    if (!parsed.success) return;
    const { event, timestamp } = parsed.data;
    const e: QmpEvent = {
      event,
      data: parsed.data.data ?? {},
      timestamp: { seconds: timestamp.seconds, microseconds: timestamp.microseconds },
      time: timestamp.seconds * 1000 + timestamp.microseconds / 1000,
      receivedAt: Date.now(),
    };
    const known = (knownEventSchemas as Record<string, z.ZodType | undefined>)[event];
    // Typed subscribers get only data of the documented shape; '*' gets all.
    if (!known || known.safeParse(e.data).success) this.emit(event, e);
    this.emit('*', e);
  }

  private emit(name: string, e: QmpEvent): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(e);
      } catch {
        // A subscriber's bug must not take the connection down with it.
      }
    }
  }

  private breakLink(link: Link, reason: QmpError): void {
    if (link.closed) return;
    link.breakReason = reason;
    this.failPending(reason);
    link.socket.destroy();
  }

  private onLinkClosed(link: Link): void {
    link.closed = true;
    if (this.link !== link) return;
    this.link = undefined;
    if (this.quitting) {
      // QEMU may close before the quit reply is read; quit has done its job.
      for (const [id, entry] of this.pending) {
        if (entry.command === 'quit') {
          this.pending.delete(id);
          if (entry.timer) clearTimeout(entry.timer);
          entry.resolve({});
        }
      }
      this.failPending(qmpError('Disconnected', `QEMU at ${this.addressText} quit`));
      this.setState('closed');
      return;
    }
    const reason =
      link.breakReason ??
      qmpError(
        'Disconnected',
        `the QMP connection to ${this.addressText} closed (QEMU exited or dropped the monitor)`,
      );
    this.failPending(reason);
    if (this.currentState === 'closed') return;
    if (this.options.reconnect) {
      this.reconnectAttempt = 0;
      this.setState('reconnecting', reason);
      this.scheduleReconnect();
    } else {
      this.setState('closed', reason);
    }
  }

  private scheduleReconnect(): void {
    const tuning: QmpReconnectOptions =
      typeof this.options.reconnect === 'object' ? this.options.reconnect : {};
    const initial = tuning.initialDelayMs ?? 200;
    const max = tuning.maxDelayMs ?? 5_000;
    const factor = tuning.factor ?? 2;
    const delay = Math.min(max, initial * Math.pow(factor, this.reconnectAttempt));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.tryReconnect(tuning);
    }, delay);
  }

  private async tryReconnect(tuning: QmpReconnectOptions): Promise<void> {
    if (this.currentState !== 'reconnecting') return;
    const setup = await openLink(this.address, this.options);
    if (this.currentState !== 'reconnecting') {
      // close() came while we were connecting.
      if (!isQmpError(setup)) await endLink(setup.link);
      return;
    }
    if (isQmpError(setup)) {
      this.reconnectAttempt++;
      if (tuning.maxAttempts !== undefined && this.reconnectAttempt >= tuning.maxAttempts) {
        this.setState(
          'closed',
          qmpError(
            setup.kind,
            `gave up reconnecting to ${this.addressText} after ${this.reconnectAttempt} attempts: ${setup.message}`,
          ),
        );
        return;
      }
      this.notifyState('reconnecting', setup);
      this.scheduleReconnect();
      return;
    }
    this.link = setup.link;
    this.currentGreeting = setup.greeting;
    this.adopt(setup.link);
    this.reconnectAttempt = 0;
    this.setState('ready');
  }

  private failPending(reason: QmpError): void {
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const entry of entries) {
      if (entry.timer) clearTimeout(entry.timer);
      entry.resolve(
        new QmpError(
          reason.kind,
          `${entry.command}: ${reason.message}`,
          undefined,
          undefined,
          entry.command,
        ),
      );
    }
  }

  private setState(state: QmpClientState, reason?: QmpError): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.notifyState(state, reason);
  }

  private notifyState(state: QmpClientState, reason?: QmpError): void {
    for (const listener of [...this.stateListeners]) {
      try {
        listener(state, reason);
      } catch {
        // As for event listeners: never let a subscriber break the client.
      }
    }
  }
}

// ---- connection setup (greeting and negotiation) ---------------------------------

/** Messages that arrived during setup after the part setup needed. */
const parkedMessages = new WeakMap<Link, Array<{ [key: string]: JsonValue }>>();

async function openLink(
  address: QmpAddress,
  options: QmpClientOptions,
): Promise<{ link: Link; greeting: QmpGreeting } | QmpError> {
  const where = formatQmpAddress(address);
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
  const greetingTimeoutMs = options.greetingTimeoutMs ?? DEFAULTS.greetingTimeoutMs;

  const socket = await new Promise<net.Socket | QmpError>((resolve) => {
    const s =
      address.kind === 'unix'
        ? net.createConnection({ path: address.path })
        : net.createConnection({ host: address.host, port: address.port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(qmpError('Timeout', `no answer from ${where} within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      // From here on a socket error shows up as 'close', which the link handles.
      s.on('error', () => {});
      resolve(s);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      s.destroy();
      resolve(connectError(address, err));
    });
  });
  if (isQmpError(socket)) return socket;
  socket.setNoDelay(true);

  const link: Link = {
    socket,
    stream: new JsonObjectStream(),
    greeting: undefined,
    closed: false,
    onSetup: undefined,
  };

  const outcome = await new Promise<QmpGreeting | QmpError>((resolve) => {
    let phase: 'greeting' | 'negotiating' = 'greeting';
    const negotiateId = `${options.idPrefix ?? 'vmchan'}-negotiate`;
    const taken = (): QmpError =>
      qmpError(
        'SocketTaken',
        `the QMP socket ${where} is taken by another client (QEMU serves one at a time)`,
      );
    let timer: NodeJS.Timeout | undefined = setTimeout(() => finish(taken()), greetingTimeoutMs);
    const finish = (result: QmpGreeting | QmpError): void => {
      if (!link.onSetup) return;
      link.onSetup = undefined;
      if (timer) clearTimeout(timer);
      timer = undefined;
      resolve(result);
    };
    link.onSetup = finish;

    socket.on('close', () => {
      link.closed = true;
      finish(
        phase === 'greeting'
          ? // QEMU closes a client it will not serve, or keeps it waiting.
            taken()
          : qmpError('Disconnected', `${where} closed the connection during qmp_capabilities`),
      );
    });
    socket.on('data', (chunk: Buffer) => {
      for (const item of link.stream.push(chunk)) {
        if (!link.onSetup) {
          // Setup is over (this chunk also carried later messages): keep them for the client.
          if (item.kind === 'object') {
            const list = parkedMessages.get(link) ?? [];
            list.push(item.value);
            parkedMessages.set(link, list);
          }
          continue;
        }
        if (item.kind === 'error') {
          finish(
            qmpError(
              'ProtocolError',
              `${where} does not speak QMP: it sent ${item.message}: ${preview(item.text)}`,
            ),
          );
          return;
        }
        const message = item.value;
        if (phase === 'greeting') {
          const g = greetingSchema.safeParse(message);
          if (!g.success) {
            finish(
              qmpError(
                'ProtocolError',
                `${where} does not speak QMP: expected a greeting {"QMP": {...}}, got ${preview(message)}`,
              ),
            );
            return;
          }
          const qmp = g.data.QMP;
          link.greeting = {
            version: {
              major: qmp.version.qemu.major,
              minor: qmp.version.qemu.minor,
              micro: qmp.version.qemu.micro,
            },
            package: qmp.version.package,
            capabilities: [...qmp.capabilities],
          };
          phase = 'negotiating';
          if (timer) clearTimeout(timer);
          timer = setTimeout(
            () =>
              finish(
                qmpError(
                  'Timeout',
                  `qmp_capabilities: no reply from ${where} within ${greetingTimeoutMs} ms`,
                ),
              ),
            greetingTimeoutMs,
          );
          const wanted = (options.capabilities ?? []).filter((c) =>
            link.greeting?.capabilities.includes(c),
          );
          const negotiate: Record<string, unknown> = {
            execute: 'qmp_capabilities',
            id: negotiateId,
          };
          if (wanted.length > 0) negotiate['arguments'] = { enable: wanted };
          socket.write(stringifyJson(negotiate) + '\n');
          continue;
        }
        // Negotiating: events may come before the reply (QEMU issue 2176); keep them.
        if ('event' in message) {
          const list = parkedMessages.get(link) ?? [];
          list.push(message);
          parkedMessages.set(link, list);
          continue;
        }
        if (message['id'] !== negotiateId) continue;
        if ('error' in message) {
          const err = errorReplySchema.safeParse(message);
          finish(
            err.success
              ? commandFailed('qmp_capabilities', err.data.error.class, err.data.error.desc)
              : qmpError('ProtocolError', `qmp_capabilities: malformed reply ${preview(message)}`),
          );
          return;
        }
        if (link.greeting) finish(link.greeting);
      }
    });
  });

  if (isQmpError(outcome)) {
    socket.removeAllListeners('data');
    socket.destroy();
    return outcome;
  }
  return { link, greeting: outcome };
}

function connectError(address: QmpAddress, err: NodeJS.ErrnoException): QmpError {
  const where = formatQmpAddress(address);
  switch (err.code) {
    case 'ENOENT':
      return qmpError(
        'ConnectionRefused',
        `no QMP socket at ${where} (is QEMU running with -qmp unix:${where},server=on,wait=off?)`,
      );
    case 'ECONNREFUSED':
      return qmpError(
        'ConnectionRefused',
        address.kind === 'unix'
          ? `nothing listens on the QMP socket ${where} (has QEMU exited?)`
          : `nothing listens on ${where} (is QEMU running with -qmp tcp:${where},server=on,wait=off?)`,
      );
    case 'EACCES':
    case 'EPERM':
      return qmpError('ConnectionRefused', `no permission to connect to the QMP socket ${where}`);
    case 'ENOTSOCK':
      return qmpError('ConnectionRefused', `${where} is not a socket`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return qmpError('ConnectionRefused', `cannot resolve the host in ${where}`);
    case 'ETIMEDOUT':
      return qmpError('Timeout', `no answer from ${where} (connection timed out)`);
    default:
      return qmpError(
        'ConnectionRefused',
        `cannot connect to ${where}: ${err.code ?? ''} ${err.message}`.trim(),
      );
  }
}

async function endLink(link: Link): Promise<void> {
  if (link.closed) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      link.socket.destroy();
      resolve();
    }, 1_000);
    link.socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    link.socket.end();
  });
}

function preview(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? value : stringifyJson(value);
  } catch {
    text = String(value);
  }
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

/**
 * An event whose `data` is JSON text instead of an object, as
 * virt-qemu-qmp-proxy (libvirt 9.0) forwards every event: libvirt's monitor
 * event API hands the details over as a string, and the proxy puts that
 * string in `data` unparsed. Read as QEMU sent it, the object; anything
 * else is left as it came (and the event schema refuses it).
 */
function withObjectData(message: { [key: string]: JsonValue }): { [key: string]: JsonValue } {
  const data = message['data'];
  if (typeof data !== 'string') return message;
  try {
    const parsed = JSON.parse(data) as JsonValue;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? { ...message, data: parsed }
      : message;
  } catch {
    return message;
  }
}
