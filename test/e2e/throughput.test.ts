/**
 * End to end, the throughput chart (issue 17, Throughput): the app in Debian's
 * Chromium (headless, playwright-core) against `vmchan serve`, on the demo.
 *
 * The y axis labels are human units with at most three significant digits,
 * the x labels seconds; an idle port is not drawn; the port selected in the
 * tree is drawn bold and the others dimmed. (The robust maximum and spike
 * clipping are unit-tested in test/api/chart-scale.test.ts; here the axis
 * says whether it clipped, consistently with the peaks it drew.)
 *
 * Without /usr/bin/chromium the suite is skipped with that message, and
 * fails under CI=true.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { significantDigits } from '../../core/api/browser/chart-scale.js';
import { box, checkBoxes, type Box } from './boxes.js';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const haveChromium = prerequisites('runs in Chromium', missingChromium());

describe.runIf(haveChromium)('the throughput chart in Chromium', () => {
  let e2e: E2e;
  let page: Page;

  const series = () =>
    page.locator('[data-chart-summary] li').evaluateAll((lis) =>
      lis.map((li) => ({
        label: li.getAttribute('data-series') ?? '',
        peak: Number(li.getAttribute('data-peak')),
        idle: li.getAttribute('data-idle') === 'true',
        emphasis: li.getAttribute('data-emphasis'),
      })),
    );

  beforeAll(async () => {
    e2e = await startE2e({ tmpPrefix: 'vmchan-e2e-chart-' });
    page = e2e.page;
  }, 60_000);

  afterAll(async () => {
    await e2e?.close();
  });

  it('labels the y axis in human units of at most three significant digits', async () => {
    await page.goto(e2e.serve.url);
    await page.locator('.tree [data-port="test2"]').waitFor();
    await expect
      .poll(async () => (await series()).find((s) => s.label === 'test2 →')?.peak ?? 0, {
        timeout: 15_000,
      })
      .toBeGreaterThan(0);
    const ticks = async (): Promise<string[]> =>
      JSON.parse(
        (await page.locator('[data-chart-axis]').getAttribute('data-ticks')) ?? '[]',
      ) as string[];
    await expect.poll(async () => (await ticks()).length).toBeGreaterThan(1);
    for (const t of await ticks()) {
      expect(t).toMatch(/^\d+(\.\d+)? (B|KiB|MiB|GiB)\/s$/);
      expect(significantDigits(t.split(' ')[0]!)).toBeLessThanOrEqual(3);
    }
    // clipped only when a peak stands above the axis
    const axis = page.locator('[data-chart-axis]');
    const ymax = Number((await axis.getAttribute('data-ymax')) || 'NaN');
    const clipped = (await axis.getAttribute('data-clipped')) === 'true';
    const highest = Math.max(...(await series()).map((s) => s.peak));
    expect(clipped).toBe(Number.isFinite(ymax) && highest > ymax);
  });

  it('at 1024x700 the "spikes clipped" note sits in the bar beside the legend, covering none of it', async () => {
    await page.setViewportSize({ width: 1024, height: 700 });
    const note = page.locator('[data-chart-axis]');
    // shown whenever a spike is clipped: show it now to measure where it goes
    await note.evaluate((e) => e.removeAttribute('hidden'));
    const bar = page.locator('[data-chart-axis]').locator('xpath=..');
    const named: [string, Box][] = [['note', await box(note, 'note')]];
    for (const sel of [
      '.section-title',
      '.h2g',
      '.g2h',
      'label:nth-of-type(1)',
      'label:nth-of-type(2)',
    ]) {
      named.push([sel, await box(bar.locator(sel).first(), sel)]);
    }
    expect(checkBoxes(named, 1024, 700)).toEqual([]);
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  it('does not draw an idle port; draws the selected port bold and dims the others', async () => {
    const r = await e2e.serve.service.execute({
      cmd: 'hotplugPort',
      port: {
        driver: 'virtserialport',
        name: 'quiet',
        newChardev: { id: 'quiet0', backend: { kind: 'null' } },
      },
    });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    await page.locator('.tree [data-port="quiet"]').waitFor();
    await expect
      .poll(async () => (await series()).find((s) => s.label === 'quiet →')?.idle)
      .toBe(true);
    for (const s of await series())
      if (!s.label.startsWith('total')) expect(s.idle).toBe(s.peak === 0);
    await page.locator('.tree [data-port="test2"]').click();
    await expect
      .poll(async () => (await series()).find((s) => s.label === 'test2 →')?.emphasis)
      .toBe('selected');
    const all = await series();
    expect(all.find((s) => s.label === 'test1 →')?.emphasis).toBe('dimmed');
    expect(all.find((s) => s.label === 'test2 ←')?.emphasis).toBe('selected');
    await page.locator('[data-dock-tab=throughput]').click();
    await e2e.shot('throughput');
    await page.locator('[data-dock-tab=both]').click();
    expect(e2e.problems).toEqual([]);
  });
});
