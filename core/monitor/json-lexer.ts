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
import { binaryToText, parseTokens, type JsonToken, type TokenType } from './json-parser.js';
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

const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;
const isLower = (b: number): boolean => b >= 0x61 && b <= 0x7a;

/** A terminal state: any ASCII byte ends the token without being consumed; other bytes are errors. */
function terminal(type: TokenType, b: number): Step {
  return b <= 0x7f ? { emit: type, consume: false } : { error: true };
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
      if (structural !== undefined) return { emit: structural, consume: true };
      if (b === 0x22) return { go: 'dq' };
      if (b === 0x27) return { go: 'sq' };
      if (b === 0x30) return { go: 'zero' };
      if (b >= 0x31 && b <= 0x39) return { go: 'digits' };
      if (b === 0x2d) return { go: 'sign' };
      if (isLower(b)) return { go: 'keyword' };
      if (b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a) return { restart: true };
      return { error: true };
    }
    case 'recovery':
      // Resynchronise on structural characters, control characters but tab, 0xFE and 0xFF.
      if (STRUCTURAL[b] !== undefined || (b < 0x20 && b !== 0x09) || b >= 0xfe) {
        return { go: 'start' }; // not consumed: see feedByte
      }
      return { go: 'recovery' };
    case 'dq':
    case 'sq': {
      const quote = state === 'dq' ? 0x22 : 0x27;
      if (b === quote) return { emit: 'string', consume: true };
      if (b === 0x5c) return { go: state === 'dq' ? 'dq-escape' : 'sq-escape' };
      return b >= 0x20 && b <= 0xfd ? { go: state } : { error: true };
    }
    case 'dq-escape':
    case 'sq-escape':
      return b >= 0x20 && b <= 0xfd ? { go: state === 'dq-escape' ? 'dq' : 'sq' } : { error: true };
    case 'zero':
      if (isDigit(b)) return { error: true };
      if (b === 0x2e) return { go: 'mantissa' };
      return terminal('integer', b);
    case 'sign':
      if (b === 0x30) return { go: 'zero' };
      if (b >= 0x31 && b <= 0x39) return { go: 'digits' };
      return { error: true };
    case 'digits':
      if (isDigit(b)) return { go: 'digits' };
      if (b === 0x65 || b === 0x45) return { go: 'exp-e' };
      if (b === 0x2e) return { go: 'mantissa' };
      return terminal('integer', b);
    case 'mantissa':
      return isDigit(b) ? { go: 'mantissa-digits' } : { error: true };
    case 'mantissa-digits':
      if (isDigit(b)) return { go: 'mantissa-digits' };
      if (b === 0x65 || b === 0x45) return { go: 'exp-e' };
      return terminal('float', b);
    case 'exp-e':
      if (b === 0x2d || b === 0x2b) return { go: 'exp-sign' };
      return isDigit(b) ? { go: 'exp-digits' } : { error: true };
    case 'exp-sign':
      return isDigit(b) ? { go: 'exp-digits' } : { error: true };
    case 'exp-digits':
      return isDigit(b) ? { go: 'exp-digits' } : terminal('float', b);
    case 'keyword':
      return isLower(b) ? { go: 'keyword' } : terminal('keyword', b);
  }
}

/** json_message_parser: feed bytes, get whole messages (values or QEMU's error texts). */
export class JsonMessageParser {
  private state: State = 'start';
  /** The token being read, as a binary string. */
  private token = '';
  private tokens: JsonToken[] = [];
  private tokenSize = 0;
  private braces = 0;
  private brackets = 0;

  feed(chunk: Uint8Array): JsonMessage[] {
    const out: JsonMessage[] = [];
    for (const b of chunk) this.feedByte(b, out);
    return out;
  }

  /** Forget everything (a new client). */
  reset(): void {
    this.state = 'start';
    this.token = '';
    this.clearMessage();
  }

  private feedByte(b: number, out: JsonMessage[]): void {
    for (;;) {
      const s = step(this.state, b);
      if ('go' in s) {
        if (this.state === 'recovery') {
          this.token = '';
          if (s.go === 'start') {
            this.state = 'start';
            continue; // lookahead: the byte is read again in the start state
          }
          return;
        }
        this.token += String.fromCharCode(b);
        this.state = s.go;
      } else if ('restart' in s) {
        this.token = '';
        this.state = 'start';
      } else if ('error' in s) {
        this.token += String.fromCharCode(b);
        this.emit(out, { error: `JSON parse error, stray '${binaryToText(this.token)}'` });
        this.token = '';
        this.state = 'recovery';
      } else {
        if (s.consume) this.token += String.fromCharCode(b);
        this.processToken(s.emit, out);
        this.token = '';
        this.state = 'start';
        if (!s.consume) continue;
      }
      if (this.token.length > MAX_TOKEN_SIZE) {
        // QEMU hands an oversized token on as it is; the size check below refuses it.
        this.processToken('string', out);
        this.token = '';
        this.state = 'start';
      }
      return;
    }
  }

  /** json_message_process_token. */
  private processToken(type: TokenType, out: JsonMessage[]): void {
    if (type === 'lcurly') this.braces++;
    else if (type === 'rcurly') this.braces--;
    else if (type === 'lsquare') this.brackets++;
    else if (type === 'rsquare') this.brackets--;
    if (this.tokenSize + this.token.length + 1 > MAX_TOKEN_SIZE) {
      return this.emit(out, { error: 'JSON token size limit exceeded' });
    }
    if (this.tokens.length + 1 > MAX_TOKEN_COUNT) {
      return this.emit(out, { error: 'JSON token count limit exceeded' });
    }
    if (this.braces + this.brackets > MAX_NESTING) {
      return this.emit(out, { error: 'JSON nesting depth limit exceeded' });
    }
    this.tokens.push({ type, text: this.token });
    this.tokenSize += this.token.length;
    if ((this.braces > 0 || this.brackets > 0) && this.braces >= 0 && this.brackets >= 0) return;
    this.emit(out, parseTokens(this.tokens));
  }

  private emit(out: JsonMessage[], message: JsonMessage): void {
    this.clearMessage();
    out.push(message);
  }

  private clearMessage(): void {
    this.tokens = [];
    this.tokenSize = 0;
    this.braces = 0;
    this.brackets = 0;
  }
}
