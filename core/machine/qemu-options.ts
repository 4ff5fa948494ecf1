/**
 * QEMU's key=value option syntax (H2), as util/qemu-option.c reads it, and
 * the scalar parsers its visitors use.
 *
 * - pairs are separated by commas; `,,` inside a value is a literal comma;
 *   a key ends at the first '=' or ',' (so keys never hold either);
 * - the first element may omit its key when the option list has an implied
 *   one (`-chardev socket,...` is backend=socket, `-device virtserialport`
 *   is driver=virtserialport, `-mon foo` is chardev=foo);
 * - any other element without '=' is a short-form boolean: `server` is
 *   server=on, `nowait` is wait=off (and, QEMU's own trap, `nodelay` is
 *   delay=off), with a deprecation warning since QEMU 6.0;
 * - `id` is taken out first (the first one wins) and checked against
 *   QEMU's identifier rule.
 */
import { isWellFormedId } from './topology.js';

export interface OptPair {
  key: string;
  /** The value with `,,` unescaped; 'on'/'off' for a short-form boolean. */
  value: string;
  /** How the element was written: `key=value`, the implied first key, or a bare flag. */
  form: 'pair' | 'implied' | 'flag';
  /** The element exactly as written (for error messages). */
  raw: string;
}

/** get_opt_value: read up to a single comma, turning `,,` into `,`. Returns [value, end]. */
function readValue(params: string, start: number): [string, number] {
  let out = '';
  let p = start;
  while (p < params.length) {
    const ch = params[p];
    if (ch === ',') {
      if (params[p + 1] !== ',') break;
      p++;
    }
    out += params[p];
    p++;
  }
  return [out, p];
}

/**
 * Split an option argument into key/value pairs, in order, exactly as
 * get_opt_name_value does. `implied` is the implied key of the option list
 * (backend, driver, chardev) or undefined.
 */
export function splitOpts(params: string, implied?: string): OptPair[] {
  const out: OptPair[] = [];
  let first = implied;
  let p = 0;
  while (p < params.length) {
    const start = p;
    let len = 0;
    while (p + len < params.length && params[p + len] !== '=' && params[p + len] !== ',') len++;
    let pair: Omit<OptPair, 'raw'>;
    if (params[p + len] !== '=') {
      if (first !== undefined) {
        const [value, end] = readValue(params, p);
        pair = { key: first, value, form: 'implied' };
        p = end;
      } else {
        const name = params.slice(p, p + len);
        p += len;
        pair = name.startsWith('no')
          ? { key: name.slice(2), value: 'off', form: 'flag' }
          : { key: name, value: 'on', form: 'flag' };
      }
    } else {
      const key = params.slice(p, p + len);
      const [value, end] = readValue(params, p + len + 1);
      pair = { key, value, form: 'pair' };
      p = end;
    }
    out.push({ ...pair, raw: params.slice(start, p) });
    if (params[p] === ',') p++;
    first = undefined;
  }
  return out;
}

/** opts_parse_id: the first `id=` of the argument, read without an implied key. */
export function findId(params: string): string | undefined {
  for (const pair of splitOpts(params)) if (pair.key === 'id') return pair.value;
  return undefined;
}

/** The warning QEMU 6.0+ prints for a short-form boolean. */
export function flagDeprecation(pair: OptPair): string | undefined {
  if (pair.form !== 'flag') return undefined;
  const written = pair.value === 'off' ? `no${pair.key}` : pair.key;
  const advice =
    pair.key === 'delay'
      ? `nodelay=${pair.value === 'off' ? 'on' : 'off'}`
      : `${pair.key}=${pair.value}`;
  return `short-form boolean option '${written}' deprecated; Please use ${advice} instead`;
}

/** qapi_bool_parse: on/yes/true/y and off/no/false/n, case-sensitive. */
export function parseBool(value: string): boolean | undefined {
  if (value === 'on' || value === 'yes' || value === 'true' || value === 'y') return true;
  if (value === 'off' || value === 'no' || value === 'false' || value === 'n') return false;
  return undefined;
}

export function boolMessage(name: string): string {
  return `Parameter '${name}' expects 'on' or 'off'`;
}

const UINT64_MAX = (1n << 64n) - 1n;

/**
 * qemu_strtou64(str, NULL, 0): strtoull with base 0 (0x hex, leading-0
 * octal, decimal), leading whitespace and a sign allowed, a negative value
 * wrapping as in C, the whole string consumed. 'inval' for no digits or
 * trailing junk, 'range' beyond 2^64 - 1.
 */
