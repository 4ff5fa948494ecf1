/**
 * Checking command arguments the way QEMU's QAPI input visitor does, so a
 * wrong argument gets QEMU's words: members are visited in declaration
 * order (the first missing or mistyped one is reported, by its full name
 * such as `backend.data.addr` or `enable[0]`), then leftovers are refused.
 *
 *   "Parameter 'id' is missing"
 *   "Invalid parameter type for 'size', expected: integer"
 *   "Parameter 'queue' expects uint16_t"
 *   "Parameter 'format' does not accept value 'hex'"
 *   "Parameter 'foo' is unexpected"
 */
import { QemuError } from '../base/qemu-error.js';
import { QDict, qdictOrder, type QObject } from './qobject.js';

export type QapiType =
  | 'str'
  | 'int'
  | 'uint16'
  | 'bool'
  | 'any'
  | { enum: readonly string[] }
  | { list: QapiType }
  | { struct: QapiMembers }
  /** A union with a string discriminator `type` and a `data` member per branch (QEMU's legacy form). */
  | { union: Readonly<Record<string, QapiMembers>> };

export type QapiMembers = Readonly<Record<string, { type: QapiType; optional?: boolean }>>;

/** What a visit produces: plain values, objects as records. */
export type QapiValue =
  string | number | bigint | boolean | null | QObject | QapiValue[] | { [key: string]: QapiValue };

const EXPECTED: Record<string, string> = {
  str: 'string',
  int: 'integer',
  uint16: 'integer',
  bool: 'boolean',
};

function join(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}.${name}`;
}

function isInteger(v: QObject): boolean {
  if (typeof v === 'bigint') return v >= -(1n << 63n) && v < 1n << 63n;
  return typeof v === 'number' && Number.isInteger(v);
}

function visit(value: QObject, type: QapiType, name: string, plain: string): QapiValue | QemuError {
  if (type === 'any') return value;
  if (typeof type === 'string') {
    const bad = new QemuError(`Invalid parameter type for '${name}', expected: ${EXPECTED[type]}`);
    switch (type) {
      case 'str':
        return typeof value === 'string' ? value : bad;
      case 'bool':
        return typeof value === 'boolean' ? value : bad;
      case 'int':
        if (!isInteger(value)) return bad;
        return value as number | bigint;
      case 'uint16':
        if (!isInteger(value)) return bad;
        if (Number(value) < 0 || Number(value) > 0xffff) {
          return new QemuError(`Parameter '${name}' expects uint16_t`);
        }
        return Number(value);
    }
  }
  if ('enum' in type) {
    if (typeof value !== 'string') {
      return new QemuError(`Invalid parameter type for '${name}', expected: string`);
    }
    if (!type.enum.includes(value)) {
      return new QemuError(`Parameter '${plain}' does not accept value '${value}'`);
    }
    return value;
  }
  if ('list' in type) {
    if (!Array.isArray(value)) {
      return new QemuError(`Invalid parameter type for '${name}', expected: array`);
    }
    const out: QapiValue[] = [];
    for (let i = 0; i < value.length; i++) {
      const v = visit(value[i] as QObject, type.list, `${name}[${i}]`, `${name}[${i}]`);
      if (v instanceof QemuError) return v;
      out.push(v);
    }
    return out;
  }
  if (!(value instanceof QDict)) {
    return new QemuError(`Invalid parameter type for '${name}', expected: object`);
  }
  if ('struct' in type) return visitMembers(value, type.struct, name);
  // A union: the discriminator first, then the branch's data.
  const kind = visitMembers(value, { type: { type: { enum: Object.keys(type.union) } } }, name, [
    'data',
  ]);
  if (kind instanceof QemuError) return kind;
  const branch = type.union[kind.type as string]!;
  const data = visitMembers(value, { data: { type: { struct: branch } } }, name, ['type']);
  if (data instanceof QemuError) return data;
  return { type: kind.type!, data: data.data! };
}

/**
 * Visit `args` against `members`. `ignore` names members another visit
 * of the same object handles (a union's two halves).
 */
export function visitMembers(
  args: QDict,
  members: QapiMembers,
  prefix = '',
  ignore: readonly string[] = [],
): { [key: string]: QapiValue } | QemuError {
  const out: { [key: string]: QapiValue } = {};
  for (const [member, spec] of Object.entries(members)) {
    const full = join(prefix, member);
    if (!args.has(member)) {
      if (spec.optional) continue;
      return new QemuError(`Parameter '${full}' is missing`);
    }
    const v = visit(args.get(member)!, spec.type, full, member);
    if (v instanceof QemuError) return v;
    out[member] = v;
  }
  // check_struct walks the dict in QEMU's order: that decides which leftover is named.
  for (const key of qdictOrder([...args.keys()])) {
    if (!(key in members) && !ignore.includes(key)) {
      return new QemuError(`Parameter '${join(prefix, key)}' is unexpected`);
    }
  }
  return out;
}
