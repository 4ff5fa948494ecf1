/**
 * End to end (issue 17), in Debian's Chromium against `vmchan serve` on the
 * demo lab:
 *
 * - Send as host keeps the app's client socket on the port's chardev: the
 *   inspector says so ("connected · vmchan terminal (Send), close"), the
 *   Console tab lists it; closing it there frees the chardev, and a real
 *   socat then connects (no "Connection reset");
 * - a refusal shows next to the control that caused it: Send as guest with
 *   no host (EAGAIN) under Send, a second client (socat holds the socket)
 *   under Send, EBUSY under Terminal while Send holds the guest side; at
 *   1024x700 the message lies inside the window, clear of the buttons;
 * - Send as guest keeps the port open in the guest; closed from the Console
 *   tab, the guest port is closed;
 * - a device in NEEDS_RESET (an injected fault, G3) is reset from its
 *   inspector (a busy line while it runs) and the port carries bytes again.
 *
 * Screenshots: test-results/screenshots/sessions-*.png. Needs
 * /usr/bin/chromium and socat (skipped without them, failed under CI=true).
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeHandle } from '../../cli/serve.js';
import type { PortSnapshot } from '../../core/api/contract/contract.js';
import { HAVE_SOCAT, socat, type Socat } from '../chardev/helpers.js';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const ready = prerequisites('runs in Chromium with socat', [
  ...missingChromium(),
  ...(HAVE_SOCAT ? [] : ['socat not found: apt-get install socat']),
]);

/** expect.poll's options: a generous bound on a loaded machine, naming what is awaited. */
const wait = (what: string) => ({ timeout: 30_000, message: `waiting for ${what}` });

type Box = { x: number; y: number; width: number; height: number };
const overlap = (a: Box, b: Box): boolean =>
  a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

