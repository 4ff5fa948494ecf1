/**
 * The guest agent: a program in the simulated guest that holds
 * /dev/virtio-ports/org.qemu.guest_agent.0 open and answers the QEMU guest
 * agent protocol on it, as `qemu-ga -m virtio-serial` does. Its bytes cross
 * the channel like any other port's: through the guest's system calls, the
 * rings, the device and the chardev, so captures and the vring view show
 * them.
 *
 * As qemu-ga:
 * - input goes through QEMU's JSON streamer (parse errors are answered
 *   with "JSON parse error, ..."; a 0xFF byte resynchronises it), replies
 *   are compact JSON and a newline (LF only: qemu-ga does not use the
 *   monitor's CRLF), guest-sync-delimited puts 0xFF before its reply;
 * - every parsed request goes through QMP's dispatcher, as qemu-ga 7.2's
 *   does (checked against the real one on a FIFO,
 *   test/qemu/agent-fifo-real.test.ts): input that is not an object is
 *   "QMP input must be a JSON object", an object without `execute` "QMP
 *   input lacks member 'execute'" with the request's id;
 * - a host hang-up is seen as end of file; the agent waits for the host to
 *   come back (qemu-ga polls every 100 ms; this one sleeps until SIGIO,
 *   which the port sends on host connect, L7) and keeps its parser state,
 *   which is what guest-sync is for;
 * - unplugging the port (ENODEV) ends the agent; file handles are closed.
 */
import { isErrno } from '../serial/guest/errno.js';
import { O_ASYNC, O_RDWR, POLLHUP, type GuestFiles } from '../serial/guest/files.js';
import { checkRequest, errorResponse } from '../monitor/dispatch.js';
import { JsonMessageParser, type JsonMessage } from '../monitor/json-lexer.js';
import { QDict, toQemuJson, type QObject } from '../monitor/qobject.js';
import { QemuError } from '../base/qemu-error.js';
import { AgentCommands, type AgentSession } from './commands.js';

export const AGENT_PORT_NAME = 'org.qemu.guest_agent.0';
export const AGENT_PORT_PATH = `/dev/virtio-ports/${AGENT_PORT_NAME}`;

/** QGA_READ_COUNT_DEFAULT. */
const READ_COUNT = 4096;
/** QGA_SENTINEL_BYTE. */
const SENTINEL = 0xff;

export type AgentState = 'starting' | 'running' | 'stopped';

export class GuestAgent {
  private readonly parser = new JsonMessageParser();
  private readonly session: AgentSession = { delimitNext: false };
  private readonly commands: AgentCommands;
  private fd: number | null = null;
  private wake: (() => void) | null = null;
  private current: AgentState = 'starting';
  /** Why the agent stopped, for people (`open: No such device`). */
  stopReason: string | null = null;
  /** Settles when the agent has stopped (at once on stop(), even with a read pending). */
  readonly done: Promise<void>;
  private settle: () => void = () => {};

  constructor(
    private readonly files: GuestFiles,
    private readonly path = AGENT_PORT_PATH,
  ) {
    this.commands = new AgentCommands(files, this.session);
    this.done = new Promise((resolve) => (this.settle = resolve));
    void this.run().then(() => this.finish('stopped'));
  }

  get state(): AgentState {
    return this.current;
  }

  /** Stop: close the handles and the port (PORT_OPEN 0 goes to the host side). */
  stop(): void {
    if (this.current === 'stopped') return;
    this.finish('stopped');
    this.wake?.();
  }

  private finish(reason: string): void {
    if (this.current === 'stopped') return;
    this.current = 'stopped';
    this.stopReason = reason;
    const fd = this.fd;
    this.fd = null;
    void this.commands
      .closeAll()
      .then(() => (fd === null ? undefined : this.files.close(fd)))
      .then(() => this.settle());
  }

  private async run(): Promise<void> {
    const fd = await this.files.open(this.path, O_RDWR);
    if (isErrno(fd)) return this.finish(`open ${this.path}: ${fd.message}`);
    if (this.current === 'stopped') {
      await this.files.close(fd);
      return;
    }
    this.fd = fd;
    this.current = 'running';
    // O_ASYNC, as qemu-ga opens its channel: SIGIO tells us the host is back.
    this.files.setOwner(fd, () => this.wake?.());
    await this.files.setFlags(fd, O_ASYNC);
    while (this.current === 'running') {
      const data = await this.files.read(fd, READ_COUNT);
      if (this.current !== 'running') return;
      if (isErrno(data)) return this.finish(`read: ${data.message}`);
      if (data.length === 0) {
        await this.hostBack(fd);
        continue;
      }
      for (const message of this.parser.feed(data)) {
        const reply = await this.handle(message).catch((error: unknown) =>
          // An engine bug: an error reply, never a stack trace.
          errorResponse(
            new QemuError(
              `vmchan internal error: ${error instanceof Error ? error.message : String(error)}`,
            ),
            undefined,
          ),
        );
        if (this.current !== 'running') return;
        const written = await this.send(fd, reply);
        if (isErrno(written)) return this.finish(`write: ${written.message}`);
      }
    }
  }

  /** Sleep until SIGIO says something changed and the host is there again. */
  private async hostBack(fd: number): Promise<void> {
    for (;;) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        const mask = this.files.pollNow(fd);
        if (isErrno(mask) || !(mask & POLLHUP) || this.current !== 'running') resolve();
      });
      this.wake = null;
      const mask = this.files.pollNow(fd);
      if (isErrno(mask) || !(mask & POLLHUP) || this.current !== 'running') return;
    }
  }

  /** process_event. */
  private async handle(message: JsonMessage): Promise<QObject> {
    if ('error' in message) return errorResponse(new QemuError(message.error), undefined);
    const request = message.value;
    if (!(request instanceof QDict))
      return errorResponse(new QemuError('QMP input must be a JSON object'), undefined);
    const id = request.get('id');
    const checked = checkRequest(request, false);
    if (checked instanceof QemuError) return errorResponse(checked, id);
    const command = this.commands.find(checked.command);
    if (command === undefined) {
      return errorResponse(
        new QemuError(`The command ${checked.command} has not been found`, 'CommandNotFound'),
        id,
      );
    }
    const args = request.get('arguments');
    const result = await this.commands.run(command, args instanceof QDict ? args : new QDict());
    return result instanceof QemuError ? errorResponse(result, id) : { return: result, id };
  }

  /** send_response. */
  private send(fd: number, reply: QObject): ReturnType<GuestFiles['writeAll']> {
    const text = new TextEncoder().encode(`${toQemuJson(reply)}\n`);
    let bytes = text;
    if (this.session.delimitNext) {
      this.session.delimitNext = false;
      bytes = new Uint8Array(text.length + 1);
      bytes[0] = SENTINEL;
      bytes.set(text, 1);
    }
    return this.files.writeAll(fd, bytes);
  }
}
