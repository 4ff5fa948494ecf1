/**
 * The backends QEMU has and vmchan does not emulate (vc, spicevmc,
 * spiceport, msmouse, braille, ...): kept as written so a pasted command
 * line or domain XML round-trips, noted as not emulated, and refused by
 * name when a machine opens one.
 */
import { z } from 'zod';
import { chardevError } from '../chardev-error.js';
import { defineKind } from '../kind.js';
import { notEmulated, WIRE_COMMON } from './wire-address.js';

const schema = z.object({ kind: z.literal('other'), driver: z.string().min(1) });
export type OtherBackend = z.infer<typeof schema>;

export const otherKind = defineKind(schema, {
  qemu: {
    // Every QEMU backend name no other kind claims (see kinds/index.ts).
    names: [],
    keys: [],
    parse: (_opts, _ctx, driver) => ({ kind: 'other', driver }),
    name: (b) => b.driver,
    print: () => [],
  },
  libvirt: {
    types: ['vc', 'spicevmc', 'spiceport'],
    read(src) {
      if (src.type === 'spicevmc') {
        return { backend: { kind: 'other', driver: 'spicevmc' }, ignoredKeys: { name: 'vdagent' } };
      }
      if (src.type === 'spiceport') {
        const channel = src.sources[0]?.channel;
        return channel === undefined
          ? { backend: { kind: 'other', driver: 'spiceport' } }
          : { backend: { kind: 'other', driver: 'spiceport' }, ignoredKeys: { name: channel } };
      }
      return { backend: { kind: 'other', driver: src.type } };
    },
    write(b, ignored) {
      if (b.driver === 'vc') return { type: 'vc', sources: [] };
      if (b.driver === 'spicevmc' && ignored.name === 'vdagent') {
        delete ignored.name;
        return { type: 'spicevmc', sources: [] };
      }
      if (b.driver === 'spiceport' && ignored.name !== undefined) {
        const channel = ignored.name;
        delete ignored.name;
        return { type: 'spiceport', sources: [{ attrs: { channel } }] };
      }
      return { skip: `backend '${b.driver}' has no libvirt source type vmchan writes` };
    },
  },
  qmp: {
    branches: {
      parallel: { ...WIRE_COMMON, device: { type: 'str' } },
      msmouse: WIRE_COMMON,
      wctablet: WIRE_COMMON,
      braille: WIRE_COMMON,
      testdev: WIRE_COMMON,
      console: WIRE_COMMON,
      spicevmc: { ...WIRE_COMMON, type: { type: 'str' } },
      spiceport: { ...WIRE_COMMON, fqdn: { type: 'str' } },
      'qemu-vdagent': {
        ...WIRE_COMMON,
        mouse: { type: 'bool', optional: true },
        clipboard: { type: 'bool', optional: true },
      },
      dbus: { ...WIRE_COMMON, name: { type: 'str' } },
      vc: {
        ...WIRE_COMMON,
        width: { type: 'int', optional: true },
        height: { type: 'int', optional: true },
        cols: { type: 'int', optional: true },
        rows: { type: 'int', optional: true },
      },
    },
    read: (type) => ({ kind: 'other', driver: type }),
    write: (b) => ({ unsupported: `${notEmulated(`'${b.driver}' chardevs`).message}` }),
  },
  open: async (b, options) =>
    chardevError('Unsupported', `'${b.driver}' chardevs are not supported by vmchan`, options.id),
});
