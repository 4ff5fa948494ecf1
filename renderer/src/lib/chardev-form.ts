/** The chardev part of the dialogs (add chardev, add port, connect), as plain data. */
import type { ChardevSpecInput } from '../../../core/api/contract.js';

export type ChardevKindChoice = 'unix' | 'tcp' | 'null' | 'ringbuf' | 'file';

export interface ChardevForm {
  id: string;
  kind: ChardevKindChoice;
  /** unix: socket path (empty: in the lab's runtime directory); file: the file. */
  path: string;
  host: string;
  port: string;
  server: boolean;
  wait: boolean;
  size: string;
}

export function emptyChardevForm(id = ''): ChardevForm {
  return {
    id,
    kind: 'unix',
    path: '',
    host: '127.0.0.1',
    port: '0',
    server: true,
    wait: false,
    size: '65536',
  };
}

/** The form as the API's chardev spec; numbers that are not numbers go through as NaN for the schema to refuse. */
export function chardevSpec(f: ChardevForm): ChardevSpecInput {
  const id = f.id.trim();
  switch (f.kind) {
    case 'unix':
      return {
        id,
        backend: {
          kind: 'unix',
          ...(f.path.trim() ? { path: f.path.trim() } : {}),
          server: f.server,
          wait: f.wait,
        },
      };
    case 'tcp':
      return {
        id,
        backend: {
          kind: 'tcp',
          host: f.host.trim(),
          port: Number(f.port),
          server: f.server,
          wait: f.wait,
        },
      };
    case 'null':
      return { id, backend: { kind: 'null' } };
    case 'ringbuf':
      return { id, backend: { kind: 'ringbuf', size: Number(f.size) } };
    case 'file':
      return { id, backend: { kind: 'file', path: f.path.trim() } };
  }
}

/** A chardev id nobody uses yet: `char<base>`, `char<base>1`, ... */
export function freeChardevId(taken: readonly string[], base: string): string {
  const clean = base.replace(/[^A-Za-z0-9\-._]/g, '') || 'chardev';
  const stem = /^[A-Za-z]/.test(clean) ? clean : `c${clean}`;
  if (!taken.includes(stem)) return stem;
  for (let i = 1; ; i++) if (!taken.includes(`${stem}${i}`)) return `${stem}${i}`;
}