export function strtou64(text: string, base: 0 | 10 | 16 = 0): bigint | 'inval' | 'range' {
  const m = /^[ \t\n\v\f\r]*([+-]?)(.*)$/s.exec(text);
  if (m === null) return 'inval';
  const sign = m[1] ?? '';
  let rest = m[2] ?? '';
  let radix: number = base === 0 ? 10 : base;
  if ((base === 0 || base === 16) && /^0[xX][0-9a-fA-F]/.test(rest)) {
    radix = 16;
    rest = rest.slice(2);
  } else if (base === 0 && /^0[0-7]/.test(rest)) {
    radix = 8;
  }
  const digits = radix === 16 ? /^[0-9a-fA-F]+/ : radix === 8 ? /^[0-7]+/ : /^[0-9]+/;
  const d = digits.exec(rest);
  if (d === null || d[0].length !== rest.length) return 'inval';
  const prefix = radix === 16 ? '0x' : radix === 8 ? '0o' : '';
  const n = BigInt(prefix + d[0]);
  if (n > UINT64_MAX) return 'range';
  return sign === '-' ? (UINT64_MAX + 1n - n) & UINT64_MAX : n;
}

/** A uint32 device property (visit_type_uint32 through the keyval visitor). */
export function parseUint32Property(name: string, value: string): number | { message: string } {
  const n = strtou64(value);
  if (typeof n !== 'bigint') return { message: `Parameter '${name}' expects integer` };
  if (n > 0xffffffffn) return { message: `Parameter '${name}' expects uint32_t` };
  return Number(n);
}

/** A QEMU_OPT_NUMBER (parse_option_number). */
export function parseNumberOpt(name: string, value: string): bigint | { message: string } {
  const n = strtou64(value);
  if (n === 'range') return { message: `Value '${value}' is too large for parameter '${name}'` };
  if (n === 'inval') return { message: `Parameter '${name}' expects a number` };
  return n;
}

const SIZE_SUFFIX: Readonly<Record<string, bigint>> = {
  b: 1n,
  k: 1n << 10n,
  m: 1n << 20n,
  g: 1n << 30n,
  t: 1n << 40n,
  p: 1n << 50n,
  e: 1n << 60n,
};

/**
 * A QEMU_OPT_SIZE (parse_option_size via qemu_strtosz): a decimal number
 * with an optional fraction and a suffix B/K/M/G/T/P/E (powers of 1024,
 * case-insensitive), or a hex number with neither.
 */
export function parseSizeOpt(name: string, value: string): bigint | { message: string } {
  const invalid = { message: `Parameter '${name}' expects a non-negative number below 2^64` };
  const hex = /^\s*0[xX]([0-9a-fA-F]+)$/.exec(value);
  let result: bigint;
  if (hex !== null) {
    result = BigInt(`0x${hex[1] ?? '0'}`);
  } else {
    const m = /^\s*\+?([0-9]+)(?:\.([0-9]+))?([bBkKmMgGtTpPeE])?$/.exec(value);
    if (m === null) return invalid;
    const whole = BigInt(m[1] ?? '0');
    const fraction = m[2];
    const mul = SIZE_SUFFIX[(m[3] ?? 'b').toLowerCase()] ?? 1n;
    if (fraction !== undefined && mul === 1n) return invalid;
    const scale = 10n ** BigInt(fraction?.length ?? 0);
    const frac = fraction === undefined ? 0n : (BigInt(fraction) * mul) / scale;
    result = whole * mul + frac;
  }
  if (result > UINT64_MAX) {
    return { message: `Value '${value}' is out of range for parameter '${name}'` };
  }
  return result;
}

/** Check an id the way qemu_opts_create does. */
export function idMessage(id: string): string | undefined {
  return isWellFormedId(id) ? undefined : "Parameter 'id' expects an identifier";
}

/**
 * Join pairs back into one argument, doubling commas in values. The first
 * pair is written bare when `implied` names its key.
 */
export function joinOpts(
  pairs: ReadonlyArray<readonly [string, string]>,
  implied?: string,
): string {
  return pairs
    .map(([key, value], i) => {
      const escaped = value.replaceAll(',', ',,');
      return i === 0 && key === implied ? escaped : `${key}=${escaped}`;
    })
    .join(',');
}
