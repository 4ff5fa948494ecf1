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
 * All clients share one sink on the session's {@link Capture}, the
 * {@link LiveHub}: each record is encoded once, and the same bytes go to
 * every client, flushed once per engine batch (setImmediate after the first
 * record of a batch), so records reach Wireshark as they happen without a
 * write call per record.
 *
 * Bounds: at most {@link MAX_LIVE_CLIENTS} clients; a client that falls
 * more than {@link MAX_LIVE_QUEUE_BYTES} behind is disconnected, counted and
 * named in a notice (never silently dropped from: a pcapng stream with a
 * hole would be a lie).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { CaptureError, describeIoFailure } from './error.js';
import { isFilterError, parseFilter, subjectOfRecord, type Filter } from './filter.js';
import { PcapngWriter, type ByteOutput, type PcapngWriterOptions } from './pcapng-writer.js';
import type { Capture, CaptureInterface, CaptureRecord, CaptureSink } from './record.js';

export const MAX_LIVE_CLIENTS = 16;
export const MAX_LIVE_QUEUE_BYTES = 16 * 1024 * 1024;
const MAX_HELLO_BYTES = 4096;

/** One connected live client: its socket and, when it asked for one, its filter. */
interface LiveClient {
  readonly socket: net.Socket;
  readonly filter: Filter | undefined;
  /** The first record's time this client saw (its filter's `time` is relative to it). */
  firstTime: bigint | undefined;
}

/**
 * A consumer of the hub's encoded bytes that is not a socket: a capture file
 * (core/capture/shared-file.ts). It sees every block it keeps from the moment
 * it is attached, synchronously, out of the encoder's own buffer (no copy),
 * and is told around each record so it can rotate or stop at a record boundary.
 */
export interface EncodedConsumer {
  /**
   * Whether it keeps `record` (absent: every record), asked first: a record
   * nobody keeps is not encoded, and a consumer that does not keep it is
   * neither told about it nor handed its block (interface blocks it always gets).
   */
  wants?(record: CaptureRecord): boolean;
  /** Before `record` is encoded: the consumer may flush the hub, rotate, or detach. */
  before(record: CaptureRecord): void;
  /** After `record` is encoded (its block is pending in the hub's buffer). */
  after(record: CaptureRecord): void;
  /** Whole blocks, lent for the duration of the call. */
  take(chunk: Uint8Array): void;
}

/** Who, among those that choose, takes a record's block in the shared stream. */
interface Span {
  /** Filtered clients whose filter matched the record (unfiltered clients take every block); set while there are filtered clients. */
  readonly wantedBy: ReadonlySet<LiveClient> | undefined;
  /** Consumers whose `wants` refused the record. */
  readonly skippedBy: readonly EncodedConsumer[] | undefined;
}

const BLOCK_SHB_LE = 0x0a0d0d0a;
const BLOCK_IDB_LE = 0x00000001;

/**
 * Every live client of one session fed from one encoding: the hub is a
 * single sink on the session's {@link Capture}; each record becomes pcapng
 * bytes once (its own PcapngWriter), and each flushed chunk is copied once
 * out of the writer's reused buffer, then the same Buffer is queued on every
 * unfiltered client's socket (a filtered client gets subarrays of it: the
 * blocks its filter matched, plus every interface block). A client that
 * joins later gets the section header and the interfaces so far (kept as
 * they pass), then the stream from there. Capture files take the same
 * blocks out of the writer's buffer before that copy; a file that keeps only
 * some records (the app's port switches) is handed runs of the blocks it
 * keeps, so a record is still encoded once for files and clients together.
 *
 * Given a `source`, the hub is a sink on that Capture only while someone
 * consumes (a client or a file): a session nobody captures pays nothing.
 *
 * Each socket's queue is bounded ({@link LiveHubOptions.queueBytes}): a
 * client that falls that far behind is disconnected, counted, and told to
 * `onDrop` with its reason. Writing never waits for a client, so a slow or
 * stalled Wireshark never holds up the lab.
 */
