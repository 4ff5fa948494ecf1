/**
 * End to end, importing what vmchan cannot model (issue 17, Debugging a
 * channel): the app in Debian's Chromium (headless, playwright-core) against
 * `vmchan serve`. Import asks before replacing the running demo; a libvirt XML
 * with a spicevmc channel and a unix channel without <source> imports the
 * rest, one note per skipped or changed part.
 *
 * Without /usr/bin/chromium the suite is skipped with that message, and
 * fails under CI=true.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const haveChromium = prerequisites('runs in Chromium', missingChromium());

const XML = `<domain type='kvm'><name>g</name><devices>
  <controller type='virtio-serial' index='0'/>
  <channel type='unix'><source mode='bind' path='/tmp/vmchan-e2e-imp-${process.pid}.sock'/>
    <target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  <channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>
  <channel type='unix'><target type='virtio' name='org.example.auto'/></channel>
</devices></domain>`;

describe.runIf(haveChromium)('import in Chromium', () => {
  let e2e: E2e;
  let page: Page;

  beforeAll(async () => {
    e2e = await startE2e({ tmpPrefix: 'vmchan-e2e-import-' });
    page = e2e.page;
  }, 60_000);

  afterAll(async () => {
    await e2e?.close();
  });

  it('asks before replacing the running lab, then imports the rest of a libvirt XML with a note per part', async () => {
    await page.goto(e2e.serve.url);
    await page.locator('.tree [data-port="test2"]').waitFor();
    await page.locator('[data-action=import]').click();
    const dialog = page.locator('[data-dialog=import]');
    await dialog.locator('[data-field=config]').fill(XML);
    await dialog.locator('[data-submit]').click();
    await dialog.locator('[data-confirm]').waitFor();
    expect(await dialog.locator('[data-confirm]').textContent()).toMatch(
      /replaces the running lab/,
    );
    // nothing replaced yet
    expect((await e2e.topology()).lab).toBe('demo');
    await dialog.locator('[data-submit]').click();
    await page.locator('.tree [data-port="org.example.auto"]').waitFor();
    await page.locator('.tree [data-port="org.qemu.guest_agent.0"]').waitFor();
    expect(await page.locator('.tree [data-port="com.redhat.spice.0"]').count()).toBe(0);
    await dialog.locator('[data-notes]').waitFor();
    const skipped = await dialog.locator('[data-note-kind=skipped]').allTextContents();
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatch(/spicevmc.*com\.redhat\.spice\.0/);
    const changed = await dialog.locator('[data-note-kind=changed]').allTextContents();
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatch(/without <source>/);
    await e2e.shot('dialog-import-notes');
    await dialog.getByRole('button', { name: 'Close' }).click();
    expect(e2e.problems).toEqual([]);
  });
});
