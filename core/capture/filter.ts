/**
 * The capture filter language, one for the CLI (`vmchan read -Y`) and the app.
 *
 *   port == test1          port by name (or guest node name, `vport0p2`)
 *   port == 2              port by number (also !=, <, <=, >, >=)
 *   dir == h2g             also g2h, host-to-guest, guest-to-host, in, out
 *   kind == control        data | control | event | ring
 *   len > 100              ==, !=, <, <=, >, >= (also eq ne lt le gt ge)
 *   time >= 1.5            seconds since the first record
 *   device == vser0
 *   contains "text"        bytes (and, for events, their text); escapes \" \\ \n \r \t \xNN
 *   contains 01:02:ff      hex bytes (separated by : . - or nothing)
 *   combined with and / or / not, && / || / !, and parentheses; not binds
 *   tightest, then and, then or. An empty filter matches everything.
 *
 * `parseFilter` returns a compiled filter or a FilterError that points at a
 * column (`filter error at column 12: expected a value after '=='`;
 * `caretLine` draws the ^ under it). Nothing throws.
 *
 * The compiled predicate is a tree of closures over a {@link FilterSubject},
 * an object the caller may reuse for every record (the pcapng reader fills
 * one from its index, so only `contains` ever reads a payload from disk).
 * This module is pure TypeScript without node:*, so the renderer can use it.
 */
import { VmchanError } from '../base/error.js';

import type { CaptureRecord, Direction, RecordKind } from './record.js';
import { decodePayload, type DecodedPayload } from './protocols.js';

export type FilterField = 'port' | 'dir' | 'kind' | 'len' | 'time' | 'device';
export type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

export type FilterNode =
  | { type: 'and'; left: FilterNode; right: FilterNode }
  | { type: 'or'; left: FilterNode; right: FilterNode }
  | { type: 'not'; expr: FilterNode }
  | { type: 'compare'; field: FilterField; op: CompareOp; value: number | string }
  | { type: 'contains'; bytes: Uint8Array; text: string | undefined }
  /** A decoded protocol field (`qga.command == "guest-sync"`), or `proto == qga`. */
  | { type: 'decoded'; name: string; op: CompareOp; value: number | string }
  | { type: 'all' };

/** Protocol prefixes of decoded fields (core/capture/protocols.ts). */
const DECODED_PREFIXES = ['qga.', 'vdagent.', 'guestfs.', 'json.', 'text.'];

/** What a filter looks at; callers may reuse one object for all records. */
export interface FilterSubject {
  kind: RecordKind;
  direction: Direction | undefined;
  length: number;
  device: string | undefined;
  port: number | undefined;
  /** The port's name, if it has one. */
  portName: string | undefined;
  /** The port's label in captures (`vport0p2` for an unnamed port), if any. */
  portLabel: string | undefined;
  /** Seconds since the first record. */
  relTime: number;
  /** The record's bytes (called only by `contains`). */
  payload(): Uint8Array;
  /** Event or ring text, or a packet comment (called only by `contains "text"`). */
  text(): string | undefined;
}

export type FilterPredicate = (s: FilterSubject) => boolean;

export interface Filter {
  /** The filter as typed. */
  source: string;
  ast: FilterNode;
  test: FilterPredicate;
  /** Whether the filter looks into payloads (so it cannot run on an index alone). */
  needsPayload: boolean;
}

export class FilterError extends VmchanError<'FilterSyntax'> {
  readonly domain = 'filter';
  constructor(
    /** 1-based column the problem is at (length + 1: at the end). */
    readonly column: number,
    message: string,
    readonly source: string,
  ) {
    super('FilterSyntax', message);
  }

  protected override details(): Record<string, unknown> {
    return { column: this.column, source: this.source };
  }

  /** `filter error at column 12: expected a value after '=='` */
  override toString(): string {
    return `filter error at column ${this.column}: ${this.message}`;
  }

  /** The filter with a caret under the column. */
  caret(): string {
    return caretLine(this.source, this.column);
  }
}

export function isFilterError(v: unknown): v is FilterError {
  return v instanceof FilterError;
}

/** Two lines: the text, and a ^ under the 1-based column. */
export function caretLine(source: string, column: number): string {
  const flat = source.replace(/[\t\r\n]/g, ' ');
  return `${flat}\n${' '.repeat(Math.max(0, column - 1))}^`;
}

// ---------------------------------------------------------------------------
// Tokens

