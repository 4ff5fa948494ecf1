/**
 * The app's capture settings (issue 16): the default capture goes to the
 * user's data directory (it outlives the lab's runtime directory), its size
 * is in the capture state and grows, a warning comes once it passes the
 * size the user set, and dumpcap's ring buffer and stop conditions apply.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CaptureState } from '../../core/api/contract/contract.js';
import { rig, until, type Rig } from './helpers.js';

let r: Rig | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

describe('capture settings in the app', () => {
  it('default file in the data directory, size growing, one warning past warnBytes', async () => {
    r = await rig({ lab: 'demo' });
    const started = await r.must<CaptureState>({ cmd: 'startCapture', warnBytes: 4096 });
    expect(started.path).not.toBeNull();
    expect(started.path!.startsWith(r.service.runtimeDir)).toBe(false);
    expect(path.basename(path.dirname(started.path!))).toMatch(/^vmchan-test-captures-/);
    const first = await until(async () => {
      const c = (await r!.topology()).capture;
      return (c.bytes ?? 0) > 0 ? c.bytes : undefined;
    });
    const warned = await until(async () => {
      const c = (await r!.topology()).capture;
      return c.warning ? c : undefined;
    }, 15_000);
    expect(warned.bytes!).toBeGreaterThan(first!);
    expect(warned.warning).toMatch(/passed 4096 bytes/);
    const stopped = await r.must<CaptureState>({ cmd: 'stopCapture' });
    expect(fs.existsSync(stopped.last!)).toBe(true);
  }, 30_000);

  it('-a packets:N stops the capture by itself; bad ring words are refused in one line', async () => {
    r = await rig({ lab: 'demo' });
    const bad = await r.run({ cmd: 'startCapture', ring: ['files:2'] });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.message).toMatch(/needs -b filesize/);
    await r.must({ cmd: 'startCapture', autostop: ['packets:20'] });
    const done = await until(async () => {
      const c = (await r!.topology()).capture;
      return c.on ? undefined : c;
    }, 15_000);
    expect(done.last).not.toBeNull();
  }, 30_000);
});
