/**
 * The one shape of every named error in core: a kind (rust-vmm style, say
 * `InvalidDescriptorIndex`, `NotFound`), a one-line message for people, the
 * domain it comes from, and details of its own (an offset, a queue, an id).
 *
 * Values, not exceptions: functions return them, nothing throws one across a
 * module boundary, and they do not extend Error (no stack is captured, so
 * making one is cheap and no face can print a stack trace). A face turns one
 * into an API error with the table in core/api/server/api-error.ts, never by
 * reading its message.
 */

/** Where an error comes from: the folder (or protocol) whose kinds it carries. */
export type ErrorDomain =
  | 'qemu'
  | 'virtio'
  | 'guest'
  | 'chardev'
  | 'machine'
  | 'capture'
  | 'filter'
  | 'qmp'
  | 'attach'
  | 'workload'
  | 'guestdir'
  | 'json'
  | 'session'
  /** The QEMU guest agent as vmchan's client sees it (core/qga/client.ts). */
  | 'qga';

export abstract class VmchanError<K extends string = string> {
  abstract readonly domain: ErrorDomain;

  constructor(
    readonly kind: K,
    /** One line, in the words the user should see (QEMU's own, where QEMU has them). */
    readonly message: string,
  ) {}

  /** One line for people; subclasses add where it happened. */
  toString(): string {
    return this.message;
  }

  /** The fields beyond kind and message, for toJSON. */
  protected details(): Record<string, unknown> {
    return {};
  }

  toJSON(): Record<string, unknown> {
    return { kind: this.kind, message: this.message, ...this.details() };
  }
}

export function isVmchanError(value: unknown): value is VmchanError {
  return value instanceof VmchanError;
}
