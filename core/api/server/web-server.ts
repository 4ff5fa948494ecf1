/**
 * The web face: the built renderer over HTTP and the API over a WebSocket
 * (`/api`), for `vmchan serve` and the end-to-end tests in Chromium.
 *
 * - It listens on 127.0.0.1 unless told otherwise; another address only
 *   with `allowRemote` (the person said so: `vmchan serve --allow-remote`).
 * - The token (random, crypto.randomBytes) never travels in a cookie:
 *   cookies are not isolated by port, so every other server on 127.0.0.1
 *   would see it. `vmchan serve` prints it in the URL's fragment (never
 *   sent to a server); the page keeps it in sessionStorage and sends it as
 *   the `X-Vmchan-Token` header (HTTP) and as the WebSocket subprotocol
 *   `vmchan.token.<token>`. The page's own files are the same for everyone
 *   and need no token; the API and the capture download do. Tokens are
 *   compared in constant time.
 * - The Host header must name this server (no DNS rebinding) and a
 *   WebSocket's Origin must be the page's own, on every address: on
 *   0.0.0.0 the names allowed are loopback, this machine's addresses and
 *   host name, and the ones the person gave (`allowedHosts`).
 * - A refused WebSocket is closed (1008) with the real cause.
 * - Every message is checked against the contract both ways
 *   (ClientMessageSchema in, ServerMessageSchema out), and a command that
 *   reaches files or the network runs only with the window's confirmation
 *   of exactly that reach (reach.ts).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  ClientMessageSchema,
  ServerMessageSchema,
  describeIssues,
  fail,
  type ServerMessage,
} from '../contract/contract.js';
import { SECURITY_HEADERS, contentType, staticPath } from './csp.js';
import { describeReach, isLoopbackHost, unconfirmedReach } from '../contract/reach.js';
import type { ApiService } from './service.js';

/** The HTTP header that carries the token. */
export const TOKEN_HEADER = 'x-vmchan-token';
/** The WebSocket subprotocol the server answers with; the token rides as `vmchan.token.<token>`. */
export const API_PROTOCOL = 'vmchan';
export const TOKEN_PROTOCOL_PREFIX = 'vmchan.token.';
const MAX_MESSAGE = 2 * 1024 * 1024;

export interface WebServerOptions {
  service: ApiService;
  /** The built renderer (index.html and assets/). */
  staticDir: string;
  host?: string;
  port?: number;
  /** A fixed token (tests); default 24 random bytes, hex. */
  token?: string;
  /** Listening beyond loopback was confirmed by the person (`--allow-remote`). */
  allowRemote?: boolean;
  /** More host names the Host and Origin checks accept (`--allow-host`). */
  allowedHosts?: readonly string[];
}

export interface WebServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly token: string;
  /** WebSocket connections open now. */
  readonly clients: number;
  close(): Promise<void>;
}

/** Refused before listening: a non-loopback address without the person's confirmation. */
export class RemoteListenNotConfirmed extends Error {
  override readonly name = 'RemoteListenNotConfirmed';
  constructor(readonly host: string) {
    super(
      `listening on ${host} lets anyone who can reach it try the lab; add --allow-remote to confirm`,
    );
  }
}

