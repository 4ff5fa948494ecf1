/**
 * Bad-input corpus, QEMU argument lines (issue 13): every case refused with
 * one clear line naming what is wrong, at parse time or when the machine
 * starts, never a stack trace or an internal error.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Machine } from '../../core/machine/machine.js';
import { parseQemuArgs } from '../../core/machine/qemu-cmdline.js';
import { isQemuError } from '../../core/base/qemu-error.js';
import { QEMU_ARG_CASES } from './qemu-args.cases.js';
import { expectClearLine } from './clear.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-bad-args-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function refusal(args: string[]): Promise<string | null> {
  const parsed = parseQemuArgs(args);
  if (!parsed.ok) return parsed.error.toString();
  const m = await Machine.start(parsed.value, { runtimeDir: dir });
  if (isQemuError(m)) return m.message;
  await m.close();
  return null;
}

describe('bad input: QEMU argument lines', () => {
  it('has a case for every family', () => {
    expect(QEMU_ARG_CASES.length).toBeGreaterThanOrEqual(90);
  });
  for (const c of QEMU_ARG_CASES) {
    it(c.args.join(' ').slice(0, 120), async () => {
      const line = await refusal(c.args);
      expect(line, 'accepted').not.toBeNull();
      expectClearLine(line!, c.message);
    });
  }
});
