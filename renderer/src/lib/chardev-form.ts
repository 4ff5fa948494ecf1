/**
 * The chardev part of the dialogs (add chardev, add port, connect), as plain
 * data. Its choices and fields are not written here: the engine sends the
 * registered chardev kinds' forms (`chardevForms`, one record per kind in
 * core/chardev/kinds/), so a new kind shows up here without a change.
 */
import type { ChardevFormChoice, ChardevSpecInput } from '../../../core/api/contract/contract.js';

export interface ChardevForm {
  id: string;
  /** A choice's value (unix, tcp, null, ...). */
  kind: string;
  /** Every field of every choice, by name, as typed (text and numbers as text). */
  values: Record<string, string | boolean>;
  /** The choices the engine offers; empty until they arrive. */
  choices: ChardevFormChoice[];
}

export function emptyChardevForm(id = ''): ChardevForm {
  return { id, kind: 'unix', values: {}, choices: [] };
}

/** Take the engine's choices: fill every field's default that is not typed yet. */
export function withChoices(f: ChardevForm, choices: ChardevFormChoice[]): ChardevForm {
  const values = { ...f.values };
  for (const c of choices) {
    for (const field of c.fields) {
      if (values[field.name] !== undefined) continue;
      values[field.name] = field.type === 'bool' ? field.default === true : String(field.default);
    }
  }
  const kind = choices.some((c) => c.value === f.kind) ? f.kind : (choices[0]?.value ?? f.kind);
  return { ...f, kind, values, choices };
}

/**
 * The form as the API's chardev spec: the chosen kind's fields only; an
 * empty text field is left out (the engine's default), numbers that are
 * not numbers go through as NaN for the engine to refuse.
 */
export function chardevSpec(f: ChardevForm): ChardevSpecInput {
  const id = f.id.trim();
  const choice = f.choices.find((c) => c.value === f.kind);
  const backend: Record<string, string | number | boolean> = { kind: f.kind };
  for (const field of choice?.fields ?? []) {
    const v = f.values[field.name];
    if (field.type === 'bool') backend[field.name] = v === true;
    else if (field.type === 'number') backend[field.name] = Number(v);
    else if (typeof v === 'string' && v.trim() !== '') backend[field.name] = v.trim();
  }
  return { id, backend: backend as ChardevSpecInput['backend'] };
}

/** A chardev id nobody uses yet: `char<base>`, `char<base>1`, ... */
export function freeChardevId(taken: readonly string[], base: string): string {
  const clean = base.replace(/[^A-Za-z0-9\-._]/g, '') || 'chardev';
  const stem = /^[A-Za-z]/.test(clean) ? clean : `c${clean}`;
  if (!taken.includes(stem)) return stem;
  for (let i = 1; ; i++) if (!taken.includes(`${stem}${i}`)) return `${stem}${i}`;
}
