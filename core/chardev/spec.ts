/**
 * A chardev as the topology, the command line and the app describe it: the
 * backend kinds and their options, with zod schemas for every boundary.
 *
 * Lives here, the lowest place that needs it, so the backends (this folder)
 * and the machine above them (core/machine/topology.ts) share one
 * declaration without importing each other.
 */
import { z } from 'zod';

/** A mux chardev serves at most this many frontends (MAX_MUX, include/chardev/char-mux.h). */
export const MAX_MUX_FRONTENDS = 4;

/** QEMU's identifier rule (util/id.c id_wellformed): a letter, then letters, digits, '-', '.', '_'. */
export const ID_PATTERN = /^[A-Za-z][A-Za-z0-9\-._]*$/;

export function isWellFormedId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/** A QEMU identifier (chardev, device, port ids). */
export const IdSchema = z.string().regex(ID_PATTERN, "Parameter 'id' expects an identifier");
export const SocketAddressSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('unix'), path: z.string() }),
  /** `port` is a string as in QEMU and libvirt (`service`): a number or a service name. */
  z.object({ type: z.literal('tcp'), host: z.string(), port: z.string().min(1) }),
  /** A socket QEMU inherits (`fd=N`, or a name from -add-fd / the monitor). */
  z.object({ type: z.literal('fd'), fd: z.string() }),
]);
export type SocketAddress = z.infer<typeof SocketAddressSchema>;

export const ChardevBackendSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('socket'),
    address: SocketAddressSchema,
    /** Listen (server=on) or connect. */
    server: z.boolean(),
    /** Server only: hold QEMU's start until a client connects. Always false for a client. */
    wait: z.boolean(),
    /** TCP_NODELAY (nodelay=on, or the legacy delay=off / bare `nodelay`). */
    nodelay: z.boolean(),
    /** Client only: seconds between reconnect attempts, as given (0 means none). */
    reconnect: z.number().int().min(0).optional(),
  }),
  /** path.in / path.out, or path alone for one bidirectional pipe (H1). */
  z.object({ kind: z.literal('pipe'), path: z.string() }),
  z.object({ kind: z.literal('file'), path: z.string(), append: z.boolean() }),
  z.object({ kind: z.literal('pty') }),
  z.object({ kind: z.literal('null') }),
  z.object({
    kind: z.literal('ringbuf'),
    size: z
      .number()
      .int()
      .min(1)
      .refine((n) => (n & (n - 1)) === 0, 'size of ringbuf chardev must be power of two'),
  }),
  z.object({
    kind: z.literal('udp'),
    /** Remote host; QEMU fills in "localhost" when none is given. */
    host: z.string(),
    port: z.string().min(1),
    localaddr: z.string().optional(),
    localport: z.string().optional(),
  }),
  z.object({ kind: z.literal('stdio') }),
  /** A host serial device (`serial`, or the deprecated alias `tty`). */
  z.object({ kind: z.literal('serial'), path: z.string() }),
  /** A backend QEMU has and vmchan does not emulate (vc, spicevmc, ...); its keys are in ignoredKeys. */
  z.object({ kind: z.literal('other'), driver: z.string().min(1) }),
]);
export type ChardevBackend = z.infer<typeof ChardevBackendSchema>;
export type ChardevKind = ChardevBackend['kind'];

export const ChardevSchema = z.object({
  id: IdSchema,
  backend: ChardevBackendSchema,
  /** mux=on: up to four frontends share the backend (H1). */
  mux: z.boolean(),
  logfile: z.string().optional(),
  logappend: z.boolean(),
  /** Keys QEMU accepts for -chardev that vmchan keeps but does not model, as written. */
  ignoredKeys: z.record(z.string(), z.string()).optional(),
});
export type Chardev = z.infer<typeof ChardevSchema>;
