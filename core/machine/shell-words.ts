/**
 * POSIX shell word splitting and quoting, enough to paste a QEMU command
 * line from a web page or a terminal (backslash-newline continuations,
 * single and double quotes, backslash escapes, a leading `$ ` prompt, `#`
 * comments) and to print one back that a shell reads as the same words.
 * No expansion is done: `$HOME` stays `$HOME`.
 */
import { machineError, type MachineError } from './machine-error.js';

export function splitShellWords(
  text: string,
): { ok: true; words: string[] } | { ok: false; error: MachineError } {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const src = text.replace(/^\s*[$#]\s+/, '');
  while (i < src.length) {
    const ch = src[i] as string;
    if (ch === '\\') {
      const next = src[i + 1];
      if (next === '\n') {
        i += 2;
        continue;
      }
      if (next === '\r' && src[i + 2] === '\n') {
        i += 3;
        continue;
      }
      if (next !== undefined) {
        word += next;
        inWord = true;
      }
      i += 2;
      continue;
    }
    if (ch === "'") {
      const end = src.indexOf("'", i + 1);
      if (end < 0) return { ok: false, error: unterminated("'", i) };
      word += src.slice(i + 1, end);
      inWord = true;
      i = end + 1;
      continue;
    }
    if (ch === '"') {
      let j = i + 1;
      for (;;) {
        const c = src[j];
        if (c === undefined) return { ok: false, error: unterminated('"', i) };
        if (c === '"') break;
        if (c === '\\' && ['"', '\\', '$', '`', '\n'].includes(src[j + 1] ?? '')) {
          if (src[j + 1] !== '\n') word += src[j + 1];
          j += 2;
          continue;
        }
        word += c;
        j++;
      }
      inWord = true;
      i = j + 1;
      continue;
    }
    if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
      continue;
    }
    if (ch === '#' && !inWord) {
      const nl = src.indexOf('\n', i);
      i = nl < 0 ? src.length : nl;
      continue;
    }
    word += ch;
    inWord = true;
    i++;
  }
  if (inWord) words.push(word);
  return { ok: true, words };
}

function unterminated(quote: string, at: number): MachineError {
  return machineError(
    'ShellSyntax',
    `unterminated ${quote} quote starting at character ${at + 1}`,
    {
      token: quote,
    },
  );
}

/** Quote one word for a POSIX shell; words of safe characters stay bare. */
export function quoteShellWord(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_\-+=/.,:@%]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

export function joinShellWords(words: readonly string[]): string {
  return words.map(quoteShellWord).join(' ');
}
