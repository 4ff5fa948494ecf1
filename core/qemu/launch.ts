/**
 * Start a QEMU with a QMP socket vmchan owns, attach to it, and stop it
 * cleanly: `quit` over QMP, SIGKILL if it has not exited in time.
 *
 * The QMP socket is added to the user's arguments as
 * `-qmp unix:RUNDIR/qmp.sock,server=on,wait=off` (QEMU takes several -qmp,
 * so one of the user's own stays free for other tools). QEMU runs in its
 * own process group with stdin from /dev/null: a Ctrl-C in the terminal
 * reaches vmchan only, which then quits QEMU over QMP rather than letting
 * the signal kill it mid-write. Its stdout and stderr are handed to the
 * caller line by line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attachError, type AttachError } from './attach-error.js';
import { AttachedMachine, type AttachOptions } from './attach.js';
import { isQmpError } from './qmp-error.js';

export interface LaunchOptions {
  /** The QEMU binary (default qemu-system-x86_64). */
  qemu?: string;
  /** The user's QEMU arguments (without the program name). */
  args: readonly string[];
  /** Where the QMP socket goes (default: a fresh temp dir, removed after stop). */
  runDir?: string;
  /** Time allowed from spawn to a ready QMP connection (default 30 s). */
  startTimeoutMs?: number;
  /** QEMU's output, one line at a time. */
  onOutput?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Options for the attached machine. */
  attach?: AttachOptions;
}

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** How it ended: QEMU on its own, after our quit, or killed. */
  how: 'exited' | 'quit' | 'killed';
}

export class LaunchedQemu {
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private stopping: Promise<QemuExit> | undefined;
  private how: QemuExit['how'] = 'exited';
  /** Resolves when QEMU's process has ended, for whatever reason. */
  readonly exited: Promise<QemuExit>;

  private constructor(
    private readonly child: ChildProcess,
    readonly machine: AttachedMachine,
    readonly qmpPath: string,
    readonly runDir: string,
    private readonly ownDir: boolean,
    exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
    readonly args: readonly string[],
  ) {
    this.exited = exited.then((e) => {
      this.exitInfo = e;
      return { ...e, how: this.how };
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Start QEMU and attach to its QMP socket. */
  static async start(options: LaunchOptions): Promise<LaunchedQemu | AttachError> {
    const qemu = options.qemu ?? 'qemu-system-x86_64';
    const ownDir = options.runDir === undefined;
    let runDir: string;
    try {
      runDir = options.runDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-launch-'));
      fs.mkdirSync(runDir, { recursive: true });
    } catch (e) {
      return attachError(
        'LaunchFailed',
        `cannot create the run directory: ${(e as Error).message}`,
      );
    }
    const qmpPath = path.join(runDir, 'qmp.sock');
    fs.rmSync(qmpPath, { force: true });
    const args = [...options.args, '-qmp', `unix:${qmpPath},server=on,wait=off`];
    const cleanup = (): void => {
      if (ownDir) fs.rmSync(runDir, { recursive: true, force: true });
    };

    const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const tail: string[] = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      let partial = '';
      child[stream]?.setEncoding('utf8');
      child[stream]?.on('data', (text: string) => {
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          tail.push(line);
          if (tail.length > 20) tail.shift();
          options.onOutput?.(line, stream);
        }
      });
      child[stream]?.on('end', () => {
        if (partial) {
          tail.push(partial);
          options.onOutput?.(partial, stream);
        }
        partial = '';
      });
    }
    let ended: string | undefined;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
      (resolve) => {
        child.once('exit', (code, signal) => {
          ended = signal ? `killed by ${signal}` : `exit code ${code}`;
          resolve({ code, signal });
        });
        child.once('error', (err: NodeJS.ErrnoException) => {
          ended =
            err.code === 'ENOENT'
              ? `${qemu} not found (apt-get install qemu-system-x86)`
              : `${qemu}: ${err.message}`;
          resolve({ code: null, signal: null });
        });
      },
    );

    const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
    for (;;) {
      if (ended !== undefined) {
        await exited;
        cleanup();
        const said = tail
          .filter((l) => l.trim() !== '')
          .slice(-5)
          .join(' | ');
        return attachError(
          'LaunchFailed',
          `QEMU ended before its monitor came up (${ended})${said ? `: ${said}` : ''}`,
        );
      }
      if (fs.existsSync(qmpPath)) {
        const machine = await AttachedMachine.connect(qmpPath, {
          ...options.attach,
          qmp: { greetingTimeoutMs: 10_000, ...options.attach?.qmp },
        });
        if (!isQmpError(machine)) {
          return new LaunchedQemu(child, machine, qmpPath, runDir, ownDir, exited, args);
        }
        if (machine.kind !== 'ConnectionRefused') {
          kill(child);
          await exited;
          cleanup();
          return attachError(
            'LaunchFailed',
            `QEMU started but its QMP monitor failed: ${machine.message}`,
          );
        }
      }
      if (Date.now() > deadline) {
        kill(child);
        await exited;
        cleanup();
        return attachError('LaunchFailed', `QEMU's QMP socket ${qmpPath} did not come up in time`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Stop QEMU: `quit` over QMP, then SIGKILL when it has not exited within
   * `timeoutMs` (default 5 s). Closes the attached machine first.
   */
  stop(timeoutMs = 5_000): Promise<QemuExit> {
    this.stopping ??= (async () => {
      if (!this.exitInfo) {
        this.how = 'quit';
        const asked =
          this.machine.qmp.state === 'ready' &&
          (await this.machine.qmp.quit({ timeoutMs: 2_000 })) === undefined;
        // No monitor to ask: a polite signal first (QEMU shuts down cleanly on SIGTERM).
        if (!asked) this.child.kill('SIGTERM');
        const timer = setTimeout(() => {
          this.how = 'killed';
          kill(this.child);
        }, timeoutMs);
        await this.exited;
        clearTimeout(timer);
      }
      await this.machine.close();
      if (this.ownDir) fs.rmSync(this.runDir, { recursive: true, force: true });
      return { ...this.exitInfo!, how: this.how };
    })();
    return this.stopping;
  }
}

function kill(child: ChildProcess): void {
  try {
    // The whole group: QEMU may have helpers.
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}
