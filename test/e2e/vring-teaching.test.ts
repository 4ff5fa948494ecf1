/**
 * End to end (issue 17, Teaching virtio), in Debian's Chromium against
 * `vmchan serve` on the demo lab, at 1440x900 and 1024x700:
 *
 * - the ring's indices (idx, last_avail, used_idx, avail_event and
 *   used_event; on a packed ring the next slots with their wrap counters)
 *   are markers in their own cell beside the rows: each marker lies inside
 *   its cell, apart from the row's other cells, and the ring tables apart
 *   from each other and inside the window, every column shown;
 * - an injected chain's descriptors (at the far end of the table) are
 *   scrolled into view and marked;
 * - "Step this queue" moves only the queue in view (another port's queue
 *   keeps its device indexes while its write waits; with "keep running" it
 *   flows while the queue in view waits for its steps), "Step any" runs
 *   whatever comes next; the status line says which.
 *
 * Screenshots: test-results/screenshots/vring-teaching-*.png. Without
 * /usr/bin/chromium the suite is skipped with that message, and fails
 * under CI=true.
 */
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeHandle } from '../../cli/serve.js';
import type { CommandInput, PortSnapshot } from '../../core/api/contract/contract.js';
import type { GetVringViewResult } from '../../core/api/contract/vring-contract.js';
import { socketClient } from '../api/helpers.js';
import { until as untilWithin } from '../until.js';
import { box, checkBoxes, inside, overlap, VIEWPORTS, type Box } from './boxes.js';
import { missingChromium, prerequisites, startE2e, type E2e } from './harness.js';

const haveChromium = prerequisites('runs in Chromium', missingChromium());

/** expect.poll's options: a generous bound on a loaded machine, naming what is awaited. */
const wait = (what: string) => ({ timeout: 30_000, message: `waiting for ${what}` });

/** The shared until() with a bound for a loaded machine. */
const until = <T>(p: () => T | Promise<T>, what: string) => untilWithin(p, what, 30_000);

type Client = Awaited<ReturnType<typeof socketClient>>;

