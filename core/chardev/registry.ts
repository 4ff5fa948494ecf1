/**
 * The chardevs of one machine by id: what -chardev, chardev-add,
 * chardev-remove, query-chardev and a frontend's `chardev=ID` need.
 * Messages are QEMU's.
 */
import type { Chardev } from './spec.js';
import type { ChardevEndpoint, ChardevHandlers } from '../serial/endpoint.js';
import type { ChardevInfo } from './backend-endpoint.js';
import { chardevError, isChardevError, type ChardevError } from './chardev-error.js';
import { createChardev, isMux, type ChardevContext, type OpenChardev } from './factory.js';

export class ChardevRegistry {
  private readonly chardevs = new Map<string, OpenChardev>();
  private readonly opening = new Set<string>();

  constructor(private readonly ctx: ChardevContext) {}

  /** Open a chardev and register it under its id. */
  async add(spec: Chardev): Promise<OpenChardev | ChardevError> {
    if (this.chardevs.has(spec.id) || this.opening.has(spec.id)) {
      return chardevError('DuplicateId', `Duplicate ID '${spec.id}' for chardev`, spec.id);
    }
    this.opening.add(spec.id);
    try {
      const opened = await createChardev(spec, this.ctx);
      if (!isChardevError(opened)) this.chardevs.set(spec.id, opened);
      return opened;
    } finally {
      this.opening.delete(spec.id);
    }
  }

  get(id: string): OpenChardev | undefined {
    return this.chardevs.get(id);
  }

  ids(): string[] {
    return [...this.chardevs.keys()];
  }

  /**
   * Attach a frontend (`chardev=ID`), as qemu_chr_fe_init + set_handlers:
   * to the chardev itself, or to the lowest free frontend of a mux. Returns
   * the endpoint now held by `handlers` (detach() it to let go).
   */
  attach(id: string, handlers: ChardevHandlers): ChardevEndpoint | ChardevError {
    const c = this.chardevs.get(id);
    if (c === undefined) return chardevError('NotFound', `Chardev '${id}' not found`, id);
    const endpoint = isMux(c) ? c.freeFrontend() : c;
    if (isChardevError(endpoint)) return endpoint;
    if (!endpoint.attach(handlers)) return chardevError('Busy', `Device '${id}' is in use`, id);
    return endpoint;
  }

  /** chardev-remove: refused while a frontend holds it. */
  async remove(id: string): Promise<ChardevError | null> {
    const c = this.chardevs.get(id);
    if (c === undefined) return chardevError('NotFound', `Chardev '${id}' not found`, id);
    const busy = isMux(c) ? c.frontends.some((f) => f.attached) : c.attached;
    if (busy) return chardevError('Busy', `Chardev '${id}' is busy`, id);
    this.chardevs.delete(id);
    await c.close();
    return null;
  }

  /** query-chardev: one row per chardev (a mux adds its `-base` row). */
  info(): ChardevInfo[] {
    return [...this.chardevs.values()].flatMap((c) => (isMux(c) ? c.info() : [c.info()]));
  }

  async closeAll(): Promise<void> {
    const all = [...this.chardevs.values()];
    this.chardevs.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}
