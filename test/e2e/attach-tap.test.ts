/**
 * End to end, a real VM as a first-class session: the app in Debian's
 * Chromium (playwright-core, /usr/bin/chromium) against `vmchan serve`,
 * attached from its Attach dialog to a real QEMU 7.2 running the test guest
 * (test/guest) by its QMP socket. From the app: the port's chardev tapped in
 * place (QEMU's socket node moved aside, vmchan at its path), a capture
 * started, a host application at the path it always used and the guest
 * talking both ways, the records in the live capture list, the stream
 * followed (both directions, each in its colour), a host console opened on
 * the tapped port and typed into (the guest reads what was typed), Detach;
 * QEMU's own socket node is back at its path.
 *
 * Screenshots: test-results/screenshots/attach-tap-capture.png,
 * attach-tap-follow.png, attach-tap-console.png.
 *
 * Without chromium, qemu-system-x86_64 or busybox-static the suite is
 * skipped with the install command, and fails under CI=true.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeHandle } from '../../cli/serve.js';
import { QmpClient } from '../../core/qemu/qmp-client.js';
import { isQmpError } from '../../core/qemu/qmp-error.js';
import { isGuestError } from '../guest/guest-shell.js';
import { INSTALL_HINT, missingPrerequisites, startGuest } from '../guest/qemu.js';
import { connectUnix } from '../qemu/real-guest.js';
import { PORT, TapGuest } from '../qemu/tap-rig.js';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const guestMissing = missingPrerequisites();
const ready = prerequisites('taps, captures and types into a real QEMU from the app', [
  ...missingChromium(),
  ...(guestMissing.length > 0 ? [`missing ${guestMissing.join(', ')}: ${INSTALL_HINT}`] : []),
]);

/** What a loaded machine may take for one step of the page (a TCG guest shares 2 cores). */
const STEP_MS = 60_000;

