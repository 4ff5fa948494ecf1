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

export type TokenType =
  | 'lcurly'
  | 'rcurly'
  | 'lsquare'
  | 'rsquare'
  | 'colon'
  | 'comma'
  | 'integer'
  | 'float'
  | 'keyword'
  | 'string';

export interface JsonToken {
  type: TokenType;
  /** The token's bytes as a binary string (one char per byte). */
  text: string;
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

  constructor(private readonly tokens: readonly JsonToken[]) {}

  /** parse_error: the first error wins. */
  private fail(message: string): void {
    if (this.failure === null) this.failure = new ParseFailure(message);
  }

  private peek(): JsonToken | undefined {
    return this.tokens[this.pos];
  }

  private pop(): JsonToken | undefined {
    return this.tokens[this.pos++];
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
    switch (token.type) {
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
    if (peek.type === 'rcurly') {
      this.pop();
      return dict;
    }
    if (!this.pair(dict)) return undefined;
    let token = this.pop();
    if (token === undefined) return this.failed('premature EOI');
    while (token.type !== 'rcurly') {
      if (token.type !== 'comma') return this.failed('expected separator in dict');
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
    if (colon.type !== 'colon') return this.refused('missing : in object pair');
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
    if (peek.type === 'rsquare') {
      this.pop();
      return list;
    }
    let value = this.value();
    if (value === undefined) return this.failed('expecting value');
    list.push(value);
    let token = this.pop();
    if (token === undefined) return this.failed('premature EOI');
    while (token.type !== 'rsquare') {
      if (token.type !== 'comma') return this.failed('expected separator in list');
      value = this.value();
      if (value === undefined) return this.failed('expecting value');
      list.push(value);
      token = this.pop();
      if (token === undefined) return this.failed('premature EOI');
    }
    return list;
  }

  private keyword(): QObject | undefined {
    const token = this.pop()!;
    if (token.text === 'true') return true;
    if (token.text === 'false') return false;
    if (token.text === 'null') return null;
    return this.failed(`invalid keyword '${binaryToText(token.text)}'`);
  }

  private literal(): QObject | undefined {
    const token = this.pop()!;
    if (token.type === 'string') return this.string(token.text);
    if (token.type === 'integer') {
      const n = BigInt(token.text);
      if (n >= INT64_MIN && n <= INT64_MAX) return Number.isSafeInteger(Number(n)) ? Number(n) : n;
      if (n > 0n && n <= UINT64_MAX) return n;
    }
    return Number.parseFloat(token.text);
  }

  /** parse_string: escapes and UTF-8 are checked here, as in QEMU 7.2. */
  private string(text: string): QObject | undefined {
    const quote = text[0]!;
    const bytes: number[] = [];
    const pushCodePoint = (cp: number): void => {
      bytes.push(...new TextEncoder().encode(String.fromCodePoint(cp)));
    };
    let i = 1;
    while (text[i] !== quote) {
      const c = text[i]!;
      if (c !== '\\') {
        bytes.push(c.charCodeAt(0));
        i++;
        continue;
      }
      const begin = i;
      const e = text[i + 1];
      i += 2;
      const simple: Record<string, number> = {
        '"': 0x22,
        "'": 0x27,
        '\\': 0x5c,
        '/': 0x2f,
        b: 0x08,
        f: 0x0c,
        n: 0x0a,
        r: 0x0d,
        t: 0x09,
      };
      if (e !== undefined && e in simple) {
        bytes.push(simple[e]!);
        continue;
      }
      if (e !== 'u') return this.failed('invalid escape sequence in string');
      let cp = hex4(text, i);
      if (cp < 0) return this.failed('invalid hex escape sequence in string');
      i += 4;
      if (cp >= 0xd800 && cp <= 0xdbff && text[i] === '\\' && text[i + 1] === 'u') {
        const trailing = hex4(text, i + 2);
        if (trailing >= 0xdc00 && trailing <= 0xdfff) {
          cp = 0x10000 + ((cp & 0x3ff) << 10) + (trailing & 0x3ff);
          i += 6;
        } else {
          cp = -1;
        }
      }
      if (cp < 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
        return this.failed(
          `${binaryToText(text.slice(begin, i))} is not a valid Unicode character`,
        );
      }
      pushCodePoint(cp);
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
    } catch {
      return this.failed('invalid UTF-8 sequence in string');
    }
  }
}

function hex4(text: string, at: number): number {
  const digits = text.slice(at, at + 4);
  return /^[0-9a-fA-F]{4}$/.test(digits) ? Number.parseInt(digits, 16) : -1;
}

/** json_parser_parse: one message's tokens to a value, or QEMU's error text. */
export function parseTokens(tokens: readonly JsonToken[]): { value: QObject } | { error: string } {
  const r = new Parser(tokens).run();
  return r instanceof ParseFailure ? { error: `JSON parse error, ${r.message}` } : { value: r };
}
