/**
 * End to end, attach mode: the app in Debian's Chromium (playwright-core)
 * against `vmchan serve`, attached from its dialog to a real QEMU running
 * the test guest (test/guest). A QMP socket another client holds gives the
 * one-line message in the dialog; once attached, the guest's ports are in
 * the topology tree with the note on VSERPORT_CHANGE's limits, a port
 * hot-plugged from the app's dialog appears in the guest's
 * /dev/virtio-ports, unplug waits for DEVICE_DELETED, and Detach brings the
 * demo lab back. Screenshot: test-results/screenshots/attach.png.
 *
 * Without chromium, qemu-system-x86_64 or busybox-static the suite is
 * skipped with the install command, and fails under CI=true.
 */
import * as net from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeHandle } from '../../cli/serve.js';
import { isGuestError } from '../guest/guest-shell.js';
import { startGuest, type Guest } from '../guest/qemu.js';
import { missingGuest } from '../qemu/real-guest.js';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const ready = prerequisites('attaches to a real QEMU from the app', [
  ...missingChromium(),
  ...missingGuest(),
]);

describe.runIf(ready)('attach to a real QEMU from the app (Chromium)', () => {
  let e2e: E2e;
  let serve: ServeHandle;
  let guest: Guest;
  let page: Page;

  const guestPorts = async (): Promise<string> => {
    const r = await guest.shell.run('ls /dev/virtio-ports');
    if (isGuestError(r)) throw new Error(r.toString());
    return r.output;
  };

  beforeAll(async () => {
    const booting = startGuest({
      ports: [
        { id: 'con0', kind: 'console', name: 'org.test.console.0' },
        { id: 'port1', name: 'org.test.port.1' },
      ],
    });
    e2e = await startE2e({ tmpPrefix: 'vmchan-e2e-attach-', timeoutMs: 15_000, csp: false });
    ({ serve, page } = e2e);
    const g = await booting;
    if (isGuestError(g)) throw new Error(g.toString());
    guest = g;
  }, 90_000);

  afterAll(async () => {
    await e2e?.close();
    await guest?.stop();
  });

  it('a taken QMP socket is one line in the dialog', async () => {
    await page.goto(serve.url);
    await page.locator('.tree [data-port="test2"]').waitFor();
    // Another client holds QEMU's one QMP connection.
    const holder = net.connect(guest.qmpPath);
    await new Promise<void>((resolve) => holder.once('data', () => resolve()));
    try {
      await page.locator('[data-action=attach]').click();
      const dialog = page.locator('[data-dialog=attach]');
      await dialog.locator('[data-field=address]').fill(guest.qmpPath);
      await dialog.locator('[data-submit]').click();
      await expect
        .poll(() => dialog.locator('[data-error]').textContent(), { timeout: 10_000 })
        .toBe(
          `the QMP socket ${guest.qmpPath} is taken by another client (QEMU serves one at a time)`,
        );
    } finally {
      holder.destroy();
    }
  }, 20_000);

  it('attaches from the dialog and shows the guest’s ports, with what QEMU does not tell', async () => {
    const dialog = page.locator('[data-dialog=attach]');
    await dialog.locator('[data-submit]').click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('.tree [data-port="org.test.port.1"]').waitFor();
    await page.locator('.tree [data-port="org.test.console.0"]').waitFor();
    expect(await page.locator('.tree [data-port="test2"]').count()).toBe(0);
    await expect
      .poll(() => page.locator('[data-attached-to]').textContent())
      .toContain(guest.qmpPath);
    await page.locator('.tree [data-port="org.test.port.1"]').click();
    const inspector = page.locator('[data-inspect=port]');
    await inspector.locator('h3', { hasText: 'org.test.port.1' }).waitFor();
    expect(await inspector.locator('[data-field=throttled]').textContent()).toBe('—');
    expect(await page.locator('[data-attach-notes]').textContent()).toMatch(
      /one per second per port/,
    );
    expect(await page.locator('[data-attach-events-note]').textContent()).toMatch(
      /VSERPORT_CHANGE at most 1\/s per port/,
    );
    // step mode is the lab's: disabled, with the reason
    const step = page.locator('[data-action=step]');
    expect(await step.isDisabled()).toBe(true);
    expect(await step.getAttribute('title')).toMatch(/needs the emulated lab/);
    const t = await e2e.topology();
    expect(t.attached?.qemu).toMatch(/^QEMU \d+\.\d+/);
    expect(t.ports.find((p) => p.name === 'org.test.port.1')?.unknown).toContain('throttled');
  }, 20_000);

  it('while attached: queue boxes say — for rates, + device is disabled with the reason', async () => {
    await page.locator('[data-tab=overview]').click();
    const rx = page.locator('.overview [data-rate=rx]').first();
    await rx.waitFor();
    expect(await rx.textContent()).toMatch(/^rx q\d+ —$/);
    expect(await page.locator('.overview [data-rate=tx]').first().textContent()).toMatch(
      /^tx q\d+ —$/,
    );
    expect(await page.locator('.overview').textContent()).not.toContain('B/s');
    const device = page.locator('[data-action=add-device]');
    expect(await device.isDisabled()).toBe(true);
    // the reason is the attached session's capability (core/api/server/attach-session.ts)
    expect(await device.getAttribute('title')).toMatch(
      /hot-plugs ports and chardevs there, not virtio-serial devices/,
    );
    expect(await page.locator('[data-action=add-port]').isDisabled()).toBe(false);
  });

  it('hot-plugs a port from the app: the guest sees it; unplug waits for DEVICE_DELETED', async () => {
    await page.locator('[data-action=add-port]').click();
    const dialog = page.locator('[data-dialog=add-port]');
    await dialog.locator('[data-field=name]').fill('org.vmchan.e2e.0');
    await dialog.locator('[data-field=id]').fill('e2e0');
    await dialog.locator('[data-submit]').click();
    await dialog.waitFor({ state: 'detached' });
    const row = page.locator('.tree [data-port="org.vmchan.e2e.0"]');
    await row.waitFor();
    await expect.poll(guestPorts, { timeout: 15_000, interval: 300 }).toContain('org.vmchan.e2e.0');
    await expect
      .poll(() =>
        page.locator('[data-events] [data-kind=port-added] [data-source=command]').count(),
      )
      .toBeGreaterThan(0);
    await row.click();
    await page.locator('[data-tab=vrings]').click();
    await page.locator('[data-attached-vring]').waitFor();
    // the real QEMU answered the queue query: the port's receive queue is drawn
    await page.locator('.rings caption', { hasText: 'descriptor table' }).waitFor();
    expect(await page.locator('p.meta').textContent()).toMatch(/ring of \d+/);
    await page.locator('[data-tab=overview]').click();
    await page.locator('.tree [data-port="org.vmchan.e2e.0"]').click();
    await e2e.shot('attach');

    await page.locator('[data-inspect=port] [data-action=unplug]').click();
    await row.waitFor({ state: 'detached', timeout: 20_000 });
    await expect
      .poll(() => page.locator('[data-events] [data-kind=device-deleted]').count())
      .toBeGreaterThan(0);
    expect(await guestPorts()).not.toContain('org.vmchan.e2e.0');
  }, 45_000);

  it('Detach returns to the lab', async () => {
    await page.locator('[data-action=detach]').click();
    await page.locator('.tree [data-port="test2"]').waitFor();
    expect(await page.locator('.tree [data-port="org.test.port.1"]').count()).toBe(0);
    expect((await e2e.topology()).attached ?? null).toBeNull();
    // back in the lab: rates and + device again
    expect(await page.locator('[data-action=add-device]').isDisabled()).toBe(false);
    await page.locator('[data-tab=overview]').click();
    await expect
      .poll(() => page.locator('.overview [data-rate=rx]').first().textContent())
      .toMatch(/B\/s$/);
    expect(e2e.problems).toEqual([]);
  });
});
