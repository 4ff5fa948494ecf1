/**
 * The app's capture settings form and startCapture share one word schema
 * (core/api/contract/capture-options.ts): what the form marks wrong next to a
 * field is what the API refuses, and what it accepts the API accepts.
 */
import { describe, expect, it } from 'vitest';
import {
  captureSettingsWords,
  describeCaptureSettings,
  EMPTY_CAPTURE_SETTINGS,
} from '../../core/api/browser/capture-settings.js';
import { CommandSchema } from '../../core/api/contract/contract.js';

const form = (f: Partial<typeof EMPTY_CAPTURE_SETTINGS>) => ({ ...EMPTY_CAPTURE_SETTINGS, ...f });
const apiAccepts = (ring: string[], autostop: string[]) =>
  CommandSchema.safeParse({ cmd: 'startCapture', ring, autostop }).success;

describe('capture settings form', () => {
  it('turns filled fields into dumpcap words the API accepts', () => {
    const r = captureSettingsWords(
      form({ ringFileSize: '64', ringFiles: '3', stopPackets: '500', stopDuration: '1.5' }),
    );
    expect(r).toEqual({
      ok: true,
      ring: ['filesize:64', 'files:3'],
      autostop: ['duration:1.5', 'packets:500'],
    });
    if (r.ok) {
      expect(apiAccepts(r.ring, r.autostop)).toBe(true);
      expect(describeCaptureSettings(r.ring, r.autostop)).toBe(
        '-b filesize:64 -b files:3 -a duration:1.5 -a packets:500',
      );
    }
  });

  it('marks each wrong field with the message the API gives for the same word', () => {
    const r = captureSettingsWords(
      form({ ringFileSize: '0', stopPackets: '2.5', stopDuration: 'soon' }),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toEqual({
      ringFileSize: "-b filesize: a number above 0, got '0'",
      stopPackets: "-a packets: a whole number above 0, got '2.5'",
      stopDuration: "-a duration: a number above 0, got 'soon'",
    });
    const api = CommandSchema.safeParse({ cmd: 'startCapture', ring: ['filesize:0'] });
    expect(api.success).toBe(false);
    if (!api.success) expect(api.error.issues[0]?.message).toBe(r.problems.ringFileSize);
  });

  it('files:N without a reason to switch files is marked on "files", as the API refuses it', () => {
    const r = captureSettingsWords(form({ ringFiles: '4' }));
    expect(r).toEqual({
      ok: false,
      problems: {
        ringFiles: '-b files:N needs -b filesize:N or -b duration:S (when to switch files)',
      },
    });
    expect(apiAccepts(['files:4'], [])).toBe(false);
  });

  it('bounds a typo: more than 100,000 files is refused', () => {
    const r = captureSettingsWords(form({ ringDuration: '60', ringFiles: '1000000' }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.ringFiles).toBe("-b files: at most 100,000, got '1000000'");
  });
});
