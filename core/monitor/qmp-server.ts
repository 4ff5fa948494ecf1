/**
 * A QMP monitor (Q1-Q3) as the frontend of a chardev, as QEMU 7.2's
 * monitor/qmp.c runs one:
 *
 * - a client connecting gets the greeting and starts in capabilities
 *   negotiation: only qmp_capabilities works, anything else is answered
 *   CommandNotFound "Expecting capabilities negotiation with
 *   'qmp_capabilities'"; `enable: ["oob"]` is accepted (no command here
 *   allows out-of-band execution, as none of these does in QEMU);
 * - requests are checked as qmp_dispatch checks them, commands run one at
 *   a time in arrival order, replies echo `id`, errors carry QEMU's classes
 *   and texts; malformed JSON gets "JSON parse error, ..." and the monitor
 *   goes on reading;
 * - at most 8 requests wait (QMP_REQ_QUEUE_LEN_MAX); past that the monitor
 *   stops reading, leaving the rest in the backend, until it catches up;
 *   it also stops reading, and runs no further request, while the client
 *   leaves more than OUTPUT_HIGH_WATER bytes of replies unread (QEMU's
 *   output buffer has no bound; the lab's memory has one);
 * - events (VSERPORT_CHANGE, DEVICE_DELETED, SHUTDOWN) go to a session
 *   that finished negotiation, with a wall-clock timestamp;
 * - one client at a time: that is the chardev's business (a server socket
 *   takes one client, H3); a hang-up drops queued requests and pending
 *   output, and the next client starts over with a greeting.
 *
 * Where the lab differs from QEMU 7.2:
 * - (none for VSERPORT_CHANGE: the hub applies QEMU's rate limit, Q5;
 *   `vmchan run --qmp-events all` turns it off for teaching.)
 * - DEVICE_DELETED follows device_del's reply at once. QEMU sends it when
 *   the port object is finalized, after an RCU grace period (the recording
 *   shows it about half a second after the reply); the lab keeps the order
 *   (reply, then event) without the delay.
 * - The greeting offers "oob" whatever the chardev; QEMU offers it only for
 *   monitors with an I/O thread (socket chardevs).
 */
import type { RunningMachine } from '../machine/running.js';
import type { ChardevEndpoint, ChardevEvent } from '../serial/endpoint.js';
import { QemuError, isQemuError } from '../base/qemu-error.js';
import type { EventSink, MonitorHub } from './hub.js';
import { JsonMessageParser, type JsonMessage } from './json-lexer.js';
import { MonitorOutput } from './output.js';
import { visitMembers } from './qapi.js';
import { QMP_COMMANDS, runCommand, type CommandMonitor, type QmpCommand } from './qmp-commands.js';
import { MonitorFds } from './monitor-fds.js';
import { checkRequest, errorResponse } from './dispatch.js';
import { QDict, toQemuJson, type QObject } from './qobject.js';
import { QEMU_PACKAGE, versionTriple } from './version.js';
import type { QmpTimestamp } from './event-throttle.js';
import { timestamp } from './timestamp.js';

export { timestamp } from './timestamp.js';

/** QMP_REQ_QUEUE_LEN_MAX. */
const QUEUE_MAX = 8;
/** Bytes offered per read while not suspended (QEMU reads as the chardev delivers). */
const READ_CHUNK = 4096;

export interface QmpServerOptions {
  /** -mon ...,pretty=on: indented output. */
  pretty?: boolean;
}

interface Response {
  return?: QObject;
  error?: QemuError;
}

