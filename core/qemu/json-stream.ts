/**
 * Cuts a byte stream into top-level JSON objects, as QMP sends them.
 *
 * QEMU writes one object per line, but a read may end in the middle of one
 * or hold several, and a server started with pretty=on spreads an object
 * over many lines; so objects are found by bracket depth (outside strings),
 * not by newlines. Bytes are decoded as UTF-8 across chunk boundaries.
 *
 * QMP's uint64 fields (descriptor addresses, feature bitmaps) can exceed
 * 2^53, where JSON.parse would silently round them. Integers that are not
 * safe come out as bigint instead; every other number stays a number.
 */
import { StringDecoder } from 'node:string_decoder';

export type JsonValue =
  null | boolean | number | bigint | string | JsonValue[] | { [key: string]: JsonValue };

export type JsonStreamItem =
  | { kind: 'object'; value: { [key: string]: JsonValue }; text: string }
  | { kind: 'error'; message: string; text: string };

/**
 * Marks an unsafe integer literal we turned into a string before JSON.parse.
 * BIGINT_TAG_JSON is how it is written inside JSON text (a raw NUL is not
 * allowed there); no string QEMU sends starts with a NUL and this word.
 */
const BIGINT_TAG = '\u0000vmchan-bigint:';
const BIGINT_TAG_JSON = '\\u0000vmchan-bigint:';

export interface JsonObjectStreamOptions {
  /** Longest object accepted, in characters; a longer one is an error (default 64 MiB). */
  maxObjectChars?: number;
}

export class JsonObjectStream {
  private decoder = new StringDecoder('utf8');
  private readonly maxObjectChars: number;
  /** Text of the object being collected (empty between objects). */
  private current = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Position in the object of a number token being read, or -1, and its text. */
  private numberStart = -1;
  private numberToken = '';
  /** Replacements for unsafe integers: [start, end, digits] in `current`. */
  private bigints: Array<[number, number, string]> = [];
  /** Set after an object grew past the limit: the stream is out of step until reset(). */
  private overflowed = false;

  constructor(options: JsonObjectStreamOptions = {}) {
    this.maxObjectChars = options.maxObjectChars ?? 64 * 1024 * 1024;
  }

  /** Feed a chunk; returns the objects (and errors) it completed, in order. */
  push(chunk: Buffer | string): JsonStreamItem[] {
    if (this.overflowed) return [];
    const text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const out: JsonStreamItem[] = [];
    let junk = '';
    // Where the part of `text` that belongs to the current object starts;
    // characters are copied into `current` by slices, not one by one.
    let segStart = this.depth > 0 ? 0 : -1;
    const pos = (i: number): number => this.current.length + (i - segStart);
    for (let i = 0; i < text.length; i++) {
      const c = text[i] as string;
      if (this.depth === 0) {
        if (c === '{') {
          if (junk.trim() !== '') out.push(junkError(junk));
          junk = '';
          segStart = i;
          this.depth = 1;
          continue;
        }
        // Between objects only whitespace belongs; QEMU never sends anything
        // else, so anything else is reported rather than guessed at.
        junk += c;
        if (c === '\n') {
          if (junk.trim() !== '') out.push(junkError(junk));
          junk = '';
        }
        continue;
      }
      if (pos(i) >= this.maxObjectChars) {
        const head = (this.current + text.slice(segStart, segStart + 80)).slice(0, 80);
        this.clearObject();
        // Where the oversized object ends cannot be trusted; stop here.
        this.overflowed = true;
        out.push({
          kind: 'error',
          message: `a JSON object longer than ${this.maxObjectChars} characters`,
          text: head,
        });
        return out;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (this.numberStart >= 0) {
        if (isNumberChar(c)) {
          this.numberToken += c;
          continue;
        }
        this.endNumber(pos(i));
      }
      if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') this.depth++;
      else if (c === '}' || c === ']') {
        this.depth--;
        if (this.depth === 0) {
          this.current += text.slice(segStart, i + 1);
          segStart = -1;
          out.push(this.finishObject());
          continue;
        }
      } else if (c === '-' || (c >= '0' && c <= '9')) {
        this.numberStart = pos(i);
        this.numberToken = c;
      }
    }
    if (this.depth > 0 && segStart >= 0) this.current += text.slice(segStart);
    if (junk.trim() !== '') out.push(junkError(junk));
    return out;
  }

  /** Characters held for an object not yet complete (0 between objects). */
  get pending(): number {
    return this.current.length;
  }

  /** Forget everything held, e.g. for a new connection. */
  reset(): void {
    this.decoder = new StringDecoder('utf8');
    this.overflowed = false;
    this.clearObject();
  }

  private clearObject(): void {
    this.current = '';
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    this.numberStart = -1;
    this.numberToken = '';
    this.bigints = [];
  }

  private endNumber(end: number): void {
    const token = this.numberToken;
    if (/^-?\d{16,}$/.test(token) && !Number.isSafeInteger(Number(token))) {
      this.bigints.push([this.numberStart, end, token]);
    }
    this.numberStart = -1;
  }

  private finishObject(): JsonStreamItem {
    let text = this.current;
    const bigints = this.bigints;
    this.clearObject();
    const original = text;
    if (bigints.length > 0) {
      // Splice from the end so earlier offsets stay valid.
      for (let k = bigints.length - 1; k >= 0; k--) {
        const [start, end, digits] = bigints[k] as [number, number, string];
        text = `${text.slice(0, start)}"${BIGINT_TAG_JSON}${digits}"${text.slice(end)}`;
      }
    }
    try {
      const value = (
        bigints.length > 0 ? JSON.parse(text, reviveBigint) : JSON.parse(text)
      ) as JsonValue;
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        return { kind: 'error', message: 'not a JSON object', text: original };
      }
      return { kind: 'object', value, text: original };
    } catch (e) {
      return { kind: 'error', message: `invalid JSON (${(e as Error).message})`, text: original };
    }
  }
}

function isNumberChar(c: string): boolean {
  return (c >= '0' && c <= '9') || c === '.' || c === 'e' || c === 'E' || c === '+' || c === '-';
}

function reviveBigint(_key: string, value: unknown): unknown {
  if (typeof value === 'string' && value.startsWith(BIGINT_TAG)) {
    return BigInt(value.slice(BIGINT_TAG.length));
  }
  return value;
}

function junkError(junk: string): JsonStreamItem {
  return {
    kind: 'error',
    message: 'unexpected text between JSON objects',
    text: junk.trim().slice(0, 200),
  };
}

/** JSON.stringify that writes bigints as plain integers (QMP arguments may need them). */
export function stringifyJson(value: unknown): string {
  const tagged = JSON.stringify(value, (_k, v: unknown) =>
    typeof v === 'bigint' ? `${BIGINT_TAG}${v.toString()}` : v,
  );
  return tagged.includes(BIGINT_TAG_JSON)
    ? tagged.replace(new RegExp(`"\\\\u0000vmchan-bigint:(-?\\d+)"`, 'g'), '$1')
    : tagged;
}