type TokType = 'word' | 'string' | 'op' | 'lparen' | 'rparen' | 'not' | 'and' | 'or' | 'end';
interface Token {
  type: TokType;
  text: string;
  /** 0-based start in the source. */
  pos: number;
  /** String tokens: the unescaped bytes. */
  bytes?: Uint8Array;
}

const SPECIAL = new Set(['(', ')', '!', '=', '<', '>', '&', '|', '"']);

class Fail {
  constructor(
    readonly pos: number,
    readonly message: string,
  ) {}
}

function tokenize(src: string): Token[] | Fail {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (c === '(') out.push({ type: 'lparen', text: c, pos: i++ });
    else if (c === ')') out.push({ type: 'rparen', text: c, pos: i++ });
    else if (two === '&&') {
      out.push({ type: 'and', text: two, pos: i });
      i += 2;
    } else if (two === '||') {
      out.push({ type: 'or', text: two, pos: i });
      i += 2;
    } else if (two === '==' || two === '!=' || two === '<=' || two === '>=') {
      out.push({ type: 'op', text: two, pos: i });
      i += 2;
    } else if (c === '<' || c === '>') out.push({ type: 'op', text: c, pos: i++ });
    else if (c === '!') out.push({ type: 'not', text: c, pos: i++ });
    else if (c === '=') return new Fail(i, "a single '=' is not an operator: use '=='");
    else if (c === '&' || c === '|')
      return new Fail(i, `a single '${c}' is not an operator: use '${c}${c}'`);
    else if (c === '"') {
      const s = readString(src, i);
      if (s instanceof Fail) return s;
      out.push(s.token);
      i = s.end;
    } else {
      const start = i;
      while (i < src.length && !SPECIAL.has(src[i]!) && !/\s/.test(src[i]!)) i++;
      const text = src.slice(start, i);
      const lower = text.toLowerCase();
      if (lower === 'and') out.push({ type: 'and', text, pos: start });
      else if (lower === 'or') out.push({ type: 'or', text, pos: start });
      else if (lower === 'not') out.push({ type: 'not', text, pos: start });
      else if (WORD_OPS[lower]) out.push({ type: 'op', text: WORD_OPS[lower], pos: start });
      else out.push({ type: 'word', text, pos: start });
    }
  }
  out.push({ type: 'end', text: '', pos: src.length });
  return out;
}

const WORD_OPS: Record<string, CompareOp | undefined> = {
  eq: '==',
  ne: '!=',
  lt: '<',
  le: '<=',
  gt: '>',
  ge: '>=',
};

const encoder = new TextEncoder();

function readString(src: string, start: number): { token: Token; end: number } | Fail {
  let i = start + 1;
  const parts: number[] = [];
  let text = '';
  while (i < src.length) {
    const c = src[i]!;
    if (c === '"') {
      return {
        token: { type: 'string', text, pos: start, bytes: Uint8Array.from(parts) },
        end: i + 1,
      };
    }
    if (c === '\\') {
      const e = src[i + 1];
      const simple: Record<string, string> = {
        '"': '"',
        '\\': '\\',
        n: '\n',
        r: '\r',
        t: '\t',
        '0': '\0',
      };
      if (e !== undefined && simple[e] !== undefined) {
        text += simple[e];
        parts.push(simple[e].charCodeAt(0));
        i += 2;
        continue;
      }
      if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(src.slice(i + 2, i + 4))) {
        const b = parseInt(src.slice(i + 2, i + 4), 16);
        text += String.fromCharCode(b);
        parts.push(b);
        i += 4;
        continue;
      }
      return new Fail(
        i,
        `unknown escape '\\${e ?? ''}' in a string (use \\" \\\\ \\n \\r \\t \\0 or \\xNN)`,
      );
    }
    const cp = src.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    text += ch;
    for (const b of encoder.encode(ch)) parts.push(b);
    i += ch.length;
  }
  return new Fail(start, 'unterminated string: add the closing "');
}

// ---------------------------------------------------------------------------
// Parser

const FIELD_ALIASES: Record<string, FilterField> = {
  port: 'port',
  dir: 'dir',
  direction: 'dir',
  kind: 'kind',
  len: 'len',
  length: 'len',
  time: 'time',
  device: 'device',
  dev: 'device',
};

