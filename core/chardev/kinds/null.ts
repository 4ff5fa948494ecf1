/** null: output discarded (counted), no input (H1). */
import { z } from 'zod';
import { defineKind } from '../kind.js';
import { WIRE_COMMON } from './wire-address.js';

const schema = z.object({ kind: z.literal('null') });

export const nullKind = defineKind(schema, {
  qemu: {
    names: ['null'],
    keys: [],
    parse: () => ({ kind: 'null' }),
    name: () => 'null',
    print: () => [],
  },
  libvirt: {
    types: ['null'],
    read: () => ({ backend: { kind: 'null' } }),
    write: () => ({ type: 'null', sources: [] }),
  },
  qmp: {
    branches: { null: WIRE_COMMON },
    read: () => ({ kind: 'null' }),
    write: () => ({ type: 'null', data: {} }),
  },
  open: async (_b, options) => new (await import('../null-backend.js')).NullChardev(options),
  app: [{ value: 'null', label: 'null (discard)', fields: [], build: () => ({ kind: 'null' }) }],
});
