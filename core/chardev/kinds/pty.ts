/** pty: a pseudo-terminal whose slave path QEMU prints (H1). */
import { z } from 'zod';
import { defineKind } from '../kind.js';
import { WIRE_COMMON } from './wire-address.js';

const schema = z.object({ kind: z.literal('pty') });

export const ptyKind = defineKind(schema, {
  qemu: {
    names: ['pty'],
    keys: [],
    parse: () => ({ kind: 'pty' }),
    name: () => 'pty',
    print: () => [],
  },
  libvirt: {
    types: ['pty'],
    read: () => ({ backend: { kind: 'pty' } }),
    write: () => ({ type: 'pty', sources: [] }),
  },
  qmp: {
    branches: { pty: WIRE_COMMON },
    read: () => ({ kind: 'pty' }),
    write: () => ({ type: 'pty', data: {} }),
  },
  open: async (_b, options) => (await import('../pty-backend.js')).PtyChardev.open(options),
});
