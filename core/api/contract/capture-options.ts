/**
 * dumpcap's ring buffer and stop conditions as words (`-b filesize:1000`,
 * `-a packets:100`): one schema for startCapture's `ring` and `autostop`
 * (the API refuses what it refuses) and for the app's capture settings form
 * (which checks each field with the same word schema as it is typed).
 *
 *   -b filesize:N   a new file before a file passes N kB (1 kB = 1000 bytes)
 *   -b duration:S   a new file every S seconds
 *   -b files:N      keep only the newest N files (needs filesize or duration)
 *   -a filesize:N   stop when the file would pass N kB
 *   -a duration:S   stop S seconds after the start
 *   -a packets:N    stop after N records
 *
 * The server turns accepted words into sizes and times with
 * core/capture/ring-writer.ts parseRingOptions (also used by `vmchan run -w`).
 */
import { z } from 'zod';

export type CaptureOptionFlag = '-b' | '-a';
export const RING_KEYS = ['filesize', 'duration', 'files'] as const;
export const AUTOSTOP_KEYS = ['filesize', 'duration', 'packets'] as const;
export type RingKey = (typeof RING_KEYS)[number];
export type AutostopKey = (typeof AUTOSTOP_KEYS)[number];

/** Upper bounds that keep a typo from meaning "forever": 1 TB, 30 days, 100,000 files, 10^9 records. */
export const CAPTURE_OPTION_MAX: Record<RingKey | AutostopKey, number> = {
  filesize: 1_000_000_000,
  duration: 30 * 24 * 3600,
  files: 100_000,
  packets: 1_000_000_000,
};

/** Keys whose value is a count (a whole number); sizes and times may have a fraction, as dumpcap's. */
const WHOLE: ReadonlySet<string> = new Set(['files', 'packets']);

/** Why one `KEY:VALUE` word is wrong for its flag, in one line; null when it is right. */
export function captureWordProblem(
  flag: CaptureOptionFlag,
  keys: readonly string[],
  word: string,
): string | null {
  const colon = word.indexOf(':');
  if (colon < 0) return `${flag} expects KEY:NUMBER (e.g. ${keys[0]}:1000), got '${word}'`;
  const key = word.slice(0, colon);
  const value = word.slice(colon + 1).trim();
  if (!keys.includes(key)) return `${flag} knows ${keys.join(', ')}, not '${key}'`;
  const whole = WHOLE.has(key);
  const shape = whole ? /^\d+$/ : /^\d+(?:\.\d+)?$/;
  const n = Number(value);
  if (!shape.test(value) || !(n > 0))
    return `${flag} ${key}: ${whole ? 'a whole number' : 'a number'} above 0, got '${value}'`;
  const max = CAPTURE_OPTION_MAX[key as RingKey | AutostopKey];
  if (n > max) return `${flag} ${key}: at most ${max.toLocaleString('en-US')}, got '${value}'`;
  return null;
}

const wordSchema = (flag: CaptureOptionFlag, keys: readonly string[]) =>
  z
    .string()
    .max(64)
    .superRefine((word, ctx) => {
      const problem = captureWordProblem(flag, keys, word);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    });

export const RingWordSchema = wordSchema('-b', RING_KEYS);
export const AutostopWordSchema = wordSchema('-a', AUTOSTOP_KEYS);

export const FILES_NEED_A_SWITCH =
  '-b files:N needs -b filesize:N or -b duration:S (when to switch files)';

/** startCapture's `ring`: -b words; files:N only with a reason to switch files. */
export const RingWordsSchema = z
  .array(RingWordSchema)
  .max(8)
  .superRefine((words, ctx) => {
    const keys = words.map((w) => w.slice(0, w.indexOf(':')));
    if (keys.includes('files') && !keys.includes('filesize') && !keys.includes('duration'))
      ctx.addIssue({ code: 'custom', message: FILES_NEED_A_SWITCH });
  });

/** startCapture's `autostop`: -a words. */
export const AutostopWordsSchema = z.array(AutostopWordSchema).max(8);
