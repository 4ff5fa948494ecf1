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
 *   inspector (a busy line while it runs) and the port carries bytes again;
 * - Connect… makes the app the port's host application (a terminal in the
 *   Console tab) and leaves the port on its chardev; Re-point… is its own
 *   dialog, named for what it does.
 *
 * At 1440x900 and 1024x700: the held session in the Console tab, the
 * port's "close", the refusal, the Reset line and the inspector's actions
 * lie inside the window and apart from each other.
 *
 * Screenshots: test-results/screenshots/sessions-*.png. Needs
 * /usr/bin/chromium and socat (skipped without them, failed under CI=true).
 */
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeHandle } from '../../cli/serve.js';
import type { PortSnapshot } from '../../core/api/contract/contract.js';
import { box, checkBoxes, VIEWPORTS, type Box } from './boxes.js';
import { HAVE_SOCAT, socat, type Socat } from '../chardev/helpers.js';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const ready = prerequisites('runs in Chromium with socat', [
  ...missingChromium(),
  ...(HAVE_SOCAT ? [] : ['socat not found: apt-get install socat']),
]);

/** expect.poll's options: a generous bound on a loaded machine, naming what is awaited. */
const wait = (what: string) => ({ timeout: 30_000, message: `waiting for ${what}` });

describe.runIf(ready)('sessions the app holds, refusals, device reset (Chromium)', () => {
  let e2e: E2e;
  let serve: ServeHandle;
  let page: Page;
  let client: Socat | undefined;

  const portOf = async (name: string): Promise<PortSnapshot> =>
    (await e2e.topology()).ports.find((p) => p.name === name)!;
  const inspector = () => page.locator('[data-inspect=port]');

  /** The inspector's visible actions, named by their label, for checkBoxes. */
  async function actionBoxes(card: Locator): Promise<[string, Box][]> {
    const named: [string, Box][] = [];
    for (const b of await card.locator('[data-inspector-actions] button').all())
      if (await b.isVisible())
        named.push([`action ${(await b.textContent())?.trim()}`, await box(b, 'action')]);
    return named;
  }

  /**
   * At 1440x900 and at 1024x700: the named parts (and the inspector's
   * actions) inside the window and apart; a screenshot at each size.
   */
  async function atBothSizes(
    shot: string,
    card: Locator,
    parts: () => Promise<[string, Box][]>,
  ): Promise<void> {
    for (const vp of VIEWPORTS) {
      await page.setViewportSize(vp);
      const named = [...(await parts()), ...(await actionBoxes(card))];
      expect(checkBoxes(named, vp.width, vp.height), `at ${vp.width}x${vp.height}`).toEqual([]);
      await e2e.shot(`${shot}-${vp.width}`);
    }
    await page.setViewportSize(VIEWPORTS[0]);
  }

  /** Records whether a [data-busy] line was ever in the page (it may last less than a poll). */
  async function watchBusy(): Promise<() => Promise<boolean>> {
    await page.evaluate(() => {
      const w = globalThis as unknown as {
        __busySeen: boolean;
        document: { body: unknown; querySelector(s: string): unknown };
        MutationObserver: new (cb: () => void) => { observe(n: unknown, o: object): void };
      };
      w.__busySeen = false;
      new w.MutationObserver(() => {
        if (w.document.querySelector('[data-inspect=device] [data-busy]') !== null)
          w.__busySeen = true;
      }).observe(w.document.body, { childList: true, subtree: true });
    });
    return () => page.evaluate(() => (globalThis as unknown as { __busySeen: boolean }).__busySeen);
  }

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
    expect(await host.textContent()).toMatch(/connected · vmchan terminal \(Send\),\s*close/);
    const release = host.locator('[data-action=release-host]');
    await release.waitFor();
    await atBothSizes('sessions-send-host-inspector', inspector(), async () => [
      ['host row', await box(host, 'host row')],
    ]);
    // the row's "close" is inside the row, not over another row
    for (const vp of VIEWPORTS) {
      await page.setViewportSize(vp);
      expect(checkBoxes([['close', await box(release, 'close')]], vp.width, vp.height)).toEqual([]);
    }
    await page.setViewportSize(VIEWPORTS[0]);

    await page.locator('[data-tab=console]').click();
    const held = page.locator(`[data-view=console] [data-held="send:host:vser0:${nr}"]`);
    await held.waitFor();
    expect(await held.getAttribute('data-title')).toBe('test1 · host (Send)');
    for (const vp of VIEWPORTS) {
      await page.setViewportSize(vp);
      const named: [string, Box][] = [
        ['held session', await box(held, 'held session')],
        ['its close', await box(held.locator('[data-action=held-close]'), 'held close')],
        ['open host side', await box(page.locator('[data-action=term-host]'), 'Open host side')],
        ['open guest side', await box(page.locator('[data-action=term-guest]'), 'Open guest side')],
      ];
      // the close button lies inside its entry; the rest apart and inside the window
      const [entry, close, ...rest] = named;
      expect(checkBoxes([entry!, ...rest], vp.width, vp.height)).toEqual([]);
      expect(checkBoxes([close!, ...rest], vp.width, vp.height)).toEqual([]);
      await e2e.shot(`sessions-console-held-${vp.width}`);
    }
    await page.setViewportSize(VIEWPORTS[0]);
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
    expect(await guest.textContent()).toMatch(/open · vmchan terminal \(Send\),\s*close/);

    // A second guest program opening the same port: EBUSY, shown under Terminal.
    await inspector().locator('[data-action=terminal]').click();
    await page.locator('[data-tab=overview]').click();
    await page.locator('.tree [data-port="test1"]').click();
    const ebusy = inspector().locator('[data-problem=terminal]');
    await ebusy.waitFor();
    expect(await ebusy.textContent()).toContain('EBUSY');
    // right under Terminal: the next thing below the button
    const term = await box(inspector().locator('[data-action=terminal]'), 'Terminal');
    const shown = await box(ebusy, 'EBUSY');
    expect(shown.y).toBeGreaterThanOrEqual(term.y + term.height - 0.5);
    expect(shown.y - (term.y + term.height)).toBeLessThan(24);
    // inside the window and clear of the buttons, at both sizes
    await atBothSizes('sessions-ebusy', inspector(), async () => [
      ['EBUSY', await box(ebusy, 'EBUSY')],
    ]);

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
    const note = card.locator('[data-field=needs-reset]');
    await note.waitFor();
    expect(await note.textContent()).toContain('NEEDS_RESET (M2)');
    await atBothSizes('sessions-needs-reset', card, async () => [
      ['NEEDS_RESET note', await box(note, 'NEEDS_RESET note')],
    ]);
    const busySeen = await watchBusy();
    await card.locator('[data-action=reset-device]').click();
    await note.waitFor({ state: 'detached' });
    await expect.poll(busySeen, wait('the busy line while the reset ran')).toBe(true);
    await expect
      .poll(() => card.locator('[data-busy]').count(), wait('the busy line gone'))
      .toBe(0);
    expect(await card.locator('[data-action=reset-device]').isEnabled()).toBe(true);
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

  it('Connect… connects the app as host; Re-point… is a separate, named dialog', async () => {
    await page.locator('[data-tab=overview]').click();
    await page.locator('.tree [data-port="test2"]').click();
    await inspector().locator('h3', { hasText: 'port test2' }).waitFor();
    const before = await portOf('test2');
    expect(before.hostConnected).toBe(false);
    const connect = inspector().locator('[data-action=connect]');
    const repoint = inspector().locator('[data-action=repoint]');
    expect(await connect.textContent()).toBe('Connect…');
    expect(await repoint.textContent()).toBe('Re-point…');
    expect(await connect.getAttribute('title')).toContain('host application');
    expect(await repoint.getAttribute('title')).toContain('another chardev');

    await connect.click();
    // the app is now test2's host application, on the same chardev, in a Console tab
    await expect
      .poll(async () => (await portOf('test2')).hostConnected, wait('the app connected to test2'))
      .toBe(true);
    expect((await portOf('test2')).chardev).toBe(before.chardev);
    const tab = page.locator('[data-view=console] [role=tab][aria-selected=true]');
    await tab.waitFor();
    const title = await tab.getAttribute('data-title');
    expect(title).toContain('test2');
    await e2e.shot('sessions-connect-console');

    // Connect… is now refused with the reason; Re-point… opens its own dialog
    await page.locator('[data-tab=overview]').click();
    await expect
      .poll(
        async () => (await inspector().locator('[data-field=host]').textContent()) ?? '',
        wait('test2 held by the app'),
      )
      .toContain('connected · vmchan terminal');
    expect(await connect.isDisabled()).toBe(true);
    expect(await connect.getAttribute('title')).toContain('has a host application already');
    await repoint.click();
    const dialog = page.locator('[data-dialog=repoint]');
    await dialog.waitFor();
    expect(await dialog.locator('h2').textContent()).toBe('Re-point test2 at another chardev');
    expect(await dialog.locator('[data-submit]').textContent()).toBe('Re-point');
    for (const vp of VIEWPORTS) {
      await page.setViewportSize(vp);
      const named: [string, Box][] = [
        ['dialog', await box(dialog.locator('form'), 'Re-point dialog')],
      ];
      expect(checkBoxes(named, vp.width, vp.height)).toEqual([]);
      await e2e.shot(`sessions-repoint-dialog-${vp.width}`);
    }
    await page.setViewportSize(VIEWPORTS[0]);
    await dialog.locator('button', { hasText: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    // cancelled: the port stays where it was, still held by the app
    expect((await portOf('test2')).chardev).toBe(before.chardev);
    expect((await portOf('test2')).hostConnected).toBe(true);

    // close the app's session from the Console tab: the chardev is free again
    await page.locator('[data-tab=console]').click();
    await page
      .locator(`[data-view=console] [data-action=term-close][aria-label="close ${title!}"]`)
      .click();
    await expect
      .poll(async () => (await portOf('test2')).hostConnected, wait('test2 free again'))
      .toBe(false);
    expect(e2e.problems).toEqual([]);
  }, 60_000);
});
