/**
 * QEMU's JSON lexer and message streamer (qobject/json-lexer.c,
 * json-streamer.c, 7.2), the front end of every QMP monitor and of the
 * guest agent. It decides what a client gets for malformed input, so it
 * follows QEMU's state machine rather than a generic JSON splitter:
 *
 * - bytes are lexed into tokens; a message ends when a token brings the
 *   brace and bracket counts back to zero (or below: a stray `}` is a
 *   message of its own that fails with "expecting value"); a bare keyword
 *   or number is a whole message;
 * - a byte no token can take is a lexical error: "JSON parse error, stray
 *   '<token so far>'" is emitted at once, the tokens collected for the
 *   message are dropped, and the lexer skips input until a structural
 *   character ({ } [ ] , :), a control character other than tab, or a
 *   0xFE/0xFF byte (the documented way to resynchronise);
 * - limits: 64 MiB per message, 2M tokens, nesting 1024 (QEMU's texts).
 *
 * Single-quoted strings are accepted, as QEMU accepts them. Each emitted
 * item is a value (parsed by json-parser.ts) or an error text.
 */
import {
  binaryToText,
  parseTokens,
  TOKEN_TYPES,
  type TokenList,
  type TokenType,
} from './json-parser.js';
import type { QObject } from './qobject.js';

export type JsonMessage = { value: QObject } | { error: string };

const MAX_TOKEN_SIZE = 64 * 1024 * 1024;
const MAX_TOKEN_COUNT = 2 * 1024 * 1024;
const MAX_NESTING = 1 << 10;

type State =
  | 'start'
  | 'recovery'
  | 'dq'
  | 'dq-escape'
  | 'sq'
  | 'sq-escape'
  | 'zero'
  | 'sign'
  | 'digits'
  | 'mantissa'
  | 'mantissa-digits'
  | 'exp-e'
  | 'exp-sign'
  | 'exp-digits'
  | 'keyword';

/** What a byte does in a state: go on (consuming it), end a token (not consuming it), or fail. */
type Step =
  { go: State } | { emit: TokenType; consume: boolean } | { error: true } | { restart: true };

// One object per possible step, made once: the lexer runs per byte and must
// not allocate per byte (a 64 MiB line would otherwise churn the heap).
const GO = new Map<State, Step>();
const go = (state: State): Step => {
  let s = GO.get(state);
  if (s === undefined) GO.set(state, (s = { go: state }));
  return s;
};
const EMIT = new Map<TokenType, readonly [Step, Step]>(
  TOKEN_TYPES.map((type) => [
    type,
    [
      { emit: type, consume: false },
      { emit: type, consume: true },
    ],
  ]),
);
const emit = (type: TokenType, consume: boolean): Step => EMIT.get(type)![consume ? 1 : 0];
const ERROR: Step = { error: true };
const RESTART: Step = { restart: true };

const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;
const isLower = (b: number): boolean => b >= 0x61 && b <= 0x7a;

/** A terminal state: any ASCII byte ends the token without being consumed; other bytes are errors. */
function terminal(type: TokenType, b: number): Step {
  return b <= 0x7f ? emit(type, false) : ERROR;
}

const STRUCTURAL: Record<number, TokenType> = {
  0x7b: 'lcurly',
  0x7d: 'rcurly',
  0x5b: 'lsquare',
  0x5d: 'rsquare',
  0x2c: 'comma',
  0x3a: 'colon',
};

