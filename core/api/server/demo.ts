/**
 * The demo lab's host programs, which the app runs so that a first start
 * opens alive. The lab itself (topology and guest programs) is declared
 * once in demo-lab.ts, for `vmchan run` and the app alike.
 *
 * Every port has a guest program (the engine's built-in workloads and guest
 * agent, core/workloads and core/qga) and a host program (a real client on
 * the port's unix socket, here):
 *
 * | port                   | guest                                | host                                   |
 * |------------------------|--------------------------------------|----------------------------------------|
 * | console.0 (hvc0)       | `source`: numbered text lines        | a terminal that reads them             |
 * | test1                  | `sha1`: seed 002's transfer service  | virtserial-host: RECV and SEND requests |
 * | test2                  | (the service's data port)            | the transfers' data, both ways         |
 * | org.qemu.guest_agent.0 | qemu-ga (core/qga)                   | guest-sync / guest-ping                |
 *
 * `paced` moves a few hundred KiB/s (48 KiB files each way about twice a
 * second, console lines at 2 KiB/s, one QGA request a second) so the chart
 * has something to show without burning a core; `full` lets every workload
 * go as fast as the engine takes it (8 MiB files back to back: the
 * frame-time benchmark).
 */
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import type { Lab } from '../../engine/lab.js';
import { startGuestAgents, type GuestAgents } from '../../qga/index.js';
import {
  PatternStream,
  startWorkload,
  type Workload,
  type WorkloadSpec,
} from '../../workloads/index.js';
import { demoGuestWorkload, type Speed } from './demo-lab.js';

/** What the workloads need from the service around them. */
export interface WorkloadHost {
  readonly lab: Lab;
  /** The unix socket a host program connects to, or null. */
  socketPath(chardev: string): string | null;
  /** Something a snapshot shows changed (a host program connected or left). */
  changed(): void;
  /** One line for the events timeline. */
  report(line: string): void;
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms).unref());

/** `p`, or give up waiting after `ms` (true when it settled). */
function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([p.then(() => true), sleep(ms).then(() => false)]);
}

/** A host program's socket: connects, reconnects while wanted, reads lines or bytes. */
class HostSocket {
  socket: net.Socket | null = null;
  private lines: string[] = [];
  private partial = '';
  private waiters: (() => void)[] = [];
  /** Bytes received, for transfers that read raw data. */
  received = 0;
  private dataWaiter: {
    want: number;
    hash: ReturnType<typeof createHash>;
    resolve: () => void;
  } | null = null;
  private wanted = false;

  constructor(
    private readonly host: WorkloadHost,
    private readonly chardev: string,
    readonly label: string,
    private readonly onConnect: (s: net.Socket) => void = () => {},
  ) {}

  get connected(): boolean {
    return this.socket !== null && !this.socket.connecting && !this.socket.destroyed;
  }

  start(): void {
    this.wanted = true;
    this.dial();
  }

  /** Hang up once, as a host program that quits and is started again a second later. */
  hangUp(): boolean {
    if (this.socket === null) return false;
    this.socket.destroy();
    return true;
  }

  stop(): void {
    this.wanted = false;
    this.socket?.destroy();
    this.socket = null;
    this.wake();
  }

  private dial(): void {
    const where = this.host.socketPath(this.chardev);
    if (!this.wanted || where === null) return;
    const socket = net.createConnection({ path: where });
    this.socket = socket;
    socket.on('connect', () => {
      this.host.changed();
      this.onConnect(socket);
    });
    socket.on('data', (chunk: Buffer) => this.take(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      // A connection this program already replaced (a restart) is nobody's business.
      if (this.socket !== socket) return;
      this.socket = null;
      this.host.changed();
      this.wake();
      // Another client holds the socket, or the lab went away: try again later.
      if (this.wanted) {
        setTimeout(() => {
          if (this.wanted && this.socket === null) this.dial();
        }, 1000).unref();
      }
    });
  }

