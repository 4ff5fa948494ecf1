/**
 * The app's capture settings form (ring buffer and stop conditions) as
 * dumpcap's words for `startCapture`: `-b filesize:N files:N duration:S`
 * and `-a filesize:N duration:S packets:N`. The form checks the fields as the
 * person types (a message per field); the service checks the words again
 * (core/capture/ring-writer.ts parseRingOptions), so nothing relies on the form.
 *
 * Pure: imported by the renderer.
 */
import { z } from 'zod';

/** The form's fields, as typed (empty: not set). */
export interface CaptureOptionsForm {
  /** -b filesize, kB (1 kB = 1000 bytes, as dumpcap). */
  ringFileSize: string;
  /** -b files. */
  ringFiles: string;
  /** -b duration, seconds. */
  ringDuration: string;
  /** -a filesize, kB. */
  stopFileSize: string;
  /** -a duration, seconds. */
  stopDuration: string;
  /** -a packets. */
  stopPackets: string;
}

export type CaptureOptionsField = keyof CaptureOptionsForm;

export const EMPTY_CAPTURE_OPTIONS: CaptureOptionsForm = {
  ringFileSize: '',
  ringFiles: '',
  ringDuration: '',
  stopFileSize: '',
  stopDuration: '',
  stopPackets: '',
};

/** What each field is called in a message, and its dumpcap word. */
const FIELDS: Record<CaptureOptionsField, { label: string; flag: '-b' | '-a'; key: string }> = {
  ringFileSize: { label: 'New file every (kB)', flag: '-b', key: 'filesize' },
  ringFiles: { label: 'Keep files', flag: '-b', key: 'files' },
  ringDuration: { label: 'New file every (s)', flag: '-b', key: 'duration' },
  stopFileSize: { label: 'Stop at file size (kB)', flag: '-a', key: 'filesize' },
  stopDuration: { label: 'Stop after (s)', flag: '-a', key: 'duration' },
  stopPackets: { label: 'Stop after records', flag: '-a', key: 'packets' },
};

/** Upper bounds that keep a typo from meaning "forever" (1 TB, 30 days, 100,000 files). */
const MAX = { kb: 1_000_000_000, seconds: 30 * 24 * 3600, count: 1_000_000_000, files: 100_000 };

const wholeNumber = (label: string, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `${label}: a whole number above 0`)
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(1, `${label}: a whole number above 0`)
        .max(max, `${label}: at most ${max.toLocaleString('en-US')}`),
    );

const FIELD_SCHEMAS: Record<CaptureOptionsField, ReturnType<typeof wholeNumber>> = {
  ringFileSize: wholeNumber(FIELDS.ringFileSize.label, MAX.kb),
  ringFiles: wholeNumber(FIELDS.ringFiles.label, MAX.files),
  ringDuration: wholeNumber(FIELDS.ringDuration.label, MAX.seconds),
  stopFileSize: wholeNumber(FIELDS.stopFileSize.label, MAX.kb),
  stopDuration: wholeNumber(FIELDS.stopDuration.label, MAX.seconds),
  stopPackets: wholeNumber(FIELDS.stopPackets.label, MAX.count),
};

export type CaptureOptionsResult =
  | { ok: true; ring: string[]; autostop: string[] }
  | { ok: false; problems: Partial<Record<CaptureOptionsField, string>> };

/** The form as startCapture's `ring` and `autostop` words, or one message per wrong field. */
export function captureOptionWords(form: CaptureOptionsForm): CaptureOptionsResult {
  const problems: Partial<Record<CaptureOptionsField, string>> = {};
  const ring: string[] = [];
  const autostop: string[] = [];
  for (const field of Object.keys(FIELDS) as CaptureOptionsField[]) {
    const text = form[field].trim();
    if (text === '') continue;
    const parsed = FIELD_SCHEMAS[field].safeParse(text);
    if (!parsed.success) {
      problems[field] = parsed.error.issues[0]?.message ?? `${FIELDS[field].label}: not valid`;
      continue;
    }
    const { flag, key } = FIELDS[field];
    (flag === '-b' ? ring : autostop).push(`${key}:${parsed.data}`);
  }
  if (
    form.ringFiles.trim() !== '' &&
    form.ringFileSize.trim() === '' &&
    form.ringDuration.trim() === '' &&
    problems.ringFiles === undefined
  )
    problems.ringFiles = `${FIELDS.ringFiles.label}: needs a new file every N kB or every N seconds (when to switch files)`;
  if (Object.keys(problems).length > 0) return { ok: false, problems };
  return { ok: true, ring, autostop };
}

/** `-b filesize:1000 -b files:3 -a packets:100`: the settings as dumpcap's command line says them. */
export function describeCaptureOptions(ring: string[], autostop: string[]): string {
  return [...ring.map((w) => `-b ${w}`), ...autostop.map((w) => `-a ${w}`)].join(' ');
}
