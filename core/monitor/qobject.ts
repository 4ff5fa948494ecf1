/**
 * QEMU's QObject values and its JSON writer (qobject/json-writer.c), so
 * that what the monitors and the guest agent send is byte for byte what
 * QEMU 7.2 sends.
 *
 * Member order: QEMU keeps a QDict in a 512-bucket hash table and writes
 * buckets in order; inside a bucket the member added last comes first. That
 * is why a reply reads `{"return": {}, "id": "q1"}` but an error reads
 * `{"id": "q16", "error": ...}`. The order below is computed the same way
 * (qdict.c tdb_hash), and was checked against every object in the recorded
 * samples (test/fixtures/qemu-7.2-samples). Objects given as plain JS
 * objects are taken to list members in QAPI declaration order, which is the
 * order QEMU's visitors insert them.
 *
 * Strings: everything outside printable ASCII is written as \uXXXX
 * (uppercase hex), beyond the BMP as a surrogate pair; QEMU output is pure
 * ASCII. Numbers: integers as integers, doubles as printf's %.17g.
 */

/** A decoded JSON object: a Map keeps hostile keys (`__proto__`) as data. */
export class QDict extends Map<string, QObject> {}

export type QObject =
  | null
  | boolean
  | number
  | bigint
  | string
  | readonly QObject[]
  | QDict
  | { readonly [key: string]: QObject | undefined };

const QDICT_BUCKET_MAX = 512;

/** qdict.c tdb_hash, in 32-bit unsigned arithmetic over the key's UTF-8 bytes. */
function tdbHash(name: string): number {
  const bytes = new TextEncoder().encode(name);
  let value = Math.imul(0x238f13af, bytes.length) >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    value = (value + ((bytes[i]! << ((i * 5) % 24)) >>> 0)) >>> 0;
  }
  return (Math.imul(1103515243, value) + 12345) >>> 0;
}

/** Keys in the order QEMU writes a QDict built by inserting them in `inserted` order. */
export function qdictOrder(inserted: readonly string[]): string[] {
  const bucket = new Map<string, number>();
  for (const k of inserted) bucket.set(k, tdbHash(k) % QDICT_BUCKET_MAX);
  const position = new Map(inserted.map((k, i) => [k, i]));
  return [...inserted].sort(
    (a, b) => bucket.get(a)! - bucket.get(b)! || position.get(b)! - position.get(a)!,
  );
}

function entriesOf(
  value: QDict | { readonly [key: string]: QObject | undefined },
): [string, QObject][] {
  const pairs: [string, QObject][] = [];
  if (value instanceof Map) {
    for (const [k, v] of value) pairs.push([k, v]);
  } else {
    for (const k of Object.keys(value)) {
      const v = value[k];
      if (v !== undefined) pairs.push([k, v]);
    }
  }
  const order = qdictOrder(pairs.map(([k]) => k));
  const byKey = new Map(pairs);
  return order.map((k) => [k, byKey.get(k)!]);
}

/** quote_str: QEMU's string escaping. */
export function quoteString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    switch (cp) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += '\\\\';
        break;
      case 0x08:
        out += '\\b';
        break;
      case 0x0c:
        out += '\\f';
        break;
      case 0x0a:
        out += '\\n';
        break;
      case 0x0d:
        out += '\\r';
        break;
      case 0x09:
        out += '\\t';
        break;
      default:
        if (cp > 0xffff) {
          const hi = 0xd800 + ((cp - 0x10000) >> 10);
          const lo = 0xdc00 + ((cp - 0x10000) & 0x3ff);
          out += `\\u${hex4(hi)}\\u${hex4(lo)}`;
        } else if (cp < 0x20 || cp >= 0x7f) {
          out += `\\u${hex4(cp)}`;
        } else {
          out += ch;
        }
    }
  }
  return out + '"';
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

/** printf("%.17g"): what QEMU writes for a double. */
export function formatDouble(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? 'nan' : n > 0 ? 'inf' : '-inf';
  if (n === 0) return Object.is(n, -0) ? '-0' : '0';
  const exp = Math.floor(Math.log10(Math.abs(n)));
  const strip = (m: string): string => (m.includes('.') ? m.replace(/\.?0+$/, '') : m);
  if (exp < -4 || exp >= 17) {
    const [mantissa, e] = n.toExponential(16).split('e') as [string, string];
    const sign = e.startsWith('-') ? '-' : '+';
    const digits = e.replace(/^[+-]/, '').padStart(2, '0');
    return `${strip(mantissa)}e${sign}${digits}`;
  }
  return strip(n.toFixed(Math.max(0, 16 - exp)));
}

/**
 * qobject_to_json / qobject_to_json_pretty. Pretty output indents by four
 * spaces and puts an empty object's closing brace on its own line, as
 * QEMU's writer does.
 */
export function toQemuJson(value: QObject, pretty = false): string {
  let out = '';
  let depth = 0;
  const newline = (): void => {
    if (pretty) out += '\n' + ' '.repeat(depth * 4);
  };
  const write = (v: QObject): void => {
    if (v === null) out += 'null';
    else if (typeof v === 'boolean') out += v ? 'true' : 'false';
    else if (typeof v === 'bigint') out += v.toString();
    else if (typeof v === 'number') out += Number.isSafeInteger(v) ? String(v) : formatDouble(v);
    else if (typeof v === 'string') out += quoteString(v);
    else if (Array.isArray(v))
      container(
        '[',
        ']',
        (v as readonly QObject[]).map((x) => [null, x]),
      );
    else container('{', '}', entriesOf(v as QDict));
  };
  const container = (open: string, close: string, items: [string | null, QObject][]): void => {
    out += open;
    depth++;
    items.forEach(([key, item], i) => {
      if (i > 0) out += pretty ? ',' : ', ';
      newline();
      if (key !== null) out += `${quoteString(key)}: `;
      write(item);
    });
    depth--;
    newline();
    out += close;
  };
  write(value);
  return out;
}
