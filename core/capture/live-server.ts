/**
 * Live capture out of a running session: a unix socket (0600, in the 0700
 * session registry) that streams pcapng to whoever connects, the way
 * `vmchan extcap` feeds Wireshark.
 *
 * The exchange, one line each way, then the capture:
 *   client -> `{"filter":"port == test1"}\n`   (JSON, at most 4 KiB; filter optional)
 *   server -> `OK\n` then a pcapng stream (section header, interfaces, packets), or
 *             `ERR <one line>\n` and the server hangs up.
 *
 * Each client is one more sink on the session's {@link Capture}: the capture
 * hands every record to the file, the app and each live client as the same
 * object; each sink encodes it once. A client's pcapng is flushed once per
 * engine batch (setImmediate after the first record of a batch), so records
 * reach Wireshark as they happen without a write call per record.
 *
 * Bounds: at most {@link MAX_LIVE_CLIENTS} clients; a client that falls
 * more than {@link MAX_LIVE_QUEUE_BYTES} behind is disconnected and counted
 * (never silently dropped from: a pcapng stream with a hole would be a lie).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { CaptureError, describeIoFailure } from './error.js';
import { isFilterError, parseFilter, subjectOfRecord, type Filter } from './filter.js';
import { PcapngWriter, type ByteOutput } from './pcapng-writer.js';
import type { Capture, CaptureInterface, CaptureRecord, CaptureSink } from './record.js';

export const MAX_LIVE_CLIENTS = 16;
export const MAX_LIVE_QUEUE_BYTES = 16 * 1024 * 1024;
const MAX_HELLO_BYTES = 4096;

/** Writes pcapng chunks to a socket, refusing to queue more than the bound. */
class SocketOutput implements ByteOutput {
  constructor(private readonly socket: net.Socket) {}
  write(chunk: Uint8Array): CaptureError | undefined {
    const s = this.socket;
    if (s.destroyed || s.writableEnded)
      return new CaptureError('SinkClosed', 'live capture reader is gone');
    if (s.writableLength > MAX_LIVE_QUEUE_BYTES)
      return new CaptureError(
        'IoError',
        `live capture reader fell more than ${MAX_LIVE_QUEUE_BYTES} bytes behind`,
      );
    // The writer reuses its buffer: the socket gets its own copy.
    s.write(Buffer.from(chunk));
    return undefined;
  }
  close(): CaptureError | undefined {
    this.socket.end();
    return undefined;
  }
}

/** One live client: a pcapng writer on its socket, an optional filter, flushed per batch. */
export class LiveSink implements CaptureSink {
  private flushScheduled = false;
  private firstTime: bigint | undefined;
  records = 0;

  constructor(
    private readonly writer: PcapngWriter,
    private readonly filter: Filter | undefined,
  ) {}

  addInterface(iface: CaptureInterface): CaptureError | undefined {
    return this.writer.addInterface(iface);
  }

  write(record: CaptureRecord): CaptureError | undefined {
    if (this.filter) {
      this.firstTime ??= record.time;
      if (!this.filter.test(subjectOfRecord(record, this.firstTime))) return undefined;
    }
    const err = this.writer.write(record);
    if (err) return err;
    this.records++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.writer.flush();
      });
    }
    return undefined;
  }

  flush(): CaptureError | undefined {
    return this.writer.flush();
  }

  close(): CaptureError | undefined {
    return this.writer.close();
  }
}

export interface LiveServerOptions {
  /** Told about clients that come, go or are disconnected (one line each). */
  onNotice?: (line: string) => void;
}

export interface LiveServer {
  readonly socketPath: string;
  /** Clients connected now. */
  readonly clients: number;
  /** Clients disconnected because they fell behind. */
  readonly dropped: number;
  close(): Promise<void>;
}

/** Parse a client's hello line: the filter it asks for, or why it is refused. */
export function parseHello(line: string): { filter: Filter | undefined } | string {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return 'the first line must be JSON, e.g. {"filter":"port == test1"}';
  }
  if (typeof json !== 'object' || json === null) return 'the first line must be a JSON object';
  const f = (json as { filter?: unknown }).filter;
  if (f === undefined || f === null || f === '') return { filter: undefined };
  if (typeof f !== 'string') return 'filter must be a string';
  const parsed = parseFilter(f);
  if (isFilterError(parsed)) return parsed.toString();
  return { filter: parsed };
}