export class QmpServer implements EventSink {
  private readonly output: MonitorOutput;
  private readonly parser = new JsonMessageParser();
  private readonly queue: JsonMessage[] = [];
  private negotiated = false;
  private oob = false;
  private busy = false;
  private suspended = false;
  /** Bumped at every connect and hang-up: replies of an older session are dropped. */
  private session = 0;
  /** DEVICE_DELETED raised while a command runs, sent after its reply (see above). */
  private deferred: { event: string; data: QObject }[] | null = null;
  private unsubscribe: (() => void)[] = [];
  private closed = false;
  /** getfd's names (they outlive a client; closed with the monitor). */
  private readonly fds = new MonitorFds();
  /** Why descriptors sent with commands cannot be received, or null when they can. */
  private descriptorsRefused: string | null = null;
  private readonly commandMonitor: CommandMonitor = {
    fds: this.fds,
    takeDescriptor: () => {
      if (this.descriptorsRefused !== null) return { refused: this.descriptorsRefused };
      return this.endpoint.takeDescriptor?.() ?? null;
    },
  };

  constructor(
    private readonly machine: RunningMachine,
    private readonly endpoint: ChardevEndpoint,
    private readonly hub: MonitorHub,
    private readonly options: QmpServerOptions = {},
  ) {
    this.output = new MonitorOutput(endpoint);
  }

