/**
 * Runs shell commands in the test guest over its serial console.
 *
 * The guest's /init (build.sh) runs a non-interactive busybox sh on ttyS0
 * in raw mode without echo; QEMU exposes ttyS0 as a unix socket. What
 * comes back is everything the guest writes, so each command is framed by
 * markers unique to it:
 *
 *   printf '\n__VMCHAN_B_<id>__\n'; <command>; printf '\n__VMCHAN_E_<id>__ %d\n' $?
 *
 * The command travels base64-encoded (no quoting surprises, and its text
 * can never look like a marker), is checked with `sh -n` first (a syntax
 * error would end a non-interactive shell) and runs through `eval` with
 * stdin from /dev/null (so it cannot swallow the commands after it), in
 * the shell itself, so `exec 3<>...` in one command holds fd 3 for the next.
 * Output is stdout and stderr together, as text.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

export type GuestErrorKind =
  /** A tool the guest needs is not installed on the host. */
  | 'Missing'
  /** test/guest/build.sh failed. */
  | 'BuildFailed'
  /** QEMU did not start, or exited during boot. */
  | 'BootFailed'
  /** The guest or a command did not answer in time. */
  | 'Timeout'
  /** The serial connection closed. */
  | 'ShellClosed';

/** Errors are values here as in core/ (a test decides whether to fail). */
export class GuestError {
  constructor(
    readonly kind: GuestErrorKind,
    readonly message: string,
  ) {}

  toString(): string {
    return `${this.kind}: ${this.message}`;
  }
}

export function isGuestError(value: unknown): value is GuestError {
  return value instanceof GuestError;
}

export interface RunResult {
  /** stdout and stderr of the command, interleaved as the guest wrote them. */
  output: string;
  exitCode: number;
}

export interface GuestShellOptions {
  /** How long to wait for the shell to answer at all (default 60 s: covers a boot). */
  readyTimeoutMs?: number;
  /** Default time allowed per command (default 30 s). */
  commandTimeoutMs?: number;
}

/** How much unclaimed output to keep for error messages. */
const TRANSCRIPT_CHARS = 16 * 1024;

export class GuestShell {
  private buffer = '';
  private transcriptText = '';
  private closed = false;
  private waiter: (() => void) | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private counter = 0;
  private readonly nonce = randomBytes(4).toString('hex');