const DIRECTIONS: Record<string, Direction> = {
  h2g: 'host-to-guest',
  'host-to-guest': 'host-to-guest',
  in: 'host-to-guest',
  inbound: 'host-to-guest',
  g2h: 'guest-to-host',
  'guest-to-host': 'guest-to-host',
  out: 'guest-to-host',
  outbound: 'guest-to-host',
};
const KINDS: readonly RecordKind[] = ['data', 'control', 'event', 'ring'];
const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const HEX_BYTES = /^[0-9a-fA-F]{2}(?:[:.-]?[0-9a-fA-F]{2})*$/;

/**
 * Bounds that keep the recursive parser, compiler and printer far from the
 * stack's end (issue 13 item 10: 4,000 parentheses or 30,000 `not`s
 * overflowed it): nesting of '(' and 'not', and conditions joined by
 * and/or (each one a level of the tree the compiler walks).
 */
export const MAX_FILTER_NESTING = 256;
export const MAX_FILTER_CONDITIONS = 4096;

class Parser {
  private i = 0;
  private depth = 0;
  private conditions = 0;
  constructor(private readonly toks: Token[]) {}

  private deeper(t: Token): Fail | null {
    if (++this.depth <= MAX_FILTER_NESTING) return null;
    return new Fail(
      t.pos,
      `the filter nests '(' and 'not' more than ${MAX_FILTER_NESTING} levels deep`,
    );
  }

  private joined(op: Token): Fail | null {
    if (++this.conditions < MAX_FILTER_CONDITIONS) return null;
    return new Fail(
      op.pos,
      `the filter joins more than ${MAX_FILTER_CONDITIONS} conditions with 'and'/'or'`,
    );
  }

  private peek(): Token {
    return this.toks[this.i]!;
  }
  private next(): Token {
    return this.toks[this.i++]!;
  }

  parse(): FilterNode | Fail {
    if (this.peek().type === 'end') return { type: 'all' };
    const e = this.or();
    if (e instanceof Fail) return e;
    const t = this.peek();
    if (t.type !== 'end') {
      if (t.type === 'rparen') return new Fail(t.pos, "unexpected ')' without a matching '('");
      return new Fail(
        t.pos,
        `unexpected ${describe(t)} after a complete condition: join conditions with 'and' or 'or'`,
      );
    }
    return e;
  }

  private or(): FilterNode | Fail {
    let left = this.and();
    if (left instanceof Fail) return left;
    while (this.peek().type === 'or') {
      const op = this.next();
      const tooMany = this.joined(op);
      if (tooMany !== null) return tooMany;
      const right = this.and(op);
      if (right instanceof Fail) return right;
      left = { type: 'or', left, right };
    }
    return left;
  }

  private and(after?: Token): FilterNode | Fail {
    let left = this.unary(after);
    if (left instanceof Fail) return left;
    while (this.peek().type === 'and') {
      const op = this.next();
      const tooMany = this.joined(op);
      if (tooMany !== null) return tooMany;
      const right = this.unary(op);
      if (right instanceof Fail) return right;
      left = { type: 'and', left, right };
    }
    return left;
  }

  private unary(after?: Token): FilterNode | Fail {
    const t = this.peek();
    if (t.type === 'not') {
      this.next();
      const tooDeep = this.deeper(t);
      if (tooDeep !== null) return tooDeep;
      const e = this.unary(t);
      this.depth--;
      if (e instanceof Fail) return e;
      return { type: 'not', expr: e };
    }
    return this.primary(after);
  }

  private primary(after?: Token): FilterNode | Fail {
    const t = this.peek();
    if (t.type === 'lparen') {
      this.next();
      if (this.peek().type === 'rparen')
        return new Fail(this.peek().pos, "expected a condition after '('");
      const tooDeep = this.deeper(t);
      if (tooDeep !== null) return tooDeep;
      const e = this.or();
      this.depth--;
      if (e instanceof Fail) return e;
      const close = this.peek();
      if (close.type !== 'rparen') {
        return new Fail(
          close.pos,
          close.type === 'end'
            ? `expected ')' to close the '(' at column ${t.pos + 1}`
            : `expected ')' to close the '(' at column ${t.pos + 1}, found ${describe(close)}`,
        );
      }
      this.next();
      return e;
    }
    if (t.type === 'word') {
      const lower = t.text.toLowerCase();
      if (lower === 'contains') {
        this.next();
        return this.contains(t);
      }
      if (
        lower === 'proto' ||
        lower === 'protocol' ||
        DECODED_PREFIXES.some((p) => lower.startsWith(p))
      ) {
        this.next();
        return this.decoded(t);
      }
      const field = FIELD_ALIASES[lower];
      if (!field) {
        return new Fail(
          t.pos,
          `unknown field '${t.text}' (fields: port, dir, kind, len, time, device; or contains "...")`,
        );
      }
      this.next();
      return this.compare(t, field);
    }
    const what = after ? `after '${after.text}'` : 'here';
    if (t.type === 'end') return new Fail(t.pos, `expected a condition ${what}`);
    return new Fail(t.pos, `expected a condition ${what}, found ${describe(t)}`);
  }

