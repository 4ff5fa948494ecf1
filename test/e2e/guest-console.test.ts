/**
 * End to end, the guest console of an attached QEMU: the app in Debian's
 * Chromium (playwright-core) against `vmchan serve`, attached to a real QEMU
 * whose test guest runs qemu-ga 7.2 (test/guest, `vmchan.qga=on`). The
 * port's inspector offers "Guest console" while the guest's agent holds
 * org.qemu.guest_agent.0 open, and shows the session's reason when it does
 * not (qemu-ga stopped in the guest); the console, opened from the
 * inspector, is a guest open of the port (L6) and carries bytes both ways
 * between the Console tab and a host application on the port's socket.
 *
 * Without chromium, qemu-system-x86_64, busybox-static or qemu-guest-agent
 * the suite is skipped with the install command, and fails under CI=true.
 */
import type * as net from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeHandle } from '../../cli/serve.js';
import { isGuestError } from '../guest/guest-shell.js';
import {
  AGENT_INSTALL_HINT,
  AGENT_PORT,
  INSTALL_HINT,
  missingAgent,
  missingPrerequisites,
  startGuest,
  type Guest,
} from '../guest/qemu.js';
import { connectUnix, poller } from '../qemu/real-guest.js';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const PORT_NAME = 'org.test.con.1';
const guestMissing = missingPrerequisites();
const agentMissing = missingAgent();
const ready = prerequisites('opens a guest console through qemu-ga from the app', [
  ...missingChromium(),
  ...(guestMissing.length > 0 ? [`missing ${guestMissing.join(', ')}: ${INSTALL_HINT}`] : []),
  ...(agentMissing.length > 0 ? [`missing ${agentMissing.join(', ')}: ${AGENT_INSTALL_HINT}`] : []),
]);

