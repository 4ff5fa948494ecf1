/**
 * Named error values for opening and running chardev backends.
 *
 * Like MachineError (core/machine/machine-error.ts) and VirtioFault these are
 * returned, never thrown across a module boundary: createChardev() gives one
 * back instead of an endpoint, and a person sees `message`, never a stack.
 * Where QEMU has its own text for the same failure the message is QEMU's
 * ("Could not open 'x': No such file or directory"), so a command line that
 * fails in vmchan fails with the words QEMU 7.2 would have used.
 */
import { VmchanError } from '../base/error.js';

export type ChardevErrorKind =
  /** A file, FIFO or device could not be opened (QEMU: error_setg_file_open). */
  | 'OpenFailed'
  /** A path exists but is the wrong kind of file for this backend. */
  | 'WrongFileType'
  /** A server could not listen (address in use, permission, bad host). */
  | 'ListenFailed'
  /** A unix socket path has a live server behind it. */
  | 'SocketInUse'
  /** A client could not connect and has no reconnect period. */
  | 'ConnectFailed'
  /** A spec value vmchan cannot use (ringbuf size not a power of two, ...). */
  | 'InvalidSpec'
  /** A backend or option QEMU has and vmchan does not implement. */
  | 'Unsupported'
  /** A host program a backend needs is missing (perl for pty). */
  | 'MissingTool'
  /** stdio is already used by another chardev (QEMU allows one). */
  | 'StdioInUse'
  /** Registry: no chardev with that id. */
  | 'NotFound'
  /** Registry: the id is taken. */
  | 'DuplicateId'
  /** Registry: a frontend holds the chardev (remove), or every mux slot is taken. */
  | 'Busy';

export class ChardevError extends VmchanError<ChardevErrorKind> {
  readonly domain = 'chardev';

  constructor(
    kind: ChardevErrorKind,
    message: string,
    /** The chardev id, when known. */
    readonly id?: string,
  ) {
    super(kind, message);
  }

  /** One line: `chardev c1: Could not open 'x': No such file or directory`. */
  override toString(): string {
    return this.id === undefined ? this.message : `chardev ${this.id}: ${this.message}`;
  }

  protected override details(): Record<string, unknown> {
    return { id: this.id };
  }
}

export function chardevError(kind: ChardevErrorKind, message: string, id?: string): ChardevError {
  return new ChardevError(kind, message, id);
}

export function isChardevError(value: unknown): value is ChardevError {
  return value instanceof ChardevError;
}

/** strerror-like text for a Node system error ("No such file or directory"). */
export function describeSystemError(error: unknown): string {
  const e = error as NodeJS.ErrnoException | undefined;
  const code = e?.code;
  const known: Record<string, string> = {
    ENOENT: 'No such file or directory',
    EACCES: 'Permission denied',
    EPERM: 'Operation not permitted',
    EEXIST: 'File exists',
    EISDIR: 'Is a directory',
    ENOTDIR: 'Not a directory',
    ENXIO: 'No such device or address',
    EADDRINUSE: 'Address already in use',
    EADDRNOTAVAIL: 'Cannot assign requested address',
    ECONNREFUSED: 'Connection refused',
    ETIMEDOUT: 'Connection timed out',
    EHOSTUNREACH: 'No route to host',
    ENETUNREACH: 'Network is unreachable',
    ENAMETOOLONG: 'File name too long',
    EINVAL: 'Invalid argument',
    ENOTSUP: 'Operation not supported',
    ENOTFOUND: 'Name or service not known',
    EAI_AGAIN: 'Temporary failure in name resolution',
  };
  if (code !== undefined && known[code] !== undefined) return known[code]!;
  if (code !== undefined) return code;
  return e?.message ?? String(error);
}
