/**
 * What every built-in guest workload shares: it is a guest program on one
 * port (system calls through GuestFiles via PortStream), it runs until the
 * port is unplugged or it is stopped, and it keeps counters a person can
 * read (`vmchan run` prints them at the end).
 *
 * The host coming and going is normal life for a guest program: reads that
 * hit end of file wait for the host to come back (SIGIO), writes wait while
 * it is away. Only unplug (ENODEV) or stop() ends a program.
 */
import type { GuestFiles } from '../serial/guest/files.js';
import { isErrno } from '../serial/guest/errno.js';
import type { GuestPortEntry } from './port-names.js';
import { PortStream, READ_SIZE } from './port-stream.js';
import type { WorkloadSpec } from './spec.js';

export type WorkloadState = 'starting' | 'running' | 'stopped' | 'ended' | 'failed';

export interface WorkloadStats {
  /** The port as named on the command line, and its guest node. */
  port: string;
  node: string;
  kind: WorkloadSpec['kind'];
  state: WorkloadState;
  /** Bytes the program read from / wrote to the port. */
  bytesIn: number;
  bytesOut: number;
  /** Kind-specific, one short phrase (`3 transfers, all PASS`). */
  detail: string;
}

export interface Workload {
  readonly spec: WorkloadSpec;
  stats(): WorkloadStats;
  /** One line: `test1 echo: 1.2 MiB in, 1.2 MiB out`. */
  describe(): string;
  /** Settles when the program ended (unplug, failure, stop). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export interface ProgramContext {
  files: GuestFiles;
  /** A line for the person running the lab. */
  report: (line: string) => void;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export abstract class GuestProgram implements Workload {
  readonly done: Promise<void>;
  protected bytesIn = 0;
  protected bytesOut = 0;
  protected state: WorkloadState = 'starting';
  protected stopping = false;
  private stream: PortStream | null = null;
  private readonly stopWaiters = new Set<() => void>();

  constructor(
    readonly spec: WorkloadSpec,
    protected readonly entry: GuestPortEntry,
    protected readonly ctx: ProgramContext,
  ) {
    this.done = this.main();
  }

  /** The program's loop on its open port; returns when it is done. */
  protected abstract body(stream: PortStream): Promise<void>;

  /** Kind-specific counters for stats(). */
  protected detail(): string {
    return '';
  }

  stats(): WorkloadStats {
    return {
      port: this.spec.port,
      node: this.entry.guestPath,
      kind: this.spec.kind,
      state: this.state,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      detail: this.detail(),
    };
  }

  describe(): string {
    const d = this.detail();
    const state = this.state === 'running' ? '' : ` (${this.state})`;
    return (
      `${this.spec.port} ${this.spec.kind}${state}: ${formatBytes(this.bytesIn)} in, ` +
      `${formatBytes(this.bytesOut)} out${d === '' ? '' : `, ${d}`}`
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const w of [...this.stopWaiters]) w();
    await this.stream?.close();
    await this.done;
  }

  /** Sleep that ends early at stop(); true if the time passed. */
  protected sleep(ms: number): Promise<boolean> {
    if (this.stopping) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.stopWaiters.delete(wake);
        resolve(false);
      };
      const timer = setTimeout(() => {
        this.stopWaiters.delete(wake);
        resolve(true);
      }, ms);
      this.stopWaiters.add(wake);
    });
  }

  /** Open another port (the sha1 service's data port); closed by the caller. */
  protected async openPort(path: string): Promise<PortStream | string> {
    const s = await PortStream.open(this.ctx.files, path);
    return isErrno(s) ? s.toString() : s;
  }

  private async main(): Promise<void> {
    // Start after the constructor returned (subclass fields are set by then).
    await Promise.resolve();
    const stream = await PortStream.open(this.ctx.files, this.entry.guestPath);
    if (isErrno(stream)) {
      this.state = 'failed';
      this.ctx.report(
        `workload ${this.spec.port}=${this.spec.kind}: cannot open ${this.entry.guestPath}: ${stream.toString()}`,
      );
      return;
    }
    this.stream = stream;
    if (this.stopping) {
      await stream.close();
      this.state = 'stopped';
      return;
    }
    this.state = 'running';
    try {
      await this.body(stream);
      this.state = this.stopping ? 'stopped' : 'ended';
    } catch (error) {
      // An engine bug, not a guest error: say so in one line and end this program only.
      this.state = 'failed';
      this.ctx.report(
        `workload ${this.spec.port}=${this.spec.kind} failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      await stream.close();
    }
    if (!this.stopping && this.state === 'ended')
      this.ctx.report(`workload ${this.spec.port}=${this.spec.kind} ended: port gone`);
  }
}

/**
 * The reading half of most programs: call `onData` for every chunk, wait for
 * the host across hang-ups; returns when the port is gone or closed. The
 * program reads into one buffer of its own, as a C program would: `bytes`
 * is a view of it, valid until `onData` returns (or its promise settles).
 */
export async function readLoop(
  stream: PortStream,
  onData: (bytes: Uint8Array) => Promise<boolean> | boolean,
): Promise<void> {
  const buffer = new Uint8Array(READ_SIZE);
  for (;;) {
    const r = await stream.readSome(READ_SIZE, buffer);
    if (r === 'eof') {
      if ((await stream.waitForHost()) === 'retry') continue;
      return;
    }
    if (isErrno(r)) return;
    if (!(await onData(r))) return;
  }
}
