/**
 * End to end, the "+ device" dialog (issue 17, Teaching virtio): the ring
 * format (split / packed) and the features (event idx, indirect descriptors)
 * are chosen in the dialog, its -device line follows the choices, and the
 * device made has them (its monitor twin and its ring format). A busy
 * indicator shows while a lab loads (issue 17, Debugging a channel).
 *
 * Without /usr/bin/chromium the suite is skipped with that message, and
 * fails under CI=true.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const haveChromium = prerequisites('runs in Chromium', missingChromium());

describe.runIf(haveChromium)('the + device dialog in Chromium', () => {
  let e2e: E2e;
  let page: Page;

  beforeAll(async () => {
    e2e = await startE2e({ tmpPrefix: 'vmchan-e2e-device-' });
    page = e2e.page;
  }, 60_000);

  afterAll(async () => {
    await e2e?.close();
  });

  it('makes a packed-ring device without event idx, as its -device line says', async () => {
    await page.goto(e2e.serve.url);
    await page.locator('.tree [data-port="test2"]').waitFor();
    await page.getByRole('button', { name: '+ device' }).click();
    const dialog = page.locator('[data-dialog=add-device]');
    await dialog.locator('[data-field=id]').fill('vpk');
    await dialog.locator('[data-field=ring-packed]').check();
    await dialog.locator('[data-field=event-idx]').uncheck();
    await expect
      .poll(() => dialog.locator('[data-device-line]').textContent())
      .toBe('-device virtio-serial-pci,id=vpk,packed=on,event_idx=off');
    await e2e.shot('dialog-add-device');
    await dialog.locator('[data-submit]').click();
    await expect
      .poll(async () => (await e2e.topology()).devices.find((d) => d.name === 'vpk')?.packed)
      .toBe(true);
    const made = (await e2e.topology()).devices.find((d) => d.name === 'vpk')!;
    expect(made.monitor).toMatch(/packed=on/);
    expect(made.monitor).toMatch(/event_idx=off/);
    expect(made.monitor).not.toMatch(/indirect_desc/);
    expect(e2e.problems).toEqual([]);
  });

  it('shows a busy indicator while a lab loads, and the lab chooser waits for it', async () => {
    // record whether the indicator was ever in the page (it may last less than a poll)
    await page.evaluate(() => {
      const w = globalThis as unknown as {
        __busySeen: boolean;
        document: { body: unknown; querySelector(s: string): unknown };
        MutationObserver: new (cb: () => void) => { observe(n: unknown, o: object): void };
      };
      w.__busySeen = false;
      new w.MutationObserver(() => {
        if (w.document.querySelector('[data-busy]') !== null) w.__busySeen = true;
      }).observe(w.document.body, { childList: true, subtree: true });
    });
    await page.locator('[data-action=lab]').selectOption({ value: 'demo' });
    await expect
      .poll(() =>
        page.evaluate(() => (globalThis as unknown as { __busySeen: boolean }).__busySeen),
      )
      .toBe(true);
    await expect.poll(() => page.locator('[data-busy]').count(), { timeout: 15_000 }).toBe(0);
    expect(await page.locator('[data-action=lab]').isEnabled()).toBe(true);
    await page.locator('.tree [data-port="test2"]').waitFor();
    expect(e2e.problems).toEqual([]);
  });
});
