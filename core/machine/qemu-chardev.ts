/**
 * -chardev: checking the keys as QemuOpts does while the command line is
 * read, then building a Chardev the way QEMU creates one after the command
 * line is read (qemu_chr_new_from_opts: the backend's parse function, then
 * its open function's checks). Messages are QEMU 7.2's.
 */
import { machineError, note, type MachineError, type MachineNote } from './machine-error.js';
import {
  boolMessage,
  parseBool,
  parseNumberOpt,
  parseSizeOpt,
  type OptPair,
} from './qemu-options.js';
import { isSpecProblem } from '../chardev/kind.js';
import { kindForQemuName } from '../chardev/kinds/index.js';
import { CHARDEV_BACKEND_NAMES, CHARDEV_OPTS, COMMON_CHARDEV_KEYS } from './qemu-tables.js';
import type { Chardev } from './topology.js';

/**
 * opt_validate for the chardev option list: an unknown key is refused and
 * typed keys are parsed. Returns the first problem, with the key and the
 * element as written.
 */
export function checkChardevPairs(pairs: readonly OptPair[]): MachineError | undefined {
  for (const pair of pairs) {
    if (pair.key === 'id') continue;
    const type = CHARDEV_OPTS.get(pair.key);
    if (type === undefined) {
      return machineError('InvalidParameter', `Invalid parameter '${pair.key}'`, {
        key: pair.key,
        token: pair.raw,
      });
    }
    const where = { key: pair.key, token: pair.raw };
    if (type === 'bool' && parseBool(pair.value) === undefined) {
      return machineError('InvalidValue', boolMessage(pair.key), where);
    }
    if (type === 'number') {
      const n = parseNumberOpt(pair.key, pair.value);
      if (typeof n !== 'bigint') return machineError('InvalidValue', n.message, where);
    }
    if (type === 'size') {
      const n = parseSizeOpt(pair.key, pair.value);
      if (typeof n !== 'bigint') return machineError('InvalidValue', n.message, where);
    }
  }
  return undefined;
}

/** The pairs of one -chardev (or of a shorthand turned into one), QEMU's "last one wins" applied. */
export class ChardevOpts {
  private readonly values = new Map<string, string>();
  private readonly raws = new Map<string, string>();

  constructor(
    readonly id: string | undefined,
    pairs: readonly OptPair[],
  ) {
    for (const p of pairs) {
      if (p.key === 'id') continue;
      this.values.set(p.key, p.value);
      this.raws.set(p.key, p.raw);
    }
  }

  get(key: string): string | undefined {
    return this.values.get(key);
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.values.get(key);
    return v === undefined ? fallback : (parseBool(v) ?? fallback);
  }

  number(key: string): bigint | undefined {
    const v = this.values.get(key);
    if (v === undefined) return undefined;
    const n = parseNumberOpt(key, v);
    return typeof n === 'bigint' ? n : undefined;
  }

  size(key: string): bigint | undefined {
    const v = this.values.get(key);
    if (v === undefined) return undefined;
    const n = parseSizeOpt(key, v);
    return typeof n === 'bigint' ? n : undefined;
  }

  keys(): string[] {
    return [...this.values.keys()];
  }

  raw(key: string): string | undefined {
    return this.raws.get(key);
  }
}

/** What chardev creation needs to know about the rest of the command line. */
export type { ParseContext as ChardevContext } from '../chardev/kind.js';
import type { ParseContext as ChardevContext } from '../chardev/kind.js';

export type ChardevBuild =
  { ok: true; chardev: Chardev; notes: MachineNote[] } | { ok: false; error: MachineError };

const ALIASES: Readonly<Record<string, string>> = { tty: 'serial', parport: 'parallel' };

function backendError(
  message: string,
  key?: string,
  opts?: ChardevOpts,
): { ok: false; error: MachineError } {
  const where = key === undefined ? {} : { key, token: opts?.raw(key) ?? key };
  return { ok: false, error: machineError('BackendOption', message, where) };
}

/** qemu_chr_new_from_opts: parse and open, or QEMU's refusal. */
export function buildChardev(opts: ChardevOpts, ctx: ChardevContext): ChardevBuild {
  const notes: MachineNote[] = [];
  if (opts.id === undefined) {
    return { ok: false, error: machineError('MissingId', 'chardev: no id specified') };
  }
  const id = opts.id;
  const name = opts.get('backend');
  if (name === undefined) {
    return { ok: false, error: machineError('MissingBackend', `chardev: "${id}" missing backend`) };
  }
  if (!CHARDEV_BACKEND_NAMES.has(name)) {
    return {
      ok: false,
      error: machineError('UnknownBackend', `'${name}' is not a valid char driver name`, {
        key: 'backend',
        token: name,
      }),
    };
  }
  const alias = ALIASES[name];
  if (alias !== undefined) {
    notes.push(
      note('Deprecated', `The alias '${name}' is deprecated, use '${alias}' instead`, {
        token: name,
      }),
    );
  }
  const driver = alias ?? name;

  // The kind's record parses its own options (core/chardev/kinds/).
  const kind = kindForQemuName(driver);
  const parsed = kind.qemu.parse(opts, ctx, driver);
  if (isSpecProblem(parsed)) return backendError(parsed.message, parsed.key, opts);
  const backend = parsed;
  for (const [key, what] of Object.entries(kind.qemu.refused ?? {})) {
    const value = opts.get(key);
    if (value === undefined) continue;
    if (CHARDEV_OPTS.get(key) === 'bool' && !opts.bool(key, false)) continue;
    return backendError(`vmchan does not emulate ${what}`, key, opts);
  }
  if (backend.kind === 'other') {
    notes.push(
      note('Ignored', `chardev '${id}' uses backend '${driver}', which vmchan does not emulate`, {
        token: driver,
      }),
    );
  }

  const chardev: Chardev = {
    id,
    backend,
    mux: opts.bool('mux', false),
    logappend: opts.bool('logappend', false),
  };
  const logfile = opts.get('logfile');
  if (logfile !== undefined) chardev.logfile = logfile;

  const modelled = new Set([...COMMON_CHARDEV_KEYS, ...kind.qemu.keys]);
  const ignored: Record<string, string> = {};
  for (const key of opts.keys()) {
    if (modelled.has(key)) continue;
    // A refused option written off (telnet=off) does nothing in QEMU either: not kept.
    if (kind.qemu.refused?.[key] !== undefined) continue;
    ignored[key] = opts.get(key) ?? '';
    notes.push(
      note('Ignored', `chardev '${id}': '${key}' is kept as written but not modelled`, {
        key,
        token: opts.raw(key) ?? key,
      }),
    );
  }
  if (Object.keys(ignored).length > 0) chardev.ignoredKeys = ignored;
  return { ok: true, chardev, notes };
}