function step(state: State, b: number): Step {
  switch (state) {
    case 'start': {
      const structural = STRUCTURAL[b];
      if (structural !== undefined) return emit(structural, true);
      if (b === 0x22) return go('dq');
      if (b === 0x27) return go('sq');
      if (b === 0x30) return go('zero');
      if (b >= 0x31 && b <= 0x39) return go('digits');
      if (b === 0x2d) return go('sign');
      if (isLower(b)) return go('keyword');
      if (b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a) return RESTART;
      return ERROR;
    }
    case 'recovery':
      // Resynchronise on structural characters, control characters but tab, 0xFE and 0xFF.
      if (STRUCTURAL[b] !== undefined || (b < 0x20 && b !== 0x09) || b >= 0xfe) {
        return go('start'); // not consumed: see feedByte
      }
      return go('recovery');
    case 'dq':
    case 'sq': {
      const quote = state === 'dq' ? 0x22 : 0x27;
      if (b === quote) return emit('string', true);
      if (b === 0x5c) return go(state === 'dq' ? 'dq-escape' : 'sq-escape');
      return b >= 0x20 && b <= 0xfd ? go(state) : ERROR;
    }
    case 'dq-escape':
    case 'sq-escape':
      return b >= 0x20 && b <= 0xfd ? go(state === 'dq-escape' ? 'dq' : 'sq') : ERROR;
    case 'zero':
      if (isDigit(b)) return ERROR;
      if (b === 0x2e) return go('mantissa');
      return terminal('integer', b);
    case 'sign':
      if (b === 0x30) return go('zero');
      if (b >= 0x31 && b <= 0x39) return go('digits');
      return ERROR;
    case 'digits':
      if (isDigit(b)) return go('digits');
      if (b === 0x65 || b === 0x45) return go('exp-e');
      if (b === 0x2e) return go('mantissa');
      return terminal('integer', b);
    case 'mantissa':
      return isDigit(b) ? go('mantissa-digits') : ERROR;
    case 'mantissa-digits':
      if (isDigit(b)) return go('mantissa-digits');
      if (b === 0x65 || b === 0x45) return go('exp-e');
      return terminal('float', b);
    case 'exp-e':
      if (b === 0x2d || b === 0x2b) return go('exp-sign');
      return isDigit(b) ? go('exp-digits') : ERROR;
    case 'exp-sign':
      return isDigit(b) ? go('exp-digits') : ERROR;
    case 'exp-digits':
      return isDigit(b) ? go('exp-digits') : terminal('float', b);
    case 'keyword':
      return isLower(b) ? go('keyword') : terminal('keyword', b);
  }
}

/**
 * One message's tokens, compact: their bytes back to back in one buffer and
 * a type and an end per token (5 bytes), so a message costs about its own size (QEMU keeps
 * a GString per token; a JS object and string per token would cost ~50
 * times a short token). The token being read is the tail of the buffer.
 */
class TokenStore implements TokenList {
  private buffer = new Uint8Array(SMALL_BUFFER);
  /** Bytes of accepted tokens plus the token being read. */
  length = 0;
  /** Where the token being read starts (= bytes of accepted tokens). */
  tokenStart = 0;
  private types = new Uint8Array(SMALL_TOKENS);
  /** Token i is bytes ends[i-1] (0 for the first) up to ends[i]: they are back to back. */
  private ends = new Uint32Array(SMALL_TOKENS);
  count = 0;

  get tokenLength(): number {
    return this.length - this.tokenStart;
  }

  push(b: number): void {
    if (this.length === this.buffer.length) this.buffer = grow(this.buffer, this.length + 1);
    this.buffer[this.length++] = b;
  }

  pushRun(bytes: Uint8Array): void {
    if (this.length + bytes.length > this.buffer.length) {
      this.buffer = grow(this.buffer, this.length + bytes.length);
    }
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** The token being read, as a binary string (for error texts). */
  tokenText(): string {
    return latin1(this.buffer.subarray(this.tokenStart, this.length));
  }

  dropToken(): void {
    this.length = this.tokenStart;
  }

  acceptToken(type: TokenType): void {
    if (this.count === this.types.length) {
      this.types = grow(this.types, this.count + 1);
      this.ends = grow(this.ends, this.count + 1);
    }
    this.types[this.count] = TOKEN_TYPES.indexOf(type);
    this.ends[this.count] = this.length;
    this.count++;
    this.tokenStart = this.length;
  }

  /** Forget the message (and give back a big buffer: memory returns after a large line). */
  clear(): void {
    const token = this.buffer.subarray(this.tokenStart, this.length);
    if (this.buffer.length > SMALL_BUFFER * 16) {
      const keep = new Uint8Array(Math.max(SMALL_BUFFER, token.length));
      keep.set(token);
      this.buffer = keep;
    } else {
      this.buffer.copyWithin(0, this.tokenStart, this.length);
    }
    this.length = token.length;
    this.tokenStart = 0;
    this.count = 0;
    if (this.types.length > SMALL_TOKENS * 16) {
      this.types = new Uint8Array(SMALL_TOKENS);
      this.ends = new Uint32Array(SMALL_TOKENS);
    }
  }

  type(i: number): TokenType {
    return TOKEN_TYPES[this.types[i]!]!;
  }

  bytes(i: number): Uint8Array {
    return this.buffer.subarray(i === 0 ? 0 : this.ends[i - 1], this.ends[i]);
  }

  text(i: number): string {
    return latin1(this.bytes(i));
  }
}

const SMALL_BUFFER = 4096;
const SMALL_TOKENS = 256;

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

/** A bigger copy (x1.5 or what is needed): growth proportional to the input. */
function grow<T extends Uint8Array | Uint32Array>(a: T, needed: number): T {
  const size = Math.max(needed, Math.ceil(a.length * 1.5));
  const bigger = new (a.constructor as new (n: number) => T)(size);
  bigger.set(a);
  return bigger;
}

/** json_message_parser: feed bytes, get whole messages (values or QEMU's error texts). */
export class JsonMessageParser {
  private state: State = 'start';
  private readonly store = new TokenStore();
  private braces = 0;
  private brackets = 0;