  private decoded(ft: Token): FilterNode | Fail {
    const opTok = this.next();
    if (opTok.type !== 'op') {
      return new Fail(
        opTok.pos,
        `expected an operator (==, !=, <, <=, >, >=) after '${ft.text}'` +
          (opTok.type === 'end' ? '' : `, found ${describe(opTok)}`),
      );
    }
    const v = this.next();
    if (v.type !== 'word' && v.type !== 'string')
      return new Fail(v.pos, `expected a value after '${opTok.text}'`);
    const lower = ft.text.toLowerCase();
    const name = lower === 'protocol' ? 'proto' : lower;
    const value = v.type === 'word' && NUMBER.test(v.text) ? Number(v.text) : v.text;
    return { type: 'decoded', name, op: opTok.text as CompareOp, value };
  }

  private contains(kw: Token): FilterNode | Fail {
    const v = this.next();
    if (v.type === 'string') {
      if (v.bytes!.length === 0) return new Fail(v.pos, 'contains needs at least one byte');
      return { type: 'contains', bytes: v.bytes!, text: v.text };
    }
    if (v.type === 'word' && HEX_BYTES.test(v.text)) {
      const hex = v.text.replace(/[:.-]/g, '');
      const bytes = new Uint8Array(hex.length / 2);
      for (let k = 0; k < bytes.length; k++) bytes[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
      return { type: 'contains', bytes, text: undefined };
    }
    if (v.type === 'word') {
      return new Fail(
        v.pos,
        `expected a quoted text or hex bytes like 01:02:ff after '${kw.text}', found '${v.text}' (quote text: "${v.text}")`,
      );
    }
    return new Fail(v.pos, `expected a quoted text or hex bytes like 01:02:ff after '${kw.text}'`);
  }

  private compare(ft: Token, field: FilterField): FilterNode | Fail {
    const opTok = this.next();
    if (opTok.type !== 'op') {
      return new Fail(
        opTok.pos,
        `expected an operator (==, !=, <, <=, >, >=) after '${ft.text}'` +
          (opTok.type === 'end' ? '' : `, found ${describe(opTok)}`),
      );
    }
    const op = opTok.text as CompareOp;
    const v = this.next();
    if (v.type !== 'word' && v.type !== 'string') {
      return new Fail(v.pos, `expected a value after '${opTok.text}'`);
    }
    const equality = op === '==' || op === '!=';
    const isNumber = v.type === 'word' && NUMBER.test(v.text);
    switch (field) {
      case 'len':
      case 'time': {
        if (!isNumber)
          return new Fail(v.pos, `expected a number after '${opTok.text}', found '${v.text}'`);
        const n = Number(v.text);
        if (field === 'len' && !Number.isInteger(n)) {
          return new Fail(v.pos, `a length is a whole number of bytes, not '${v.text}'`);
        }
        return { type: 'compare', field, op, value: n };
      }
      case 'port':
        if (isNumber) {
          const n = Number(v.text);
          if (!Number.isInteger(n))
            return new Fail(v.pos, `a port number is a whole number, not '${v.text}'`);
          return { type: 'compare', field, op, value: n };
        }
        if (!equality) {
          return new Fail(
            opTok.pos,
            `'${opTok.text}' needs a port number; port names compare with == or !=`,
          );
        }
        return { type: 'compare', field, op, value: v.text };
      case 'device':
        if (!equality)
          return new Fail(opTok.pos, `devices compare with == or !=, not '${opTok.text}'`);
        return { type: 'compare', field, op, value: v.text };
      case 'dir': {
        if (!equality)
          return new Fail(opTok.pos, `directions compare with == or !=, not '${opTok.text}'`);
        const d = DIRECTIONS[v.text.toLowerCase()];
        if (!d) {
          return new Fail(
            v.pos,
            `unknown direction '${v.text}' (h2g, g2h, host-to-guest, guest-to-host)`,
          );
        }
        return { type: 'compare', field, op, value: d };
      }
      case 'kind': {
        if (!equality)
          return new Fail(opTok.pos, `kinds compare with == or !=, not '${opTok.text}'`);
        const k = v.text.toLowerCase() as RecordKind;
        if (!KINDS.includes(k))
          return new Fail(v.pos, `unknown kind '${v.text}' (data, control, event, ring)`);
        return { type: 'compare', field, op, value: k };
      }
    }
  }
}

function describe(t: Token): string {
  switch (t.type) {
    case 'end':
      return 'the end';
    case 'string':
      return `"${t.text}"`;
    default:
      return `'${t.text}'`;
  }
}

// ---------------------------------------------------------------------------
// Compiling

function compile(node: FilterNode): FilterPredicate {
  switch (node.type) {
    case 'all':
      return () => true;
    case 'and': {
      const a = compile(node.left);
      const b = compile(node.right);
      return (s) => a(s) && b(s);
    }
    case 'or': {
      const a = compile(node.left);
      const b = compile(node.right);
      return (s) => a(s) || b(s);
    }
    case 'not': {
      const a = compile(node.expr);
      return (s) => !a(s);
    }
    case 'contains': {
      const needle = node.bytes;
      const text = node.text;
      if (text === undefined) return (s) => indexOfBytes(s.payload(), needle) >= 0;
      return (s) => {
        if (indexOfBytes(s.payload(), needle) >= 0) return true;
        if (s.kind === 'data') return false;
        const t = s.text();
        return t !== undefined && t.includes(text);
      };
    }
    case 'compare':
      return compileCompare(node.field, node.op, node.value);
    case 'decoded':
      return compileDecoded(node.name, node.op, node.value);
  }
}

/** The decoded payload of a data record, for filters on protocol fields. */
function decodedOf(s: FilterSubject): DecodedPayload | undefined {
  if (s.kind !== 'data') return undefined;
  return decodePayload(s.portName ?? s.portLabel, s.payload());
}

function compileDecoded(name: string, op: CompareOp, value: number | string): FilterPredicate {
  const test = (x: string | number | boolean): boolean => {
    const a = typeof x === 'boolean' ? (x ? 1 : 0) : x;
    const b = typeof a === 'number' && typeof value === 'string' ? Number(value) : value;
    const left = typeof b === 'string' ? String(a) : a;
    switch (op) {
      case '==':
        return left === b;
      case '!=':
        return left !== b;
      case '<':
        return left < b;
      case '<=':
        return left <= b;
      case '>':
        return left > b;
      case '>=':
        return left >= b;
    }
  };
  return (s) => {
    const d = decodedOf(s);
    if (d === undefined) return op === '!=' && name === 'proto';
    if (name === 'proto') return test(d.protocol);
    const f = d.fields.find((x) => x.name === name);
    return f !== undefined && test(f.value);
  };
}

function compileCompare(
  field: FilterField,
  op: CompareOp,
  value: number | string,
): FilterPredicate {
  const eq = compileEquals(field, value);
  if (op === '==' && eq) return eq;
  if (op === '!=' && eq) return (s) => !eq(s);
  const v = value as number;
  const get: (s: FilterSubject) => number | undefined =
    field === 'len' ? (s) => s.length : field === 'time' ? (s) => s.relTime : (s) => s.port;
  switch (op) {
    case '==':
      return (s) => get(s) === v;
    case '!=':
      return (s) => get(s) !== v;
    case '<':
      return (s) => {
        const x = get(s);
        return x !== undefined && x < v;
      };
    case '<=':
      return (s) => {
        const x = get(s);
        return x !== undefined && x <= v;
      };
    case '>':
      return (s) => {
        const x = get(s);
        return x !== undefined && x > v;
      };
    case '>=':
      return (s) => {
        const x = get(s);
        return x !== undefined && x >= v;
      };
  }
}

/** Equality for the fields where it is not plain numeric (undefined: use the numeric path). */
function compileEquals(field: FilterField, value: number | string): FilterPredicate | undefined {
  switch (field) {
    case 'port':
      if (typeof value === 'string') return (s) => s.portName === value || s.portLabel === value;
      return (s) => s.port === value;
    case 'dir':
      return (s) => s.direction === value;
    case 'kind':
      return (s) => s.kind === value;
    case 'device':
      return (s) => s.device === value;
    default:
      return undefined;
  }
}

/** Where `needle` first occurs in `hay`, or -1. */
export function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  const n = needle.length;
  if (n === 0) return 0;
  const first = needle[0]!;
  const last = hay.length - n;
  let i = hay.indexOf(first);
  while (i >= 0 && i <= last) {
    let k = 1;
    while (k < n && hay[i + k] === needle[k]) k++;
    if (k === n) return i;
    i = hay.indexOf(first, i + 1);
  }
  return -1;
}

