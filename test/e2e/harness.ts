/**
 * What every end-to-end suite does the same way: the rule for a missing
 * prerequisite (skipped with the install command, failed under CI=true),
 * the renderer built as it is now into a temporary directory, `vmchan
 * serve` on it, Debian's Chromium (headless, playwright-core, the flags of
 * bench/app-frames.ts, a fresh profile; no browser is ever downloaded) with
 * the page's console errors and page errors collected, and screenshots to
 * test-results/screenshots/.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import { it } from 'vitest';
import { CHROMIUM, CHROMIUM_ARGS } from '../../bench/app-frames.js';
import { startServe, type ServeHandle } from '../../cli/serve.js';
import type { TopologySnapshot } from '../../core/api/contract/contract.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const SHOTS = path.join(ROOT, 'test-results', 'screenshots');
export const CHROMIUM_MISSING = 'chromium not found: apt-get install chromium';

/** The chromium message when /usr/bin/chromium is missing, else nothing. */
export function missingChromium(): string[] {
  return fs.existsSync(CHROMIUM) ? [] : [CHROMIUM_MISSING];
}

/**
 * With something missing, a test named `title` fails with the messages
 * under CI=true, else the suite is skipped with them. True when nothing is
 * missing (the suite runs).
 */
export function prerequisites(title: string, missing: readonly string[]): boolean {
  if (missing.length === 0) return true;
  const message = missing.join('; ');
  if (process.env['CI'] === 'true') {
    it(title, () => {
      throw new Error(message);
    });
  } else {
    it.skip(message, () => {});
  }
  return false;
}

export interface E2eOptions {
  viewport?: { width: number; height: number };
  /** The page's default timeout. */
  timeoutMs?: number;
  /** Start of the temporary directories' names (`<prefix>renderer-`, `<prefix>chromium-`). */
  tmpPrefix?: string;
  /** Also count console messages that name the Content Security Policy (default true). */
  csp?: boolean;
}

export interface E2e {
  serve: ServeHandle;
  context: BrowserContext;
  page: Page;
  /** Console errors and page errors seen so far. */
  problems: string[];
  /** A screenshot of the page to test-results/screenshots/<name>.png. */
  shot(name: string): Promise<Buffer>;
  topology(): Promise<TopologySnapshot>;
  /** Closes Chromium and serve, and removes the temporary directories. */
  close(): Promise<void>;
}

/** Builds the renderer, starts `vmchan serve` on it and opens Chromium (the page not loaded yet). */
export async function startE2e(options: E2eOptions = {}): Promise<E2e> {
  const prefix = options.tmpPrefix ?? 'vmchan-e2e-';
  fs.mkdirSync(SHOTS, { recursive: true });
  let serve: ServeHandle | undefined;
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  // The renderer as it is now, built apart from dist/ so the test never runs a stale one.
  const staticDir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}renderer-`));
  const close = async (): Promise<void> => {
    await context?.close();
    await serve?.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    fs.rmSync(staticDir, { recursive: true, force: true });
  };
  try {
    // A production build, as `npm start` serves (vitest runs with NODE_ENV=test, which
    // would make Svelte compile its slower development mode).
    const nodeEnv = process.env['NODE_ENV'];
    process.env['NODE_ENV'] = 'production';
    try {
      await build({
        configFile: path.join(ROOT, 'renderer', 'vite.config.ts'),
        logLevel: 'warn',
        build: { outDir: staticDir, emptyOutDir: true },
      });
    } finally {
      process.env['NODE_ENV'] = nodeEnv;
    }
    serve = await startServe({ staticDir });
    profile = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}chromium-`));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: options.viewport ?? { width: 1440, height: 900 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(options.timeoutMs ?? 10_000);
    const problems: string[] = [];
    const csp = options.csp ?? true;
    page.on('console', (m) => {
      if (m.type() === 'error' || (csp && /Content Security Policy/i.test(m.text())))
        problems.push(`console: ${m.text()}`);
    });
    // The error's first frame says where: a page error under load is rarely seen twice.
    page.on('pageerror', (e) => {
      const at = /\n\s+at (.*)/.exec(e.stack ?? '')?.[1];
      problems.push(`page error: ${e.message}${at !== undefined ? ` (at ${at})` : ''}`);
    });
    // The person at the window agrees to the paths a test names (web mode asks, issue 13 item 1).
    page.on('dialog', (d) => void (d.type() === 'confirm' ? d.accept() : d.dismiss()));
    const running = serve;
    return {
      serve: running,
      context,
      page,
      problems,
      shot: (name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`) }),
      topology: async () => {
        const r = await running.service.execute({ cmd: 'getTopology' });
        if (!r.ok) throw new Error(r.error.message);
        return r.value as TopologySnapshot;
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Open the capture being written in the capture tab. The window hears that a
 * capture started through its own topology updates, which can come after the
 * service already counts records: until then the button is "Show it" and
 * opens the last finished capture (what it says), so wait for "Show live",
 * then for the list to be the live file.
 */
export async function showLiveCapture(page: Page): Promise<void> {
  const live = page.locator('[data-action=show-capture]', { hasText: 'Show live' });
  await live.waitFor();
  await live.click();
  await page.locator('[data-capture-path]', { hasText: '(live)' }).waitFor();
}

/**
 * Press the toolbar's capture button to start or stop a capture, once the
 * window shows it as that: the button starts or stops by what the window's
 * topology says, which can trail the service's (a test that waited for the
 * service to count records could otherwise press "Capture" again instead
 * of "Stop capture").
 */
export async function pressCapture(page: Page, to: 'start' | 'stop'): Promise<void> {
  const label = to === 'start' ? /^\s*Capture\s*$/ : /^\s*Stop capture\s*$/;
  const button = page.locator('[data-action=capture]', { hasText: label });
  await button.waitFor();
  await button.click();
}
