/**
 * End to end, the capture view's tools (issue 17, Capturing traffic): the app
 * in Debian's Chromium (headless, playwright-core) against `vmchan serve`.
 *
 * The live list follows new records and stops when the user scrolls up, as
 * Wireshark's auto scroll; columns sort (header clicks) and resize (their
 * grip); the IO graph draws one series per display filter, from the file;
 * Find in Follow stream finds text typed one byte per record and selects the
 * record that holds its first byte.
 *
 * Without /usr/bin/chromium the suite is skipped with that message, and
 * fails under CI=true.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTyped } from '../api/capture-fixture.js';
import {
  missingChromium,
  prerequisites,
  pressCapture,
  showLiveCapture,
  startE2e,
  type E2e,
} from './harness.js';

const haveChromium = prerequisites('runs in Chromium', missingChromium());

describe.runIf(haveChromium)('the capture tools in Chromium', () => {
  let e2e: E2e;
  let page: Page;
  let work: string;

  const list = () => page.locator('[data-capture-list]');
  const count = async (): Promise<number> => Number(await list().getAttribute('data-count'));
  const top = async (): Promise<number> => Number(await list().getAttribute('data-top'));
  const rows = () => page.locator('[data-capture-rows] tbody tr[data-number]');
  const cells = (col: number) =>
    rows().evaluateAll((trs, c) => trs.map((tr) => tr.children[c]?.textContent ?? ''), col);

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-e2e-captools-'));
    e2e = await startE2e({ tmpPrefix: 'vmchan-e2e-captools-' });
    page = e2e.page;
  }, 60_000);

  afterAll(async () => {
    await e2e?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('follows the live list, and stops following when the user scrolls up', async () => {
    await page.goto(e2e.serve.url);
    await page.locator('.tree [data-port="test2"]').waitFor();
    await pressCapture(page, 'start');
    await expect
      .poll(async () => (await e2e.topology()).capture.records, { timeout: 10_000 })
      .toBeGreaterThan(0);
    await page.locator('[data-tab=capture]').click();
    await showLiveCapture(page);
    await list().waitFor();
    await expect.poll(count, { timeout: 15_000 }).toBeGreaterThan(200);
    expect(await page.locator('[data-action=autoscroll]').getAttribute('aria-pressed')).toBe(
      'true',
    );
    // following: the window sits at the end as the count grows
    const atEnd = async (): Promise<boolean> => {
      const n = await count();
      const last = await rows().last().getAttribute('data-number');
      return Number(last) >= n - 1;
    };
    await expect.poll(atEnd, { timeout: 10_000 }).toBe(true);
    const seen = await count();
    await expect.poll(count, { timeout: 10_000 }).toBeGreaterThan(seen + 20);
    await expect.poll(atEnd, { timeout: 10_000 }).toBe(true);
    await e2e.shot('capture-live-follow');
    // the user scrolls up: following stops, the position stays while records arrive
    await list().hover();
    await page.mouse.wheel(0, -2000);
    await expect
      .poll(() => page.locator('[data-action=autoscroll]').getAttribute('aria-pressed'))
      .toBe('false');
    const held = await top();
    const before = await count();
    await expect.poll(count, { timeout: 10_000 }).toBeGreaterThan(before + 20);
    expect(await top()).toBe(held);
    // the toggle starts it again
    await page.locator('[data-action=autoscroll]').click();
    await expect.poll(atEnd, { timeout: 10_000 }).toBe(true);
    await pressCapture(page, 'stop');
    await expect.poll(async () => (await e2e.topology()).capture.on).toBe(false);
  }, 60_000);

  it('sorts by a column header and resizes a column by its grip', async () => {
    await page
      .locator('[data-action=show-capture]')
      .click()
      .catch(() => undefined);
    await rows().first().waitFor();
    await page.locator('[data-sort=length]').click();
    await expect.poll(async () => (await cells(5)).length).toBeGreaterThan(10);
    await expect
      .poll(async () => {
        const lens = (await cells(5)).map(Number);
        return lens.every((v, i) => i === 0 || lens[i - 1]! <= v);
      })
      .toBe(true);
    await page.locator('[data-sort=length]').click(); // descending
    await expect
      .poll(async () => {
        const lens = (await cells(5)).map(Number);
        return lens.length > 10 && lens.every((v, i) => i === 0 || lens[i - 1]! >= v);
      })
      .toBe(true);
    await page.locator('[data-sort=number]').click(); // newest first
    const n = await count();
    await expect.poll(async () => Number((await cells(0))[0])).toBe(n);
    await page.locator('[data-sort=number]').click(); // back to the file's order
    await expect
      .poll(async () => {
        const nums = (await cells(0)).map(Number);
        return nums.length > 10 && nums.every((v, i) => i === 0 || nums[i - 1]! < v);
      })
      .toBe(true);
    // a column's grip: the Port column grows by the drag
    const head = page.locator('table.head th').nth(2);
    const w0 = (await head.boundingBox())!.width;
    const grip = (await page.locator('[data-grip=port]').boundingBox())!;
    await page.mouse.move(grip.x + grip.width / 2, grip.y + grip.height / 2);
    await page.mouse.down();
    await page.mouse.move(grip.x + 60, grip.y + grip.height / 2, { steps: 4 });
    await page.mouse.up();
    await expect.poll(async () => (await head.boundingBox())!.width).toBeCloseTo(w0 + 57, -1);
    // rows follow the header
    const cell = rows().first().locator('td').nth(2);
    expect((await cell.boundingBox())!.width).toBeCloseTo((await head.boundingBox())!.width, 0);
    await e2e.shot('capture-sorted');
  });

  it('draws an IO graph with one series per display filter', async () => {
    await page.locator('[data-action=io-graph]').click();
    const dialog = page.locator('[data-dialog=io-graph]');
    await dialog.locator('[data-io-summary] li').first().waitFor();
    expect(await dialog.locator('[data-io-summary] li').count()).toBe(2);
    await dialog.locator('[data-action=add-series]').click();
    await dialog.locator('[data-series-filter="2"]').fill('kind == control');
    await dialog.locator('[data-field=metric]').selectOption('records');
    await dialog.locator('[data-submit]').click();
    await expect.poll(() => dialog.locator('[data-io-summary] li').count()).toBe(3);
    const totals = await dialog
      .locator('[data-io-summary] li')
      .evaluateAll((lis) => lis.map((li) => Number(li.getAttribute('data-total'))));
    // every record, then subsets of it
    expect(totals[0]).toBe(await count());
    expect(totals[1]).toBeLessThan(totals[0]!);
    expect(totals[2]).toBeGreaterThan(0);
    expect(totals[2]).toBeLessThan(totals[0]!);
    await e2e.shot('capture-io-graph');
    await page.keyboard.press('Escape');
  });

  it('finds text typed one byte per record in Follow stream and jumps to its record', async () => {
    const file = path.join(work, 'typed.pcapng');
    writeTyped(file);
    await page.locator('[data-action=open-capture]').click();
    await page.locator('[data-dialog=open-capture] [data-field=path]').fill(file);
    await page.locator('[data-dialog=open-capture] [data-submit]').click();
    await expect.poll(count).toBe(28);
    // no record holds the word
    await page.locator('[data-filter-input]').fill('contains "hello"');
    await page.locator('[data-filter-input]').press('Enter');
    await expect.poll(count).toBe(0);
    await page.locator('[data-filter-input]').fill('');
    await page.locator('[data-filter-input]').press('Enter');
    await expect.poll(count).toBe(28);
    await rows().first().click();
    await page.locator('[data-action=follow]').click();
    await page.locator('[data-field=find]').fill('hello');
    await page.locator('[data-action=find]').click();
    await expect
      .poll(() => page.locator('[data-find-result]').getAttribute('data-find-result'))
      .toBe('2');
    await expect
      .poll(() => page.locator('[data-capture-rows] tr.selected').getAttribute('data-number'))
      .toBe('7');
    await page.locator('[data-action=find-next]').click();
    await expect
      .poll(() => page.locator('[data-capture-rows] tr.selected').getAttribute('data-number'))
      .toBe('19');
    await e2e.shot('capture-follow-find');
    expect(e2e.problems).toEqual([]);
  });
});
