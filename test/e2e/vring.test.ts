/**
 * End to end, the vring view in Debian's Chromium against `vmchan serve`
 * (launch flags and CI rule in harness.ts): live tables while the
 * demo streams at full speed (with the update cost printed), step mode one
 * ring operation at a time with the tables moving as the spec says, and a
 * malformed chain injected on purpose and refused with NEEDS_RESET and its
 * rule. Screenshots to test-results/screenshots/vring-*.png.
 *
 * Without /usr/bin/chromium the suite is skipped with that message, and
 * fails under CI=true.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFrames, measureFrames } from '../../bench/app-frames.js';
import type { ServeHandle } from '../../cli/serve.js';
import type { CommandInput, PortSnapshot } from '../../core/api/contract/contract.js';
import { O_NONBLOCK, O_RDWR } from '../../core/serial/guest/files.js';
import { isErrno } from '../../core/serial/guest/errno.js';
import { until } from '../until.js';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const haveChromium = prerequisites('runs in Chromium', missingChromium());

interface VringStats {
  updates: number;
  unchanged: number;
  fetchMs: number;
  renderMs: number;
  maxMs: number;
}

describe.runIf(haveChromium)('the vring view in Chromium', () => {
  let e2e: E2e;
  let serve: ServeHandle;
  let page: Page;

  const must = async <T>(command: CommandInput): Promise<T> => {
    const r = await serve.service.execute(command);
    if (!r.ok) throw new Error(`${command.cmd}: ${r.error.message}`);
    return r.value as T;
  };
  const num = async (testid: string): Promise<number> =>
    Number(await page.locator(`[data-testid="${testid}"]`).first().textContent());

  beforeAll(async () => {
    e2e = await startE2e({
      tmpPrefix: 'vmchan-e2e-vring-',
      viewport: { width: 1600, height: 1000 },
    });
    ({ serve, page } = e2e);
  }, 60_000);

  afterAll(async () => {
    await e2e?.close();
  });

  // Frame times are printed here and measured by `npm run bench:app`, not asserted.
  it('is live while the demo streams at full speed: the tables move, only the rows in view are in the DOM', async () => {
    await page.goto(serve.url);
    // test2's receive queue moves all the time at full speed (host to guest)
    await page.locator('.tree [data-port="test2"]').click();
    await page.locator('[data-tab=vrings]').click();
    await page.locator('[data-testid="used-idx"]').waitFor();
    expect(await page.locator('[data-testid="vring-mode"]').textContent()).toBe('live');
    // the queue list has the control queues and both queues of every port
    const options = await page.locator('[data-testid="queue-select"] option').allTextContents();
    expect(options).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^2 · control rx/),
        expect.stringMatching(/^3 · control tx/),
        expect.stringMatching(/^5 · tx port 1 · guest → host/),
        expect.stringMatching(/^6 · rx port 2 · host → guest/),
      ]),
    );
    await page.locator('[data-testid="queue-select"]').selectOption('6');
    await expect
      .poll(() => page.locator('[data-testid="ring-indices"]').count())
      .toBeGreaterThan(0);

    // Server side: what one snapshot of this queue costs (build + zod check + JSON).
    const N = 200;
    let bytes = 0;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const r = await serve.service.execute({ cmd: 'getVringView', device: 'vser0', queue: 6 });
      bytes = JSON.stringify(r).length;
    }
    const serverMs = (performance.now() - t0) / N;

    await must({ cmd: 'setWorkload', on: true, speed: 'full' });
    const before = await num('used-idx');
    await page.evaluate(() => {
      const s = (globalThis as unknown as { __vringStats: Record<string, number> }).__vringStats;
      for (const k of Object.keys(s)) s[k] = 0;
    });
    const frames = await measureFrames(page, 4);
    const stats = await page.evaluate(
      () => (globalThis as unknown as { __vringStats: VringStats }).__vringStats,
    );
    const after = await num('used-idx');
    await e2e.shot('vring-live');
    await must({ cmd: 'setWorkload', on: true, speed: 'paced' });

    const per = (ms: number): string =>
      stats.updates === 0 ? '–' : (ms / stats.updates).toFixed(2);
    console.log(
      `vring view during a full-speed transfer: ${stats.updates} updates in 4 s ` +
        `(${stats.unchanged} polls unchanged), per update: request+validation ${per(stats.fetchMs)} ms, ` +
        `render ${per(stats.renderMs)} ms, worst ${stats.maxMs.toFixed(1)} ms; ` +
        `server snapshot (build+zod+JSON) ${serverMs.toFixed(2)} ms, ${bytes} bytes; ` +
        `frames ${describeFrames(frames)}`,
    );
    const layout = (stats as VringStats & { layoutMs?: number }).layoutMs ?? 0;
    console.log(
      `vring view per update: render (DOM) ${per(stats.renderMs)} ms + style/layout ${per(layout)} ms ` +
        `= ${per(stats.renderMs + layout)} ms; ${await page.locator('.tables tbody tr').count()} table rows in the DOM`,
    );
    // Only the rows in view are in the DOM; the rest are there by scrolling, colours and all.
    const used = page.locator('[data-table="used"]');
    const size = Number(await used.getAttribute('data-size'));
    expect(size).toBe(128);
    expect(await used.locator('tbody tr[data-used-slot]').count()).toBeLessThan(size / 2);
    expect(await page.locator('[data-table="desc"] tr[data-chain]').count()).toBeGreaterThan(0);
    await used.evaluate((t) => t.parentElement!.scrollTo({ top: 1e6 }));
    await used.locator(`[data-used-slot="${size - 1}"]`).waitFor();
    expect(await used.locator('[data-used-slot="0"]').count()).toBe(0);
    expect(after).not.toBe(before); // the tables moved
    expect(stats.updates).toBeGreaterThan(10);
    // at most one request per frame
    expect(stats.updates + stats.unchanged).toBeLessThanOrEqual(frames.frames + 2);
    expect(e2e.problems).toEqual([]);
  }, 60_000);

  it('steps one ring operation at a time; the tables change as the spec says', async () => {
    // A port of its own with its host side connected, and a guest program's write to step through.
    const port = await must<PortSnapshot>({
      cmd: 'hotplugPort',
      port: {
        driver: 'virtserialport',
        name: 'lesson',
        newChardev: { id: 'lesson', backend: { kind: 'unix' } },
      },
    });
    await page.locator('.tree [data-port="lesson"]').click();
    const tx = 2 * port.nr + 3;
    await expect
      .poll(
        async () =>
          (await must<{ ports: PortSnapshot[] }>({ cmd: 'getTopology' })).ports.find(
            (p) => p.name === 'lesson',
          )?.guestName,
      )
      .toBeTruthy();
    await must({ cmd: 'writeHost', port: { device: 'vser0', nr: port.nr }, data: 'x' });
    const files = serve.service.session.lab.guest.files;
    const fd = await files.open(`/dev/vport0p${port.nr}`, O_RDWR | O_NONBLOCK);
    expect(isErrno(fd)).toBe(false);
    await expect
      .poll(() => page.locator('[data-testid="queue-select"]').inputValue())
      .toBe(String(tx));

    await page.locator('[data-action="vring-pause"]').click();
    await expect
      .poll(() => page.locator('[data-testid="vring-mode"]').textContent())
      .toBe('step mode');
    void files.write(fd as number, new TextEncoder().encode('one descriptor at a time\n'));

    const explain = page.locator('[data-testid="step-explanation"]');
    let sawPop = false;
    let sawPush = false;
    for (let i = 0; i < 80 && !(sawPop && sawPush); i++) {
      const lastAvail = await num('last-avail-idx');
      const used = await num('used-idx');
      const seq = await explain.getAttribute('data-seq');
      await page.locator('[data-action="vring-step"]').click();
      await expect.poll(() => explain.getAttribute('data-seq')).not.toBe(seq);
      const ops = ((await explain.getAttribute('data-ops')) ?? '').split(',').filter(Boolean);
      const pops = ops.filter((o) => o === 'device-pop').length;
      const pushes = ops.filter((o) => o === 'device-push').length;
      // S4: one avail entry consumed per chain popped
      expect(await num('last-avail-idx')).toBe((lastAvail + pops) & 0xffff);
      // S9: used.idx grows per chain pushed, and the used element holds the head
      const usedNow = await num('used-idx');
      expect(usedNow).toBe((used + pushes) & 0xffff);
      if (pops > 0 && !sawPop) {
        sawPop = true;
        await e2e.shot('vring-step');
      }
      if (pushes > 0) {
        sawPush = true;
        const head = await explain.getAttribute('data-push-head');
        // the table renders only the rows in view: its size is an attribute
        const size = Number(
          await page.locator('table[data-table="used"]').getAttribute('data-size'),
        );
        expect(size).toBeGreaterThan(0);
        const slot = (usedNow - 1 + 0x10000) % size;
        expect(
          await page
            .locator(`[data-table="used"] [data-used-slot="${slot}"]`)
            .getAttribute('data-id'),
        ).toBe(head);
      }
    }
    expect(sawPop && sawPush).toBe(true);
    // step mode follows the pointers: the slot used.idx points at is in view and marked
    const usedIdx = await num('used-idx');
    const usedTable = page.locator('[data-table="used"]');
    const ringSize = Number(await usedTable.getAttribute('data-size'));
    expect(
      await usedTable.locator(`[data-used-slot="${usedIdx % ringSize}"] .ptr`).textContent(),
    ).toContain('← idx');
    // the explanation names its rule, and the link opens the rule's explanation
    const link = explain.locator('.rule-link');
    const rule = await link.getAttribute('data-rule');
    expect(rule).toMatch(/^[SPCMG]\d+$/);
    await link.click();
    await page.locator(`[data-dialog=rule] [data-rule="${rule}"]`).waitFor();
    await e2e.shot('vring-step-rule');
    await page.keyboard.press('Escape');
    await page.locator('[data-dialog=rule]').waitFor({ state: 'detached' });
    expect(await page.locator('[data-testid="step-log"] li').count()).toBeGreaterThan(1);
    expect(e2e.problems).toEqual([]);
  }, 60_000);

  it('an injected malformed chain is refused: NEEDS_RESET with its rule', async () => {
    await page.locator('[data-testid="inject-kind"]').selectOption('M3');
    await page.locator('[data-action="inject"]').click();
    await page.locator('[data-testid="inject-note"]').waitFor();
    // still paused: the device walks the chain at the next step
    for (let i = 0; i < 20; i++) {
      if (
        (await page.locator('[data-testid="device-state"]').getAttribute('data-state')) ===
        'needs-reset'
      )
        break;
      const stepButton = page.locator('[data-action="vring-step"]');
      await stepButton.click();
      // the button stays disabled until the engine answered the step and the view is updated
      await until(
        async () => !(await stepButton.isDisabled()),
        'the engine to answer the step (Step ring op enabled again)',
      );
    }
    const state = page.locator('[data-testid="device-state"]');
    await expect.poll(() => state.getAttribute('data-state')).toBe('needs-reset');
    expect(
      await state.locator('[data-testid="device-fault"] .rule-link').getAttribute('data-rule'),
    ).toBe('M3');
    await page.locator('[data-testid="negotiation"] li[data-step="NEEDS_RESET"]').waitFor();
    expect(
      await page.locator('[data-testid="step-explanation"] .rule-link').getAttribute('data-rule'),
    ).toBe('M3');
    // the events timeline has it too
    await expect
      .poll(async () => (await page.locator('.events').textContent()) ?? '')
      .toMatch(/NEEDS_RESET \(M3\)/);
    await e2e.shot('vring-fault');
    expect(e2e.problems).toEqual([]);
  }, 60_000);
});