/** Listen on `socketPath` (0600) and stream `capture` to each client. */
export function startLiveServer(
  capture: Capture,
  socketPath: string,
  options: LiveServerOptions = {},
): Promise<LiveServer | CaptureError> {
  const notice = options.onNotice ?? (() => {});
  const sockets = new Set<net.Socket>();
  let dropped = 0;

  const serve = (socket: net.Socket): void => {
    if (sockets.size >= MAX_LIVE_CLIENTS) {
      socket.end(`ERR too many live capture clients (at most ${MAX_LIVE_CLIENTS})\n`);
      return;
    }
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    let hello = '';
    let detach: (() => void) | undefined;
    socket.on('close', () => {
      sockets.delete(socket);
      detach?.();
    });
    const onData = (chunk: Buffer): void => {
      hello += chunk.toString('utf8');
      const nl = hello.indexOf('\n');
      if (nl < 0) {
        if (hello.length > MAX_HELLO_BYTES) socket.end('ERR the first line is too long\n');
        return;
      }
      socket.off('data', onData);
      const asked = parseHello(hello.slice(0, nl));
      if (typeof asked === 'string') {
        socket.end(`ERR ${asked}\n`);
        return;
      }
      socket.write('OK\n');
      const writer = PcapngWriter.to(new SocketOutput(socket), {
        // LiveSink flushes per batch; the writer's own deadline is only a safety net.
        flushIntervalMs: 1000,
      });
      if (writer instanceof CaptureError) {
        socket.destroy();
        return;
      }
      const sink = new LiveSink(writer, asked.filter);
      detach = capture.attach(sink);
      writer.flush(); // the section header and interfaces go out at once
      socket.resume(); // nothing more is read from the client
    };
    socket.on('data', onData);
  };

  const offError = capture.onError((err, sink) => {
    if (!(sink instanceof LiveSink)) return;
    if (err.kind === 'SinkClosed') return; // the reader went away: nothing to report
    dropped++;
    notice(`live capture client disconnected: ${err.message}`);
  });

  return new Promise((resolve) => {
    const server = net.createServer(serve);
    server.on('error', (err) => {
      offError();
      resolve(
        new CaptureError('IoError', `cannot listen for live capture: ${describeIoFailure(err)}`, {
          path: socketPath,
        }),
      );
    });
    fs.rmSync(socketPath, { force: true });
    server.listen(socketPath, () => {
      try {
        fs.chmodSync(socketPath, 0o600);
      } catch {
        // the registry directory is 0700 already
      }
      resolve({
        socketPath,
        get clients() {
          return sockets.size;
        },
        get dropped() {
          return dropped;
        },
        close: () =>
          new Promise<void>((done) => {
            offError();
            for (const s of sockets) s.end();
            server.close(() => done());
            fs.rmSync(socketPath, { force: true });
          }),
      });
    });
  });
}

/**
 * Connect to a session's live socket and ask for a capture: resolves with
 * the socket positioned at the first pcapng byte, or a one-line refusal.
 */
export function connectLive(
  socketPath: string,
  filter: string | undefined,
): Promise<{ socket: net.Socket; rest: Buffer } | CaptureError> {
  return new Promise((resolve) => {
    const socket = net.createConnection(socketPath);
    let got = Buffer.alloc(0);
    let settled = false;
    const settle = (v: { socket: net.Socket; rest: Buffer } | CaptureError): void => {
      if (settled) return;
      settled = true;
      socket.off('data', onData);
      if (v instanceof CaptureError) socket.destroy();
      else socket.pause();
      resolve(v);
    };
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]);
      const nl = got.indexOf(0x0a);
      if (nl < 0) {
        if (got.length > MAX_HELLO_BYTES)
          settle(new CaptureError('IoError', 'the session answered something unexpected'));
        return;
      }
      const line = got.subarray(0, nl).toString('utf8');
      if (line === 'OK') settle({ socket, rest: got.subarray(nl + 1) });
      else settle(new CaptureError('IoError', line.replace(/^ERR /, '')));
    };
    socket.on('data', onData);
    socket.on('connect', () => socket.write(JSON.stringify({ filter: filter ?? '' }) + '\n'));
    socket.on('error', (err) =>
      settle(
        new CaptureError('IoError', `cannot reach the session: ${describeIoFailure(err)}`, {
          path: socketPath,
        }),
      ),
    );
    socket.on('close', () =>
      settle(new CaptureError('IoError', 'the session closed the live capture')),
    );
  });
}