describe.runIf(ready)('the guest console of an attached QEMU (Chromium)', () => {
  let e2e: E2e;
  let serve: ServeHandle;
  let guest: Guest;
  let page: Page;
  let host: net.Socket | undefined;

  const guestRun = async (command: string): Promise<string> => {
    const r = await guest.shell.run(command);
    if (isGuestError(r)) throw new Error(r.toString());
    return r.output;
  };
  const portState = async (name: string) =>
    (await e2e.topology()).ports.find((p) => p.name === name);
  /** The text the Console tab's terminal has on screen. */
  const screenText = async (): Promise<string> =>
    ((await page.locator('[data-view=console] .xterm-rows').textContent()) ?? '').replace(
      /\u00a0/g,
      ' ',
    );
  const inspector = () => page.locator('[data-inspect=port]');
  const guestConsoleButton = () => inspector().locator('[data-action=guest-console]');

  beforeAll(async () => {
    const booting = startGuest({
      agent: true,
      // On a loaded host TCG can miss the kernel's IO-APIC timer check and panic at boot.
      append: 'no_timer_check',
      ports: [{ id: 'con1', name: PORT_NAME }],
    });
    e2e = await startE2e({ tmpPrefix: 'vmchan-e2e-gcon-', timeoutMs: 15_000, csp: false });
    ({ serve, page } = e2e);
    const g = await booting;
    if (isGuestError(g)) throw new Error(g.toString());
    guest = g;
    // qemu-ga starts from the agent port's uevent: wait for its pid file, not a time.
    await poller(60_000, 500)(
      'qemu-ga running in the guest (/run/qemu-ga.pid)',
      () => guestRun('cat /run/qemu-ga.pid 2>/dev/null || echo none'),
      (out) => /^\d+/.test(out),
    );
  }, 180_000);

  afterAll(async () => {
    host?.destroy();
    await e2e?.close();
    await guest?.stop();
  }, 30_000);

  it('attached: Guest console is offered on a port while qemu-ga runs, and says why not when it stops', async () => {
    await page.goto(serve.url);
    await page.locator('.tree [data-port="test2"]').waitFor();
    await page.locator('[data-action=attach]').click();
    const dialog = page.locator('[data-dialog=attach]');
    await dialog.locator('[data-field=address]').fill(guest.qmpPath);
    await dialog.locator('[data-submit]').click();
    await dialog.waitFor({ state: 'detached', timeout: 30_000 });
    await page.locator(`.tree [data-port="${PORT_NAME}"]`).click();
    await inspector().locator('h3', { hasText: PORT_NAME }).waitFor();
    await expect
      .poll(() => guestConsoleButton().isDisabled(), {
        timeout: 30_000,
        message: 'Guest console enabled (the agent port is open in the guest)',
      })
      .toBe(false);
    expect(await guestConsoleButton().getAttribute('title')).toContain(
      `/dev/virtio-ports/${PORT_NAME}`,
    );
    expect(await inspector().locator('[data-guest-console-reason]').count()).toBe(0);

    // qemu-ga ends: the guest closes the agent port, the button says why in its place
    await guestRun('kill $(cat /run/qemu-ga.pid)');
    const reason = inspector().locator('[data-guest-console-reason]');
    await expect
      .poll(() => reason.textContent().catch(() => null), {
        timeout: 30_000,
        message: 'the reason line after qemu-ga stopped (VSERPORT_CHANGE closed on the agent port)',
      })
      .toMatch(/no guest agent runs: the guest has not opened org\.qemu\.guest_agent\.0/);
    expect(await guestConsoleButton().isDisabled()).toBe(true);
    expect(await guestConsoleButton().getAttribute('title')).toMatch(/no guest agent runs/);
    const agent = await portState(AGENT_PORT.name);
    expect(agent?.guestOpen).toBe(false);
    // the Console tab says the same next to its own Guest console button
    await page.locator('[data-tab=console]').click();
    const consoleGuest = page.locator('[data-view=console] [data-action=term-guest]');
    expect(await consoleGuest.textContent()).toBe('Guest console');
    expect(await consoleGuest.isDisabled()).toBe(true);
    expect(
      await page.locator('[data-view=console] [data-guest-console-reason]').textContent(),
    ).toMatch(/no guest agent runs/);

    // qemu-ga again (as its service would restart): offered again
    await guestRun('rm -f /run/qemu-ga.pid; rmdir /run/qga.lock; /sbin/qga-start');
    await expect
      .poll(() => guestConsoleButton().isDisabled(), {
        timeout: 30_000,
        message: 'Guest console enabled again once qemu-ga reopened the agent port',
      })
      .toBe(false);
    expect(await reason.count()).toBe(0);
    expect(await consoleGuest.isDisabled()).toBe(false);
  }, 120_000);

  it('Guest console opens the port in the guest; bytes cross between the Console tab and the host side', async () => {
    host = await connectUnix(guest.portSocket('con1'));
    let fromGuest = '';
    host.on('data', (b: Buffer) => void (fromGuest += b.toString()));
    expect((await portState(PORT_NAME))?.guestOpen).toBe(false);

    await guestConsoleButton().click();
    await page.locator('[data-view=console]').waitFor();
    await expect
      .poll(() => page.locator('[data-view=console]').textContent(), {
        message: 'the guest console tab, titled with qemu-ga',
      })
      .toContain('guest (qemu-ga)');
    // L6: the console's guest-file-open is a guest open (VSERPORT_CHANGE open=true)
    await expect
      .poll(async () => (await portState(PORT_NAME))?.guestOpen, {
        timeout: 30_000,
        message: `${PORT_NAME} open in the guest (qemu-ga's guest-file-open)`,
      })
      .toBe(true);

    host.write('to the guest console\n');
    await expect
      .poll(screenText, { timeout: 30_000, message: 'the host bytes on the guest console' })
      .toContain('to the guest console');

    await page.locator('[data-view=console] [data-terminal]').click();
    await page.keyboard.type('from the app');
    await page.keyboard.press('Enter');
    await expect
      .poll(() => fromGuest, {
        timeout: 30_000,
        message: 'the host application reads what was typed in the guest console',
      })
      .toBe('from the app\n');
    await e2e.shot('guest-console');
    expect(e2e.problems).toEqual([]);
  }, 120_000);
});
