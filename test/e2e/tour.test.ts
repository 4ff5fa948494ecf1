/**
 * End to end, the guided tour (issue 17, Teaching virtio): opened from the
 * toolbar's Tour button (Help), each step shows its tab and points at its
 * part of the window (the overview, a step, a chain, an injected fault, its
 * rule), the pointer inside the viewport; dismissable with × and Escape,
 * and reopenable.
 *
 * Without /usr/bin/chromium the suite is skipped with that message, and
 * fails under CI=true.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const haveChromium = prerequisites('runs in Chromium', missingChromium());

describe.runIf(haveChromium)('the guided tour in Chromium', () => {
  let e2e: E2e;
  let page: Page;

  beforeAll(async () => {
    e2e = await startE2e({ tmpPrefix: 'vmchan-e2e-tour-' });
    page = e2e.page;
  }, 60_000);

  afterAll(async () => {
    await e2e?.close();
  });

  it('walks through five steps, each pointing at its part, and closes and reopens', async () => {
    await page.goto(e2e.serve.url);
    await page.locator('.tree [data-port="test2"]').waitFor();
    await page.locator('.tree [data-port="test2"]').click();
    await page.locator('[data-action=tour]').click();
    const expected = ['overview', 'vrings', 'vrings', 'vrings', 'vrings'];
    for (let i = 0; i < 5; i++) {
      await expect
        .poll(() => page.locator('[data-tour]').getAttribute('data-tour'))
        .toBe(String(i + 1));
      await expect
        .poll(() => page.locator(`[data-tab=${expected[i]}]`).getAttribute('aria-selected'))
        .toBe('true');
      const spot = page.locator('[data-tour-target]');
      await spot.waitFor();
      const b = (await spot.boundingBox())!;
      expect(b.width).toBeGreaterThan(0);
      expect(b.x + b.width).toBeLessThanOrEqual(1440 + 8);
      expect(b.y + b.height).toBeLessThanOrEqual(900 + 8);
      await e2e.shot(`tour-${i + 1}`);
      if (i < 4) await page.locator('[data-action=tour-next]').click();
    }
    await page.locator('[data-action=tour-done]').click();
    expect(await page.locator('[data-tour]').count()).toBe(0);
    await page.locator('[data-action=tour]').click();
    await page.locator('[data-tour="1"]').waitFor();
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('[data-tour]').count()).toBe(0);
    expect(e2e.problems).toEqual([]);
  });
});
