/**
 * End to end, the events dock (issue 17, Debugging a channel): the app in
 * Debian's Chromium (headless, playwright-core) against `vmchan serve`.
 * Guest open/close shows by default; a quiet port's open/close stays listed
 * under its filter while the busy demo ports run at full speed (each port keeps
 * its own history; a 2,000-event flood: test/api/event-history.test.ts); clicking an event's port filters the list
 * to it; the list is in time order.
 *
 * Without /usr/bin/chromium the suite is skipped with that message, and
 * fails under CI=true.
 */
import * as net from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PortSnapshot } from '../../core/api/contract/contract.js';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const haveChromium = prerequisites('runs in Chromium', missingChromium());

describe.runIf(haveChromium)('the events dock in Chromium', () => {
  let e2e: E2e;
  let page: Page;

  beforeAll(async () => {
    e2e = await startE2e({ tmpPrefix: 'vmchan-e2e-events-' });
    page = e2e.page;
  }, 60_000);

  afterAll(async () => {
    await e2e?.close();
  });

  it('shows guest events by default, keeps a quiet port’s history, filters by a click, in time order', async () => {
    await page.goto(e2e.serve.url);
    await page.locator('.tree [data-port="test2"]').waitFor();
    expect(await page.locator('[data-filter=guest]').isChecked()).toBe(true);
    // a quiet port: plugged, one host client connects and leaves
    const made = await e2e.serve.service.execute({
      cmd: 'hotplugPort',
      port: {
        driver: 'virtserialport',
        name: 'quiet',
        newChardev: { id: 'quiet0', backend: { kind: 'unix' } },
      },
    });
    expect(made.ok, JSON.stringify(made)).toBe(true);
    const port = (await e2e.topology()).ports.find((p: PortSnapshot) => p.label === 'quiet')!;
    const chardev = (await e2e.topology()).chardevs.find((c) => c.id === port.chardev)!;
    const sock = net.connect(chardev.path!);
    await new Promise<void>((ok, bad) => sock.once('connect', ok).once('error', bad));
    await expect
      .poll(
        async () => (await e2e.topology()).ports.find((p) => p.label === 'quiet')?.hostConnected,
      )
      .toBe(true);
    sock.destroy();
    const key = port.key;
    await page.locator(`[data-events] [data-event-port="${key}"]`).first().waitFor();
    // hold the list still to click in it (live off), then let it run again
    await page.locator('.timeline label.chip', { hasText: 'live' }).click();
    await page.locator(`[data-events] [data-event-port="${key}"]`).first().click();
    await page.locator('.timeline label.chip', { hasText: 'live' }).click();
    // the demo at full speed floods the list with the other ports' events; the quiet
    // port's own history keeps its state changes (the flood itself: event-history.test.ts)
    await page.locator('[data-action=lab]').selectOption('full');
    await expect.poll(() => page.locator('[data-filter=port]').inputValue()).toBe(key);
    const kinds = await page
      .locator('[data-events] li.ev')
      .evaluateAll((lis) =>
        lis.map((li) => [
          li.querySelector('[data-event-port]')?.getAttribute('data-event-port'),
          li.getAttribute('data-kind'),
        ]),
      );
    expect(kinds.length).toBeGreaterThan(0);
    expect(kinds.every(([k]) => k === key)).toBe(true);
    expect(kinds.map(([, kind]) => kind)).toContain('host-open');
    expect(kinds.map(([, kind]) => kind)).toContain('port-added');
    // time order: newest first in the DOM (shown bottom-up), times never increase downwards
    const times = await page.locator('[data-events] li.ev .t').allTextContents();
    expect([...times].sort().reverse()).toEqual(times);
    await e2e.shot('events-port-filter');
    await page.locator('[data-action=lab]').selectOption('paced');
    expect(e2e.problems).toEqual([]);
  }, 60_000);
});