function usesPayload(node: FilterNode): boolean {
  switch (node.type) {
    case 'contains':
    case 'decoded':
      return true;
    case 'and':
    case 'or':
      return usesPayload(node.left) || usesPayload(node.right);
    case 'not':
      return usesPayload(node.expr);
    default:
      return false;
  }
}

/** Parse and compile a filter; an error value points at the column. */
export function parseFilter(source: string): Filter | FilterError {
  const toks = tokenize(source);
  if (toks instanceof Fail) return new FilterError(toks.pos + 1, toks.message, source);
  const ast = new Parser(toks).parse();
  if (ast instanceof Fail) return new FilterError(ast.pos + 1, ast.message, source);
  return { source, ast, test: compile(ast), needsPayload: usesPayload(ast) };
}

/** The canonical text of a filter tree (parseFilter(formatFilter(ast)) gives the same tree). */
export function formatFilter(node: FilterNode): string {
  switch (node.type) {
    case 'all':
      return '';
    case 'and':
    case 'or':
      return formatChain(node, node.type);
    case 'not':
      return `not ${wrap(node.expr, 'not', 'right')}`;
    case 'contains':
      return `contains ${[...node.bytes].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
    case 'decoded':
      return `${node.name} ${node.op} ${typeof node.value === 'number' ? String(node.value) : `"${node.value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`}`;
    case 'compare': {
      let v: string;
      if (node.field === 'dir') v = node.value === 'host-to-guest' ? 'h2g' : 'g2h';
      else if (typeof node.value === 'number') v = String(node.value);
      else v = quoteIfNeeded(node.value);
      return `${node.field} ${node.op} ${v}`;
    }
  }
}

/**
 * `a and b and c ...`: the parser builds a left-leaning tree, as deep as the
 * chain is long (up to the 4096 joined conditions a filter may have), so the
 * left spine is walked in a loop rather than by recursion.
 */
function formatChain(node: FilterNode, op: 'and' | 'or'): string {
  const rights: FilterNode[] = [];
  let left = node;
  while (left.type === op) {
    rights.push(left.right);
    left = left.left;
  }
  let text = wrap(left, op, 'left');
  for (let i = rights.length - 1; i >= 0; i--) text += ` ${op} ${wrap(rights[i]!, op, 'right')}`;
  return text;
}

/** Parenthesize where precedence (not > and > or) or left associativity would regroup. */
function wrap(node: FilterNode, parent: 'and' | 'or' | 'not', side: 'left' | 'right'): string {
  const text = formatFilter(node);
  let needs = false;
  if (node.type === 'or') needs = parent !== 'or' || side === 'right';
  else if (node.type === 'and') needs = parent === 'not' || (parent === 'and' && side === 'right');
  return needs ? `(${text})` : text;
}

function quoteIfNeeded(s: string): string {
  const plain =
    s.length > 0 &&
    !NUMBER.test(s) &&
    ![...s].some((c) => SPECIAL.has(c) || /\s/.test(c) || c === '\\') &&
    !['and', 'or', 'not', 'contains', ...Object.keys(WORD_OPS)].includes(s.toLowerCase());
  if (plain) return s;
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t').replace(/\0/g, '\\0')}"`;
}

// ---------------------------------------------------------------------------
// Records as subjects

/** A filter subject for a record (live capture, tests); `firstTime` is the capture's first record. */
export function subjectOfRecord(record: CaptureRecord, firstTime: bigint): FilterSubject {
  return {
    kind: record.kind,
    direction: record.direction,
    length: record.length,
    device: record.device,
    port: record.port,
    portName: record.portName,
    portLabel: record.portName,
    relTime: Number(record.time - firstTime) / 1e9,
    payload: () => record.bytes,
    text: () => (record.kind === 'event' || record.kind === 'ring' ? record.text : record.comment),
  };
}

/** Run a filter over records in memory; returns the indices that match. */
export function filterRecords(filter: Filter, records: readonly CaptureRecord[]): number[] {
  const out: number[] = [];
  const first = records[0]?.time ?? 0n;
  for (let i = 0; i < records.length; i++) {
    if (filter.test(subjectOfRecord(records[i]!, first))) out.push(i);
  }
  return out;
}
