/**
 * A stand-in QMP server for unit tests: a node:net server (unix socket or
 * loopback TCP) that greets, negotiates and answers like QEMU 7.2 does in
 * the recorded transcripts (shared/design/qemu-7.2-samples), with knobs for
 * the awkward cases: replies cut into pieces, several messages per write,
 * a server that never greets, one that closes at once, one that babbles.
 *
 * Like QEMU, it serves one client at a time: a second connection is
 * accepted by the kernel but left without a greeting.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The greeting of the QEMU 7.2 the samples were recorded from. */
export const QEMU_72_GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}';

export type Reply =
  | { return: unknown }
  | { error: { class: string; desc: string } }
  /** Send nothing for this command (for timeouts). */
  | 'silence'
  /** Close the connection instead of answering. */
  | 'hangup';

export type Handler = (args: Record<string, unknown> | undefined) => Reply;

export interface FakeQmpOptions {
  /** 'unix' (default) or 'tcp' on 127.0.0.1. */
  transport?: 'unix' | 'tcp';
  /**
   * normal: greet and serve; silent: accept and say nothing (a socket held
   * by another client); close: accept and close at once; garbage: send text
   * that is not QMP; nongreeting: send a JSON object that is not a greeting.
   */
  mode?: 'normal' | 'silent' | 'close' | 'garbage' | 'nongreeting';
  /** Cut every write into pieces of this many bytes (1 = byte by byte). */
  chunkBytes?: number;
  /** Answers by command name; the defaults cover qmp_capabilities and a few queries. */
  handlers?: Record<string, Handler>;
  /** Hold replies until this many are ready, then send them in one write. */
  batchReplies?: number;
  /** Send held replies in reverse order (the client must match them by id). */
  reverseReplies?: boolean;
  /** Events to send in the same write as the qmp_capabilities reply. */
  eventsWithNegotiation?: string[];
}

export interface ReceivedCommand {
  execute: string;
  id: unknown;
  arguments?: Record<string, unknown>;
}

export class FakeQmpServer {
  readonly received: ReceivedCommand[] = [];
  /** Connections accepted so far (served or not). */
  connections = 0;
  private active: net.Socket | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly dir: string;
  private held: string[] = [];

  private constructor(
    private readonly server: net.Server,
    readonly address: string,
    dir: string,
    private readonly options: FakeQmpOptions,
  ) {
    this.dir = dir;
  }

  static async start(options: FakeQmpOptions = {}): Promise<FakeQmpServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-fakeqmp-'));
    const server = net.createServer();
    let address: string;
    if ((options.transport ?? 'unix') === 'unix') {
      address = path.join(dir, 'qmp.sock');
      await new Promise<void>((resolve) => server.listen(address, resolve));
    } else {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    }
    const fake = new FakeQmpServer(server, address, dir, options);
    server.on('connection', (socket) => fake.onConnection(socket));
    return fake;
  }

  /** Send an event to the served client, with a QEMU-style timestamp (now, as QEMU stamps it, unless given). */
  sendEvent(
    event: string,
    data?: Record<string, unknown>,
    seconds = Math.floor(Date.now() / 1000),
    micro = (Date.now() % 1000) * 1000,
  ): void {
    const body: Record<string, unknown> = { timestamp: { seconds, microseconds: micro }, event };
    if (data) body['data'] = data;
    this.sendRaw(JSON.stringify(body) + '\r\n');
  }

  /** Write text to the served client, cut by chunkBytes. */
  sendRaw(text: string): void {
    const socket = this.active;
    if (!socket || socket.destroyed) return;
    const bytes = Buffer.from(text, 'utf8');
    const n = this.options.chunkBytes ?? 0;
    if (n <= 0) {
      socket.write(bytes);
      return;
    }
    for (let i = 0; i < bytes.length; i += n) socket.write(bytes.subarray(i, i + n));
  }

  /** Drop the served client, as QEMU does when it exits. */
  dropClient(): void {
    this.active?.destroy();
  }

  /** Commands received, by name, after negotiation. */
  commands(name?: string): ReceivedCommand[] {
    return this.received.filter((c) => name === undefined || c.execute === name);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private onConnection(socket: net.Socket): void {
    this.connections++;
    this.sockets.add(socket);
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (this.active === socket) this.active = undefined;
    });
    socket.on('error', () => {});
    const mode = this.options.mode ?? 'normal';
    if (mode === 'silent' || (this.active && !this.active.destroyed)) return;
    if (mode === 'close') {
      socket.destroy();
      return;
    }
    this.active = socket;
    if (mode === 'garbage') {
      this.sendRaw('SSH-2.0-OpenSSH_9.2\r\n');
      return;
    }
    if (mode === 'nongreeting') {
      this.sendRaw('{"hello": "world"}\r\n');
      return;
    }
    this.sendRaw(QEMU_72_GREETING + '\r\n');
    let buffer = '';
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let nl: number;
      const batch: ReceivedCommand[] = [];
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line) batch.push(JSON.parse(line) as ReceivedCommand);
      }
      this.answer(socket, batch);
    });
  }

  private answer(socket: net.Socket, batch: ReceivedCommand[]): void {
    for (const cmd of batch) {
      this.received.push(cmd);
      const handler = this.options.handlers?.[cmd.execute] ?? defaultHandlers[cmd.execute];
      const reply: Reply = handler
        ? handler(cmd.arguments)
        : {
            error: {
              class: 'CommandNotFound',
              desc: `The command ${cmd.execute} has not been found`,
            },
          };
      if (reply === 'silence') continue;
      if (reply === 'hangup') {
        socket.destroy();
        return;
      }
      // QEMU puts the id last for returns and first for errors; order is not promised.
      const body =
        'return' in reply
          ? JSON.stringify({ return: reply.return, id: cmd.id })
          : JSON.stringify({ id: cmd.id, error: reply.error });
      let line = body + '\r\n';
      if (cmd.execute === 'qmp_capabilities' && this.options.eventsWithNegotiation) {
        line += this.options.eventsWithNegotiation.map((e) => e + '\r\n').join('');
      }
      this.held.push(line);
      if (cmd.execute === 'qmp_capabilities') {
        this.flush();
        continue;
      }
      if (cmd.execute === 'quit') {
        // QEMU answers quit, then goes away.
        this.flush();
        socket.end();
        return;
      }
    }
    if (this.held.length >= (this.options.batchReplies ?? 1)) this.flush();
  }

  private flush(): void {
    const replies = this.held;
    this.held = [];
    if (this.options.reverseReplies) replies.reverse();
    // Several replies in one write: the client must split them.
    if (replies.length > 0) this.sendRaw(replies.join(''));
  }
}

const defaultHandlers: Record<string, Handler> = {
  qmp_capabilities: () => ({ return: {} }),
  quit: () => ({ return: {} }),
};
