/**
 * The client side of the contract, for the renderer (and tests): one
 * ApiClient over either transport, the Electron preload's `window.vmchan`
 * or the WebSocket of `vmchan serve`. Commands are checked before they
 * leave, answers and batches when they arrive; a message that breaks the
 * contract becomes an error value, never a half-used object.
 *
 * Pure: no Node, no Electron, no DOM beyond a WebSocket constructor handed in.
 */
import {
  BatchSchema,
  CommandSchema,
  MenuActionSchema,
  ServerMessageSchema,
  checkAnswer,
  describeIssues,
  fail,
  type Batch,
  type CommandInputOf,
  type CommandName,
  type MenuAction,
  type Result,
  type ResultOf,
  type VmchanBridge,
} from '../contract/contract.js';
import { describeReach, reachKey, reachOf } from '../contract/reach.js';

export interface ApiTransport {
  request(command: unknown): Promise<unknown>;
  ack(seq: number): void;
  onBatch(listener: (raw: unknown) => void): () => void;
  /** The connection went away (WebSocket closed); the reason in one line. */
  onClose(listener: (reason: string) => void): () => void;
  onMenu?(listener: (raw: unknown) => void): () => void;
}

export interface MenuMessage {
  action: MenuAction;
  path?: string;
}

export class ApiClient {
  constructor(private readonly transport: ApiTransport) {}

  /** Run one command; the answer is a Result checked against the contract. */
  async call<C extends CommandName>(command: CommandInputOf<C>): Promise<Result<ResultOf<C>>> {
    const checked = CommandSchema.safeParse(command);
    if (!checked.success) return fail('InvalidRequest', describeIssues(checked.error));
    let raw: unknown;
    try {
      raw = await this.transport.request(checked.data);
    } catch (error) {
      return fail('IoError', error instanceof Error ? error.message : String(error));
    }
    return checkAnswer(command.cmd as C, raw);
  }

  /** Batches that pass the contract; the others go to `onInvalid`. */
  onBatch(listener: (batch: Batch) => void, onInvalid?: (why: string) => void): () => void {
    return this.transport.onBatch((raw) => {
      const b = BatchSchema.safeParse(raw);
      if (b.success) listener(b.data);
      else onInvalid?.(`batch refused: ${describeIssues(b.error)}`);
    });
  }

  ack(seq: number): void {
    this.transport.ack(seq);
  }

  onClose(listener: (reason: string) => void): () => void {
    return this.transport.onClose(listener);
  }

  onMenu(listener: (message: MenuMessage) => void): () => void {
    if (this.transport.onMenu === undefined) return () => {};
    return this.transport.onMenu((raw) => {
      const r = raw as { action?: unknown; path?: unknown } | null;
      const action = MenuActionSchema.safeParse(r?.action);
      if (!action.success) return;
      listener({
        action: action.data,
        ...(typeof r?.path === 'string' ? { path: r.path } : {}),
      });
    });
  }
}

/** The Electron face: the preload's one object. */
export function ipcTransport(bridge: VmchanBridge): ApiTransport {
  return {
    request: (command) => bridge.request(command),
    ack: (seq) => bridge.ack(seq),
    onBatch: (listener) => bridge.onBatch(listener),
    onClose: () => () => {},
    onMenu: (listener) => bridge.onMenu(listener),
  };
}

/** What the WebSocket transport needs from a WebSocket (the browser's, or `ws` in tests). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(
    type: 'close',
    listener: (event: { code: number; reason: string }) => void,
  ): void;
  addEventListener(type: 'error', listener: () => void): void;
}

const OPEN = 1;

export interface WebSocketTransportOptions {
  /**
   * Ask the person at the window whether a command may reach what it names
   * (files, a non-loopback address); without it such commands go unconfirmed
   * and the server refuses them.
   */
  confirm?: (question: string) => boolean | Promise<boolean>;
}

/** The WebSocket subprotocols that carry the token (web-server.ts reads them). */
export function apiProtocols(token: string): string[] {
  // No token (a page opened without the fragment): the server says "token required".
  return token === '' ? ['vmchan'] : ['vmchan', `vmchan.token.${token}`];
}

/** The web face: `ws://host:port/api` on the page's own origin, the token as a subprotocol. */
export function webSocketTransport(
  socket: WebSocketLike,
  options: WebSocketTransportOptions = {},
): ApiTransport {
  let nextId = 1;
  const pending = new Map<number, (value: unknown) => void>();
  const batchListeners = new Set<(raw: unknown) => void>();
  const closeListeners = new Set<(reason: string) => void>();
  const queued: string[] = [];
  let closed: string | null = null;

  socket.addEventListener('open', () => {
    for (const m of queued.splice(0)) socket.send(m);
  });
  socket.addEventListener('message', (event) => {
    if (typeof event.data !== 'string') return;
    let raw: unknown;
    try {
      raw = JSON.parse(event.data);
    } catch {
      return;
    }
    const msg = ServerMessageSchema.safeParse(raw);
    if (!msg.success) return;
    if (msg.data.t === 'batch') {
      for (const l of batchListeners) l(msg.data.batch);
      return;
    }
    const resolve = pending.get(msg.data.id);
    if (resolve !== undefined) {
      pending.delete(msg.data.id);
      resolve(msg.data.result);
    }
  });
  socket.addEventListener('close', (event) => {
    closed = event.reason || `connection closed (${event.code})`;
    for (const [, resolve] of pending) resolve(fail('IoError', closed));
    pending.clear();
    for (const l of closeListeners) l(closed);
  });
  socket.addEventListener('error', () => {});

  const post = (message: object): void => {
    const text = JSON.stringify(message);
    if (socket.readyState === OPEN) socket.send(text);
    else queued.push(text);
  };

  return {
    request: (command) => {
      if (closed !== null) return Promise.resolve(fail('IoError', closed));
      const reach = reachOf(command);
      const send = (confirm?: string[]): Promise<unknown> => {
        const id = nextId++;
        return new Promise((resolve) => {
          pending.set(id, resolve);
          post({ t: 'req', id, command, ...(confirm !== undefined ? { confirm } : {}) });
        });
      };
      if (reach.length === 0 || options.confirm === undefined) return send();
      const question = `Let vmchan ${describeReach(reach)}?`;
      return Promise.resolve(options.confirm(question)).then((yes) =>
        yes
          ? send(reach.map(reachKey))
          : fail('Refused', `cancelled in the window: ${describeReach(reach)}`),
      );
    },
    ack: (seq) => {
      if (closed === null) post({ t: 'ack', seq });
    },
    onBatch: (listener) => {
      batchListeners.add(listener);
      return () => batchListeners.delete(listener);
    },
    onClose: (listener) => {
      closeListeners.add(listener);
      return () => closeListeners.delete(listener);
    },
  };
}
