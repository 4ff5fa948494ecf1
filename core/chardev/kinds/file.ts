/** file: the guest's output appended or truncated into a host file (H1); input is never read. */
import { z } from 'zod';
import { defineKind, SpecProblem } from '../kind.js';
import { notEmulated, WIRE_COMMON } from './wire-address.js';

const schema = z.object({ kind: z.literal('file'), path: z.string(), append: z.boolean() });
export type FileBackend = z.infer<typeof schema>;

export const fileKind = defineKind(schema, {
  qemu: {
    names: ['file'],
    keys: ['path', 'append'],
    parse(opts) {
      const path = opts.get('path');
      if (path === undefined) return new SpecProblem('chardev: file: no filename given');
      return { kind: 'file', path, append: opts.bool('append', false) };
    },
    name: () => 'file',
    print: (b) =>
      b.append
        ? [
            ['path', b.path],
            ['append', 'on'],
          ]
        : [['path', b.path]],
  },
  libvirt: {
    types: ['file'],
    read(src) {
      const source = src.sources[0];
      if (source?.path === undefined)
        return new SpecProblem('Missing source path attribute for char device');
      const a = source.append;
      return { backend: { kind: 'file', path: source.path, append: a === 'on' || a === 'yes' } };
    },
    write: (b) => ({
      type: 'file',
      sources: [{ attrs: { path: b.path, append: b.append ? 'on' : undefined } }],
    }),
  },
  qmp: {
    branches: {
      file: {
        ...WIRE_COMMON,
        in: { type: 'str', optional: true },
        out: { type: 'str' },
        append: { type: 'bool', optional: true },
      },
    },
    read(_type, d) {
      if (d.in !== undefined) return notEmulated("file chardevs with an 'in' file");
      return { kind: 'file', path: d.out as string, append: d.append === true };
    },
    write: (b) => ({
      type: 'file',
      data: b.append ? { out: b.path, append: true } : { out: b.path },
    }),
  },
  paths: (b, at) => ({ ...b, path: at(b.path) }),
  open: async (b, options) => (await import('../file-backend.js')).FileChardev.open(b, options),
  app: [
    {
      value: 'file',
      label: 'file (guest output)',
      fields: [
        {
          name: 'path',
          label: 'path',
          type: 'text',
          default: '',
          min: 1,
          placeholder: '/tmp/guest-output.log',
        },
      ],
      build: (v, id, at) => ({
        kind: 'file',
        path: at(String(v.path ?? ''), `${id}.out`),
        append: false,
      }),
    },
  ],
});
