/**
 * End to end: the Console and Monitor tabs in Debian's Chromium
 * (headless, playwright-core; no browser is ever downloaded) against
 * `vmchan serve`, on the real engine.
 *
 * - a host-side terminal on test1 types through the guest's echo program
 *   and shows the echo;
 * - a guest-side terminal on test2 opens the port (the guest-open state
 *   flips), sees a real unix socket client's bytes and the client sees what
 *   is typed; a second guest-side open shows EBUSY in its tab; closing the
 *   terminal closes the port;
 * - HMP in the Monitor tab: `device_add virtserialport,...` puts the new
 *   port in the topology tree;
 * - xterm runs under the app's CSP (no violation, no <style> element).
 *
 * Screenshots go to test-results/screenshots/. Without /usr/bin/chromium
 * the suite is skipped with that message, and fails under CI=true.
 */
import * as net from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeHandle } from '../../cli/serve.js';
import { startWorkload, type Workload } from '../../core/workloads/index.js';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const haveChromium = prerequisites('runs in Chromium', missingChromium());

describe.runIf(haveChromium)('terminals and the monitor in Chromium against vmchan serve', () => {
  let e2e: E2e;
  let serve: ServeHandle;
  let page: Page;
  let echo: Workload | null = null;

  const portOf = async (name: string) => (await e2e.topology()).ports.find((p) => p.name === name)!;
  /** The text the terminal shown in `view` has on screen. */
  const screenText = async (view: string): Promise<string> =>
    ((await page.locator(`[data-view=${view}] .xterm-rows`).textContent()) ?? '').replace(
      /\u00a0/g,
      ' ',
    );
  const typeInto = async (view: string, text: string): Promise<void> => {
    await page.locator(`[data-view=${view}] [data-terminal]`).click();
    await page.keyboard.type(text);
    await page.keyboard.press('Enter');
  };

  beforeAll(async () => {
    e2e = await startE2e();
    ({ serve, page } = e2e);
    await page.goto(serve.url);
    for (const name of ['console.0', 'test1', 'test2']) {
      await page.locator(`.tree [data-port="${name}"]`).waitFor();
    }
  }, 60_000);

  afterAll(async () => {
    await echo?.stop();
    await e2e?.close();
  });

  it('a host-side terminal on test1 echoes through the guest echo program', async () => {
    // The demo's seed-002 transfer holds test1 and test2 at both ends: stop it, run echo on test1.
    const stopped = await serve.service.execute({
      cmd: 'setWorkload',
      port: { device: 'vser0', nr: (await portOf('test1')).nr },
      on: false,
    });
    expect(stopped.ok).toBe(true);
    await expect.poll(async () => (await portOf('test1')).guestOpen).toBe(false);
    const started = startWorkload(serve.service.session.lab, { port: 'test1', kind: 'echo' });
    if (!('stats' in started)) throw new Error(started.message);
    echo = started;
    await expect.poll(async () => (await portOf('test1')).guestOpen).toBe(true);
    await expect.poll(async () => (await portOf('test1')).hostConnected).toBe(false);

    await page.locator('.tree [data-port="test1"]').click();
    await page.locator('[data-tab=console]').click();
    await page.locator('[data-view=console] .empty').waitFor();
    await page.locator('[data-field=console-port]').selectOption((await portOf('test1')).key);
    await page.locator('[data-action=term-host]').click();
    await page.locator('[data-view=console] [data-session][data-title="test1 · host"]').waitFor();
    await expect.poll(async () => (await portOf('test1')).hostConnected).toBe(true);
    await typeInto('console', 'hello through the echo');
    await expect.poll(() => screenText('console')).toContain('hello through the echo');
    await typeInto('console', 'and once more');
    await expect.poll(() => screenText('console')).toContain('and once more');
    await e2e.shot('console-host-echo');
    // Closing the terminal hangs up: the host side is free again.
    await page.locator('[data-view=console] [data-action=term-close]').click();
    await expect.poll(async () => (await portOf('test1')).hostConnected).toBe(false);
  });

  it('a guest-side terminal on test2 talks to a socket client; a second open is EBUSY; closing closes the port', async () => {
    const test2 = await portOf('test2');
    expect(test2.guestOpen).toBe(false);
    const socketPath = (await e2e.topology()).chardevs.find((c) => c.id === test2.chardev)!.path!;
    const client = net.createConnection({ path: socketPath });
    await new Promise<void>((resolve, reject) =>
      client.once('connect', resolve).once('error', reject),
    );
    const got: Buffer[] = [];
    client.on('data', (c: Buffer) => got.push(c));
    await expect.poll(async () => (await portOf('test2')).hostConnected).toBe(true);

    await page.locator('[data-field=console-port]').selectOption(test2.key);
    await page.locator('[data-action=term-guest]').click();
    await page.locator('[data-view=console] [data-session][data-title="test2 · guest"]').waitFor();
    await expect.poll(async () => (await portOf('test2')).guestOpen).toBe(true);
    expect(await page.locator('[data-field=term-status]').textContent()).toContain(
      '/dev/virtio-ports/test2',
    );
    client.write('bytes from the host client\n');
    await expect.poll(() => screenText('console')).toContain('bytes from the host client');
    await typeInto('console', 'typed in the guest');
    await expect.poll(() => Buffer.concat(got).toString()).toBe('typed in the guest\n');
    await e2e.shot('console-guest');

    // Linux lets one program at a time open a virtio serial port.
    await page.locator('[data-action=term-guest]').click();
    const busy = page.locator('[data-view=console] [data-session][data-title="test2 · guest"]');
    await expect.poll(() => busy.count()).toBe(2);
    await expect
      .poll(() => screenText('console'))
      .toContain('open /dev/virtio-ports/test2: Device or resource busy (EBUSY)');
    await e2e.shot('console-ebusy');
    await page.locator('[data-view=console] [data-action=term-close]').last().click();
    await expect.poll(() => busy.count()).toBe(1);

    // Closing the guest terminal closes the port (PORT_OPEN 0).
    await page.locator('[data-view=console] [data-action=term-close]').click();
    await expect.poll(async () => (await portOf('test2')).guestOpen).toBe(false);
    client.destroy();
  });

  it('HMP in the Monitor tab: device_add puts the port in the topology tree', async () => {
    await page.locator('[data-tab=monitor]').click();
    await expect.poll(() => screenText('monitor')).toContain('(qemu)');
    expect(await screenText('monitor')).toMatch(/QEMU [\d.]+ monitor - type 'help'/);
    await typeInto('monitor', 'device_add virtserialport,bus=vser0.0,id=hp1,name=org.test.hp1');
    await page.locator('.tree [data-port="org.test.hp1"]').waitFor();
    expect((await portOf('org.test.hp1')).id).toBe('hp1');
    await typeInto('monitor', 'info chardev');
    // the whole answer is on screen: the prompt came back after it
    await expect
      .poll(() => screenText('monitor'))
      .toMatch(/info chardev[\s\S]*test1: filename=[\s\S]*\(qemu\)\s*$/);
    await e2e.shot('monitor');
    await typeInto('monitor', 'device_del hp1');
    await page.locator('.tree [data-port="org.test.hp1"]').waitFor({ state: 'detached' });
  });

  it('runs xterm under the CSP: no violation, no inline <style>', async () => {
    expect(await page.locator('.xterm style').count()).toBe(0);
    expect(await page.locator('style').count()).toBe(0);
    expect(e2e.problems).toEqual([]);
  });
});
