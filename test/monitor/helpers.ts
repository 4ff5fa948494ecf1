/**
 * Rigs for the monitor and guest-agent tests: a real Machine from a QEMU
 * command line (real unix-socket chardevs), its monitors attached, and
 * node:net clients that speak QMP, HMP or the guest agent protocol on the
 * host sockets.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { Machine } from '../../core/machine/machine.js';
import { parseQemuArgs } from '../../core/machine/qemu-cmdline.js';
import { attachMonitors, type AttachedMonitors } from '../../core/monitor/index.js';
import { isErrno, type Errno } from '../../core/serial/guest/errno.js';
import { isQemuError } from '../../core/base/qemu-error.js';
import { until } from '../until.js';

const tempDirs: string[] = [];

/** A fresh private directory with a short path (unix socket paths are limited). */
export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `vmm-${prefix}-`));
  tempDirs.push(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** `-chardev socket,path=DIR/ID,server=on,wait=off,id=ID` */
export function unixServer(dir: string, id: string): string[] {
  return ['-chardev', `socket,path=${path.join(dir, id)},server=on,wait=off,id=${id}`];
}

/**
 * The machine of the QEMU 7.2 recordings: vser0 with max_ports=8, port1
 * (org.test.port.1 on c1), con0 (org.test.console.0 on c0), a QMP monitor
 * on `qmp` and an HMP monitor on `hmp`, all unix sockets in `dir`.
 */
export function recordedMachineArgs(dir: string, extra: string[] = []): string[] {
  return [
    ...unixServer(dir, 'qmp'),
    ...unixServer(dir, 'hmp'),
    ...unixServer(dir, 'c0'),
    ...unixServer(dir, 'c1'),
    '-mon',
    'chardev=qmp,mode=control',
    '-mon',
    'chardev=hmp,mode=readline',
    '-device',
    'virtio-serial-pci,id=vser0,max_ports=8',
    '-device',
    'virtconsole,bus=vser0.0,chardev=c0,name=org.test.console.0,id=con0',
    '-device',
    'virtserialport,bus=vser0.0,chardev=c1,name=org.test.port.1,id=port1',
    ...extra,
  ];
}

export interface Rig {
  machine: Machine;
  monitors: AttachedMonitors;
  dir: string;
  quits: number;
  close(): Promise<void>;
}

/** Start a machine from QEMU arguments and attach its monitors. */
export async function startRig(args: string[], dir: string): Promise<Rig> {
  const parsed = parseQemuArgs(args);
  if (!parsed.ok) throw new Error(`parse: ${parsed.error.toString()}`);
  const machine = await Machine.start(parsed.value, { runtimeDir: dir });
  if (isQemuError(machine)) throw new Error(`start: ${machine.message}`);
  const rig: Rig = {
    machine,
    dir,
    quits: 0,
    monitors: attachMonitors(machine, { onQuit: () => rig.quits++ }),
    close: async () => {
      rig.monitors.close();
      await machine.close();
    },
  };
  if (rig.monitors.errors.length > 0) throw new Error(rig.monitors.errors.join('; '));
  return rig;
}

/**
 * For every test of the file: the recorded machine (recordedMachineArgs) in a
 * fresh directory named after `prefix`, with a negotiated QMP client on its
 * `qmp` socket, handed to `use` before the test; both closed and the
 * directories removed after it.
 */
export function eachRecordedRig(prefix: string, use: (rig: Rig, q: QmpClient) => void): void {
  let rig: Rig;
  let q: QmpClient;

  beforeEach(async () => {
    const dir = tempDir(prefix);
    rig = await startRig(recordedMachineArgs(dir), dir);
    q = await QmpClient.connect(path.join(dir, 'qmp'));
    use(rig, q);
  });

  afterEach(async () => {
    await q.close();
    await rig.close();
    removeTempDirs();
  });
}

/** A chardev-add backend: a unix socket server on `p`, not waiting for a client. */
export const socketBackend = (p: string): Record<string, unknown> => ({
  type: 'socket',
  data: { addr: { type: 'unix', data: { path: p } }, server: true, wait: false },
});

/** Does the guest have /dev/virtio-ports/`name`? */
export function guestLists(rig: Rig, name: string): boolean {
  const names = rig.machine.lab.guest.namespace.list('/dev/virtio-ports');
  return Array.isArray(names) && names.includes(name);
}

/** Poll `test` until it holds (engine work and sockets run meanwhile). */
export async function waitFor(test: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  await until(test, what, timeoutMs);
}

/** Unwrap a guest call that must succeed. */
export function ok<T>(value: T | Errno): T {
  if (isErrno(value)) throw new Error(`unexpected errno ${value.code} (${value.context})`);
  return value;
}

/** A raw socket client that keeps every byte it got. */
export class SocketClient {
  readonly socket: net.Socket;
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  ended = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.notify();
    });
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', () => {});
  }

  static connect(socketPath: string): Promise<SocketClient> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(socketPath, () => resolve(new SocketClient(s)));
      s.once('error', reject);
    });
  }

  get received(): Buffer {
    return this.buf;
  }

  /** Take the first `n` bytes received. */
  take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return Buffer.from(out);
  }

  write(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  /** Resolves when `test` holds on what was received. */
  async until(test: (received: Buffer) => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!test(this.buf)) {
      if (this.ended) throw new Error(`connection closed waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1'))}`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ended) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

type Json = Record<string, unknown>;

/** A QMP client: lines as they came, parsed, with replies matched by id. */
export class QmpClient {
  /** Every line received, as text (no CRLF). */
  readonly lines: string[] = [];
  private consumed = 0;
  private nextId = 1;

  constructor(readonly client: SocketClient) {}

  static async connect(socketPath: string, negotiate = true): Promise<QmpClient> {
    const c = new QmpClient(await SocketClient.connect(socketPath));
    await c.nextLine();
    if (negotiate) {
      const r = await c.execute('qmp_capabilities');
      if (!('return' in r)) throw new Error(`qmp_capabilities: ${JSON.stringify(r)}`);
    }
    return c;
  }

  /** Lines are CRLF-terminated, as QEMU's monitor writes them. */
  private collect(): void {
    for (;;) {
      const buf = this.client.received;
      const at = buf.indexOf('\r\n');
      if (at < 0) return;
      this.lines.push(buf.subarray(0, at).toString('utf8'));
      this.client.take(at + 2);
    }
  }

  /** The next line not consumed yet. */
  async nextLine(): Promise<string> {
    await this.client.until(() => {
      this.collect();
      return this.lines.length > this.consumed;
    }, 'a QMP line');
    return this.lines[this.consumed++]!;
  }

  /** Send raw text. */
  send(text: string): void {
    this.client.write(text);
  }

  /** Wait for the first message (from `from` on) that `test` accepts; returns it parsed. */
  async find(test: (m: Json) => boolean, what: string, from = 0): Promise<Json> {
    let found: Json | undefined;
    await this.client.until(() => {
      this.collect();
      for (let i = from; i < this.lines.length; i++) {
        const m = JSON.parse(this.lines[i]!) as Json;
        if (test(m)) {
          found = m;
          return true;
        }
      }
      return false;
    }, what);
    return found!;
  }

  /** Run a command; resolves with the reply carrying its id. */
  async execute(command: string, args?: Json): Promise<Json> {
    const id = `t${this.nextId++}`;
    const from = this.lines.length;
    this.send(
      JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n',
    );
    return this.find((m) => m.id === id, `reply to ${command}`, from);
  }

  /** A reply's `return`, or a thrown error with QEMU's desc (setup steps). */
  async must(command: string, args?: Json): Promise<unknown> {
    const r = await this.execute(command, args);
    if ('error' in r) throw new Error(`${command}: ${JSON.stringify(r.error)}`);
    return r.return;
  }

  event(name: string, test: (data: Json) => boolean = () => true, from = 0): Promise<Json> {
    return this.find((m) => m.event === name && test(m.data as Json), `event ${name}`, from);
  }

  /** Events seen so far. */
  events(name?: string): Json[] {
    this.collect();
    return this.lines
      .map((l) => JSON.parse(l) as Json)
      .filter((m) => typeof m.event === 'string' && (name === undefined || m.event === name));
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/** Strip what QEMU's line editor sends to redraw the line (ESC[D, ESC[K, ESC[C). */
export function stripEscapes(text: string): string {
  const ESC = String.fromCharCode(0x1b);
  return text.replace(new RegExp(`${ESC}\\[[0-9]*[A-Za-z]`, 'g'), '');
}

/** An HMP client: sends a line, returns what the monitor printed before the next prompt. */
export class HmpClient {
  private consumed = 0;

  constructor(readonly client: SocketClient) {}

  static async connect(socketPath: string): Promise<{ hmp: HmpClient; banner: string }> {
    const hmp = new HmpClient(await SocketClient.connect(socketPath));
    const banner = await hmp.untilPrompt();
    return { hmp, banner };
  }

  /** Everything after the last consumed byte up to and including the next prompt. */
  private async untilPrompt(): Promise<string> {
    const start = this.consumed;
    await this.client.until(
      (b) => b.toString('latin1').indexOf('(qemu) ', start) >= 0,
      'the (qemu) prompt',
    );
    const text = this.client.received.toString('latin1');
    const end = text.indexOf('(qemu) ', start) + '(qemu) '.length;
    this.consumed = end;
    return text.slice(start, end);
  }

  /** Run one command line; returns its output (echo and prompt removed, CRLF kept). */
  async command(line: string): Promise<string> {
    this.client.write(`${line}\n`);
    const raw = await this.untilPrompt();
    const text = stripEscapes(raw);
    // The echo of the line, then "\r\n", then the output, then the prompt.
    const afterEcho = text.indexOf('\r\n');
    return text.slice(afterEcho + 2, text.length - '(qemu) '.length);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
