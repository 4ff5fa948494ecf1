/**
 * End to end: the inspector's Terminal button in Debian's Chromium
 * (headless, playwright-core; no browser is ever downloaded) against
 * `vmchan serve`, on the real engine.
 *
 * - select test1 in the tree, click Terminal: the Console tab opens with a
 *   session on test1's host side, and the host side is connected;
 * - click it again: the same session is shown, no second one;
 * - "as guest" then Terminal: a guest-side session on test1 (the guest
 *   opens the port);
 * - Disconnect host on that port: the terminal's connection is hung up;
 * - with a capture running, the port's Capture toggle turns its capture off
 *   and on again (the port snapshot's switch follows), and back to the
 *   switch of all ports.
 *
 * Screenshot: test-results/screenshots/inspector-terminal.png. Without
 * /usr/bin/chromium the suite is skipped with that message, and fails
 * under CI=true.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeHandle } from '../../cli/serve.js';
import type { PortSnapshot } from '../../core/api/contract/contract.js';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const haveChromium = prerequisites('runs in Chromium', missingChromium());

describe.runIf(haveChromium)('the inspector in Chromium against vmchan serve', () => {
  let e2e: E2e;
  let serve: ServeHandle;
  let page: Page;

  const portOf = async (name: string): Promise<PortSnapshot> =>
    (await e2e.topology()).ports.find((p) => p.name === name)!;

  beforeAll(async () => {
    e2e = await startE2e();
    ({ serve, page } = e2e);
    await page.goto(serve.url);
    await page.locator('.tree [data-port="test1"]').waitFor();
  }, 60_000);

  afterAll(async () => {
    await e2e?.close();
  });

  it('Terminal opens the Console tab with a session on the selected port', async () => {
    // The demo's transfer holds test1 at both ends: stop it, so the host side is free.
    const stopped = await serve.service.execute({
      cmd: 'setWorkload',
      port: { device: 'vser0', nr: (await portOf('test1')).nr },
      on: false,
    });
    expect(stopped.ok).toBe(true);
    await expect.poll(async () => (await portOf('test1')).hostConnected).toBe(false);
    await expect.poll(async () => (await portOf('test1')).guestOpen).toBe(false);

    await page.locator('.tree [data-port="test1"]').click();
    const inspector = page.locator('[data-inspect=port]');
    await inspector.locator('h3', { hasText: 'port test1' }).waitFor();
    await inspector.locator('[data-action=terminal]').click();

    // The Console tab is shown, with a host-side session on test1, open and active.
    await page.locator('[data-tab=console][aria-selected=true]').waitFor();
    const hostTab = page.locator('[data-view=console] [data-session][data-title="test1 · host"]');
    await hostTab.waitFor();
    expect(await hostTab.getAttribute('aria-selected')).toBe('true');
    await expect.poll(async () => (await portOf('test1')).hostConnected).toBe(true);
    await page.locator('[data-view=console] .xterm').waitFor();
    await e2e.shot('inspector-terminal');

    // Again: the session already open is shown, not a second one (which QEMU's one-client rule would refuse).
    await page.locator('[data-tab=overview]').click();
    await inspector.locator('[data-action=terminal]').click();
    await page.locator('[data-tab=console][aria-selected=true]').waitFor();
    expect(await page.locator('[data-view=console] [data-session]').count()).toBe(1);

    // "as guest": a guest program opens test1's device node.
    await inspector.locator('input[type=radio][value=guest]').check();
    await inspector.locator('[data-action=terminal]').click();
    const guestTab = page.locator('[data-view=console] [data-session][data-title="test1 · guest"]');
    await guestTab.waitFor();
    expect(await guestTab.getAttribute('aria-selected')).toBe('true');
    await expect.poll(async () => (await portOf('test1')).guestOpen).toBe(true);

    // Disconnect host hangs up the terminal's connection (core/chardev hangUp).
    await inspector.locator('[data-action=disconnect]').click();
    await expect.poll(async () => (await portOf('test1')).hostConnected).toBe(false);
    await hostTab.click();
    await expect
      .poll(async () => (await page.locator('[data-field=term-status]').textContent()) ?? '')
      .toContain('ended');
    expect(e2e.problems).toEqual([]);
  }, 60_000);

  it("the port's Capture toggle flips its switch, while a capture runs", async () => {
    expect(await serve.service.execute({ cmd: 'startCapture' })).toMatchObject({ ok: true });
    await page.locator('[data-tab=overview]').click();
    await page.locator('.tree [data-port="test1"]').click();
    const inspector = page.locator('[data-inspect=port]');
    await inspector.locator('h3', { hasText: 'port test1' }).waitFor();
    const toggle = inspector.locator('[data-action=port-capture]');
    await expect.poll(() => toggle.getAttribute('data-capture')).toBe('on');
    await inspector.locator('[data-recording]').waitFor();

    await toggle.click();
    await expect.poll(() => toggle.getAttribute('data-capture')).toBe('off');
    expect(await toggle.getAttribute('aria-pressed')).toBe('false');
    expect((await portOf('test1')).capture).toEqual({ own: false, on: false });
    expect((await portOf('test2')).capture).toEqual({ own: null, on: true });
    await inspector.locator('[data-recording]').waitFor({ state: 'detached' });
    await e2e.shot('inspector-capture-off');

    await toggle.click();
    await expect.poll(() => toggle.getAttribute('data-capture')).toBe('on');
    expect((await portOf('test1')).capture).toEqual({ own: true, on: true });
    await inspector.locator('[data-action=port-capture-follow]').click();
    await expect.poll(async () => (await portOf('test1')).capture).toEqual({ own: null, on: true });
    await inspector.locator('[data-action=port-capture-follow]').waitFor({ state: 'detached' });

    expect(await serve.service.execute({ cmd: 'stopCapture' })).toMatchObject({ ok: true });
    await inspector.locator('[data-recording]').waitFor({ state: 'detached' });
    expect(e2e.problems).toEqual([]);
  }, 60_000);

  it("shows the port's dropped bytes by direction and reason (issue 13 item 14)", async () => {
    const nr = (await portOf('test1')).nr;
    // A drop as the guest driver reports it (its own tests prove the counts).
    serve.service.session.lab.events.emit('drop', {
      device: 'vser0',
      nr,
      side: 'guest',
      bytes: 4321,
      reason: 'closed-unread',
      direction: 'to-guest',
    });
    await expect.poll(async () => (await portOf('test1')).dropped).toBe(4321);
    await page.locator('.tree [data-port="test1"]').click();
    const dropped = page.locator('[data-inspect=port] [data-field=dropped]');
    await dropped.locator('.drop-reason', { hasText: 'closed-unread' }).waitFor();
    expect(await dropped.locator('.drop-reason').innerText()).toMatch(
      /host → guest\s+closed-unread \(guest\): 4\.22 KiB/,
    );
    expect(e2e.problems).toEqual([]);
  }, 60_000);
});
