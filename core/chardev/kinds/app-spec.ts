/**
 * The app's chardev spec ({kind: a form choice, then the form's fields})
 * checked against the choice's fields and turned into the topology's
 * backend by the kind's record; the result is then checked by the kind's
 * own schema, so the app, the command line and chardev-add agree on every
 * rule (a ringbuf size is a power of two everywhere).
 */
import type { FormField, FormValues } from '../kind.js';
import { ChardevBackendSchema, formChoices, type ChardevBackend } from './index.js';

/** Where relative or empty paths go: `<runtimeDir>/<path>`, or `<runtimeDir>/<fallback>`. */
export type PathResolver = (p: string, fallback: string) => string;

function fieldProblem(f: FormField, value: unknown): string | null {
  if (value === undefined) return null;
  switch (f.type) {
    case 'bool':
      return typeof value === 'boolean' ? null : `${f.name}: expected true or false`;
    case 'number': {
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        return `${f.name}: expected an integer`;
      }
      if (f.min !== undefined && value < f.min) return `${f.name}: must be at least ${f.min}`;
      if (f.max !== undefined && value > f.max) return `${f.name}: must be at most ${f.max}`;
      return null;
    }
    case 'text': {
      if (typeof value !== 'string') return `${f.name}: expected text`;
      const t = value.trim();
      if (f.min !== undefined && t.length < f.min) return `${f.name}: must not be empty`;
      if (t.length > (f.max ?? 4096)) return `${f.name}: at most ${f.max ?? 4096} characters`;
      return null;
    }
  }
}

/** The app's spec as a backend, or one line naming what is wrong. */
export function backendFromForm(
  id: string,
  spec: { kind: string } & Readonly<Record<string, unknown>>,
  at: PathResolver,
): ChardevBackend | string {
  const found = formChoices().find((c) => c.choice.value === spec.kind);
  if (found === undefined) {
    const known = formChoices().map((c) => c.choice.value);
    return `backend.kind: '${spec.kind}' is not one of ${known.join(', ')}`;
  }
  const { choice } = found;
  const values: Record<string, string | number | boolean> = {};
  for (const f of choice.fields) {
    const problem = fieldProblem(f, spec[f.name]);
    if (problem !== null) return `backend.${problem}`;
    const v = spec[f.name];
    values[f.name] = (v === undefined ? f.default : typeof v === 'string' ? v.trim() : v) as
      string | number | boolean;
  }
  for (const key of Object.keys(spec)) {
    if (key !== 'kind' && !choice.fields.some((f) => f.name === key)) {
      return `backend.${key}: not a field of '${spec.kind}'`;
    }
  }
  const built = choice.build(values as FormValues, id, at);
  const checked = ChardevBackendSchema.safeParse(built);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const where = issue?.path.map(String).join('.') ?? '';
    return `backend${where === '' ? '' : `.${where}`}: ${issue?.message ?? 'invalid'}`;
  }
  return checked.data;
}
