/**
 * A chardev as the topology carries it (plain data, JSON, zod): its id, its
 * backend (the union of the registered kinds, kinds/index.ts), mux, the
 * log file, and the QEMU keys kept as written. core/machine's topology
 * re-exports these; chardev owns them so it never imports machine.
 */
import { z } from 'zod';
import { ChardevBackendSchema } from './kinds/index.js';

export { ChardevBackendSchema } from './kinds/index.js';
export type { ChardevBackend, ChardevKind } from './kinds/index.js';
export { SocketAddressSchema, type SocketAddress } from './kinds/socket.js';
export { DEFAULT_RINGBUF_SIZE } from './kinds/ringbuf.js';
export { MAX_MUX_FRONTENDS } from './limits.js';

/** QEMU's identifier rule (util/id.c id_wellformed): a letter, then letters, digits, '-', '.', '_'. */
export const ID_PATTERN = /^[A-Za-z][A-Za-z0-9\-._]*$/;

export const ChardevSchema = z.object({
  id: z.string().regex(ID_PATTERN, "Parameter 'id' expects an identifier"),
  backend: ChardevBackendSchema,
  /** mux=on: up to four frontends share the backend (H1). */
  mux: z.boolean(),
  logfile: z.string().optional(),
  logappend: z.boolean(),
  /** Keys QEMU accepts for -chardev that vmchan keeps but does not model, as written. */
  ignoredKeys: z.record(z.string(), z.string()).optional(),
});
export type Chardev = z.infer<typeof ChardevSchema>;
