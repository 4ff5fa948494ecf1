/**
 * Linux errno values for the guest's system calls. Errors are values: a call
 * returns an Errno instead of throwing, and a program checks `isErrno(r)`
 * the way C checks for -1.
 */
import { VmchanError } from '../../base/error.js';

export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ESPIPE: 29,
} as const;

export type ErrnoName = keyof typeof ERRNO;

/** strerror(3) texts, so messages read like the real ones ("cat: read error: No such device"). */
const STRERROR: Record<ErrnoName, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  EBADF: 'Bad file descriptor',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  ENODEV: 'No such device',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  ESPIPE: 'Illegal seek',
};

/** A guest system call's failure: its kind is the errno name, its message strerror's. */
export class Errno extends VmchanError<ErrnoName> {
  readonly domain = 'guest';

  constructor(
    code: ErrnoName,
    /** What was being done, for people: `open /dev/vport0p1`. */
    readonly context = '',
  ) {
    super(code, STRERROR[code]);
  }

  get code(): ErrnoName {
    return this.kind;
  }

  /** The number (EAGAIN is 11). */
  get errno(): number {
    return ERRNO[this.code];
  }

  protected override details(): Record<string, unknown> {
    return { context: this.context };
  }

  override toString(): string {
    return this.context
      ? `${this.context}: ${this.message} (${this.code})`
      : `${this.message} (${this.code})`;
  }
}

export function isErrno(value: unknown): value is Errno {
  return value instanceof Errno;
}

export function errno(code: ErrnoName, context = ''): Errno {
  return new Errno(code, context);
}
