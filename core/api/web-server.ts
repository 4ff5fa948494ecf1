/**
 * The web face: the built renderer over HTTP and the API over a WebSocket
 * (`/api`), for `vmchan serve` and the end-to-end tests in Chromium.
 *
 * - It listens on 127.0.0.1 unless told otherwise.
 * - Every request needs the token (random, crypto.randomBytes): in the URL
 *   (`?token=...`, what `vmchan serve` prints) or in the HttpOnly cookie the
 *   first tokened page load sets, so the page's own files and its WebSocket
 *   need nothing more. Without it: HTTP 403, and a WebSocket is closed at
 *   once (code 1008). Tokens are compared in constant time.
 * - The Host header must name this server (no DNS rebinding) and a
 *   WebSocket's Origin must be the page's own.
 * - Every message is checked against the contract both ways
 *   (ClientMessageSchema in, ServerMessageSchema out).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  ClientMessageSchema,
  ServerMessageSchema,
  describeIssues,
  fail,
  type ServerMessage,
} from './contract.js';
import { SECURITY_HEADERS, contentType, staticPath } from './csp.js';
import type { ApiService } from './service.js';

export const TOKEN_COOKIE = 'vmchan_token';
const MAX_MESSAGE = 2 * 1024 * 1024;

export interface WebServerOptions {
  service: ApiService;
  /** The built renderer (index.html and assets/). */
  staticDir: string;
  host?: string;
  port?: number;
  /** A fixed token (tests); default 24 random bytes, hex. */
  token?: string;
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

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost';
}

function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === TOKEN_COOKIE) return v.join('=');
  }
  return undefined;
}

export async function startWebServer(options: WebServerOptions): Promise<WebServer> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? randomBytes(24).toString('hex');
  const service = options.service;
  let port = options.port ?? 0;

  const allowedHosts = (): Set<string> =>
    new Set(
      isLoopback(host)
        ? [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]
        : [`${host.includes(':') ? `[${host}]` : host}:${port}`],
    );
  const hostOk = (req: http.IncomingMessage): boolean =>
    // Bound to all interfaces on request: any name reaches it, the token still guards it.
    host === '0.0.0.0' || host === '::' || allowedHosts().has(req.headers.host ?? '');
  const authorized = (req: http.IncomingMessage, url: URL): 'query' | 'cookie' | null => {
    if (sameToken(url.searchParams.get('token') ?? undefined, token)) return 'query';
    if (sameToken(cookieToken(req.headers.cookie), token)) return 'cookie';
    return null;
  };

  const refuse = (res: http.ServerResponse, status: number, text: string): void => {
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(`vmchan: ${text}\n`);
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://vmchan.invalid');
    if (!hostOk(req)) return refuse(res, 403, 'wrong Host header');
    const how = authorized(req, url);
    if (how === null) {
      return refuse(res, 403, 'this address needs the token `vmchan serve` printed (…/?token=…)');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return refuse(res, 405, 'method not allowed');
    const cookie =
      how === 'query'
        ? { 'Set-Cookie': `${TOKEN_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/` }
        : {};
    if (url.pathname === '/capture.pcapng') {
      const file = service.captureFile;
      if (file === null || !fs.existsSync(file)) return refuse(res, 404, 'nothing captured yet');
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        ...cookie,
        'Content-Type': 'application/vnd.tcpdump.pcap',
        'Content-Disposition': 'attachment; filename="vmchan-capture.pcapng"',
        'Cache-Control': 'no-store',
      });
      if (req.method === 'HEAD') return res.end();
      fs.createReadStream(file).pipe(res);
      return;
    }
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
        ...cookie,
        'Content-Type': contentType(file),
        'Cache-Control': file.endsWith('.html') ? 'no-store' : 'max-age=3600',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://vmchan.invalid');
    const origin = req.headers.origin;
    const originOk =
      origin === undefined ||
      [...allowedHosts()].some((h) => origin === `http://${h}`) ||
      !isLoopback(host);
    const ok = url.pathname === '/api' && hostOk(req) && originOk && authorized(req, url) !== null;
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (!ok) {
        ws.close(1008, 'vmchan: token required');
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
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/?token=${token}`,
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
    void service.execute(msg.data.command).then((result) => send({ t: 'res', id, result }));
  });
  ws.on('close', () => screen.close());
  ws.on('error', () => screen.close());
}
