/**
 * Named error and note values for reading and writing machine descriptions.
 *
 * Like VirtioFault (core/virtio/fault.ts) these are values, never thrown:
 * every parser in core/machine returns them. The message is QEMU's (or
 * libvirt's) own text wherever the real program has one, so a person who
 * pastes a command line sees what QEMU 7.2 would have printed; `where`
 * says which argument, key and token it is about, which QEMU only gives as
 * the "-chardev socket,...:" prefix of its message.
 */
import { VmchanError } from '../base/error.js';

export type MachineErrorKind =
  // command-line structure (softmmu/vl.c lookup_opt)
  | 'InvalidOption'
  | 'MissingArgument'
  | 'ShellSyntax'
  // key=value syntax and values (util/qemu-option.c, qapi visitors)
  | 'InvalidParameter'
  | 'InvalidValue'
  | 'MissingParameter'
  | 'InvalidId'
  | 'DuplicateId'
  // chardevs (chardev/char*.c)
  | 'MissingId'
  | 'MissingBackend'
  | 'UnknownBackend'
  | 'BackendOption'
  | 'CompatSyntax'
  // devices and monitors (softmmu/qdev-monitor.c, hw/char/virtio-serial-bus.c, monitor/)
  | 'UnknownDevice'
  | 'PropertyNotFound'
  | 'BusNotFound'
  | 'ChardevNotFound'
  | 'ChardevInUse'
  | 'DeviceLimit'
  // what vmchan itself cannot take
  | 'Unsupported'
  // libvirt XML
  | 'XmlSyntax'
  | 'XmlValue'
  // topology consistency (a plain-data topology built by hand or by the UI)
  | 'InvalidTopology';

/** Where an error or note belongs. Every field is optional; set what is known. */
export interface MachineWhere {
  /** Index in the argument list of the option at fault (0-based, program name excluded). */
  argIndex?: number;
  /** The option as QEMU names it: '-chardev', '-device', '-mon', ... */
  option?: string;
  /** The option's argument as written. */
  arg?: string;
  /** The key inside the argument (`server` in `server=maybe`). */
  key?: string;
  /** The offending token: a value, an id, a driver or backend name. */
  token?: string;
  /** XML: the element, as `<channel> #2` (1-based position among its kind). */
  element?: string;
}

export class MachineError extends VmchanError<MachineErrorKind> {
  readonly domain = 'machine';
  readonly argIndex: number | undefined;
  readonly option: string | undefined;
  readonly arg: string | undefined;
  readonly key: string | undefined;
  readonly token: string | undefined;
  readonly element: string | undefined;

  constructor(kind: MachineErrorKind, message: string, where: MachineWhere = {}) {
    super(kind, message);
    this.argIndex = where.argIndex;
    this.option = where.option;
    this.arg = where.arg;
    this.key = where.key;
    this.token = where.token;
    this.element = where.element;
  }

  /** The same error attributed to a place (fields already set win). */
  at(where: MachineWhere): MachineError {
    return new MachineError(this.kind, this.message, {
      argIndex: this.argIndex ?? where.argIndex,
      option: this.option ?? where.option,
      arg: this.arg ?? where.arg,
      key: this.key ?? where.key,
      token: this.token ?? where.token,
      element: this.element ?? where.element,
    });
  }

  /** One line in QEMU's shape: `-chardev socket,id=x: Parameter 'server' expects 'on' or 'off'`. */
  override toString(): string {
    if (this.element !== undefined) return `${this.element}: ${this.message}`;
    if (this.option === undefined) return this.message;
    const arg = this.arg === undefined ? '' : ` ${this.arg}`;
    return `${this.option}${arg}: ${this.message}`;
  }

  protected override details(): Record<string, unknown> {
    return {
      argIndex: this.argIndex,
      option: this.option,
      arg: this.arg,
      key: this.key,
      token: this.token,
      element: this.element,
    };
  }
}

export function machineError(
  kind: MachineErrorKind,
  message: string,
  where?: MachineWhere,
): MachineError {
  return new MachineError(kind, message, where);
}

export function isMachineError(value: unknown): value is MachineError {
  return value instanceof MachineError;
}

export type MachineNoteKind =
  /** QEMU accepts it but warns (short-form booleans, the `tty` alias). */
  | 'Deprecated'
  /** Accepted and kept verbatim, but not part of the modelled topology. */
  | 'Ignored'
  /** QEMU filled something in (a bus, a chardev name). */
  | 'Implied'
  /** One side (libvirt XML, or vmchan) cannot say this; the sentence says what is lost. */
  | 'NotExpressed'
  /** Lenient reading fixed the input (an unclosed XML element). */
  | 'Repaired';

/** A remark that does not stop parsing. Plain data: safe to send to the UI as is. */
export interface MachineNote extends MachineWhere {
  kind: MachineNoteKind;
  message: string;
}

export function note(
  kind: MachineNoteKind,
  message: string,
  where: MachineWhere = {},
): MachineNote {
  const out: MachineNote = { kind, message };
  for (const [k, v] of Object.entries(where)) {
    if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  }
  return out;
}

/** The result every reader in core/machine returns. */
export type MachineResult<T> =
  | { ok: true; value: T; notes: MachineNote[] }
  | { ok: false; error: MachineError; notes: MachineNote[] };
