/**
 * From the engine's named errors to the API's error kinds, by table: a face
 * learns whether a command named something that is not there (NotFound), was
 * refused (Refused), did not parse (ParseError) ... from the error's domain
 * and kind, never from its words. The message goes through unchanged, one
 * line (QEMU's words where QEMU has them).
 */
import { VmchanError, type ErrorDomain } from '../../base/error.js';
import { fail, type ApiError, type ApiErrorKind } from '../contract/contract.js';

/**
 * What a lab session itself answers when a command names something that is
 * not there, or cannot be done now (the engine's own errors pass through as
 * they are; what a session can never do is a Refusal, session.ts).
 */
export type SessionErrorKind = 'NotFound' | 'Refused';

export class SessionError extends VmchanError<SessionErrorKind> {
  readonly domain = 'session';
}

/** A command named a device, port or chardev that is not there. */
export function notFound(message: string): SessionError {
  return new SessionError('NotFound', message);
}

/** The session cannot do this now, for the reason given. */
export function refused(message: string): SessionError {
  return new SessionError('Refused', message);
}

/** The API kind of every error of a domain... */
const BY_DOMAIN: Readonly<Record<ErrorDomain, ApiErrorKind>> = {
  qemu: 'Refused',
  virtio: 'Refused',
  guest: 'Refused',
  chardev: 'Refused',
  machine: 'ParseError',
  capture: 'IoError',
  filter: 'InvalidRequest',
  qmp: 'Refused',
  attach: 'Refused',
  workload: 'InvalidRequest',
  guestdir: 'IoError',
  json: 'ParseError',
  session: 'Refused',
  qga: 'IoError',
};

/** ...except these kinds (`domain:kind`). */
const BY_KIND: Readonly<Record<string, ApiErrorKind>> = {
  'qemu:DeviceNotFound': 'NotFound',
  'qemu:CommandNotFound': 'Unsupported',
  'chardev:NotFound': 'NotFound',
  'session:NotFound': 'NotFound',
  'session:Unsupported': 'Unsupported',
  'capture:NotPcapng': 'ParseError',
  'capture:TruncatedBlock': 'ParseError',
  'capture:MalformedBlock': 'ParseError',
  'capture:UnsupportedVersion': 'ParseError',
  'capture:UnknownInterface': 'ParseError',
  'capture:MalformedControlMessage': 'ParseError',
  'capture:RecordOutOfRange': 'NotFound',
  'capture:NoSuchPort': 'NotFound',
  'capture:SinkClosed': 'Refused',
  'capture:TooLarge': 'Refused',
  'qga:CommandFailed': 'Refused',
};

export function apiErrorKind(error: VmchanError): ApiErrorKind {
  return BY_KIND[`${error.domain}:${error.kind}`] ?? BY_DOMAIN[error.domain];
}

/** The failed result for an engine error: its API kind by table, its message as is. */
export function failWith(error: VmchanError): { ok: false; error: ApiError } {
  return fail(apiErrorKind(error), error.message);
}
