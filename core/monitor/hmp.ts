/**
 * The human monitor (Q4) as the frontend of a chardev, as QEMU 7.2's
 * monitor/hmp.c runs one: a client connecting gets the banner "QEMU 7.2.22
 * monitor - type 'help' for more information" and the prompt "(qemu) ";
 * typed bytes are echoed by the line editor (readline.ts); a line is parsed
 * as monitor_parse_command does (name, sub-command, arguments by type, the
 * same complaints: "unknown command: 'x'", "device_del: string expected",
 * "Try \"help device_del\" for more information"), and failures print as
 * hmp_handle_error does: "Error: <QEMU's message>".
 *
 * The commands are in hmp-commands.ts. Input is not read while a command
 * runs (QEMU suspends the monitor the same way), nor while the client
 * leaves more than OUTPUT_HIGH_WATER bytes of output (echo included) unread.
 */
import { idMessage, splitOpts } from '../machine/qemu-options.js';
import type { RunningMachine } from '../machine/running.js';
import type { ChardevEndpoint, ChardevEvent } from '../serial/endpoint.js';
import { QemuError } from '../base/qemu-error.js';
import { COMMANDS, matches, type HmpCommand, type HmpContext } from './hmp-commands.js';
import type { MonitorHub } from './hub.js';
import { MonitorOutput } from './output.js';
import { ReadLine } from './readline.js';
import { QEMU_VERSION_TEXT } from './version.js';

const isSpace = (c: string | undefined): boolean => c !== undefined && /[ \t\n\v\f\r]/.test(c);

/** get_str: a word, or a double-quoted string with \n \r \\ \' \" escapes. */
function getStr(line: string, at: number): { value: string; end: number } | null {
  let p = at;
  while (isSpace(line[p])) p++;
  if (p >= line.length) return null;
  if (line[p] !== '"') {
    const start = p;
    while (p < line.length && !isSpace(line[p])) p++;
    return { value: line.slice(start, p), end: p };
  }
  p++;
  let value = '';
  while (p < line.length && line[p] !== '"') {
    if (line[p] === '\\') {
      const c = line[p + 1];
      p += 2;
      if (c === 'n') value += '\n';
      else if (c === 'r') value += '\r';
      else if (c === '\\' || c === "'" || c === '"') value += c;
      else return null; // QEMU prints "unsupported escape code" on its stdout
    } else {
      value += line[p++];
    }
  }
  if (line[p] !== '"') return null; // "unterminated string", also on stdout
  return { value, end: p + 1 };
}

export class HmpServer implements HmpContext {
  readonly output: MonitorOutput;
  private readonly readline: ReadLine;
  private pending: Uint8Array[] = [];
  private running = false;
  private session = 0;
  private closed = false;
  /** The line the editor handed over last. */
  private lastLine = '';

  constructor(
    readonly machine: RunningMachine,
    private readonly endpoint: ChardevEndpoint,
    readonly hub: MonitorHub,
  ) {
    this.output = new MonitorOutput(endpoint);
    // The line editor works on bytes, as QEMU's does (one char per byte); the
    // command sees the line as UTF-8 text.
    this.readline = new ReadLine(
      (bytes) => this.output.write(Buffer.from(bytes.replaceAll('\n', '\r\n'), 'latin1')),
      (line) => {
        this.lastLine = Buffer.from(line, 'latin1').toString('utf8');
      },
    );
  }

  start(): QemuError | null {
    const ok = this.endpoint.attach({
      canRead: () => {
        if (this.running || this.closed) return 0;
        if (this.output.backlogged) {
          this.resumeWhenDrained();
          return 0;
        }
        return 4096;
      },
      read: (bytes) => {
        this.pending.push(bytes);
        void this.drain();
      },
      event: (event) => this.onEvent(event),
    });
    if (!ok) return new QemuError(`Device '${this.endpoint.id}' is in use`);
    this.endpoint.setFrontendOpen(true);
    return null;
  }

  private waitingForDrain = false;

