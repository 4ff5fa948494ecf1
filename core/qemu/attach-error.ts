/**
 * Named error values for the attach mode above the QMP client: what the
 * machine, the tap and the launcher refuse or fail at. Like QmpError, an
 * AttachError is returned, never thrown, and does not extend Error: every
 * one is a single line a person can act on, without a stack trace.
 *
 * Functions of the attach mode return `T | AttachFailure`: either one of
 * these, or the QmpError of the QEMU command that failed underneath.
 */
import { VmchanError } from '../base/error.js';

import { isQmpError, type QmpError } from './qmp-error.js';

export type AttachErrorKind =
  /** No virtio-serial device, port or chardev by that name. */
  | 'NotFound'
  /** The request does not make sense as given (bad id, two devices and no choice...). */
  | 'InvalidArgument'
  /** The chardev's backend cannot be tapped, or a QEMU feature is missing. */
  | 'Unsupported'
  /** The tap's listening socket could not be created. */
  | 'ListenFailed'
  /** The tap could not reach QEMU's chardev socket. */
  | 'ConnectFailed'
  /** QEMU could not be started, or ended before its monitor came up. */
  | 'LaunchFailed'
  /** Something QEMU or the guest should have done did not happen in time. */
  | 'Timeout'
  /** The machine or tap was closed. */
  | 'Closed';

export class AttachError extends VmchanError<AttachErrorKind> {
  readonly domain = 'attach';

  override toString(): string {
    return `${this.kind}: ${this.message}`;
  }
}

export type AttachFailure = AttachError | QmpError;

export function isAttachError(value: unknown): value is AttachError {
  return value instanceof AttachError;
}

/** Either kind of failure the attach mode returns. */
export function isAttachFailure(value: unknown): value is AttachFailure {
  return value instanceof AttachError || isQmpError(value);
}

export function attachError(kind: AttachErrorKind, message: string): AttachError {
  return new AttachError(kind, message);
}