describe.runIf(ready)('a real VM in the app: tap, capture, follow, console (Chromium)', () => {
  let e2e: E2e;
  let serve: ServeHandle;
  let page: Page;
  let dataHome: string;
  const savedDataHome = process.env['XDG_DATA_HOME'];
  /** The guest, with a QMP socket of the test's own (the app holds the other). */
  const rig = new TapGuest();

  beforeAll(async () => {
    // the app's capture files go to a directory of the test's own
    dataHome = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-e2e-attach-tap-data-'));
    process.env['XDG_DATA_HOME'] = dataHome;
    rig.runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-e2e-attach-tap-'));
    const booting = startGuest({
      runDir: rig.runDir,
      ports: [{ id: PORT.id, name: PORT.name }],
      extraArgs: ['-qmp', `unix:${path.join(rig.runDir, 'test-qmp.sock')},server=on,wait=off`],
      bootTimeoutMs: 150_000,
    });
    e2e = await startE2e({ tmpPrefix: 'vmchan-e2e-attach-tap-', timeoutMs: STEP_MS, csp: false });
    ({ serve, page } = e2e);
    const g = await booting;
    if (isGuestError(g)) throw new Error(g.toString());
    rig.guest = g;
    const qmp = await QmpClient.connect(path.join(rig.runDir, 'test-qmp.sock'), {
      greetingTimeoutMs: 30_000,
    });
    if (isQmpError(qmp)) throw new Error(qmp.toString());
    rig.qmp = qmp;
  }, 240_000);

  afterAll(async () => {
    await e2e?.close();
    await rig.qmp?.close();
    await rig.guest?.stop();
    if (savedDataHome === undefined) delete process.env['XDG_DATA_HOME'];
    else process.env['XDG_DATA_HOME'] = savedDataHome;
    for (const d of [dataHome, rig.runDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  }, 60_000);

  it('attaches by QMP path, taps in place, captures a host/guest exchange, follows it, types into a host console, detaches; QEMU’s path is back', async () => {
    const portPath = rig.guest.portSocket(PORT.id);
    const qemuIno = fs.statSync(portPath).ino;
    await page.goto(serve.url);
    await page.locator('.tree [data-port="test2"]').waitFor();

    // Attach from the dialog, by the QMP socket's path
    await page.locator('[data-action=attach]').click();
    const dialog = page.locator('[data-dialog=attach]');
    await dialog.locator('[data-field=address]').fill(rig.guest.qmpPath);
    await dialog.locator('[data-submit]').click();
    await dialog.waitFor({ state: 'detached' });
    const row = page.locator(`.tree [data-port="${PORT.name}"]`);
    await row.waitFor();

    // Tap the port's chardev from the inspector: in place, at QEMU's own path
    await row.click();
    const tapField = page.locator('[data-inspect=port] [data-field=tap]');
    await tapField.locator('[data-action=tap]').click();
    await page.locator('[data-inspect=port] [data-field=tap][data-tap=on]').waitFor();
    expect(await tapField.textContent()).toContain(`in place at ${portPath}`);
    expect(fs.statSync(portPath).ino).not.toBe(qemuIno);

    // Capture
    await page.locator('[data-action=capture]').click();
    await expect
      .poll(async () => (await e2e.topology()).capture.on, { timeout: STEP_MS })
      .toBe(true);

    // A host application at the path it always used, and the guest, both ways through vmchan
    const app = await connectUnix(portPath);
    let fromGuest = '';
    app.on('data', (d: Buffer) => (fromGuest += d.toString()));
    await rig.hostSeen(PORT.chardev, true, 'QEMU sees the host application through the tap');
    const hostText = 'hello from the host\n';
    const reading = rig.guest.shell.run(
      `head -c ${hostText.length} /dev/virtio-ports/${PORT.name}`,
      { timeoutMs: 120_000 },
    );
    await rig.guestOpened(PORT.chardev, 'the guest opened the port to read the host');
    app.write(hostText);
    const read = await reading;
    if (isGuestError(read)) throw new Error(read.toString());
    expect(read.output).toBe(hostText);
    await rig.sh(`printf 'hello from the guest\\n' > /dev/virtio-ports/${PORT.name}`, 120_000);
    await rig.until(
      'the host application reads the guest',
      () => fromGuest,
      (v) => v === 'hello from the guest\n',
    );
    app.destroy();
    await rig.hostSeen(PORT.chardev, false, 'the host application gone for QEMU');

    // The records in the live capture list
    await page.locator('[data-tab=capture]').click();
    await page.locator('[data-action=show-capture]').click();
    const dataRows = page.locator('[data-capture-rows] tbody tr[data-number]');
    await page.locator('[data-filter-input]').fill('kind == data');
    await page.locator('[data-filter-input]').press('Enter');
    await expect
      .poll(
        () =>
          dataRows.evaluateAll((trs) => [...new Set(trs.map((tr) => tr.getAttribute('data-dir')))]),
        { timeout: STEP_MS },
      )
      .toEqual(expect.arrayContaining(['host-to-guest', 'guest-to-host']));
    await e2e.shot('attach-tap-capture');

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
    await e2e.shot('attach-tap-follow');
    await page.locator('[data-action=close-follow]').click();

    // A host console on the tapped port: what is typed reaches the guest, through the tap
    const key = (await e2e.topology()).ports.find((p) => p.name === PORT.name)!.key;
    await page.locator('[data-tab=console]').click();
    await page.locator('[data-field=console-port]').selectOption(key);
    await page.locator('[data-action=term-host]').click();
    await page.locator('[data-view=console] [data-session]').first().waitFor();
    await rig.hostSeen(PORT.chardev, true, 'QEMU sees the console as the host application');
    const typed = 'typed in the app';
    const guestReads = rig.guest.shell.run(
      `head -c ${typed.length} /dev/virtio-ports/${PORT.name}`,
      { timeoutMs: 120_000 },
    );
    await rig.guestOpened(PORT.chardev, 'the guest opened the port to read the console');
    await page.locator('[data-view=console] [data-terminal]').click();
    await page.keyboard.type(typed);
    const got = await guestReads;
    if (isGuestError(got)) throw new Error(got.toString());
    expect(got.output).toBe(typed);
    await rig.sh(`printf 'the guest answers' > /dev/virtio-ports/${PORT.name}`, 120_000);
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
    await e2e.shot('attach-tap-console');
    // the console's bytes are the tap's too: counted for the port
    await expect
      .poll(async () => (await e2e.topology()).ports.find((p) => p.key === key)?.tap?.connected)
      .toBe(true);
    await page.locator('[data-view=console] [data-action=term-close]').click();
    await rig.hostSeen(PORT.chardev, false, 'the console hung up for QEMU');

    // Stop the capture; Detach: the lab is back and so is QEMU's socket node
    await page.locator('[data-action=capture]').click();
    await expect
      .poll(async () => (await e2e.topology()).capture.on, { timeout: STEP_MS })
      .toBe(false);
    await page.locator('[data-action=detach]').click();
    await page.locator('.tree [data-port="test2"]').waitFor();
    expect((await e2e.topology()).attached ?? null).toBeNull();
    expect(fs.statSync(portPath).ino).toBe(qemuIno);
    // and QEMU answers there itself
    const direct = await connectUnix(portPath);
    await rig.hostSeen(PORT.chardev, true, 'QEMU sees a direct host after detach');
    direct.destroy();
    expect(e2e.problems).toEqual([]);
  }, 900_000);
});
