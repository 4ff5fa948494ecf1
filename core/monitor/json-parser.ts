/**
 * QEMU's JSON parser (qobject/json-parser.c, 7.2): tokens of one message in,
 * a QObject or QEMU's error text out. The texts are QEMU's, word for word,
 * because clients see them: `{"error": {"class": "GenericError", "desc":
 * "JSON parse error, expecting value"}}`.
 *
 * Like QEMU, only the first error of a message is reported (the innermost
 * one, found first), strings are checked for escapes and UTF-8 here rather
 * than in the lexer, and integers become int64, else uint64, else doubles.
 */
import { VmchanError } from '../base/error.js';
import { QDict, type QObject } from './qobject.js';

export const TOKEN_TYPES = [
  'lcurly',
  'rcurly',
  'lsquare',
  'rsquare',
  'colon',
  'comma',
  'integer',
  'float',
  'keyword',
  'string',
] as const;

export type TokenType = (typeof TOKEN_TYPES)[number];

/** One message's tokens (the lexer keeps them compact; see json-lexer.ts). */
export interface TokenList {
  readonly count: number;
  type(i: number): TokenType;
  /** The token's bytes as a binary string (one char per byte); for short tokens. */
  text(i: number): string;
  /** The token's bytes (a view, valid until the next message). */
  bytes(i: number): Uint8Array;
}

/** A parse failure: QEMU's text without the "JSON parse error, " prefix. */
class ParseFailure extends VmchanError<'JsonParseError'> {
  readonly domain = 'json';
  constructor(message: string) {
    super('JsonParseError', message);
  }
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** Bytes of a binary string as text, invalid UTF-8 as U+FFFD (what quote_str writes). */
export function binaryToText(binary: string): string {
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
}

class Parser {
  private pos = 0;
  private failure: ParseFailure | null = null;

  constructor(private readonly tokens: TokenList) {}

  /** parse_error: the first error wins. */
  private fail(message: string): void {
    if (this.failure === null) this.failure = new ParseFailure(message);
  }

  /** The next token's type, undefined at the end of the message. */
  private peek(): TokenType | undefined {
    return this.pos < this.tokens.count ? this.tokens.type(this.pos) : undefined;
  }

  private pop(): TokenType | undefined {
    const type = this.peek();
    this.pos++;
    return type;
  }

  run(): QObject | ParseFailure {
    const value = this.value();
    if (this.failure !== null) return this.failure;
    return value === undefined ? new ParseFailure('expecting value') : value;
  }

  /** undefined stands for QEMU's NULL return (failure); null is JSON null. */
  private value(): QObject | undefined {
    const token = this.peek();
    if (token === undefined) return this.failed('premature EOI');
    switch (token) {
      case 'lcurly':
        return this.object();
      case 'lsquare':
        return this.array();
      case 'integer':
      case 'float':
      case 'string':
        return this.literal();
      case 'keyword':
        return this.keyword();
      default:
        return this.failed('expecting value');
    }
  }

  private failed(message: string): undefined {
    this.fail(message);
    return undefined;
  }

  private refused(message: string): false {
    this.fail(message);
    return false;
  }

  private object(): QObject | undefined {
    this.pop();
    const dict = new QDict();
    const peek = this.peek();
    if (peek === undefined) return this.failed('premature EOI');
    if (peek === 'rcurly') {
      this.pop();
      return dict;
    }
    if (!this.pair(dict)) return undefined;
    let token = this.pop();
    if (token === undefined) return this.failed('premature EOI');
    while (token !== 'rcurly') {
      if (token !== 'comma') return this.failed('expected separator in dict');
      if (!this.pair(dict)) return undefined;
      token = this.pop();
      if (token === undefined) return this.failed('premature EOI');
    }
    return dict;
  }

  private pair(dict: QDict): boolean {
    const peek = this.peek();
    if (peek === undefined) return this.refused('premature EOI');
    const key = this.value();
    if (typeof key !== 'string') return this.refused('key is not a string in object');
    const colon = this.pop();
    if (colon === undefined) return this.refused('premature EOI');
    if (colon !== 'colon') return this.refused('missing : in object pair');
    const value = this.value();
    if (value === undefined) return this.refused('Missing value in dict');
    if (dict.has(key)) return this.refused('duplicate key');
    dict.set(key, value);
    return true;
  }