function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function bracketed(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Host names that reach this server, without a port. */
function hostNames(host: string, extra: readonly string[]): Set<string> {
  const names = new Set(['127.0.0.1', 'localhost', '[::1]', ...extra.map(bracketed)]);
  if (host === '0.0.0.0' || host === '::') {
    names.add(os.hostname());
    for (const list of Object.values(os.networkInterfaces())) {
      for (const a of list ?? []) names.add(bracketed(a.address));
    }
  } else {
    names.add(bracketed(host));
  }
  return names;
}

/** Why an upgrade is refused, for the close reason (at most 123 bytes). */
type Refusal = string | null;

function clip(text: string): string {
  const b = Buffer.from(text);
  return b.length <= 123 ? text : `${b.subarray(0, 120).toString()}...`;
}

export async function startWebServer(options: WebServerOptions): Promise<WebServer> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopbackHost(host) && options.allowRemote !== true) {
    throw new RemoteListenNotConfirmed(host);
  }
  const token = options.token ?? randomBytes(24).toString('hex');
  const service = options.service;
  let port = options.port ?? 0;
  const names = hostNames(host, options.allowedHosts ?? []);

  const hostOk = (value: string | undefined): boolean => {
    if (value === undefined) return false;
    const m = /^(.*):(\d+)$/.exec(value);
    return m !== null && Number(m[2]) === port && names.has(m[1]!.toLowerCase());
  };
  const originOk = (origin: string | undefined): boolean => {
    if (origin === undefined) return true; // not a browser: the token still guards it
    const m = /^http:\/\/(.*)$/.exec(origin);
    return m !== null && hostOk(m[1]);
  };
  const headerToken = (req: http.IncomingMessage): string | undefined => {
    const v = req.headers[TOKEN_HEADER];
    return typeof v === 'string' ? v : undefined;
  };
  const protocolToken = (req: http.IncomingMessage): string | undefined => {
    const list = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const p = list.find((x) => x.startsWith(TOKEN_PROTOCOL_PREFIX));
    return p?.slice(TOKEN_PROTOCOL_PREFIX.length);
  };

  const refuse = (res: http.ServerResponse, status: number, text: string): void => {
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(`vmchan: ${text}\n`);
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://vmchan.invalid');
    if (!hostOk(req.headers.host)) {
      return refuse(res, 403, `wrong Host header (${req.headers.host ?? 'none'})`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return refuse(res, 405, 'method not allowed');
    if (url.pathname === '/capture.pcapng') {
      const given = headerToken(req);
      if (!sameToken(given, token)) {
        return refuse(
          res,
          403,
          given === undefined ? `the capture needs the ${TOKEN_HEADER} header` : 'wrong token',
        );
      }
      const file = service.captureFile;
      if (file === null || !fs.existsSync(file)) return refuse(res, 404, 'nothing captured yet');
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'Content-Type': 'application/vnd.tcpdump.pcap',
        'Content-Disposition': 'attachment; filename="vmchan-capture.pcapng"',
        'Cache-Control': 'no-store',
      });
      if (req.method === 'HEAD') return res.end();
      fs.createReadStream(file).pipe(res);
      return;
    }
    // The page's own files: the same for everyone, no token needed (it is in the fragment).
    const file = staticPath(options.staticDir, url.pathname);
    if (file === null) return refuse(res, 404, 'not found');
    fs.readFile(file, (err, body) => {
      if (err) {
        if (url.pathname === '/' || url.pathname === '/index.html') {
          return refuse(
            res,
            503,
            `the app is not built (${options.staticDir}): run \`npm run build:renderer\``,
          );
        }
        return refuse(res, 404, 'not found');
      }
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'Content-Type': contentType(file),
        'Cache-Control': file.endsWith('.html') ? 'no-store' : 'max-age=3600',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });

  const refusal = (req: http.IncomingMessage): Refusal => {
    const url = new URL(req.url ?? '/', 'http://vmchan.invalid');
    if (url.pathname !== '/api') return `vmchan: no API at ${url.pathname} (it is at /api)`;
    if (!hostOk(req.headers.host))
      return `vmchan: wrong Host header (${req.headers.host ?? 'none'})`;
    if (!originOk(req.headers.origin)) {
      return `vmchan: wrong Origin (${req.headers.origin}): only the app's own page may connect`;
    }
    const given = protocolToken(req);
    if (given === undefined) return 'vmchan: token required';
    if (!sameToken(given, token)) return 'vmchan: wrong token';
    return null;
  };

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE,
    // Answer with the plain protocol name: the token is never echoed back.
    handleProtocols: () => API_PROTOCOL,
  });
  server.on('upgrade', (req, socket, head) => {
    const why = refusal(req);
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (why !== null) {
        ws.close(1008, clip(why));
        return;
      }
      wss.emit('connection', ws, req);
    });
  });
  wss.on('connection', (ws: WebSocket) => serveSocket(ws, service));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://${bracketed(host)}:${port}/#token=${token}`,
    host,
    port,
    token,
    get clients() {
      return wss.clients.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One browser tab: requests in, answers and batches out, each checked. */
function serveSocket(ws: WebSocket, service: ApiService): void {
  const send = (message: ServerMessage): void => {
    const checked = ServerMessageSchema.safeParse(message);
    if (!checked.success) {
      process.stderr.write(
        `vmchan: refused to send a message that breaks the contract: ${describeIssues(checked.error)}\n`,
      );
      return;
    }
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
  };
  const screen = service.attachScreen((batch) => send({ t: 'batch', batch }));
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      send({
        t: 'res',
        id: 0,
        result: fail('InvalidRequest', 'binary messages are not part of the API'),
      });
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(data.toString());
    } catch {
      send({ t: 'res', id: 0, result: fail('InvalidRequest', 'a message must be JSON') });
      return;
    }
    const msg = ClientMessageSchema.safeParse(raw);
    if (!msg.success) {
      const id = typeof (raw as { id?: unknown })?.id === 'number' ? (raw as { id: number }).id : 0;
      send({
        t: 'res',
        id: Number.isInteger(id) && id >= 0 ? id : 0,
        result: fail('InvalidRequest', describeIssues(msg.error)),
      });
      return;
    }
    if (msg.data.t === 'ack') {
      screen.ack(msg.data.seq);
      return;
    }
    const id = msg.data.id;
    const missing = unconfirmedReach(msg.data.command, msg.data.confirm ?? []);
    if (missing.length > 0) {
      send({
        t: 'res',
        id,
        result: fail('Refused', `not confirmed in the window: ${describeReach(missing)}`),
      });
      return;
    }
    void service.execute(msg.data.command).then((result) => send({ t: 'res', id, result }));
  });
  ws.on('close', () => screen.close());
  ws.on('error', () => screen.close());
}
