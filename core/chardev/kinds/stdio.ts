/** stdio: the process's own stdin and stdout (H1); one per process, never with -daemonize. */
import { z } from 'zod';
import { defineKind, SpecProblem } from '../kind.js';
import { WIRE_COMMON } from './wire-address.js';

const schema = z.object({ kind: z.literal('stdio') });

export const stdioKind = defineKind(schema, {
  qemu: {
    names: ['stdio'],
    keys: [],
    parse(_opts, ctx) {
      if (ctx.daemonize) return new SpecProblem('cannot use stdio with -daemonize');
      if (ctx.stdioInUse) return new SpecProblem('cannot use stdio by multiple character devices');
      return { kind: 'stdio' };
    },
    name: () => 'stdio',
    print: () => [],
  },
  libvirt: {
    types: ['stdio'],
    read: () => ({ backend: { kind: 'stdio' } }),
    write: () => ({ type: 'stdio', sources: [] }),
  },
  qmp: {
    branches: { stdio: { ...WIRE_COMMON, signal: { type: 'bool', optional: true } } },
    read: () => ({ kind: 'stdio' }),
    write: () => ({ type: 'stdio', data: {} }),
  },
  open: async (_b, options, ctx) =>
    (await import('../stdio-backend.js')).StdioChardev.open(options, ctx.stdio),
});
