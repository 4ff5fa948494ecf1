/**
 * The app's capture settings form (ring buffer and stop conditions) as
 * startCapture's dumpcap words. Each field is checked with the very word
 * schema startCapture's contract uses (contract/capture-options.ts), so the
 * form shows, next to the field, what the API would refuse; the API checks
 * again, so nothing relies on the form.
 */
import {
  AutostopWordSchema,
  RingWordSchema,
  RingWordsSchema,
  type AutostopKey,
  type CaptureOptionFlag,
  type RingKey,
} from '../contract/capture-options.js';

/** The form's fields, as typed (empty: not set). */
export interface CaptureSettingsForm {
  /** -b filesize, kB (1 kB = 1000 bytes, as dumpcap). */
  ringFileSize: string;
  /** -b duration, seconds. */
  ringDuration: string;
  /** -b files. */
  ringFiles: string;
  /** -a filesize, kB. */
  stopFileSize: string;
  /** -a duration, seconds. */
  stopDuration: string;
  /** -a packets. */
  stopPackets: string;
}

export type CaptureSettingsField = keyof CaptureSettingsForm;

export const EMPTY_CAPTURE_SETTINGS: CaptureSettingsForm = {
  ringFileSize: '',
  ringDuration: '',
  ringFiles: '',
  stopFileSize: '',
  stopDuration: '',
  stopPackets: '',
};

/** Each field's dumpcap flag and key. */
export const CAPTURE_SETTINGS_WORDS: Record<
  CaptureSettingsField,
  { flag: CaptureOptionFlag; key: RingKey | AutostopKey }
> = {
  ringFileSize: { flag: '-b', key: 'filesize' },
  ringDuration: { flag: '-b', key: 'duration' },
  ringFiles: { flag: '-b', key: 'files' },
  stopFileSize: { flag: '-a', key: 'filesize' },
  stopDuration: { flag: '-a', key: 'duration' },
  stopPackets: { flag: '-a', key: 'packets' },
};

export type CaptureSettingsResult =
  | { ok: true; ring: string[]; autostop: string[] }
  | { ok: false; problems: Partial<Record<CaptureSettingsField, string>> };

/** The form as startCapture's `ring` and `autostop` words, or one message per wrong field. */
export function captureSettingsWords(form: CaptureSettingsForm): CaptureSettingsResult {
  const problems: Partial<Record<CaptureSettingsField, string>> = {};
  const ring: string[] = [];
  const autostop: string[] = [];
  for (const field of Object.keys(CAPTURE_SETTINGS_WORDS) as CaptureSettingsField[]) {
    const text = form[field].trim();
    if (text === '') continue;
    const { flag, key } = CAPTURE_SETTINGS_WORDS[field];
    const word = `${key}:${text}`;
    const checked = (flag === '-b' ? RingWordSchema : AutostopWordSchema).safeParse(word);
    if (!checked.success) problems[field] = checked.error.issues[0]?.message ?? `${flag} ${key}`;
    else (flag === '-b' ? ring : autostop).push(word);
  }
  // The words together (files:N needs a reason to switch files): next to "files".
  if (problems.ringFiles === undefined) {
    const together = RingWordsSchema.safeParse(ring);
    if (!together.success) problems.ringFiles = together.error.issues[0]?.message;
  }
  if (Object.keys(problems).length > 0) return { ok: false, problems };
  return { ok: true, ring, autostop };
}

/** `-b filesize:1000 -b files:3 -a packets:100`: the settings as dumpcap's command line says them. */
export function describeCaptureSettings(
  ring: readonly string[],
  autostop: readonly string[],
): string {
  return [...ring.map((w) => `-b ${w}`), ...autostop.map((w) => `-a ${w}`)].join(' ');
}
