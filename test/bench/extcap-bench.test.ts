import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { extcapBench } from '../../bench/capture-extcap.js';

// The extcap benches point this process's TMPDIR at their directory (the
// session registry is found through it). Two of them run one after the
// other in `npm run bench`: the second made its directory under the first's
// removed one and the whole run ended with ENOENT.
describe('extcap bench setup', () => {
  const before = { TMPDIR: process.env['TMPDIR'], XDG_RUNTIME_DIR: process.env['XDG_RUNTIME_DIR'] };
  afterEach(() => {
    for (const [name, value] of Object.entries(before)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('puts TMPDIR and XDG_RUNTIME_DIR back and removes its directory when done, so the next group can make its own', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'extcap-bench-test-'));
    process.env['TMPDIR'] = base;
    process.env['XDG_RUNTIME_DIR'] = '/run/user/test';
    try {
      const first = await extcapBench('first-');
      expect(path.dirname(first.dir)).toBe(base);
      expect(process.env['TMPDIR']).toBe(first.dir);
      expect(process.env['XDG_RUNTIME_DIR']).toBeUndefined();
      first.done();
      expect(fs.existsSync(first.dir)).toBe(false);
      expect(process.env['TMPDIR']).toBe(base);
      expect(process.env['XDG_RUNTIME_DIR']).toBe('/run/user/test');
      const second = await extcapBench('second-');
      expect(path.dirname(second.dir)).toBe(base);
      second.done();
      expect(process.env['TMPDIR']).toBe(base);
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});
