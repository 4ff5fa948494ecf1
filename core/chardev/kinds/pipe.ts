/** pipe: `path.in`/`path.out` FIFOs, or `path` alone for one bidirectional pipe (H1). */
import { z } from 'zod';
import { defineKind, SpecProblem } from '../kind.js';
import { WIRE_COMMON } from './wire-address.js';

const schema = z.object({ kind: z.literal('pipe'), path: z.string() });
export type PipeBackend = z.infer<typeof schema>;

export const pipeKind = defineKind(schema, {
  qemu: {
    names: ['pipe'],
    keys: ['path'],
    parse(opts) {
      const path = opts.get('path');
      if (path === undefined) return new SpecProblem('chardev: pipe: no device path given');
      return { kind: 'pipe', path };
    },
    name: () => 'pipe',
    print: (b) => [['path', b.path]],
  },
  libvirt: {
    types: ['pipe'],
    read(src) {
      const path = src.sources[0]?.path;
      if (path === undefined)
        return new SpecProblem('Missing source path attribute for char device');
      return { backend: { kind: 'pipe', path } };
    },
    write: (b) => ({ type: 'pipe', sources: [{ attrs: { path: b.path } }] }),
  },
  qmp: {
    branches: { pipe: { ...WIRE_COMMON, device: { type: 'str' } } },
    read: (_type, d) => ({ kind: 'pipe', path: d.device as string }),
    write: (b) => ({ type: 'pipe', data: { device: b.path } }),
  },
  paths: (b, at) => ({ ...b, path: at(b.path) }),
  open: async (b, options) => (await import('../pipe-backend.js')).PipeChardev.open(b, options),
});
