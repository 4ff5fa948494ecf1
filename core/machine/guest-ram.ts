/**
 * The guest's RAM from `-m` (qemu-options.hx: `-m [size=]megs[,slots=n,maxmem=size]`),
 * as QEMU 7.2 reads it: a number with an optional suffix (B, K, M, G, T, P,
 * E; a bare number is MiB), 128 MiB when `-m` is absent (default_ram_size).
 * The lab's guest memory is a real buffer, so it stops at MAX_RAM_MIB and
 * says so rather than failing to allocate.
 */
import { QemuError } from '../base/qemu-error.js';
import type { IgnoredOption } from './topology.js';

/** QEMU's default_ram_size for x86 machines. */
export const DEFAULT_RAM_MIB = 128;
/** The most guest RAM the lab holds in one buffer. */
export const MAX_RAM_MIB = 4096;

const SUFFIX: Readonly<Record<string, number>> = {
  b: 1 / (1024 * 1024),
  k: 1 / 1024,
  m: 1,
  g: 1024,
  t: 1024 * 1024,
  p: 1024 ** 3,
  e: 1024 ** 4,
};

/** The size of one `-m` argument in MiB, or QEMU's complaint. */
export function parseRamSize(arg: string): number | QemuError {
  // The first key=value (or the bare value) is the size; slots= and maxmem= are hotplug RAM.
  const first = arg.split(',')[0] ?? '';
  const value = first.startsWith('size=') ? first.slice(5) : first;
  const m = /^(\d+(?:\.\d+)?)([bkmgtpe])?$/i.exec(value.trim());
  if (m === null) {
    return new QemuError(
      `-m ${arg}: Parameter 'size' expects a non-negative number below 2^64 ` +
        '(optional suffix k, M, G, T, P or E)',
    );
  }
  const mib = Number(m[1]) * SUFFIX[(m[2] ?? 'm').toLowerCase()]!;
  if (mib < 1) return new QemuError(`-m ${arg}: ram size too small`);
  if (mib > MAX_RAM_MIB) {
    return new QemuError(
      `-m ${arg}: vmchan does not emulate more than ${MAX_RAM_MIB} MiB of guest RAM`,
    );
  }
  return Math.ceil(mib);
}

/** The RAM the command line asks for (the last -m wins, as in QEMU), or the default. */
export function guestRamMiB(options: readonly IgnoredOption[]): number | QemuError {
  const last = options.filter((o) => o.option === '-m' && o.arg !== undefined).at(-1);
  return last === undefined ? DEFAULT_RAM_MIB : parseRamSize(last.arg!);
}