  private take(chunk: Buffer): void {
    const d = this.dataWaiter;
    if (d !== null) {
      const n = Math.min(chunk.length, d.want);
      d.hash.update(chunk.subarray(0, n));
      d.want -= n;
      this.received += n;
      if (d.want === 0) {
        this.dataWaiter = null;
        d.resolve();
      }
      return;
    }
    this.received += chunk.length;
    if (this.lines.length > 256) return; // nobody reads this socket's lines (the console)
    this.partial += chunk.toString('latin1');
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      this.lines.push(this.partial.slice(0, nl).replace(/\r$/, ''));
      this.partial = this.partial.slice(nl + 1);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The next line, or null when the connection went away. */
  async line(): Promise<string | null> {
    for (;;) {
      const l = this.lines.shift();
      if (l !== undefined) return l;
      if (!this.connected && !this.socket?.connecting) return null;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Read exactly `n` raw bytes; their sha1, or null when the connection went away. */
  async bytes(n: number): Promise<string | null> {
    const hash = createHash('sha1');
    if (n === 0) return hash.digest('hex');
    const done = new Promise<void>((resolve) => {
      this.dataWaiter = { want: n, hash, resolve };
    });
    const gone = new Promise<void>((resolve) => this.waiters.push(resolve));
    await Promise.race([done, gone]);
    if (this.dataWaiter !== null) {
      this.dataWaiter = null;
      return null;
    }
    return hash.digest('hex');
  }

  /** Write and wait for the socket to drain; false when it went away. */
  async write(data: Uint8Array | string): Promise<boolean> {
    const s = this.socket;
    if (s === null || !this.connected) return false;
    if (s.write(data)) return true;
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        s.off('drain', onDrain);
        s.off('close', onClose);
        resolve(ok);
      };
      const onDrain = (): void => done(true);
      const onClose = (): void => done(false);
      s.on('drain', onDrain);
      s.on('close', onClose);
    });
  }

  clearLines(): void {
    this.lines = [];
    this.partial = '';
  }
}

interface DemoPart {
  /** Port names this part drives (its label shows on each). */
  ports: string[];
  /** Host programs by chardev id. */
  hostSockets(): Map<string, HostSocket>;
  running: boolean;
  start(speed: Speed): Promise<void>;
  stop(): Promise<void>;
  guestLabel(port: string): string | null;
  hostLabel(chardev: string): string | null;
}

/** Start one of the engine's guest workloads; a refusal goes to the timeline. */
function startGuest(host: WorkloadHost, spec: WorkloadSpec): Workload | null {
  const w = startWorkload(host.lab, spec, { report: (line) => host.report(line) });
  if ('stats' in w) return w;
  host.report(w.message);
  return null;
}

/** console.0: the guest writes numbered lines to hvc0, a terminal reads them. */
class ConsolePart implements DemoPart {
  readonly ports = ['console.0'];
  running = false;
  private guest: Workload | null = null;
  private readonly terminal: HostSocket;

  constructor(private readonly host: WorkloadHost) {
    this.terminal = new HostSocket(host, 'test0', 'demo terminal (unix socket client)');
  }

  async start(speed: Speed): Promise<void> {
    this.running = true;
    this.guest = startGuest(this.host, demoGuestWorkload('hvc0', speed));
    this.terminal.start();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.terminal.stop();
    if (this.guest !== null) await within(this.guest.stop(), 1000);
    this.guest = null;
  }

  guestLabel(): string | null {
    return this.guest === null ? null : `source (guest program): ${this.guest.stats().detail}`;
  }

  hostLabel(chardev: string): string | null {
    return chardev === 'test0' && this.terminal.connected ? this.terminal.label : null;
  }

  hostSockets(): Map<string, HostSocket> {
    return new Map([['test0', this.terminal]]);
  }
}

/**
 * test1 + test2: seed 002's file exchange. The guest runs the sha1 service
 * on test1; the host (virtserial-host) asks it to receive a file on test2
 * (test_host_file_send) and to send one (test_guest_file_send), and checks
 * both sha1 sums, again and again.
 */