  feed(chunk: Uint8Array): JsonMessage[] {
    const out: JsonMessage[] = [];
    for (let i = 0; i < chunk.length;) {
      const run = this.state === 'dq' || this.state === 'sq' ? this.plainRun(chunk, i) : 0;
      if (run > 0) {
        // The bytes a string state takes without a decision, copied at once.
        this.store.pushRun(chunk.subarray(i, i + run));
        i += run;
      } else {
        this.feedByte(chunk[i++]!, out);
      }
    }
    return out;
  }

  /** How many bytes from `at` stay inside the current string (no quote, escape or bad byte). */
  private plainRun(chunk: Uint8Array, at: number): number {
    const quote = this.state === 'dq' ? 0x22 : 0x27;
    // Stop short of the size limit so the per-byte path sees the byte that crosses it.
    const end = Math.min(chunk.length, at + (MAX_TOKEN_SIZE - this.store.tokenLength));
    let i = at;
    while (i < end) {
      const b = chunk[i]!;
      if (b === quote || b === 0x5c || b < 0x20 || b > 0xfd) break;
      i++;
    }
    return i - at;
  }

  /** Forget everything (a new client). */
  reset(): void {
    this.state = 'start';
    this.store.dropToken();
    this.clearMessage();
  }

  private feedByte(b: number, out: JsonMessage[]): void {
    const store = this.store;
    for (;;) {
      const s = step(this.state, b);
      if ('go' in s) {
        if (this.state === 'recovery') {
          store.dropToken();
          if (s.go === 'start') {
            this.state = 'start';
            continue; // lookahead: the byte is read again in the start state
          }
          return;
        }
        store.push(b);
        this.state = s.go;
      } else if ('restart' in s) {
        store.dropToken();
        this.state = 'start';
      } else if ('error' in s) {
        store.push(b);
        const text = store.tokenText();
        store.dropToken();
        this.emit(out, { error: `JSON parse error, stray '${binaryToText(text)}'` });
        this.state = 'recovery';
      } else {
        if (s.consume) store.push(b);
        this.processToken(s.emit, out);
        this.state = 'start';
        if (!s.consume) continue;
      }
      if (store.tokenLength > MAX_TOKEN_SIZE) {
        // QEMU hands an oversized token on as it is; the size check below refuses it.
        this.processToken('string', out);
        this.state = 'start';
      }
      return;
    }
  }

  /** json_message_process_token; the token is the store's tail and is consumed. */
  private processToken(type: TokenType, out: JsonMessage[]): void {
    const store = this.store;
    if (type === 'lcurly') this.braces++;
    else if (type === 'rcurly') this.braces--;
    else if (type === 'lsquare') this.brackets++;
    else if (type === 'rsquare') this.brackets--;
    let error: string | null = null;
    // tokenStart is the size of the tokens so far, tokenLength the new one's.
    if (store.tokenStart + store.tokenLength + 1 > MAX_TOKEN_SIZE) {
      error = 'JSON token size limit exceeded';
    } else if (store.count + 1 > MAX_TOKEN_COUNT) {
      error = 'JSON token count limit exceeded';
    } else if (this.braces + this.brackets > MAX_NESTING) {
      error = 'JSON nesting depth limit exceeded';
    }
    if (error !== null) {
      store.dropToken();
      return this.emit(out, { error });
    }
    store.acceptToken(type);
    if ((this.braces > 0 || this.brackets > 0) && this.braces >= 0 && this.brackets >= 0) return;
    this.emit(out, parseTokens(store));
  }

  private emit(out: JsonMessage[], message: JsonMessage): void {
    this.clearMessage();
    out.push(message);
  }

  private clearMessage(): void {
    this.store.clear();
    this.braces = 0;
    this.brackets = 0;
  }
}
