/**
 * End to end, the capture settings form (Capture view's "Ring / stop…"):
 * the app in Debian's Chromium against `vmchan serve`, at 1440x900 and
 * 1024x700.
 *
 * A wrong value is marked next to its field with startCapture's own message
 * and cannot be applied. `-b filesize` + `-b files:N` applied in the form
 * and started from the toolbar's Capture: the ring rotates (file numbers
 * pass N) while exactly N files are kept in the capture folder, none larger
 * than the set size (unless one record alone is larger, which
 * gets a file of its own, as dumpcap), each one opening in tshark. `-a packets:N`: the capture
 * stops by itself with N records, read back by tshark.
 *
 * Captures go to the app's default folder (the user's data directory), here
 * XDG_DATA_HOME pointed at a temporary directory. Without /usr/bin/chromium
 * or tshark the suite is skipped with that message, and fails under CI=true.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeHandle } from '../../cli/serve.js';
import { missingChromium, prerequisites, pressCapture, startE2e, type E2e } from './harness.js';

const TSHARK = '/usr/bin/tshark';
const ready = prerequisites(
  'runs in Chromium with tshark',
  missingChromium().length > 0
    ? missingChromium()
    : fs.existsSync(TSHARK)
      ? []
      : ['tshark not found: apt-get install tshark'],
);

/** Frames tshark reads in a file (it fails, and so the test, on a file it cannot open). */
function tsharkFrames(file: string): number {
  const out = execFileSync(TSHARK, ['-r', file, '-T', 'fields', '-e', 'frame.number'], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  return out.split('\n').filter((l) => l.trim() !== '').length;
}

/** dumpcap's ring file names: `<name>_<5-digit number>_<YYYYmmddHHMMSS>.pcapng`. */
const RING_NAME = /_(\d{5})_\d{14}\.pcapng$/;

const VIEWPORTS = [
  { width: 1440, height: 900 },
  { width: 1024, height: 700 },
];
const FILES = 3;
const FILE_KB = 64;
const PACKETS = 40;

describe.runIf(ready)('the capture settings form in Chromium', () => {
  let e2e: E2e;
  let serve: ServeHandle;
  let page: Page;
  let data: string;
  const savedXdg = process.env['XDG_DATA_HOME'];
  const captures = () => path.join(data, 'vmchan', 'captures');

  const field = (name: string) => page.locator(`[data-capture-settings] [data-field=${name}]`);
  const openForm = async (): Promise<void> => {
    if ((await page.locator('[data-capture-settings]').count()) === 0)
      await page.locator('[data-action=capture-settings]').click();
    await page.locator('[data-capture-settings]').waitFor();
  };
  const clearForm = async (): Promise<void> => {
    for (const f of ['ringFileSize', 'ringDuration', 'ringFiles']) await field(f).fill('');
    for (const f of ['stopFileSize', 'stopDuration', 'stopPackets']) await field(f).fill('');
  };
  const capturing = async (): Promise<boolean> => (await e2e.topology()).capture.on;

  beforeAll(async () => {
    data = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-e2e-settings-'));
    // The app's default capture folder is $XDG_DATA_HOME/vmchan/captures (serve runs in this process).
    process.env['XDG_DATA_HOME'] = data;
    e2e = await startE2e({ timeoutMs: 15_000, tmpPrefix: 'vmchan-e2e-settings-' });
    ({ serve, page } = e2e);
    await page.goto(serve.url);
    await page.locator('.tree [data-port="test2"]').waitFor();
    await page.locator('[data-tab=capture]').click();
  }, 90_000);

  afterAll(async () => {
    await e2e?.close();
    if (savedXdg === undefined) delete process.env['XDG_DATA_HOME'];
    else process.env['XDG_DATA_HOME'] = savedXdg;
    if (data) fs.rmSync(data, { recursive: true, force: true });
  });

  for (const size of VIEWPORTS) {
    const at = `${size.width}x${size.height}`;

    it(`${at}: a wrong value is marked next to its field with the API's message`, async () => {
      await page.setViewportSize(size);
      await openForm();
      await clearForm();
      // the form fits the window
      const box = await page.locator('[data-capture-settings]').boundingBox();
      expect(box).not.toBeNull();
      expect(box!.x).toBeGreaterThanOrEqual(0);
      expect(box!.y).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width).toBeLessThanOrEqual(size.width);
      expect(box!.y + box!.height).toBeLessThanOrEqual(size.height);
      // and nothing covers or clips it: each corner's topmost element is the form's own
      const corners = [
        [box!.x + 3, box!.y + 3],
        [box!.x + box!.width - 3, box!.y + 3],
        [box!.x + 3, box!.y + box!.height - 3],
        [box!.x + box!.width - 3, box!.y + box!.height - 3],
      ];
      const mine = await page.locator('[data-capture-settings]').evaluate((form, points) => {
        const doc = (
          globalThis as unknown as { document: { elementFromPoint(x: number, y: number): unknown } }
        ).document;
        return points.map(([x, y]) =>
          (form as { contains(n: unknown): boolean }).contains(doc.elementFromPoint(x!, y!)),
        );
      }, corners);
      await e2e.shot(`capture-settings-open-${at}`);
      expect(mine).toEqual([true, true, true, true]);
      // every field can be reached (the form scrolls when the window is short)
      await field('stopPackets').scrollIntoViewIfNeeded();
      expect(await field('stopPackets').isVisible()).toBe(true);

      await field('ringFileSize').fill('0');
      const err = page.locator('[data-field-error=ringFileSize]');
      await err.waitFor();
      expect(await err.textContent()).toBe("-b filesize: a number above 0, got '0'");
      expect(await field('ringFileSize').getAttribute('aria-invalid')).toBe('true');
      // right under its own field
      const input = (await field('ringFileSize').boundingBox())!;
      const under = (await err.boundingBox())!;
      expect(under.y).toBeGreaterThanOrEqual(input.y + input.height - 1);
      expect(under.y).toBeLessThan(input.y + input.height + 30);
      expect(await page.locator('[data-action=apply-capture-settings]').isDisabled()).toBe(true);

      await field('ringFileSize').fill('');
      await field('ringFiles').fill('2');
      expect(await page.locator('[data-field-error=ringFiles]').textContent()).toContain(
        'needs -b filesize:N or -b duration:S',
      );
      await field('ringFiles').fill('');
      await expect.poll(() => page.locator('[data-field-error]').count()).toBe(0);
      await e2e.shot(`capture-settings-${at}`);
    });

    it(`${at}: -b filesize + -b files:${FILES} rotate, keeping ${FILES} files that each open`, async () => {
      await page.setViewportSize(size);
      await openForm();
      await clearForm();
      await field('ringFileSize').fill(String(FILE_KB));
      await field('ringFiles').fill(String(FILES));
      await page.locator('[data-action=apply-capture-settings]').click();
      await page.locator('[data-capture-settings]').waitFor({ state: 'detached' });
      expect(await page.locator('[data-settings-applied]').textContent()).toBe(
        `-b filesize:${FILE_KB} -b files:${FILES}`,
      );
      const before = new Set(fs.existsSync(captures()) ? fs.readdirSync(captures()) : []);
      const ours = (): string[] =>
        fs.existsSync(captures())
          ? fs.readdirSync(captures()).filter((f) => !before.has(f) && RING_NAME.test(f))
          : [];
      const newest = (): number => Math.max(0, ...ours().map((f) => Number(RING_NAME.exec(f)![1])));

      // the toolbar's Capture uses the applied settings
      await pressCapture(page, 'start');
      await expect.poll(capturing, { message: 'the capture to start' }).toBe(true);
      await expect
        .poll(newest, { timeout: 60_000, message: `ring file number ${FILES + 3} to appear` })
        .toBeGreaterThanOrEqual(FILES + 3);
      await pressCapture(page, 'stop');
      await expect.poll(capturing, { message: 'the capture to stop' }).toBe(false);

      const kept = ours().sort();
      expect(kept).toHaveLength(FILES);
      const numbers = kept.map((f) => Number(RING_NAME.exec(f)![1]));
      expect(numbers).toEqual([0, 1, 2].map((i) => numbers[0]! + i)); // the newest, in a row
      for (const f of kept) {
        const file = path.join(captures(), f);
        const frames = tsharkFrames(file);
        expect(frames).toBeGreaterThan(0);
        // at most the set size, unless one record alone is larger (it gets a file of its own)
        if (frames > 1) expect(fs.statSync(file).size).toBeLessThanOrEqual(FILE_KB * 1000);
      }
    }, 120_000);

    it(`${at}: -a packets:${PACKETS} stops the capture by itself`, async () => {
      await page.setViewportSize(size);
      await openForm();
      await clearForm();
      await field('stopPackets').fill(String(PACKETS));
      await page.locator('[data-action=start-capture-with-settings]').click();
      await page.locator('[data-capture-settings]').waitFor({ state: 'detached' });
      expect(await page.locator('[data-settings-applied]').textContent()).toBe(
        `-a packets:${PACKETS}`,
      );
      await expect.poll(capturing, { message: 'the capture to start' }).toBe(true);
      // nobody presses stop: the condition does
      await expect
        .poll(capturing, { timeout: 30_000, message: `-a packets:${PACKETS} to stop the capture` })
        .toBe(false);
      const last = (await e2e.topology()).capture.last;
      expect(last).not.toBeNull();
      expect(tsharkFrames(last!)).toBe(PACKETS);
    }, 60_000);
  }
});
