/** serial (and its deprecated alias tty): a host terminal device (H1). */
import { z } from 'zod';
import { defineKind, SpecProblem } from '../kind.js';
import { WIRE_COMMON } from './wire-address.js';

const schema = z.object({ kind: z.literal('serial'), path: z.string() });
export type SerialBackend = z.infer<typeof schema>;

export const serialKind = defineKind(schema, {
  qemu: {
    names: ['serial'],
    keys: ['path'],
    parse(opts) {
      const path = opts.get('path');
      if (path === undefined) return new SpecProblem('chardev: serial/tty: no device path given');
      return { kind: 'serial', path };
    },
    name: () => 'serial',
    print: (b) => [['path', b.path]],
  },
  libvirt: {
    types: ['dev'],
    read(src) {
      const path = src.sources[0]?.path;
      if (path === undefined)
        return new SpecProblem('Missing source path attribute for char device');
      return { backend: { kind: 'serial', path } };
    },
    write: (b) => ({ type: 'dev', sources: [{ attrs: { path: b.path } }] }),
  },
  qmp: {
    branches: { serial: { ...WIRE_COMMON, device: { type: 'str' } } },
    read: (_type, d) => ({ kind: 'serial', path: d.device as string }),
    write: (b) => ({ type: 'serial', data: { device: b.path } }),
  },
  paths: (b, at) => ({ ...b, path: at(b.path) }),
  open: async (b, options) => (await import('../serial-backend.js')).SerialChardev.open(b, options),
});
