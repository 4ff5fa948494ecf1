/**
 * ringbuf (and its alias memory): the guest's output kept in a ring of a
 * power-of-two size, read back with ringbuf-read (H1). One schema for every
 * face: the command line, chardev-add and the app all refuse a size that
 * is not a power of two in QEMU's words.
 */
import { z } from 'zod';
import { QemuError } from '../../base/qemu-error.js';
import { defineKind, SpecProblem } from '../kind.js';
import { WIRE_COMMON } from './wire-address.js';

/** H1: ringbuf size when none is given. */
export const DEFAULT_RINGBUF_SIZE = 65536;
/** The largest ring vmchan allocates (1 GiB); QEMU's int allows 1 GiB too (2^30 is the top power of two). */
export const MAX_RINGBUF_SIZE = 1 << 30;

const POWER_OF_TWO = 'size of ringbuf chardev must be power of two';

const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

const schema = z.object({
  kind: z.literal('ringbuf'),
  size: z.number().int().min(1).max(MAX_RINGBUF_SIZE).refine(isPowerOfTwo, POWER_OF_TWO),
});
export type RingbufBackend = z.infer<typeof schema>;

export const ringbufKind = defineKind(schema, {
  qemu: {
    names: ['ringbuf', 'memory'],
    keys: ['size'],
    parse(opts) {
      // ringbuf_chr_parse keeps the size in an int: 0 (absent, or a multiple of
      // 4 GiB) means the default, anything that wraps negative fails the
      // power-of-two check.
      const raw = opts.size('size') ?? 0n;
      // QEMU would wrap a size past its int (64G becomes 0, the default 64K)
      // without a word; vmchan refuses it instead of silently giving another
      // size (issue 13).
      if (raw > BigInt(MAX_RINGBUF_SIZE)) {
        return new SpecProblem(
          `size of ringbuf chardev must be at most 1G (${opts.get('size') ?? String(raw)} does not fit QEMU's int)`,
          'size',
        );
      }
      const asInt = Number(BigInt.asIntN(32, raw));
      const size = asInt === 0 ? DEFAULT_RINGBUF_SIZE : asInt;
      if (!isPowerOfTwo(size)) return new SpecProblem(POWER_OF_TWO, 'size');
      return { kind: 'ringbuf', size };
    },
    name: () => 'ringbuf',
    print: (b) => (b.size === DEFAULT_RINGBUF_SIZE ? [] : [['size', String(b.size)]]),
  },
  libvirt: {
    types: [],
    read: () => new SpecProblem('libvirt has no ringbuf source type'),
    write: () => ({ skip: 'libvirt has no ringbuf source type' }),
  },
  qmp: {
    branches: {
      ringbuf: { ...WIRE_COMMON, size: { type: 'int', optional: true } },
      memory: { ...WIRE_COMMON, size: { type: 'int', optional: true } },
    },
    read(_type, d) {
      // qemu_chr_open_ringbuf: 64 KiB unless given, and a power of two.
      const size = d.size === undefined ? DEFAULT_RINGBUF_SIZE : Number(d.size);
      if (!(Number.isSafeInteger(size) && isPowerOfTwo(size))) return new QemuError(POWER_OF_TWO);
      return { kind: 'ringbuf', size };
    },
    write: (b) => ({ type: 'ringbuf', data: { size: b.size } }),
  },
  open: async (b, options) =>
    (await import('../ringbuf-backend.js')).RingbufChardev.open(b.size, options),
  app: [
    {
      value: 'ringbuf',
      label: 'ring buffer',
      fields: [
        {
          name: 'size',
          label: 'size (bytes, power of 2)',
          type: 'number',
          default: DEFAULT_RINGBUF_SIZE,
          min: 1,
          max: MAX_RINGBUF_SIZE,
        },
      ],
      build: (v) => ({ kind: 'ringbuf', size: Number(v.size ?? DEFAULT_RINGBUF_SIZE) }),
    },
  ],
});
