/**
 * Renderer frame time while the demo streams at full speed: the app in
 * Debian's Chromium (headless, through playwright-core) against the web
 * face, requestAnimationFrame deltas collected in the page for a few
 * seconds in the Overview, the Capture tab showing a live capture, and the
 * Vrings tab, p50/p95/max printed; and the time to first meaningful paint
 * (navigation start to the overview drawing the demo's ports). The load
 * average is printed with them: the figures mean little without it. The e2e
 * suite runs the same frame measurement (test/e2e/app.test.ts); this script
 * runs it alone:
 *
 *   npm run bench:app   (npm run build && node dist/bench/app-frames.js [seconds])
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { loadAverage } from './harness.js';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface FrameStats {
  frames: number;
  seconds: number;
  p50: number;
  p95: number;
  max: number;
  /** Batches the page applied during the window. */
  batches: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** requestAnimationFrame deltas over `seconds`, collected in the page. */
export async function measureFrames(page: Page, seconds: number): Promise<FrameStats> {
  const { deltas, batches } = await page.evaluate(async (ms: number) => {
    // Runs in the page (this file is typed for Node: the page's globals, as far as used).
    const w = globalThis as unknown as {
      document: { querySelector(s: string): { getAttribute(n: string): string | null } | null };
      requestAnimationFrame(cb: (now: number) => void): number;
    };
    const applied = (): number =>
      Number(w.document.querySelector('[data-batches]')?.getAttribute('data-batches') ?? 0);
    const batchesBefore = applied();
    const out: number[] = [];
    await new Promise<void>((resolve) => {
      let last = performance.now();
      const end = last + ms;
      const frame = (now: number): void => {
        out.push(now - last);
        last = now;
        if (now < end) w.requestAnimationFrame(frame);
        else resolve();
      };
      w.requestAnimationFrame(frame);
    });
    return { deltas: out.slice(1), batches: applied() - batchesBefore };
  }, seconds * 1000);
  const sorted = [...deltas].sort((a, b) => a - b);
  return {
    frames: deltas.length,
    seconds,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    max: sorted[sorted.length - 1] ?? 0,
    batches,
  };
}

export function describeFrames(s: FrameStats, where = ''): string {
  return (
    `renderer frame time${where === '' ? '' : ` in ${where}`} over ${s.seconds} s with every demo port at full speed: ` +
    `p50 ${s.p50.toFixed(1)} ms, p95 ${s.p95.toFixed(1)} ms, max ${s.max.toFixed(1)} ms ` +
    `(${s.frames} frames, ${s.batches} batches applied)`
  );
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const { chromium } = await import('playwright-core');
  const { startServe } = await import('../cli/serve.js');
  if (!fs.existsSync(CHROMIUM)) {
    process.stderr.write('chromium not found: apt-get install chromium\n');
    process.exitCode = 2;
    return;
  }
  const serve = await startServe({});
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-bench-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 900 },
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    // Web mode asks in the window before the service reads a path (Show live opens the capture
    // file): the user says yes, as the e2e harness does.
    page.on('dialog', (d) => void (d.type() === 'confirm' ? d.accept() : d.dismiss()));
    await page.goto(serve.url);
    // first meaningful paint: the overview shows the demo's ports (ms since navigation start)
    await page.waitForSelector('svg.overview [data-port="test2"]');
    const paint = await page.evaluate(() => performance.now());
    process.stdout.write(
      `time to first meaningful paint (overview with the demo's ports): ${paint.toFixed(0)} ms (load average ${loadAverage()})\n`,
    );
    await serve.service.execute({ cmd: 'setWorkload', on: true, speed: 'full' });
    await page.waitForTimeout(1500);
    const overview = await measureFrames(page, seconds);
    process.stdout.write(
      `${describeFrames(overview, 'Overview')} (load average ${loadAverage()})\n`,
    );
    await serve.service.execute({ cmd: 'startCapture' });
    await page.click('[data-tab=capture]');
    await page.click('[data-action=show-capture]');
    // A Capture tab that never shows its list is reported (with the app's message, if any) and
    // the Vrings tab is still measured: one broken tab does not hide the others' figures.
    const shown = await page
      .waitForSelector('[data-capture-rows] tbody tr[data-number]', { timeout: 60_000 })
      .then(() => true)
      .catch(() => false);
    if (shown) {
      const capture = await measureFrames(page, seconds);
      process.stdout.write(
        `${describeFrames(capture, 'Capture (live, following)')} (load average ${loadAverage()})\n`,
      );
    } else {
      const toast = page.locator('.toast');
      const said = (await toast.count()) > 0 ? await toast.first().textContent() : null;
      process.stdout.write(
        `Capture (live): the packet list did not show within 60 s of Show live (app said: ${said ?? 'nothing'}) (load average ${loadAverage()})\n`,
      );
      process.exitCode = 1;
    }
    await serve.service.execute({ cmd: 'stopCapture' });
    await page.click('[data-tab=vrings]');
    await page.waitForSelector('text=descriptor table');
    const vrings = await measureFrames(page, seconds);
    process.stdout.write(`${describeFrames(vrings, 'Vrings')} (load average ${loadAverage()})\n`);
  } finally {
    await context.close();
    await serve.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`app-frames: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
