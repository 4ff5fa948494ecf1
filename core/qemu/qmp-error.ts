/**
 * Named error values for talking to a QEMU monitor.
 *
 * Like VirtioFault, a QmpError is returned, never thrown across a module
 * boundary, and does not extend Error: a refused connection or a command
 * QEMU turned down is an ordinary outcome the UI shows in one line, not a
 * crash with a stack trace.
 */
import { VmchanError } from '../base/error.js';

export type QmpErrorKind =
  /** QEMU answered the command with {"error": {"class", "desc"}}. */
  | 'CommandFailed'
  /** Nothing listens at the address (no socket file, connection refused, unreachable). */
  | 'ConnectionRefused'
  /** Connected, but no greeting came: QEMU serves one QMP client per socket. */
  | 'SocketTaken'
  /** The connection went away (or was never up) while a command needed it. */
  | 'Disconnected'
  /** No answer within the time allowed. */
  | 'Timeout'
  /** The peer does not speak QMP as we know it (bad JSON, wrong shape). */
  | 'ProtocolError'
  /** The address string could not be understood. */
  | 'InvalidAddress';

export class QmpError extends VmchanError<QmpErrorKind> {
  readonly domain = 'qmp';

  constructor(
    kind: QmpErrorKind,
    message: string,
    /** For CommandFailed: QEMU's error class, e.g. GenericError, CommandNotFound, DeviceNotFound. */
    readonly errorClass?: string,
    /** For CommandFailed: QEMU's own description, verbatim. */
    readonly desc?: string,
    /** The command this error answers, when there is one. */
    readonly command?: string,
  ) {
    super(kind, message);
  }

  /** One line for logs and the UI: `CommandFailed: chardev-remove: Chardev 'c1' is busy (GenericError)`. */
  override toString(): string {
    return `${this.kind}: ${this.message}`;
  }

  protected override details(): Record<string, unknown> {
    return { errorClass: this.errorClass, desc: this.desc, command: this.command };
  }
}

export function isQmpError(value: unknown): value is QmpError {
  return value instanceof QmpError;
}

export function qmpError(kind: QmpErrorKind, message: string, command?: string): QmpError {
  return new QmpError(kind, message, undefined, undefined, command);
}

/** The value for a QEMU error reply: message names the command, the desc and the class. */
export function commandFailed(command: string, errorClass: string, desc: string): QmpError {
  return new QmpError(
    'CommandFailed',
    `${command}: ${desc} (${errorClass})`,
    errorClass,
    desc,
    command,
  );
}