export class LiveHub implements CaptureSink {
  private readonly clients = new Set<LiveClient>();
  private readonly files = new Set<EncodedConsumer>();
  private readonly writer: PcapngWriter;
  /** Section header and interface blocks written so far: what a late client starts with. */
  private preamble: Buffer[] = [];
  /** Bytes handed out so far (the absolute offset of the next chunk). */
  private sent = 0;
  /** Blocks of records not yet flushed, by their absolute start offset (only with filtered clients or choosing files). */
  private readonly spans = new Map<number, Span>();
  /** Bytes of pending blocks each choosing file refused (its share of `pending` is the rest). */
  private readonly skipped = new Map<EncodedConsumer, number>();
  private readonly source: Capture | undefined;
  private detachSource: (() => void) | undefined;
  private flushScheduled = false;
  private readonly queueBytes: number;
  /** Clients disconnected because they fell behind. */
  dropped = 0;
  /** Chunks copied out of the writer (one per flush, whatever the number of clients). */
  chunks = 0;

  /** Records encoded: once each, whatever the number of clients. */
  get encoded(): number {
    return this.writer.records;
  }

  constructor(options: LiveHubOptions = {}) {
    this.queueBytes = options.queueBytes ?? MAX_LIVE_QUEUE_BYTES;
    this.source = options.source;
    const onDrop = options.onDrop ?? (() => {});
    const out: ByteOutput = {
      write: (chunk: Uint8Array): CaptureError | undefined => {
        this.fanOut(chunk, onDrop);
        return undefined;
      },
      close: () => undefined,
    };
    // With clients the hub flushes per engine batch; with only a file, the
    // writer's own policy (buffer full, 250 ms deadline) keeps the file's durability.
    const writer = PcapngWriter.to(out, options.writer ?? {});
    if (writer instanceof CaptureError) throw writer; // a MemoryOutput-like sink cannot fail
    this.writer = writer;
    this.writer.flush();
  }

  /** Clients connected now. */
  get size(): number {
    return this.clients.size;
  }

  /** Encoded bytes not yet handed out (they go to whoever is attached at the next flush). */
  get pending(): number {
    return this.writer.size - this.writer.bytesWritten;
  }

  /** Of the pending bytes, those `file` will be handed (the blocks it keeps, and interfaces). */
  pendingFor(file: EncodedConsumer): number {
    return this.pending - (this.skipped.get(file) ?? 0);
  }

  /** The Capture the hub is a sink on while someone consumes, if it was given one. */
  get capture(): Capture | undefined {
    return this.source;
  }

  private attachSource(): void {
    if (this.detachSource === undefined && this.source !== undefined)
      this.detachSource = this.source.attach(this);
  }

  /** With a source: be its sink while there is a client or a file, and only then. */
  private follow(): void {
    if (this.source === undefined) return;
    if (this.clients.size + this.files.size > 0) this.attachSource();
    else if (this.detachSource !== undefined) {
      const detach = this.detachSource;
      this.detachSource = undefined;
      detach();
    }
  }

  /** The section header and every interface block so far: how a new file starts. */
  get preambleBytes(): Buffer {
    return Buffer.concat(this.preamble);
  }

  /**
   * Feed a file from now on: it gets the header and interfaces so far at
   * once, then every block. Returns the detach function, which flushes first
   * so the file keeps every record encoded while it was attached.
   */
  attachFile(file: EncodedConsumer): () => void {
    // The source first: attaching it hands the hub every interface, which the preamble then has.
    this.attachSource();
    this.writer.flush();
    file.take(this.preambleBytes);
    this.files.add(file);
    return () => {
      if (!this.files.has(file)) return;
      this.writer.flush();
      this.files.delete(file);
      this.follow();
    };
  }

