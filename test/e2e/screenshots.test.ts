/**
 * Screenshots of every view (issue 17): the app in Debian's Chromium
 * (headless, playwright-core) against `vmchan serve`, on the demo, at 1440x900
 * and 1024x700, to test-results/screenshots/view-<name>-<size>.png. Each view
 * is checked to have drawn (its own element present) and the page to have
 * logged no error. docs/images/overview.png (the README's picture) is
 * view-overview-1440x900.png.
 *
 * Without /usr/bin/chromium the suite is skipped with that message, and
 * fails under CI=true.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingChromium, prerequisites, showLiveCapture, startE2e, type E2e } from './harness.js';

const haveChromium = prerequisites('runs in Chromium', missingChromium());

describe.runIf(haveChromium)('screenshots of every view', () => {
  let e2e: E2e;
  let page: Page;

  beforeAll(async () => {
    e2e = await startE2e({ tmpPrefix: 'vmchan-e2e-shots-' });
    page = e2e.page;
    await page.goto(e2e.serve.url);
    await page.locator('.tree [data-port="test2"]').waitFor();
    await page.locator('.tree [data-port="test2"]').click();
  }, 60_000);

  afterAll(async () => {
    await e2e?.close();
  });

  const views: { tab: string; ready: string }[] = [
    { tab: 'overview', ready: 'svg.overview [data-port="test2"]' },
    { tab: 'table', ready: '[data-tab-body=table] table' },
    { tab: 'vrings', ready: 'text=descriptor table' },
    { tab: 'capture', ready: '[data-capture-rows] tbody tr[data-number]' },
    { tab: 'console', ready: '[data-tab-body=console] *' },
    { tab: 'monitor', ready: '[data-tab-body=monitor] *' },
  ];

  for (const vp of [
    { width: 1440, height: 900 },
    { width: 1024, height: 700 },
  ]) {
    const size = `${vp.width}x${vp.height}`;
    it(`every tab at ${size}`, async () => {
      await page.setViewportSize(vp);
      if ((await e2e.topology()).capture.view == null) {
        await e2e.serve.service.execute({ cmd: 'startCapture' });
        await expect
          .poll(async () => (await e2e.topology()).capture.records, { timeout: 10_000 })
          .toBeGreaterThan(50);
        await page.locator('[data-tab=capture]').click();
        await showLiveCapture(page);
      }
      for (const v of views) {
        await page.locator(`[data-tab=${v.tab}]`).click();
        await page.locator(v.ready).first().waitFor();
        await e2e.shot(`view-${v.tab}-${size}`);
      }
      await page.locator('[data-tab=overview]').click();
      await page.locator('header.toolbar button[title="About vmchan"]').click();
      await page.locator('[data-about=version]').waitFor();
      await e2e.shot(`view-about-${size}`);
      await page.keyboard.press('Escape');
      await page.locator('[data-dock-tab=throughput]').click();
      await e2e.shot(`view-dock-throughput-${size}`);
      await page.locator('[data-dock-tab=both]').click();
      expect(e2e.problems).toEqual([]);
    }, 60_000);
  }
});
