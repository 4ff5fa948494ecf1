/**
 * QEMU's WebSocket server side (-chardev socket,server=on,websocket=on), as
 * chardev/char-socket.c with io/channel-websock.c does it: every accepted
 * connection first reads an HTTP/1.1 GET with `Upgrade: websocket` and
 * answers `101 Switching Protocols` (RFC 6455 key hash; like QEMU's, the
 * answers carry `Server: QEMU VNC` and a Date); from then on the
 * guest's bytes go out as binary frames and the payload of the client's
 * frames is what the guest reads. A client that offers subprotocols must
 * offer `binary` (QEMU's QIO_CHANNEL_WEBSOCK_PROTOCOL_BINARY), which the
 * answer then names. A request that is not an upgrade gets `400 Bad Request`
 * and the connection closes, as QEMU's handshake error does; the chardev
 * only counts as connected once the handshake succeeded (tcp_chr_connect
 * runs after tcp_chr_websock_handshake).
 *
 * The framing is the `ws` package's (masking, fragmentation, ping/pong,
 * close): a WebSocketServer with noServer takes the upgrade on our own
 * listening socket, and createWebSocketStream gives the link a byte stream.
 *
 * A text frame closes the connection as QEMU does (1003, "only binary,
 * close, ping, and pong frames are supported"); its payload is discarded
 * and reported.
 */
import * as http from 'node:http';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws';

/** What QEMU names itself in its handshake answers (checked on QEMU 7.2). */
const QEMU_SERVER = 'QEMU VNC';
const QEMU_HEADERS = [`Server: ${QEMU_SERVER}`];

/** The one subprotocol QEMU speaks. */
export const WEBSOCKET_PROTOCOL = 'binary';
/** The largest handshake request read (QEMU reads at most 4 KiB of it). */
const MAX_HANDSHAKE = 4096;
/** The largest frame taken (bounds memory; a guest write is at most 32 KiB). */
const MAX_PAYLOAD = 1024 * 1024;

/** QEMU's close for a frame that is not binary (io/channel-websock.c, checked on QEMU 7.2). */
export const TEXT_FRAME_CLOSE = {
  code: 1003,
  reason: 'only binary, close, ping, and pong frames are supported',
} as const;

/**
 * The WebSocket's payload as a byte stream, binary frames only: a text
 * frame closes the connection with QEMU's 1003 and its payload never
 * reaches the guest (`onTextFrame` is told how many bytes went).
 */
function binaryOnly(ws: WebSocket, onTextFrame: (bytes: number) => void): Duplex {
  const stream = createWebSocketStream(ws);
  // The stream's own 'message' listener pushes every payload; let only binary ones through.
  const forward = ws.listeners('message') as ((data: Buffer, isBinary: boolean) => void)[];
  ws.removeAllListeners('message');
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      for (const f of forward) f(data, isBinary);
      return;
    }
    onTextFrame(data.length);
    ws.close(TEXT_FRAME_CLOSE.code, TEXT_FRAME_CLOSE.reason);
  });
  return stream;
}

/** Why a connection never became a WebSocket. */
export class WebSocketHandshakeFailed extends Error {
  override readonly name = 'WebSocketHandshakeFailed';
}

/**
 * Run the server handshake on an accepted socket; `done` gets the byte
 * stream of the WebSocket or the reason it failed (the socket is then
 * closed). Called at most once.
 */
export function acceptWebSocket(
  socket: net.Socket,
  done: (result: Duplex | WebSocketHandshakeFailed) => void,
  onTextFrame: (bytes: number) => void,
): void {
  let settled = false;
  const settle = (result: Duplex | WebSocketHandshakeFailed): void => {
    if (settled) return;
    settled = true;
    socket.off('close', onClose);
    done(result);
  };
  const onClose = (): void =>
    settle(new WebSocketHandshakeFailed('the client left before the handshake'));
  socket.once('close', onClose);

  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: MAX_PAYLOAD,
    handleProtocols: (offered) => (offered.has(WEBSOCKET_PROTOCOL) ? WEBSOCKET_PROTOCOL : false),
  });
  // QEMU's answers carry "Server: QEMU VNC" and a Date (qio_channel_websock_handshake_send_res).
  wss.on('headers', (headers: string[]) => {
    headers.splice(1, 0, `Server: ${QEMU_SERVER}`, `Date: ${new Date().toUTCString()}`);
  });
  const server = http.createServer({ maxHeaderSize: MAX_HANDSHAKE });
  const refuse = (why: string): void => {
    if (!socket.destroyed) {
      socket.end(
        `HTTP/1.1 400 Bad Request\r\n${QEMU_HEADERS.map((h) => `${h}\r\n`).join('')}` +
          `Date: ${new Date().toUTCString()}\r\nConnection: close\r\n` +
          `Sec-WebSocket-Version: 13\r\n\r\n`,
      );
    }
    settle(new WebSocketHandshakeFailed(why));
  };
  server.on('request', (_req, res: http.ServerResponse) => {
    res.writeHead(400, {
      Server: QEMU_SERVER,
      Connection: 'close',
      'Sec-WebSocket-Version': '13',
    });
    res.end();
    settle(new WebSocketHandshakeFailed('not a WebSocket upgrade request'));
  });
  server.on('clientError', () => refuse('a malformed HTTP request'));
  server.on('upgrade', (req: http.IncomingMessage, sock: Duplex, head: Buffer) => {
    const offered = req.headers['sec-websocket-protocol'];
    if (offered !== undefined && !offered.split(',').some((p) => p.trim() === WEBSOCKET_PROTOCOL)) {
      refuse(`the client offers no '${WEBSOCKET_PROTOCOL}' protocol (${offered})`);
      return;
    }
    // A bad key or version: ws answers 400 and closes; onClose settles.
    wss.handleUpgrade(req, sock, head, (ws) => {
      socket.off('close', onClose);
      settle(binaryOnly(ws, onTextFrame));
    });
  });
  server.emit('connection', socket);
  socket.resume();
}