  /** Start streaming to a client: the header and interfaces so far at once, then live. */
  join(socket: net.Socket, filter: Filter | undefined): () => void {
    this.attachSource();
    this.writer.flush(); // pending records belong to the clients that were there
    const client: LiveClient = { socket, filter, firstTime: undefined };
    for (const block of this.preamble) socket.write(block);
    this.clients.add(client);
    return () => {
      this.clients.delete(client);
      this.follow();
    };
  }

  addInterface(iface: CaptureInterface): CaptureError | undefined {
    return this.writer.addInterface(iface);
  }

  write(record: CaptureRecord): CaptureError | undefined {
    if (this.clients.size === 0 && this.files.size === 0) {
      // Nobody to send to: interfaces still go into the preamble, records go nowhere.
      return undefined;
    }
    let skippedBy: EncodedConsumer[] | undefined;
    let takers: EncodedConsumer[] | undefined;
    for (const f of this.files.size === 1 ? this.files : [...this.files]) {
      if (f.wants !== undefined && !f.wants(record)) (skippedBy ??= []).push(f);
      else {
        f.before(record); // may rotate or stop (detach) the file
        if (this.files.has(f)) (takers ??= []).push(f);
      }
    }
    // Nobody keeps it: not encoded at all.
    if (this.clients.size === 0 && takers === undefined) return undefined;
    let wantedBy: Set<LiveClient> | undefined;
    for (const c of this.clients) {
      if (c.filter === undefined) continue;
      c.firstTime ??= record.time;
      wantedBy ??= new Set();
      // The filter reads the record now: its bytes are only lent to sinks.
      if (c.filter.test(subjectOfRecord(record, c.firstTime))) wantedBy.add(c);
    }
    // Noted before the write: a block larger than the writer's buffer is handed out within it.
    const start = this.writer.size;
    if (wantedBy !== undefined || skippedBy !== undefined)
      this.spans.set(start, { wantedBy, skippedBy });
    const err = this.writer.write(record);
    if (err) {
      this.spans.delete(start);
      return err;
    }
    // Still pending (not handed out within the write): the refusing files' share shrinks.
    if (skippedBy !== undefined && this.spans.has(start)) {
      const length = this.writer.size - start;
      for (const f of skippedBy) this.skipped.set(f, (this.skipped.get(f) ?? 0) + length);
    }
    if (takers !== undefined) for (const f of takers) if (this.files.has(f)) f.after(record);
    if (this.clients.size > 0 && !this.flushScheduled) {
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
    const err = this.writer.close();
    for (const c of this.clients) c.socket.end();
    this.clients.clear();
    this.files.clear();
    this.follow();
    return err;
  }

  /**
   * One chunk of whole blocks, lent by the writer: files write it as it is
   * (a choosing file, the runs of blocks it keeps); clients share one copy
   * (their sockets queue it past this call).
   */
  private fanOut(lent: Uint8Array, onDrop: (reason: string) => void): void {
    const base = this.sent;
    this.sent += lent.length;
    const view = Buffer.from(lent.buffer, lent.byteOffset, lent.byteLength);
    /** Files that refused a record of this chunk (still attached), with where their next run starts. */
    const runs = new Map<EncodedConsumer, number>();
    for (const [at, span] of this.spans) {
      if (at >= this.sent) break;
      for (const f of span.skippedBy ?? []) if (this.files.has(f)) runs.set(f, 0);
    }
    this.skipped.clear();
    for (const f of [...this.files]) if (!runs.has(f)) f.take(lent);
    const toClients = this.clients.size > 0;
    if (toClients) this.chunks++;
    // Clients' sockets keep the chunk past this call: one copy for them all.
    const chunk = toClients ? Buffer.from(view) : view;
    // Walk the blocks once: keep interface blocks for late joiners; cut per-filter parts and runs.
    const filtered = toClients ? [...this.clients].filter((c) => c.filter !== undefined) : [];
    const parts = new Map<LiveClient, Buffer[]>(filtered.map((c) => [c, []]));
    for (let o = 0; o + 8 <= chunk.length;) {
      const type = chunk.readUInt32LE(o);
      const length = chunk.readUInt32LE(o + 4);
      if (length < 12 || o + length > chunk.length) break; // never: the writer hands whole blocks
      const block = chunk.subarray(o, o + length);
      const span = this.spans.get(base + o);
      if (span !== undefined) this.spans.delete(base + o);
      if (type === BLOCK_SHB_LE || type === BLOCK_IDB_LE) {
        // Copied when it is the writer's buffer (reused after this call).
        this.preamble.push(toClients ? block : Buffer.from(block));
        for (const list of parts.values()) list.push(block);
        // An interface the writer added for the record it was writing: the record's block follows.
        if (span !== undefined) this.spans.set(base + o + length, span);
      } else if (span !== undefined) {
        if (span.wantedBy !== undefined) for (const c of span.wantedBy) parts.get(c)?.push(block);
        for (const f of span.skippedBy ?? []) {
          const from = runs.get(f);
          if (from === undefined) continue;
          if (from < o) f.take(view.subarray(from, o));
          runs.set(f, o + length);
        }
      }
      o += length;
    }
    for (const [f, from] of runs) if (from < view.length) f.take(view.subarray(from));
    // Spans of blocks handed out are gone (a failed write leaves none behind either).
    for (const at of this.spans.keys()) {
      if (at >= this.sent) break;
      this.spans.delete(at);
    }
    if (!toClients) return;
    for (const c of [...this.clients]) {
      const s = c.socket;
      if (s.destroyed || s.writableEnded) {
        this.clients.delete(c);
        continue;
      }
      if (s.writableLength > this.queueBytes) {
        this.clients.delete(c);
        this.dropped++;
        s.destroy();
        onDrop(`live capture reader fell more than ${this.queueBytes} bytes behind`);
        continue;
      }
      if (c.filter === undefined) s.write(chunk);
      else for (const part of parts.get(c) ?? []) s.write(part);
    }
  }
}

export interface LiveHubOptions {
  /** The encoder's options (section header text, buffer, flush deadline, snap length). */
  writer?: PcapngWriterOptions;
  /** The Capture to be a sink on while someone consumes (else the caller attaches the hub). */
  source?: Capture;
  /** A client's queue bound (default {@link MAX_LIVE_QUEUE_BYTES}). */
  queueBytes?: number;
  /** Told, with the reason, about each client disconnected for falling behind. */
  onDrop?: (reason: string) => void;
}

/**
 * One pcapng writer of its own with an optional filter, flushed per batch: a
 * single reader such as extcap's attach interface writing to Wireshark's fifo.
 */
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
  /** A client's queue bound (default {@link MAX_LIVE_QUEUE_BYTES}). */
  queueBytes?: number;
  /**
   * A hub the caller made (it also feeds a file): the server never closes
   * it; the caller keeps it attached to the capture, or gave it the capture
   * as its `source` so that it attaches itself while someone consumes.
   */
  hub?: LiveHub;
}

export interface LiveServer {
  readonly socketPath: string;
  /** Clients connected now. */
  readonly clients: number;
  /** Clients disconnected because they fell behind. */
  readonly dropped: number;
  /** The one encoder all clients share. */
  readonly hub: LiveHub;
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
      // The hub is a sink only while someone reads (or a file it shares is written).
      detach = hub.join(socket, asked.filter);
      socket.resume(); // nothing more is read from the client
    };
    socket.on('data', onData);
  };

  const ownsHub = options.hub === undefined;
  const hub =
    options.hub ??
    new LiveHub({
      source: capture,
      queueBytes: options.queueBytes,
      onDrop: (reason) => notice(`live capture client disconnected: ${reason}`),
    });
  const offError = (): void => {
    if (ownsHub) hub.close();
  };

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
          return hub.dropped;
        },
        hub,
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