  /** Take the chardev (qemu_chr_fe_init): refused when a port or monitor holds it. */
  start(): QemuError | null {
    const ok = this.endpoint.attach({
      canRead: () => {
        if (this.suspended || this.closed) return 0;
        if (this.output.backlogged) {
          this.resumeWhenDrained();
          return 0;
        }
        return READ_CHUNK;
      },
      read: (bytes) => this.onInput(bytes),
      event: (event) => this.onEvent(event),
    });
    if (!ok) return new QemuError(`Device '${this.endpoint.id}' is in use`);
    // qemu_chr_fe_set_handlers(..., set_open=true): query-chardev shows frontend-open.
    this.endpoint.setFrontendOpen(true);
    // getfd and add-fd take descriptors sent with a command (a socket backend's SCM_RIGHTS).
    this.descriptorsRefused = this.endpoint.wantDescriptors?.() ?? null;
    const events = this.machine.lab.events;
    this.unsubscribe = [
      // VSERPORT_CHANGE comes through the hub, which applies QEMU's rate limit (Q5).
      this.hub.add(this),
      events.on('device-deleted', (e) =>
        this.sendEvent('DEVICE_DELETED', { device: e.device ?? undefined, path: e.path }),
      ),
    ];
    return null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const u of this.unsubscribe) u();
    this.output.discard();
    this.fds.closeAll();
    this.endpoint.setFrontendOpen(false);
    this.endpoint.detach();
  }

  sendEvent(event: string, data: QObject, stamp: QmpTimestamp = timestamp()): void {
    if (!this.negotiated || this.closed) return;
    if (this.deferred !== null && event === 'DEVICE_DELETED') {
      this.deferred.push({ event, data });
      return;
    }
    this.send({
      timestamp: { seconds: stamp.seconds, microseconds: stamp.microseconds },
      event,
      data,
    });
  }

  private send(message: QObject): void {
    this.output.puts(`${toQemuJson(message, this.options.pretty === true)}\n`);
  }

  /** This monitor's client is counted in the fd sets' monitor count. */
  private countedOpen = false;

  private onEvent(event: ChardevEvent): void {
    this.session++;
    this.parser.reset();
    this.queue.length = 0;
    this.negotiated = false;
    this.oob = false;
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
      this.resume();
      return;
    }
    this.send({
      QMP: { version: { qemu: versionTriple(), package: QEMU_PACKAGE }, capabilities: ['oob'] },
    });
  }

  private onInput(bytes: Uint8Array): void {
    if (this.closed) return;
    for (const message of this.parser.feed(bytes)) this.queue.push(message);
    if (this.queue.length >= QUEUE_MAX) this.suspended = true;
    void this.pump();
  }

  private waitingForDrain = false;

  /** Read again once the client has taken its replies. */
  private resumeWhenDrained(): void {
    if (this.waitingForDrain) return;
    this.waitingForDrain = true;
    void this.output.whenDrained().then(() => {
      this.waitingForDrain = false;
      if (!this.closed) this.endpoint.acceptInput();
    });
  }

  private resume(): void {
    if (!this.suspended) return;
    this.suspended = false;
    this.endpoint.acceptInput();
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        // A client that does not read its replies gets no more until it does.
        if (this.output.backlogged) await this.output.whenDrained();
        if (this.queue.length === 0 || this.closed) break;
        const message = this.queue.shift()!;
        const session = this.session;
        this.deferred = [];
        let response: QObject;
        try {
          response = await this.dispatch(message);
        } catch (error) {
          // An engine bug, not the client's: a reply in QMP's shape, never a stack trace.
          const text = error instanceof Error ? error.message : String(error);
          response = errorResponse(new QemuError(`vmchan internal error: ${text}`), undefined);
        }
        const later = this.deferred;
        this.deferred = null;
        if (session === this.session) {
          this.send(response);
          for (const e of later) this.sendEvent(e.event, e.data);
        }
        if (this.queue.length < QUEUE_MAX) this.resume();
      }
    } finally {
      this.busy = false;
      this.resume();
    }
  }

  /** monitor_qmp_dispatch + qmp_dispatch: one message to one response. */
  private async dispatch(message: JsonMessage): Promise<QObject> {
    if ('error' in message) return errorResponse(new QemuError(message.error), undefined);
    const request = message.value;
    if (!(request instanceof QDict)) {
      return errorResponse(new QemuError('QMP input must be a JSON object'), undefined);
    }
    const id = request.get('id');
    const checked = checkRequest(request, this.negotiated && this.oob);
    if (isQemuError(checked)) return errorResponse(checked, id);
    const reply = await this.execute(checked.command, checked.oob, request.get('arguments'));
    if (reply.error !== undefined) {
      let error = reply.error;
      if (!this.negotiated && error.errorClass === 'CommandNotFound') {
        // monitor_qmp_dispatch: "Provide a more useful error message".
        error = new QemuError(
          "Expecting capabilities negotiation with 'qmp_capabilities'",
          'CommandNotFound',
        );
      }
      return errorResponse(error, id);
    }
    return { return: reply.return ?? {}, id };
  }

  private async execute(
    name: string,
    oob: boolean,
    argsValue: QObject | undefined,
  ): Promise<Response> {
    const args = argsValue instanceof QDict ? argsValue : new QDict();
    if (name === 'qmp_capabilities') return this.capabilities(args);
    const command = this.negotiated ? this.command(name) : undefined;
    if (command === undefined) {
      return { error: new QemuError(`The command ${name} has not been found`, 'CommandNotFound') };
    }
    if (oob) return { error: new QemuError(`The command ${name} does not support OOB`) };
    const result = await runCommand(
      command,
      { machine: this.machine, hub: this.hub, monitor: this.commandMonitor },
      args,
    );
    return isQemuError(result) ? { error: result } : { return: result };
  }

  private command(name: string): QmpCommand | undefined {
    if (name === 'query-commands') {
      return {
        name,
        args: {},
        run: () =>
          ['qmp_capabilities', 'query-commands', ...QMP_COMMANDS.keys()].map((n) => ({ name: n })),
      };
    }
    return QMP_COMMANDS.get(name);
  }

  /** qmp_qmp_capabilities + qmp_caps_accept. */
  private capabilities(args: QDict): Response {
    const v = visitMembers(args, {
      enable: { type: { list: { enum: ['oob'] } }, optional: true },
    });
    if (isQemuError(v)) return { error: v };
    if (this.negotiated) {
      return {
        error: new QemuError(
          'Capabilities negotiation is already complete, command ignored',
          'CommandNotFound',
        ),
      };
    }
    this.oob = Array.isArray(v.enable) && v.enable.includes('oob');
    this.negotiated = true;
    return { return: {} };
  }
}