  /** Read again once the client has taken its output. */
  private resumeWhenDrained(): void {
    if (this.waitingForDrain) return;
    this.waitingForDrain = true;
    void this.output.whenDrained().then(() => {
      this.waitingForDrain = false;
      if (!this.closed) this.endpoint.acceptInput();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.output.discard();
    this.endpoint.setFrontendOpen(false);
    this.endpoint.detach();
  }

  print(text: string): void {
    this.output.puts(text);
  }

  printBytes(bytes: Uint8Array): void {
    this.output.write(bytes);
  }

  /** hmp_handle_error. */
  report(error: QemuError | null): void {
    if (error !== null) this.print(`Error: ${error.message}\n`);
  }

  /** This monitor's client is counted in the fd sets' monitor count. */
  private countedOpen = false;

  private onEvent(event: ChardevEvent): void {
    this.session++;
    this.pending = [];
    // QEMU's mon_refcount: an fd set nobody opened is closed once no monitor is connected.
    if (event === 'opened' && !this.countedOpen) {
      this.countedOpen = true;
      this.machine.fdSets.monitorOpened();
    }
    if (event === 'closed') {
      if (this.countedOpen) {
        this.countedOpen = false;
        this.machine.fdSets.monitorClosed();
      }
      this.output.discard();
      return;
    }
    this.print(`QEMU ${QEMU_VERSION_TEXT} monitor - type 'help' for more information\n`);
    this.readline.restart();
    this.readline.showPrompt();
  }

  /** Feed bytes to the line editor; a complete line runs before the next byte is read. */
  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.pending.length > 0 && !this.closed) {
        // The echo and replies of a client that does not read wait for it to read.
        if (this.output.backlogged) await this.output.whenDrained();
        if (this.pending.length === 0 || this.closed) break;
        const chunk = this.pending[0]!;
        let i = 0;
        let entered = false;
        while (i < chunk.length && !entered) entered = this.readline.handleByte(chunk[i++]!);
        if (i >= chunk.length) this.pending.shift();
        else this.pending[0] = chunk.subarray(i);
        if (entered) {
          const session = this.session;
          try {
            await this.execute(this.lastLine);
          } catch (error) {
            // An engine bug: one line, never a stack trace.
            this.print(
              `Error: vmchan internal error: ${error instanceof Error ? error.message : String(error)}\n`,
            );
          }
          if (session === this.session && !this.closed) this.readline.showPrompt();
        }
      }
    } finally {
      this.running = false;
    }
    if (!this.closed) this.endpoint.acceptInput();
  }

  /** handle_hmp_command. */
  private async execute(line: string): Promise<void> {
    let table: readonly HmpCommand[] = COMMANDS;
    let p = 0;
    let cmd: HmpCommand | undefined;
    for (;;) {
      while (isSpace(line[p])) p++;
      if (p >= line.length) {
        if (cmd === undefined) return;
        break;
      }
      const start = p;
      while (p < line.length && line[p] !== '/' && !isSpace(line[p])) p++;
      const name = line.slice(start, p);
      const found = table.find((c) => matches(c, name));
      if (found === undefined) {
        this.print(`unknown command: '${line.slice(0, p)}'\n`);
        return;
      }
      cmd = found;
      while (isSpace(line[p])) p++;
      if (cmd.sub === undefined || p >= line.length) break;
      table = cmd.sub;
    }
    const words = line.slice(0, p).trimEnd();
    const args = this.parseArgs(cmd, line, p);
    if (args === null) {
      this.print(`Try "help ${words}" for more information\n`);
      return;
    }
    await cmd.run?.(this, args);
  }

  /** monitor_parse_arguments for the argument types these commands use. */
  private parseArgs(
    cmd: HmpCommand,
    line: string,
    from: number,
  ): Map<string, string | number> | null {
    const args = new Map<string, string | number>();
    const name = cmd.name.split('|')[0]!;
    let p = from;
    for (const [key, type] of cmd.args) {
      while (isSpace(line[p])) p++;
      if (type === 'S?') {
        if (p < line.length) args.set(key, line.slice(p));
        p = line.length;
        continue;
      }
      if ((type === 's?' || type === 'O') && p >= line.length) continue;
      if (type === 'i') {
        const word = getStr(line, p);
        const n = word === null ? NaN : Number(word.value);
        if (word === null || !Number.isInteger(n)) {
          this.print(word === null ? 'integer expected\n' : 'invalid char in expression\n');
          return null;
        }
        args.set(key, n);
        p = word.end;
        continue;
      }
      const word = getStr(line, p);
      if (word === null) {
        this.print(`${name}: string expected\n`);
        return null;
      }
      if (type === 'O') {
        const id = splitOpts(word.value, 'driver').find((x) => x.key === 'id')?.value;
        const message = id === undefined ? undefined : idMessage(id);
        if (message !== undefined) {
          // qemu_opts_parse_noisily reports, then the argument fails.
          this.print(
            `${message}\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.\n`,
          );
          return null;
        }
      }
      args.set(key, word.value);
      p = word.end;
    }
    while (isSpace(line[p])) p++;
    if (p < line.length) {
      this.print(`${name}: extraneous characters at the end of line\n`);
      return null;
    }
    return args;
  }
}
