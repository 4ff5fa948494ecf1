/**
 * `-add-fd fd=N,set=S[,opaque=TEXT]` (QEMU 7.2 softmmu/vl.c qemu_add_fd_opts
 * and parse_add_fd): a descriptor `vmchan run` inherited joins fd set S,
 * which a chardev opens as `/dev/fdset/S` and QMP's query-fdsets and
 * remove-fd see (core/chardev/fdsets.ts). The option stays in the
 * topology's kept options, as QEMU's -m does; the sets are built when the
 * machine starts, in command-line order, every error in QEMU's words.
 */
import { QemuError } from '../base/qemu-error.js';
import { FdSets } from '../chardev/fdsets.js';
import { splitOpts } from './qemu-options.js';
import type { IgnoredOption } from './topology.js';

const KEYS = new Set(['fd', 'set', 'opaque']);

/** QEMU_OPT_NUMBER: a decimal, hex or octal integer (qemu_strtou64), wrapped to int64 as QEMU stores it. */
function optNumber(key: string, value: string): number | QemuError {
  const m = /^\s*(-?)(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)$/i.exec(value);
  if (m === null) return new QemuError(`Parameter '${key}' expects a number`);
  const digits = m[2]!;
  const magnitude = /^0x/i.test(digits)
    ? BigInt(digits)
    : digits.length > 1 && digits.startsWith('0')
      ? BigInt(`0o${digits.slice(1)}`)
      : BigInt(digits);
  const n = BigInt.asIntN(64, m[1] === '-' ? -magnitude : magnitude);
  // parse_add_fd keeps fd in an int and set in an int64: both fit a double's range checks here.
  return Number(n);
}

/** One -add-fd argument into `sets`; QEMU's message (without the option prefix) on failure. */
export function addFdOption(sets: FdSets, arg: string): QemuError | null {
  let fd = -1;
  let set = -1;
  let opaque: string | undefined;
  for (const pair of splitOpts(arg)) {
    if (!KEYS.has(pair.key)) return new QemuError(`Invalid parameter '${pair.key}'`);
    if (pair.key === 'opaque') {
      opaque = pair.value;
      continue;
    }
    const n = optNumber(pair.key, pair.value);
    if (n instanceof QemuError) return n;
    if (pair.key === 'fd') fd = n > 0x7fffffff || n < -0x80000000 ? -1 : n;
    else set = n;
  }
  return sets.addFromCommandLine(fd, set, opaque);
}

/** Every -add-fd of the command line, in order: the sets, or the first failure as QEMU prints it. */
export function fdSetsFromOptions(options: readonly IgnoredOption[]): FdSets | QemuError {
  const sets = new FdSets();
  for (const o of options) {
    if (o.option !== '-add-fd' || o.arg === undefined) continue;
    const failed = addFdOption(sets, o.arg);
    if (failed !== null) {
      sets.closeAll();
      return new QemuError(`-add-fd ${o.arg}: ${failed.message}`);
    }
  }
  return sets;
}
