/**
 * End to end, a libvirt domain in the app: Debian's Chromium
 * (playwright-core, /usr/bin/chromium) against `vmchan serve`, a real
 * libvirtd running the test guest as a transient domain
 * (test/qemu/libvirt-rig.ts). The Attach dialog lists the running domains;
 * the test picks its domain there (the address becomes `libvirt:NAME`) and
 * attaches: QMP through virt-qemu-qmp-proxy, both channels of the domain's
 * XML in the tree. Then tap-flow.ts on the domain's org.test.ch1 channel:
 * tapped in place, a capture, a host/guest exchange through the tap, its
 * records, the stream followed, a host console typed into, Detach, QEMU's
 * socket node back at its path. QEMU's view of the chardev is asked
 * through libvirtd (`virsh qemu-monitor-command`). Afterwards `virsh
 * dumpxml` is what it was before the attach.
 *
 * Screenshots: test-results/screenshots/attach-domain-dialog.png,
 * attach-domain-capture.png, attach-domain-follow.png, attach-domain-console.png.
 *
 * Without chromium, qemu-system-x86_64, busybox-static or libvirt (or not
 * as root) the suite is skipped with the install command, and fails under
 * CI=true.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeHandle } from '../../cli/serve.js';
import { domainXml } from '../../core/qemu/libvirt.js';
import { libvirtProblem, startLibvirtDomain, type LibvirtDomain } from '../qemu/libvirt-rig.js';
import { missingGuest, poller } from '../qemu/real-guest.js';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';
import { STEP_MS, tapCaptureFollowConsoleDetach } from './tap-flow.js';

const libvirt = libvirtProblem();
const ready = prerequisites('attaches to a libvirt domain from the app', [
  ...missingChromium(),
  ...missingGuest(),
  ...(libvirt ? [libvirt] : []),
]);

const CH1 = 'org.test.ch1';
const AGENT = 'org.qemu.guest_agent.0';

describe.runIf(ready)(
  'a libvirt domain in the app: attach by name, tap, capture (Chromium)',
  () => {
    let e2e: E2e | undefined;
    let dom: LibvirtDomain | undefined;
    let booting: Promise<LibvirtDomain> | undefined;
    let serve: ServeHandle;
    let page: Page;
    let dataHome = '';
    const savedDataHome = process.env['XDG_DATA_HOME'];
    const until = poller(STEP_MS, 200);

    beforeAll(async () => {
      // the app's capture files go to a directory of the test's own
      dataHome = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-e2e-domain-data-'));
      process.env['XDG_DATA_HOME'] = dataHome;
      booting = startLibvirtDomain('vmchan-e2e-domain-');
      booting.catch(() => {}); // awaited below, and by afterAll when the app fails to start
      e2e = await startE2e({ tmpPrefix: 'vmchan-e2e-domain-', timeoutMs: STEP_MS, csp: false });
      ({ serve, page } = e2e);
      dom = await booting;
    }, 300_000);

    afterAll(async () => {
      await e2e?.close();
      // the domain is destroyed even when the app failed to start while it booted
      dom ??= await booting?.catch(() => undefined);
      await dom?.close();
      if (savedDataHome === undefined) delete process.env['XDG_DATA_HOME'];
      else process.env['XDG_DATA_HOME'] = savedDataHome;
      if (dataHome) fs.rmSync(dataHome, { recursive: true, force: true });
    }, 60_000);

    it('picks the domain in the Attach dialog, taps a channel in place, captures, follows, types into a host console, detaches; the domain is as it was', async () => {
      const d = dom!;
      const xmlBefore = await domainXml({ domain: d.name, uri: d.uri });
      if (typeof xmlBefore !== 'string') throw new Error(xmlBefore.message);
      await page.goto(serve.url);
      await page.locator('.tree [data-port="test2"]').waitFor();

      // Attach from the dialog: the running domains are listed; picking one fills the address
      await page.locator('[data-action=attach]').click();
      const dialog = page.locator('[data-dialog=attach]');
      const choice = dialog.locator(`[data-field=domain] option[value="${d.name}"]`);
      await choice.waitFor({ state: 'attached' });
      await dialog.locator('[data-field=domain]').selectOption(d.name);
      expect(await dialog.locator('[data-field=address]').inputValue()).toBe(`libvirt:${d.name}`);
      await e2e!.shot('attach-domain-dialog');
      await dialog.locator('[data-submit]').click();
      await dialog.waitFor({ state: 'detached' });

      // both channels of the domain's XML, the agent channel (libvirtd's) among them
      await page.locator(`.tree [data-port="${CH1}"]`).waitFor();
      await page.locator(`.tree [data-port="${AGENT}"]`).waitFor();
      const attached = await e2e!.topology();
      expect(attached.attached?.libvirt?.domain).toBe(d.name);
      const ch1 = attached.ports.find((p) => p.name === CH1)!;
      expect(ch1.chardev).not.toBeNull();

      await tapCaptureFollowConsoleDetach(
        e2e!,
        {
          name: CH1,
          chardev: ch1.chardev!,
          path: d.ch1Path,
          shell: d.shell,
          watch: d.watch,
          until,
        },
        'attach-domain',
      );

      // the domain as it was: virsh dumpxml byte for byte
      const xmlAfter = await until(
        'virsh dumpxml as before the attach',
        async () => {
          const x = await domainXml({ domain: d.name, uri: d.uri });
          return typeof x === 'string' ? x : x.message;
        },
        (x) => x === xmlBefore,
      ).catch(async () => domainXml({ domain: d.name, uri: d.uri }));
      expect(xmlAfter).toBe(xmlBefore);
      expect(e2e!.problems).toEqual([]);
    }, 900_000);
  },
);
