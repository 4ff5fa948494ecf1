/**
 * Named error values for the capture engine (records, pcapng files, filters).
 *
 * As with VirtioFault (core/virtio/fault.ts) these are values, not
 * exceptions: every exported function returns them, nothing throws one
 * across a module boundary, and they do not extend Error, so building one is
 * cheap and a person only ever sees `toString()`, never a stack trace.
 */
import { VmchanError } from '../base/error.js';

export type CaptureErrorKind =
  /** The file does not start with a pcapng section header block. */
  | 'NotPcapng'
  /** A block runs past the end of the file (a killed writer leaves one). */
  | 'TruncatedBlock'
  /** A block whose length fields or body make no sense. */
  | 'MalformedBlock'
  /** A pcapng major version other than 1. */
  | 'UnsupportedVersion'
  /** A packet names an interface no IDB described. */
  | 'UnknownInterface'
  /** The operating system refused a read, a write, an open or a close. */
  | 'IoError'
  /** The path names a FIFO, a device, a socket or a directory: a capture is a regular file. */
  | 'NotRegularFile'
  /** Writing to a sink that was closed (or failed before). */
  | 'SinkClosed'
  /** More than the index can hold (interfaces, file size). */
  | 'TooLarge'
  /** A record number outside the capture. */
  | 'RecordOutOfRange'
  /** A control message shorter than its 8-byte header (or its RESIZE body). */
  | 'MalformedControlMessage'
  /** No port matches a follow-stream selection. */
  | 'NoSuchPort';

export interface CaptureErrorDetails {
  /** Byte offset in the file the error concerns. */
  offset?: number;
  /** Path of the file the error concerns. */
  path?: string;
  /** Record number (0-based) the error concerns. */
  record?: number;
}

export class CaptureError extends VmchanError<CaptureErrorKind> {
  readonly domain = 'capture';
  readonly offset: number | undefined;
  readonly path: string | undefined;
  readonly record: number | undefined;

  constructor(kind: CaptureErrorKind, message: string, details: CaptureErrorDetails = {}) {
    super(kind, message);
    this.offset = details.offset;
    this.path = details.path;
    this.record = details.record;
  }

  /** One line for the CLI and the UI: the message, prefixed with the file when known. */
  override toString(): string {
    return this.path === undefined ? this.message : `${this.path}: ${this.message}`;
  }

  protected override details(): Record<string, unknown> {
    return { offset: this.offset, path: this.path, record: this.record };
  }
}

export function isCaptureError(value: unknown): value is CaptureError {
  return value instanceof CaptureError;
}

export function captureError(
  kind: CaptureErrorKind,
  message: string,
  details?: CaptureErrorDetails,
): CaptureError {
  return new CaptureError(kind, message, details);
}

/** `EACCES: permission denied` from whatever node:fs threw (never rethrown). */
export function describeIoFailure(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown };
    if (typeof e.message === 'string') return e.message;
    if (typeof e.code === 'string') return e.code;
  }
  return String(err);
}
