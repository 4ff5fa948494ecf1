/**
 * Issue 12: the app's chardev form comes from the registered chardev kinds
 * (core/chardev/kinds/), not from a list in the renderer. The engine
 * answers `chardevForms` with every kind's choices and fields; the
 * renderer's form (renderer/src/lib/chardev-form.ts) fills the defaults
 * and builds the spec the engine checks with the same kind record.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ChardevFormChoice, ChardevSnapshot } from '../../core/api/contract/contract.js';
import { chardevKinds } from '../../core/chardev/kinds/index.js';
import { chardevSpec, emptyChardevForm, withChoices } from '../../renderer/src/lib/chardev-form.js';
import { rig, type Rig } from './helpers.js';

let r: Rig | null = null;
afterEach(async () => {
  await r?.close();
  r = null;
});

describe('H1 the app creates chardevs from the kinds registry', () => {
  it('chardevForms lists every registered kind choice with its fields', async () => {
    r = await rig();
    const choices = await r.must<ChardevFormChoice[]>({ cmd: 'chardevForms' });
    const fromRegistry = chardevKinds().flatMap((k) => (k.app ?? []).map((c) => c.value));
    expect(choices.map((c) => c.value)).toEqual(fromRegistry);
    expect(choices.find((c) => c.value === 'tcp')?.fields.map((f) => f.name)).toEqual([
      'host',
      'port',
      'server',
      'wait',
    ]);
  });

  it("the renderer's form with the defaults creates a ringbuf; a bad size gets the kind's words", async () => {
    r = await rig();
    const choices = await r.must<ChardevFormChoice[]>({ cmd: 'chardevForms' });
    const form = withChoices({ ...emptyChardevForm('rb1'), kind: 'ringbuf' }, choices);
    expect(chardevSpec(form)).toEqual({ id: 'rb1', backend: { kind: 'ringbuf', size: 65536 } });
    const made = await r.must<ChardevSnapshot>({
      cmd: 'createChardev',
      chardev: chardevSpec(form),
    });
    expect(made.kind).toBe('ringbuf');

    form.id = 'rb2';
    form.values.size = '1000';
    const refused = await r.run({ cmd: 'createChardev', chardev: chardevSpec(form) });
    expect(refused).toEqual({
      ok: false,
      error: {
        kind: 'InvalidRequest',
        message: 'chardev.backend.size: size of ringbuf chardev must be power of two',
      },
    });
  });
});