  private array(): QObject | undefined {
    this.pop();
    const list: QObject[] = [];
    const peek = this.peek();
    if (peek === undefined) return this.failed('premature EOI');
    if (peek === 'rsquare') {
      this.pop();
      return list;
    }
    let value = this.value();
    if (value === undefined) return this.failed('expecting value');
    list.push(value);
    let token = this.pop();
    if (token === undefined) return this.failed('premature EOI');
    while (token !== 'rsquare') {
      if (token !== 'comma') return this.failed('expected separator in list');
      value = this.value();
      if (value === undefined) return this.failed('expecting value');
      list.push(value);
      token = this.pop();
      if (token === undefined) return this.failed('premature EOI');
    }
    return list;
  }

  private keyword(): QObject | undefined {
    const text = this.tokens.text(this.pos++);
    if (text === 'true') return true;
    if (text === 'false') return false;
    if (text === 'null') return null;
    return this.failed(`invalid keyword '${binaryToText(text)}'`);
  }

  private literal(): QObject | undefined {
    const i = this.pos++;
    const type = this.tokens.type(i);
    if (type === 'string') return this.string(this.tokens.bytes(i));
    const text = this.tokens.text(i);
    if (type === 'integer') {
      // Up to 15 digits is always a safe integer: no BigInt for the common case.
      if (text.length <= 15) return Number(text);
      const n = BigInt(text);
      if (n >= INT64_MIN && n <= INT64_MAX) return Number.isSafeInteger(Number(n)) ? Number(n) : n;
      if (n > 0n && n <= UINT64_MAX) return n;
    }
    return Number.parseFloat(text);
  }

  /**
   * parse_string: escapes and UTF-8 are checked here, as in QEMU 7.2. The
   * result is never longer than the token, so one buffer of its size holds it.
   */
  private string(token: Uint8Array): QObject | undefined {
    const quote = token[0]!;
    const out = new Uint8Array(token.length);
    let n = 0;
    let i = 1;
    while (token[i] !== quote) {
      const c = token[i]!;
      if (c !== 0x5c) {
        out[n++] = c;
        i++;
        continue;
      }
      const begin = i;
      const e = token[i + 1];
      i += 2;
      const simple = e === undefined ? undefined : SIMPLE_ESCAPES.get(e);
      if (simple !== undefined) {
        out[n++] = simple;
        continue;
      }
      if (e !== 0x75 /* u */) return this.failed('invalid escape sequence in string');
      let cp = hex4(token, i);
      if (cp < 0) return this.failed('invalid hex escape sequence in string');
      i += 4;
      if (cp >= 0xd800 && cp <= 0xdbff && token[i] === 0x5c && token[i + 1] === 0x75) {
        const trailing = hex4(token, i + 2);
        if (trailing >= 0xdc00 && trailing <= 0xdfff) {
          cp = 0x10000 + ((cp & 0x3ff) << 10) + (trailing & 0x3ff);
          i += 6;
        } else {
          cp = -1;
        }
      }
      if (cp < 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
        return this.failed(
          `${binaryToText(latin1(token.subarray(begin, i)))} is not a valid Unicode character`,
        );
      }
      n += encoder.encodeInto(String.fromCodePoint(cp), out.subarray(n)).written;
    }
    try {
      return strictUtf8.decode(out.subarray(0, n));
    } catch {
      return this.failed('invalid UTF-8 sequence in string');
    }
  }
}

const SIMPLE_ESCAPES = new Map<number, number>(
  [
    ['"', 0x22],
    ["'", 0x27],
    ['\\', 0x5c],
    ['/', 0x2f],
    ['b', 0x08],
    ['f', 0x0c],
    ['n', 0x0a],
    ['r', 0x0d],
    ['t', 0x09],
  ].map(([c, b]) => [(c as string).charCodeAt(0), b as number]),
);
const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

function hex4(token: Uint8Array, at: number): number {
  let v = 0;
  for (let k = 0; k < 4; k++) {
    const c = token[at + k];
    const d =
      c === undefined
        ? -1
        : c >= 0x30 && c <= 0x39
          ? c - 0x30
          : c >= 0x41 && c <= 0x46
            ? c - 0x37
            : c >= 0x61 && c <= 0x66
              ? c - 0x57
              : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/** json_parser_parse: one message's tokens to a value, or QEMU's error text. */
export function parseTokens(tokens: TokenList): { value: QObject } | { error: string } {
  const r = new Parser(tokens).run();
  return r instanceof ParseFailure ? { error: `JSON parse error, ${r.message}` } : { value: r };
}