describe.runIf(ready)('sessions the app holds, refusals, device reset (Chromium)', () => {
  let e2e: E2e;
  let serve: ServeHandle;
  let page: Page;
  let client: Socat | undefined;

  const portOf = async (name: string): Promise<PortSnapshot> =>
    (await e2e.topology()).ports.find((p) => p.name === name)!;
  const inspector = () => page.locator('[data-inspect=port]');

  async function send(side: 'host' | 'guest', text: string): Promise<void> {
    await page.locator('[data-tab=overview]').click();
    await page.locator('.tree [data-port="test1"]').click();
    await inspector().locator('h3', { hasText: 'port test1' }).waitFor();
    await inspector().locator(`input[type=radio][value=${side}]`).check();
    await inspector().locator('input[aria-label="Write to the port"]').fill(text);
    await inspector().locator('button[type=submit]', { hasText: 'Send' }).click();
  }

  beforeAll(async () => {
    e2e = await startE2e({ tmpPrefix: 'vmchan-e2e-sessions-' });
    ({ serve, page } = e2e);
    await page.goto(serve.url);
    await page.locator('.tree [data-port="test1"]').waitFor();
  }, 90_000);

  afterAll(async () => {
    await client?.stop();
    await e2e?.close();
  });

  it('Send as host: listed, closed from the Console tab, then socat connects', async () => {
    // The demo's transfer holds test1 at both ends: stop it, so both sides are free.
    const nr = (await portOf('test1')).nr;
    expect(
      await serve.service.execute({ cmd: 'setWorkload', port: { device: 'vser0', nr }, on: false }),
    ).toMatchObject({ ok: true });
    await expect
      .poll(async () => (await portOf('test1')).hostConnected, wait('test1 host free'))
      .toBe(false);
    await expect
      .poll(async () => (await portOf('test1')).guestOpen, wait('test1 guest closed'))
      .toBe(false);
    await send('host', 'hello guest');
    const host = inspector().locator('[data-field=host]');
    await expect
      .poll(async () => (await host.textContent()) ?? '', wait('the Send hold in the host row'))
      .toContain('vmchan terminal (Send)');
    await host.locator('[data-action=release-host]').waitFor();
    await e2e.shot('sessions-send-host-inspector');

    await page.locator('[data-tab=console]').click();
    const held = page.locator(`[data-view=console] [data-held="send:host:vser0:${nr}"]`);
    await held.waitFor();
    expect(await held.getAttribute('data-title')).toBe('test1 · host (Send)');
    await e2e.shot('sessions-console-held');
    await held.locator('[data-action=held-close]').click();
    await held.waitFor({ state: 'detached' });
    await expect
      .poll(async () => (await portOf('test1')).hostConnected, wait('the hold let go'))
      .toBe(false);

    // The chardev is free: socat is adopted and stays (no "Connection reset").
    const chardev = (await portOf('test1')).chardev;
    const path = (await e2e.topology()).chardevs.find((c) => c.id === chardev)!.path!;
    client = socat(['-', `UNIX-CONNECT:${path}`]);
    await expect
      .poll(async () => (await portOf('test1')).hostConnected, wait('socat adopted'))
      .toBe(true);
    expect(client.child.exitCode).toBeNull();
    expect(e2e.problems).toEqual([]);
  }, 60_000);

  it('a refusal shows next to its control: a second client under Send', async () => {
    await send('host', 'me too');
    const problem = inspector().locator('[data-problem=send]');
    await problem.waitFor();
    expect(await problem.textContent()).toContain('has a host application already');
    expect(client!.child.exitCode).toBeNull(); // socat keeps its connection
    expect(e2e.problems).toEqual([]);
  }, 60_000);

  it('Send as guest holds the port open; Terminal as guest gets EBUSY beside it; closed from the Console tab', async () => {
    await send('guest', 'to socat');
    await expect
      .poll(() => client!.output().toString(), wait('socat to read the guest'))
      .toContain('to socat\n');
    const guest = inspector().locator('[data-field=guest]');
    await expect
      .poll(async () => (await guest.textContent()) ?? '', wait('the Send hold in the guest row'))
      .toContain('vmchan terminal (Send)');
    expect((await portOf('test1')).guestOpen).toBe(true);

    // A second guest program opening the same port: EBUSY, shown under Terminal.
    await inspector().locator('[data-action=terminal]').click();
    await page.locator('[data-tab=overview]').click();
    await page.locator('.tree [data-port="test1"]').click();
    const ebusy = inspector().locator('[data-problem=terminal]');
    await ebusy.waitFor();
    expect(await ebusy.textContent()).toContain('EBUSY');
    await e2e.shot('sessions-ebusy-1440');
    // At 1024x700 the message is inside the window and clear of the buttons.
    await page.setViewportSize({ width: 1024, height: 700 });
    const box = (await ebusy.boundingBox())!;
    expect(box.y + box.height).toBeLessThanOrEqual(700);
    expect(box.x + box.width).toBeLessThanOrEqual(1024);
    for (const b of await inspector().locator('[data-inspector-actions] button').all()) {
      if (!(await b.isVisible())) continue;
      expect(overlap(box, (await b.boundingBox())!)).toBe(false);
    }
    await e2e.shot('sessions-ebusy-1024');
    await page.setViewportSize({ width: 1440, height: 900 });

    await page.locator('[data-tab=console]').click();
    const nr = (await portOf('test1')).nr;
    const held = page.locator(`[data-view=console] [data-held="send:guest:vser0:${nr}"]`);
    await held.waitFor();
    await held.locator('[data-action=held-close]').click();
    await held.waitFor({ state: 'detached' });
    await expect
      .poll(async () => (await portOf('test1')).guestOpen, wait('the guest port closed'))
      .toBe(false);
    expect(e2e.problems).toEqual([]);
  }, 60_000);

  it('Reset in the device inspector recovers NEEDS_RESET; the port carries bytes again', async () => {
    const nr = (await portOf('test1')).nr;
    const injected = await serve.service.execute({
      cmd: 'injectFault',
      device: 'vser0',
      queue: 2 * nr + 3,
      fault: 'M2',
    });
    expect(injected).toMatchObject({ ok: true });
    await page.locator('[data-tab=overview]').click();
    await page.locator('.tree [data-device=vser0]').click();
    const card = page.locator('[data-inspect=device]');
    await card.locator('[data-field=needs-reset]').waitFor();
    await e2e.shot('sessions-needs-reset');
    await card.locator('[data-action=reset-device]').click();
    await card.locator('[data-field=needs-reset]').waitFor({ state: 'detached' });
    await expect
      .poll(
        async () => (await e2e.topology()).devices.find((d) => d.name === 'vser0')!.state,
        wait('vser0 running again'),
      )
      .toBe('running');
    await expect
      .poll(async () => (await portOf('test1')).guestName, wait('test1 back in the guest'))
      .not.toBeNull();
    // The port works again: the guest writes, socat (still connected) reads.
    await expect
      .poll(async () => {
        const r = await serve.service.execute({
          cmd: 'writeGuest',
          port: { device: 'vser0', nr },
          data: 'after reset\n',
        });
        return r.ok;
      }, wait('a guest write after the reset'))
      .toBe(true);
    await expect
      .poll(() => client!.output().toString(), wait('socat to read after the reset'))
      .toContain('after reset\n');
    await e2e.shot('sessions-after-reset');
    expect(e2e.problems).toEqual([]);
  }, 90_000);
});