  private constructor(
    private readonly socket: net.Socket,
    readonly path: string,
    private readonly options: GuestShellOptions,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.buffer += text;
      this.transcriptText = (this.transcriptText + text).slice(-TRANSCRIPT_CHARS);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => {});
  }

  /**
   * Connect to the serial socket at `path` (retrying until QEMU has made
   * it) and wait until the guest's shell answers.
   */
  static async connect(
    path: string,
    options: GuestShellOptions = {},
  ): Promise<GuestShell | GuestError> {
    const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
    const deadline = Date.now() + readyTimeoutMs;
    let socket: net.Socket | undefined;
    while (!socket) {
      socket = await tryConnect(path);
      if (socket) break;
      if (Date.now() > deadline) {
        return new GuestError('Timeout', `no serial socket at ${path} after ${readyTimeoutMs} ms`);
      }
      await sleep(50);
    }
    const shell = new GuestShell(socket, path, options);
    const ready = await shell.waitReady(deadline);
    if (isGuestError(ready)) {
      shell.close();
      return ready;
    }
    return shell;
  }

  /** Everything the guest printed lately, for failure messages. */
  get transcript(): string {
    return this.transcriptText;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Run one command line (or several, separated by newlines) in the guest
   * shell. Commands run one at a time, in call order.
   */
  run(command: string, options: { timeoutMs?: number } = {}): Promise<RunResult | GuestError> {
    const result = this.queue.then(() => this.runNow(command, options));
    this.queue = result.catch(() => undefined);
    return result;
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  /**
   * Ask the shell to print a word it can only print by running a command
   * (the probe line holds `$((40+2))` where the answer has 42), again and
   * again until it does: lines sent before the shell started are lost or run
   * late, both harmless. No part of the probe reads standard input: a line cut
   * short once left the shell running `tr a-z A-Z` alone, which then upper-cased
   * every later line, probes included, and so answered for a shell that was
   * not there. The probe has no quotes, so a line cut short cannot leave the
   * shell waiting for a closing quote; a cut inside `$((...))` is a syntax
   * error, which ends that shell and the init loop starts another.
   */
  private async waitReady(deadline: number): Promise<true | GuestError> {
    const answer = `vmchan_ready_42_${this.nonce}`;
    while (Date.now() < deadline) {
      if (this.closed) return new GuestError('ShellClosed', `serial socket ${this.path} closed`);
      this.socket.write(`echo vmchan_ready_$((40+2))_${this.nonce}\n`);
      const seen = await this.waitFor(
        () => this.buffer.includes(answer),
        Math.min(500, deadline - Date.now()),
      );
      if (seen) {
        // Later probes may still answer; run() skips to its own markers.
        this.buffer = this.buffer.slice(this.buffer.indexOf(answer) + answer.length);
        return true;
      }
    }
    return new GuestError(
      'Timeout',
      `the guest shell on ${this.path} did not answer; it printed:\n${this.transcriptText.slice(-2000)}`,
    );
  }

  private async runNow(
    command: string,
    options: { timeoutMs?: number },
  ): Promise<RunResult | GuestError> {
    if (this.closed) return new GuestError('ShellClosed', `serial socket ${this.path} is closed`);
    const id = `${this.nonce}_${++this.counter}`;
    const begin = `__VMCHAN_B_${id}__\n`;
    const endPrefix = `\n__VMCHAN_E_${id}__ `;
    const b64 = Buffer.from(command, 'utf8').toString('base64');
    this.socket.write(
      `printf '\\n__VMCHAN_B_%s__\\n' ${id}; ` +
        `__vmchan_c=$(echo ${b64} | base64 -d); ` +
        `if sh -n -c "$__vmchan_c"; then eval "$__vmchan_c" </dev/null; else (exit 2); fi; ` +
        `printf '\\n__VMCHAN_E_%s__ %d\\n' ${id} $?\n`,
    );
    const timeoutMs = options.timeoutMs ?? this.options.commandTimeoutMs ?? 30_000;
    let parsed: RunResult | undefined;
    const done = await this.waitFor(() => {
      const b = this.buffer.indexOf(begin);
      if (b < 0) return false;
      const start = b + begin.length;
      const e = this.buffer.indexOf(endPrefix, start);
      if (e < 0) return false;
      const tail = /^(\d+)\n/.exec(this.buffer.slice(e + endPrefix.length));
      if (!tail) return false;
      parsed = { output: this.buffer.slice(start, e), exitCode: Number(tail[1]) };
      this.buffer = this.buffer.slice(e + endPrefix.length + tail[0].length);
      return true;
    }, timeoutMs);
    if (done && parsed) return parsed;
    if (this.closed) {
      return new GuestError(
        'ShellClosed',
        `serial socket ${this.path} closed while running: ${command}`,
      );
    }
    return new GuestError(
      'Timeout',
      `guest command did not finish within ${timeoutMs} ms: ${command}\n` +
        `guest printed:\n${this.transcriptText.slice(-2000)}`,
    );
  }

  /** Wait until `check()` holds (re-checked on every arrival of data), or the time is up. */
  private waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
    if (check()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.waiter = undefined;
          resolve(false);
        },
        Math.max(0, timeoutMs),
      );
      this.waiter = () => {
        // check() may consume what it found, so it is called once per arrival.
        const met = check();
        if (met || this.closed) {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve(met);
        }
      };
    });
  }
}

function tryConnect(path: string): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path });
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', () => {
      s.destroy();
      resolve(undefined);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
