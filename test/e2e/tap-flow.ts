/**
 * The app on an attached real VM, from the page, once attached: what
 * attach-tap.test.ts (QEMU by its QMP path) and attach-domain.test.ts (a
 * libvirt domain by name) both walk through. The port's chardev tapped in
 * place from the inspector (QEMU's socket node moved aside, vmchan at its
 * path), a capture started, a host application at the path it always used
 * and the guest talking both ways, the records in the live capture list,
 * the stream followed (both directions, each in its colour), a host
 * console opened on the tapped port and typed into (the guest reads what
 * was typed, the console shows the guest's answer), the capture stopped,
 * Detach; QEMU's own socket node is back at its path and QEMU answers there.
 *
 * QEMU's view of the chardev (host seen, guest open) comes from the test's
 * own way to ask QEMU (`watch`), not from the app under test.
 */
import fs from 'node:fs';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import type { GuestError, RunResult } from '../guest/guest-shell.js';
import { isGuestError } from '../guest/guest-shell.js';
import { connectUnix, type ChardevWatch, type Until } from '../qemu/real-guest.js';
import { pressCapture, showLiveCapture, type E2e } from './harness.js';

/** The port the flow taps, and how the test reaches its guest and its QEMU. */
export interface TappedPort {
  /** The port's name (org.test.port.1) and its chardev's label in QEMU. */
  name: string;
  chardev: string;
  /** The unix socket QEMU listens on for the port. */
  path: string;
  /** The guest's shell. */
  shell: { run(command: string, o: { timeoutMs: number }): Promise<RunResult | GuestError> };
  watch: ChardevWatch;
  until: Until;
}

/** What a loaded machine may take for one step of the page (a TCG guest shares 2 cores). */
export const STEP_MS = 60_000;

const run = async (port: TappedPort, command: string): Promise<string> => {
  const r = await port.shell.run(command, { timeoutMs: 120_000 });
  if (isGuestError(r)) throw new Error(r.toString());
  return r.output;
};

/**
 * Walks the flow on `page`, attached (the port's row is in the tree).
 * Screenshots `<shots>-capture`, `<shots>-follow`, `<shots>-console`.
 */
