/**
 * End to end, a real VM as a first-class session: the app in Debian's
 * Chromium (playwright-core, /usr/bin/chromium) against `vmchan serve`,
 * attached from its Attach dialog to a real QEMU 7.2 running the test guest
 * (test/guest) by its QMP socket; then tap-flow.ts: the port tapped in
 * place from the inspector, a capture, a host/guest exchange through the
 * tap, its records, the stream followed, a host console typed into,
 * Detach, and QEMU's own socket node back at its path.
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
import { startGuest } from '../guest/qemu.js';
import { missingGuest } from '../qemu/real-guest.js';
import { PORT, TapGuest } from '../qemu/tap-rig.js';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';
import { STEP_MS, tapCaptureFollowConsoleDetach } from './tap-flow.js';

const ready = prerequisites('taps, captures and types into a real QEMU from the app', [
  ...missingChromium(),
  ...missingGuest(),
]);

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
    await page.goto(serve.url);
    await page.locator('.tree [data-port="test2"]').waitFor();

    // Attach from the dialog, by the QMP socket's path
    await page.locator('[data-action=attach]').click();
    const dialog = page.locator('[data-dialog=attach]');
    await dialog.locator('[data-field=address]').fill(rig.guest.qmpPath);
    await dialog.locator('[data-submit]').click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator(`.tree [data-port="${PORT.name}"]`).waitFor();

    await tapCaptureFollowConsoleDetach(
      e2e,
      {
        name: PORT.name,
        chardev: PORT.chardev,
        path: rig.guest.portSocket(PORT.id),
        shell: rig.guest.shell,
        watch: rig,
        until: rig.until,
      },
      'attach-tap',
    );
    expect(e2e.problems).toEqual([]);
  }, 900_000);
});