class TransferPart implements DemoPart {
  readonly ports = ['test1', 'test2'];
  running = false;
  private service: Workload | null = null;
  private readonly command: HostSocket;
  private readonly data: HostSocket;
  private generation = 0;
  private passed = 0;
  private failed = 0;

  constructor(private readonly host: WorkloadHost) {
    this.command = new HostSocket(host, 'test1', 'virtserial-host: commands (unix socket)');
    this.data = new HostSocket(host, 'test2', 'virtserial-host: file data (unix socket)');
  }

  private loopDone: Promise<void> = Promise.resolve();
  private draining = false;

  async start(speed: Speed): Promise<void> {
    this.running = true;
    this.draining = false;
    const gen = ++this.generation;
    this.service = startGuest(this.host, demoGuestWorkload('test1', speed));
    this.command.start();
    this.data.start();
    this.loopDone = this.loop(gen, speed);
  }

  /**
   * The transfer in progress is finished first: the sha1 service's stop()
   * does not end a transfer whose host went away (it waits for the host to
   * come back on the data port), so hanging up mid-file would leave it
   * holding test2. A paused lab finishes nothing: then it is given up on.
   */
  async stop(): Promise<void> {
    this.draining = true;
    await within(this.loopDone, 3000);
    this.running = false;
    this.generation++;
    this.command.stop();
    this.data.stop();
    if (this.service !== null && !(await within(this.service.stop(), 1000))) {
      this.host.report(
        'demo: the sha1 service did not stop in time (a transfer was cut); it is left behind',
      );
    }
    this.service = null;
  }

  private live(gen: number): boolean {
    return this.running && !this.draining && gen === this.generation;
  }

  private async loop(gen: number, speed: Speed): Promise<void> {
    const size = speed === 'full' ? 8 << 20 : 48 << 10;
    let seed = 1;
    while (this.live(gen)) {
      if (!this.command.connected || !this.data.connected) {
        await sleep(200);
        continue;
      }
      this.command.clearLines();
      let ok = await this.hostSend(size, seed);
      if (ok && this.live(gen)) ok = await this.guestSend(size, seed + 1);
      seed += 2;
      if (!ok) await sleep(500);
      else if (speed === 'paced') await sleep(350);
    }
  }

  /** test_host_file_send: RECV, then the file on the data port. */
  private async hostSend(size: number, seed: number): Promise<boolean> {
    const file = new PatternStream(seed).next(size);
    const sum = createHash('sha1').update(file).digest('hex');
    if (!(await this.command.write(`RECV test2 ${size} ${sum}\n`))) return false;
    const ready = await this.command.line();
    if (ready === null || !ready.startsWith('READY RECV')) return false;
    for (let off = 0; off < size; off += 64 << 10) {
      if (!(await this.data.write(file.subarray(off, Math.min(size, off + (64 << 10))))))
        return false;
    }
    const done = await this.command.line();
    if (done === null) return false;
    this.count(done.endsWith(' PASS'));
    return true;
  }

  /** test_guest_file_send: SEND, then read the file from the data port and check it. */
  private async guestSend(size: number, seed: number): Promise<boolean> {
    if (!(await this.command.write(`SEND test2 ${size} ${seed}\n`))) return false;
    const ready = await this.command.line();
    if (ready === null || !ready.startsWith('READY SEND')) return false;
    const got = await this.data.bytes(size);
    const done = await this.command.line();
    if (got === null || done === null) return false;
    this.count(done === `DONE SEND ${size} ${got}`);
    return true;
  }

  private count(pass: boolean): void {
    if (pass) this.passed++;
    else {
      this.failed++;
      this.host.report(`demo: a seed-002 transfer failed its sha1 check (${this.failed} so far)`);
    }
  }

  guestLabel(port: string): string | null {
    if (this.service === null) return null;
    if (port === 'test1')
      return `sha1 service (guest program): ${this.service.stats().detail || 'waiting'}`;
    return 'sha1 service: transfers';
  }