export async function tapCaptureFollowConsoleDetach(
  e2e: E2e,
  port: TappedPort,
  shots: string,
): Promise<void> {
  const page: Page = e2e.page;
  const qemuIno = fs.statSync(port.path).ino;
  const { watch } = port;

  // Tap the port's chardev from the inspector: in place, at QEMU's own path
  await page.locator(`.tree [data-port="${port.name}"]`).click();
  const tapField = page.locator('[data-inspect=port] [data-field=tap]');
  await tapField.locator('[data-action=tap]').click();
  await page.locator('[data-inspect=port] [data-field=tap][data-tap=on]').waitFor();
  expect(await tapField.textContent()).toContain(`in place at ${port.path}`);
  expect(fs.statSync(port.path).ino).not.toBe(qemuIno);

  // Capture
  await pressCapture(page, 'start');
  await expect.poll(async () => (await e2e.topology()).capture.on, { timeout: STEP_MS }).toBe(true);

  // A host application at the path it always used, and the guest, both ways through vmchan
  const app = await connectUnix(port.path);
  let fromGuest = '';
  app.on('data', (d: Buffer) => (fromGuest += d.toString()));
  await watch.hostSeen(port.chardev, true, 'QEMU sees the host application through the tap');
  const hostText = 'hello from the host\n';
  const reading = run(port, `head -c ${hostText.length} /dev/virtio-ports/${port.name}`);
  await watch.guestOpened(port.chardev, 'the guest opened the port to read the host');
  app.write(hostText);
  expect(await reading).toBe(hostText);
  await run(port, `printf 'hello from the guest\\n' > /dev/virtio-ports/${port.name}`);
  await port.until(
    'the host application reads the guest',
    () => fromGuest,
    (v) => v === 'hello from the guest\n',
  );
  app.destroy();
  await watch.hostSeen(port.chardev, false, 'the host application gone for QEMU');

  // The records in the live capture list
  await page.locator('[data-tab=capture]').click();
  await showLiveCapture(page);
  const dataRows = page.locator('[data-capture-rows] tbody tr[data-number]');
  await page.locator('[data-filter-input]').fill('kind == data');
  await page.locator('[data-filter-input]').press('Enter');
  try {
    await expect
      .poll(
        () =>
          dataRows.evaluateAll((trs) => [...new Set(trs.map((tr) => tr.getAttribute('data-dir')))]),
        { timeout: STEP_MS },
      )
      .toEqual(expect.arrayContaining(['host-to-guest', 'guest-to-host']));
  } catch (err) {
    // Seen once in three clean-clone runs under load: say what the app had, for the next look.
    const capture = JSON.stringify((await e2e.topology()).capture);
    const rows = await page.locator('[data-capture-rows] tbody tr[data-number]').count();
    throw new Error(
      `no data rows both ways in the capture list (${rows} rows shown; capture ${capture}; page problems ${JSON.stringify(e2e.problems)}): ${String(err)}`,
      { cause: err },
    );
  }
  await e2e.shot(`${shots}-capture`);

  // Follow the stream: both directions, in their colours
  await dataRows.first().click();
  await page.locator('[data-capture-detail] [data-action=follow]').click();
  const text = page.locator('[data-follow-text]');
  await text.waitFor();
  await expect
    .poll(() => text.locator('span[data-dir=host-to-guest]').textContent(), { timeout: STEP_MS })
    .toContain('hello from the host');
  expect(await text.locator('span[data-dir=guest-to-host]').textContent()).toContain(
    'hello from the guest',
  );
  await e2e.shot(`${shots}-follow`);
  await page.locator('[data-action=close-follow]').click();

  // A host console on the tapped port: what is typed reaches the guest, through the tap
  const key = (await e2e.topology()).ports.find((p) => p.name === port.name)!.key;
  await page.locator('[data-tab=console]').click();
  await page.locator('[data-field=console-port]').selectOption(key);
  await page.locator('[data-action=term-host]').click();
  await page.locator('[data-view=console] [data-session]').first().waitFor();
  await watch.hostSeen(port.chardev, true, 'QEMU sees the console as the host application');
  const typed = 'typed in the app';
  const guestReads = run(port, `head -c ${typed.length} /dev/virtio-ports/${port.name}`);
  await watch.guestOpened(port.chardev, 'the guest opened the port to read the console');
  await page.locator('[data-view=console] [data-terminal]').click();
  await page.keyboard.type(typed);
  expect(await guestReads).toBe(typed);
  await run(port, `printf 'the guest answers' > /dev/virtio-ports/${port.name}`);
  await expect
    .poll(
      async () =>
        ((await page.locator('[data-view=console] .xterm-rows').textContent()) ?? '').replace(
          /\u00a0/g,
          ' ',
        ),
      { timeout: STEP_MS },
    )
    .toContain('the guest answers');
  await e2e.shot(`${shots}-console`);
  // the console's bytes are the tap's too: counted for the port
  await expect
    .poll(async () => (await e2e.topology()).ports.find((p) => p.key === key)?.tap?.connected)
    .toBe(true);
  await page.locator('[data-view=console] [data-action=term-close]').click();
  await watch.hostSeen(port.chardev, false, 'the console hung up for QEMU');

  // Stop the capture; Detach: the lab is back and so is QEMU's socket node
  await pressCapture(page, 'stop');
  await expect
    .poll(async () => (await e2e.topology()).capture.on, { timeout: STEP_MS })
    .toBe(false);
  await page.locator('[data-action=detach]').click();
  await page.locator('.tree [data-port="test2"]').waitFor();
  expect((await e2e.topology()).attached ?? null).toBeNull();
  expect(fs.statSync(port.path).ino).toBe(qemuIno);
  // and QEMU answers there itself
  const direct = await connectUnix(port.path);
  await watch.hostSeen(port.chardev, true, 'QEMU sees a direct host after detach');
  direct.destroy();
  await watch.hostSeen(port.chardev, false, 'the direct host gone for QEMU');
}
