/**
 * A typed event emitter that costs one property read when nobody listens.
 *
 * Producers that would have to build a payload (copy bytes, decode a
 * message) ask `has(type)` first; `emit` itself returns at once when the
 * listener list is empty. Listeners run synchronously, in subscription
 * order; one that throws is reported to the `error` sink and does not stop
 * the others, because an observer must never break the engine it observes.
 */

export type Listener<E> = (event: E) => void;
export type AnyListener<M> = <K extends keyof M>(type: K, event: M[K]) => void;

export class Emitter<M extends object> {
  private readonly listeners = new Map<keyof M, Listener<never>[]>();
  private anyListeners: AnyListener<M>[] = [];
  /** Live has() answers handed out by flag(), brought up to date on every (un)subscription. */
  private readonly flags = new Map<keyof M, { on: boolean }>();

  /** Where a throwing listener is reported (defaults to stderr). */
  constructor(
    private readonly onListenerError: (error: unknown) => void = (error) => {
      process.stderr.write(`vmchan: event listener failed: ${String(error)}\n`);
    },
  ) {}

  on<K extends keyof M>(type: K, listener: Listener<M[K]>): () => void {
    const list = (this.listeners.get(type) ?? []) as Listener<M[K]>[];
    this.listeners.set(type, [...list, listener] as Listener<never>[]);
    this.refreshFlags();
    return () => {
      const now = (this.listeners.get(type) ?? []) as Listener<M[K]>[];
      const rest = now.filter((l) => l !== listener);
      if (rest.length === 0) this.listeners.delete(type);
      else this.listeners.set(type, rest as Listener<never>[]);
      this.refreshFlags();
    };
  }

  /** Every event of every type (a recorder, the UI bridge). */
  onAny(listener: AnyListener<M>): () => void {
    this.anyListeners = [...this.anyListeners, listener];
    this.refreshFlags();
    return () => {
      this.anyListeners = this.anyListeners.filter((l) => l !== listener);
      this.refreshFlags();
    };
  }

  /**
   * has(type) as a live property: `flag.on` is kept equal to has(type)
   * whenever a listener comes or goes. For producers that ask per chunk or
   * per task, where even a map lookup per question shows.
   */
  flag<K extends keyof M>(type: K): { readonly on: boolean } {
    let f = this.flags.get(type);
    if (f === undefined) {
      f = { on: this.has(type) };
      this.flags.set(type, f);
    }
    return f;
  }

  private refreshFlags(): void {
    for (const [type, f] of this.flags) f.on = this.has(type);
  }

  /** Is anybody listening for `type`? Check before building an expensive payload. */
  has<K extends keyof M>(type: K): boolean {
    return this.anyListeners.length > 0 || this.listeners.has(type);
  }

  /** How many listeners `type` has (any-listeners included). */
  listenerCount<K extends keyof M>(type: K): number {
    return this.anyListeners.length + (this.listeners.get(type)?.length ?? 0);
  }

  emit<K extends keyof M>(type: K, event: M[K]): void {
    const list = this.listeners.get(type) as Listener<M[K]>[] | undefined;
    if (list === undefined && this.anyListeners.length === 0) return;
    if (list !== undefined) {
      for (const l of list) {
        try {
          l(event);
        } catch (error) {
          this.onListenerError(error);
        }
      }
    }
    for (const l of this.anyListeners) {
      try {
        l(type, event);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}