  hostSockets(): Map<string, HostSocket> {
    return new Map([
      ['test1', this.command],
      ['test2', this.data],
    ]);
  }

  hostLabel(chardev: string): string | null {
    const transfers = `${this.passed} PASS${this.failed > 0 ? `, ${this.failed} FAIL` : ''}`;
    if (chardev === 'test1' && this.command.connected) return `${this.command.label}, ${transfers}`;
    if (chardev === 'test2' && this.data.connected) return this.data.label;
    return null;
  }
}

/** The guest agent (core/qga) and a host asking guest-sync / guest-ping. */
class AgentPart implements DemoPart {
  readonly ports = ['org.qemu.guest_agent.0'];
  running = false;
  private agents: GuestAgents | null = null;
  private readonly client: HostSocket;
  private generation = 0;
  private answered = 0;

  constructor(private readonly host: WorkloadHost) {
    this.client = new HostSocket(host, 'qga0', 'QGA client (unix socket)');
  }

  async start(speed: Speed): Promise<void> {
    this.running = true;
    const gen = ++this.generation;
    this.agents = startGuestAgents(this.host.lab);
    this.client.start();
    void this.loop(gen, speed);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.generation++;
    this.client.stop();
    this.agents?.close();
    const agent = this.agents?.current;
    if (agent) await within(agent.done, 1000);
    this.agents = null;
  }

  private async loop(gen: number, speed: Speed): Promise<void> {
    let id = 1;
    while (this.running && gen === this.generation) {
      if (!this.client.connected) {
        await sleep(200);
        continue;
      }
      const request =
        id % 2 === 0
          ? '{"execute": "guest-ping"}\n'
          : `{"execute": "guest-sync", "arguments": {"id": ${id}}}\n`;
      id++;
      if (await this.client.write(request)) {
        const answer = await this.client.line();
        if (answer !== null && answer.startsWith('{"return"')) this.answered++;
      }
      if (speed === 'paced') await sleep(1000);
    }
  }

  guestLabel(): string | null {
    const a = this.agents?.current;
    return a ? `qemu-ga (${a.state})` : null;
  }

  hostSockets(): Map<string, HostSocket> {
    return new Map([['qga0', this.client]]);
  }

  hostLabel(chardev: string): string | null {
    return chardev === 'qga0' && this.client.connected
      ? `${this.client.label}, ${this.answered} answers`
      : null;
  }
}

/** The demo's workloads, by port name. */
export class DemoWorkloads {
  private readonly parts: DemoPart[];
  private speed: Speed = 'paced';

  constructor(host: WorkloadHost) {
    this.parts = [new ConsolePart(host), new TransferPart(host), new AgentPart(host)];
  }

  /** Port names that have a workload. */
  get names(): string[] {
    return this.parts.flatMap((p) => p.ports);
  }

  get running(): string[] {
    return this.parts.filter((p) => p.running).flatMap((p) => p.ports);
  }

  has(portName: string): boolean {
    return this.parts.some((p) => p.ports.includes(portName));
  }

  /** (Re)start the workloads of one port, or all, at `speed`. */
  async start(speed: Speed, portName?: string): Promise<void> {
    this.speed = speed;
    for (const p of this.select(portName)) {
      if (p.running) await p.stop();
      await p.start(speed);
    }
  }

  async stop(portName?: string): Promise<void> {
    for (const p of this.select(portName)) if (p.running) await p.stop();
  }

  get currentSpeed(): Speed {
    return this.speed;
  }

  guestLabel(portName: string): string | null {
    return this.parts.find((p) => p.ports.includes(portName))?.guestLabel(portName) ?? null;
  }

  hostLabel(chardev: string): string | null {
    for (const p of this.parts) {
      const l = p.hostLabel(chardev);
      if (l !== null) return l;
    }
    return null;
  }

  private select(portName: string | undefined): DemoPart[] {
    return this.parts.filter((p) => portName === undefined || p.ports.includes(portName));
  }
}