describe.runIf(haveChromium)('the vring view for learners (Chromium)', () => {
  let e2e: E2e;
  let serve: ServeHandle;
  let page: Page;
  const clients: Client[] = [];

  const must = async <T>(command: CommandInput): Promise<T> => {
    const r = await serve.service.execute(command);
    if (!r.ok) throw new Error(`${command.cmd}: ${r.error.message}`);
    return r.value as T;
  };
  const num = async (testid: string): Promise<number> =>
    Number(await page.locator(`[data-testid="${testid}"]`).first().textContent());
  const tx = (p: PortSnapshot): number => 2 * p.nr + 3;

  /** A port on `device` with a new unix chardev, in the guest, with a socket client as its host. */
  async function portWithClient(
    name: string,
    device?: string,
  ): Promise<{ port: PortSnapshot; client: Client }> {
    const port = await must<PortSnapshot>({
      cmd: 'hotplugPort',
      port: {
        driver: 'virtserialport',
        name,
        ...(device === undefined ? {} : { device }),
        newChardev: { id: name, backend: { kind: 'unix' } },
      },
    });
    await until(
      async () => (await e2e.topology()).ports.find((p) => p.name === name)?.guestName ?? undefined,
      `${name} in the guest`,
    );
    const path = (await e2e.topology()).chardevs.find((c) => c.id === name)!.path!;
    const client = await socketClient(path);
    clients.push(client);
    await until(
      async () =>
        (await e2e.topology()).ports.find((p) => p.name === name)?.hostConnected || undefined,
      `${name}'s host client connected`,
    );
    return { port, client };
  }

  /** The device's own indexes of one queue, read from the lab (not the page). */
  async function deviceIndexes(device: string, queue: number): Promise<string> {
    const r = await must<GetVringViewResult>({ cmd: 'getVringView', device, queue });
    const ring = r.view!.ring!;
    if (ring.format !== 'split') throw new Error('a split ring expected');
    return `last_avail ${ring.device!.lastAvailIdx} used ${ring.used.idx}`;
  }

  /** Click a step button and wait until the engine answered (the button enabled again). */
  async function click(button: Locator, what: string): Promise<void> {
    await button.click();
    await until(async () => !(await button.isDisabled()), `the engine to answer ${what}`);
  }

  /**
   * Markers beside the rows: each visible marker inside its own cell and
   * apart from the row's other cells; the ring tables apart and inside the
   * window (every column shown), at both sizes.
   */
  async function checkMarkers(
    vp: { width: number; height: number },
    expected: string[],
  ): Promise<void> {
    const found = new Set<string>();
    for (const m of await page.locator('.tables [data-marker]').all()) {
      const row = m.locator('xpath=ancestor::tr[1]');
      const scroller = await box(
        m.locator('xpath=ancestor::div[contains(@class,"box")][1]'),
        'table box',
      );
      const mb = await box(m, 'marker');
      // rows laid out beyond the scroll box's edge (overscan) are not shown: skip them
      if (mb.y < scroller.y || mb.y + mb.height > scroller.y + scroller.height) continue;
      const id = (await m.getAttribute('data-marker'))!;
      found.add(id);
      const cell = await box(m.locator('xpath=ancestor::td[1]'), 'marker cell');
      expect(
        mb.x >= cell.x - 0.5 && mb.x + mb.width <= cell.x + cell.width + 0.5,
        `${id} inside its cell at ${vp.width}`,
      ).toBe(true);
      const cells = await row.locator('td:not(.marks)').all();
      for (const c of cells)
        expect(overlap(mb, await box(c, 'cell')), `${id} over a cell`).toBe(false);
      // every column shown: inside the window, at both sizes, and not scrolled aside
      expect(inside(mb, vp.width, vp.height), `${id} inside ${vp.width}`).toBe(true);
      const section = await box(page.locator('.tables'), 'tables section');
      expect(
        mb.x >= section.x - 0.5 && mb.x + mb.width <= section.x + section.width + 0.5,
        `${id} inside the tables' width at ${vp.width}`,
      ).toBe(true);
    }
    expect([...found].sort()).toEqual(expect.arrayContaining(expected));
    const tables: [string, Box][] = [];
    for (const t of await page.locator('.tables figure.ring-table').all())
      tables.push([
        (await t.locator('figcaption').textContent())!.trim(),
        await box(t, 'ring table'),
      ]);
    expect(tables.length).toBeGreaterThan(0);
    // beside or below each other, they all fit the window (each scrolls inside itself)
    expect(checkBoxes(tables, vp.width, vp.height)).toEqual([]);
  }

  beforeAll(async () => {
    e2e = await startE2e({ tmpPrefix: 'vmchan-e2e-vring-teach-' });
    ({ serve, page } = e2e);
    await page.goto(serve.url);
    await page.locator('.tree [data-port="test1"]').waitFor();
  }, 90_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await e2e?.close();
  });

  it('Step this queue moves only the queue in view; Step any the next task; the status line says which', async () => {
    const a = await portWithClient('qa');
    const b = await portWithClient('qb');
    await page.locator('.tree [data-port="qa"]').click();
    await page.locator('[data-tab=vrings]').click();
    await expect
      .poll(() => page.locator('[data-testid="queue-select"]').inputValue(), wait('qa tx in view'))
      .toBe(String(tx(a.port)));
    const mode = page.locator('[data-testid="vring-mode"]');
    await page.locator('[data-action="vring-pause"]').click();
    await expect.poll(() => mode.getAttribute('data-mode'), wait('step mode')).toBe('step-any');

    // Others wait: qa's write goes through step by step, qb's waits with its device indexes still.
    await must({ cmd: 'writeGuest', port: { device: 'vser0', nr: a.port.nr }, data: 'to a\n' });
    await must({ cmd: 'writeGuest', port: { device: 'vser0', nr: b.port.nr }, data: 'to b\n' });
    const bBefore = await deviceIndexes('vser0', tx(b.port));
    const aLast = await num('last-avail-idx');
    const stepQueue = page.locator('[data-action="vring-step-queue"]');
    for (let i = 0; i < 60 && a.client.received().length === 0; i++)
      await click(stepQueue, 'Step this queue');
    await until(() => a.client.received().toString() === 'to a\n' || undefined, 'qa host to read');
    expect(await mode.getAttribute('data-mode')).toBe('step-queue');
    expect(await mode.textContent()).toContain(
      `Step this queue: q${tx(a.port)} only, the other queues wait`,
    );
    expect(await num('last-avail-idx')).toBeGreaterThan(aLast);
    expect(await deviceIndexes('vser0', tx(b.port))).toBe(bBefore);
    expect(b.client.received().length).toBe(0);
    await e2e.shot('vring-teaching-step-queue');

    // Step any: the next task, whichever queue; qb's chain is taken at last.
    const stepAny = page.locator('[data-action="vring-step"]');
    for (let i = 0; i < 60 && b.client.received().length === 0; i++)
      await click(stepAny, 'Step any');
    await until(() => b.client.received().toString() === 'to b\n' || undefined, 'qb host to read');
    expect(await mode.getAttribute('data-mode')).toBe('step-any');
    expect(await mode.textContent()).toContain('Step any');

    // Others keep running: qb flows while qa's write waits for its steps.
    await page.locator('[data-field="step-others"]').selectOption('run');
    await click(stepQueue, 'Step this queue (others run)');
    await expect.poll(() => mode.getAttribute('data-mode'), wait('the hold')).toBe('hold');
    expect(await mode.textContent()).toContain(`q${tx(a.port)} waits for Step this queue`);
    await expect
      .poll(
        async () => (await page.locator('[data-engine]').textContent()) ?? '',
        wait('the status bar'),
      )
      .toContain(`vser0 q${tx(a.port)} waits for steps`);
    await must({ cmd: 'writeGuest', port: { device: 'vser0', nr: a.port.nr }, data: 'a waits\n' });
    await must({ cmd: 'writeGuest', port: { device: 'vser0', nr: b.port.nr }, data: 'b flows\n' });
    await until(
      () => b.client.received().toString() === 'to b\nb flows\n' || undefined,
      'qb to flow while qa is held',
    );
    expect(a.client.received().toString()).toBe('to a\n');
    for (let i = 0; i < 60 && a.client.received().length === 5; i++)
      await click(stepQueue, 'Step this queue (others run)');
    await until(
      () => a.client.received().toString() === 'to a\na waits\n' || undefined,
      "qa's held write to go through its steps",
    );

    // the step controls inside the window and apart, at both sizes
    for (const vp of VIEWPORTS) {
      await page.setViewportSize(vp);
      const named: [string, Box][] = [];
      for (const el of await page.locator('.vring .bar.steps > *').all())
        named.push([(await el.textContent())!.trim(), await box(el, 'step control')]);
      named.push(['status', await box(mode, 'status')]);
      expect(checkBoxes(named, vp.width, vp.height)).toEqual([]);
      await e2e.shot(`vring-teaching-hold-${vp.width}`);
    }
    await page.setViewportSize(VIEWPORTS[0]);
    await page.locator('[data-action="vring-live"]').click();
    await expect.poll(() => mode.getAttribute('data-mode'), wait('live again')).toBe('live');
    expect(e2e.problems).toEqual([]);
  }, 120_000);

  it('markers sit beside the rows, never over them (split ring), at both sizes', async () => {
    await page.locator('.tree [data-port="qa"]').click();
    await page.locator('[data-action="vring-pause"]').click();
    await page.locator('[data-testid="last-avail-idx"]').waitFor();
    for (const vp of VIEWPORTS) {
      await page.setViewportSize(vp);
      await checkMarkers(vp, ['avail-idx', 'last-avail', 'used-idx', 'device-used-idx']);
      await e2e.shot(`vring-teaching-markers-split-${vp.width}`);
    }
    // EVENT_IDX is negotiated on the demo's device: its thresholds are marked too
    expect(await page.locator('.tables [data-marker=avail-event]').count()).toBeGreaterThan(0);
    expect(await page.locator('.tables [data-marker=used-event]').count()).toBeGreaterThan(0);
    await page.setViewportSize(VIEWPORTS[0]);
    expect(e2e.problems).toEqual([]);
  }, 60_000);

  it('the injected descriptors are scrolled into view and marked (split ring), at both sizes', async () => {
    // still paused: each injection waits for a step, so the next one finds free descriptors
    let before = new Set<string>();
    for (const vp of VIEWPORTS) {
      await page.setViewportSize(vp);
      await page.locator('[data-testid="inject-kind"]').selectOption('M3');
      await page.locator('[data-action="inject"]').click();
      const rows = page.locator('[data-table="desc"] tr[data-injected]');
      // this injection's rows (the marks move to the new chain)
      await expect
        .poll(
          async () =>
            (await rows.evaluateAll((rs) => rs.map((r) => r.getAttribute('data-desc')))).join(),
          wait('the injected rows drawn'),
        )
        .not.toMatch(before.size === 0 ? /^$/ : new RegExp(`^${[...before].join(',')}$`));
      const ids = await rows.evaluateAll((rs) => rs.map((r) => r.getAttribute('data-desc')!));
      before = new Set(ids);
      // the injected chain is at the far end of the table, well out of the opening view
      expect(Math.min(...ids.map(Number))).toBeGreaterThan(60);
      const pane = () => box(page.locator('[data-tab-body=vrings]'), 'vrings tab');
      await expect
        .poll(
          async () => {
            const p = await pane();
            for (const r of await rows.all()) {
              const rb = await box(r, 'injected row');
              if (rb.y < p.y - 0.5 || rb.y + rb.height > p.y + p.height + 0.5) return false;
            }
            return true;
          },
          wait(`the injected rows scrolled into the tab at ${vp.width}`),
        )
        .toBe(true);
      const scroller = await box(
        page.locator('[data-table="desc"]').locator('xpath=..'),
        'desc box',
      );
      for (const r of await rows.all()) {
        const rb = await box(r, 'injected row');
        // in the table's own scroll box, and inside the window
        expect(
          rb.y >= scroller.y - 0.5 && rb.y + rb.height <= scroller.y + scroller.height + 0.5,
        ).toBe(true);
        expect(
          inside(rb, vp.width, vp.height),
          `injected row inside ${vp.width}x${vp.height}`,
        ).toBe(true);
      }
      await e2e.shot(`vring-teaching-injected-${vp.width}`);
    }
    await page.setViewportSize(VIEWPORTS[0]);
    await must({ cmd: 'resetDevice', device: 'vser0' });
    expect(e2e.problems).toEqual([]);
  }, 60_000);

  it('packed ring: next slots with their wrap counters beside the rows; the injected slot in view', async () => {
    await must({ cmd: 'run' }); // the new device's probe needs the engine running
    await must({ cmd: 'createDevice', device: { id: 'vser1', packed: true } });
    await portWithClient('pk', 'vser1');
    await page.locator('.tree [data-port="pk"]').click();
    await page.locator('[data-testid="next-avail"]').waitFor();
    for (const vp of VIEWPORTS) {
      await page.setViewportSize(vp);
      await checkMarkers(vp, ['next-avail', 'next-used']);
      await e2e.shot(`vring-teaching-markers-packed-${vp.width}`);
    }
    await page.setViewportSize(VIEWPORTS[0]);
    const label = await page.locator('.tables [data-marker=next-avail]').first().textContent();
    expect(label).toMatch(/^avail w[01]$/);
    await page.locator('[data-testid="inject-kind"]').selectOption('M2');
    await page.locator('[data-action="inject"]').click();
    await page.locator('[data-testid="inject-note"]').waitFor();
    const row = page.locator('[data-table="packed"] tr[data-injected]').first();
    await row.waitFor();
    const pane = await box(page.locator('[data-tab-body=vrings]'), 'vrings tab');
    await expect
      .poll(async () => {
        const rb = await box(row, 'injected slot');
        return inside(rb, 1440, 900) && rb.y >= pane.y && rb.y + rb.height <= pane.y + pane.height;
      }, wait('the injected slot scrolled into the tab'))
      .toBe(true);
    await e2e.shot('vring-teaching-injected-packed');
    expect(e2e.problems).toEqual([]);
  }, 90_000);
});
