/**
 * The window's terminal sessions (core/api/contract/terminal-contract.ts): the tabs
 * of the Console tab and the HMP console of the Monitor tab. Output comes
 * in the batches (AppState hands it here); each session keeps a bounded
 * log, so a terminal shown again (a tab switch) replays what it missed, and
 * a mounted terminal gets the new bytes as they are applied.
 */
import type { ApiClient } from '../../../core/api/browser/client.js';
import type { PortSnapshot } from '../../../core/api/contract/contract.js';
import type {
  TerminalOutput,
  TerminalSession,
  TerminalSide,
} from '../../../core/api/contract/terminal-contract.js';

/** Bytes of a session's output kept for replay. */
const LOG_BYTES = 256 * 1024;

export interface TerminalTab {
  id: string;
  kind: TerminalSession['kind'];
  title: string;
  path: string;
  /** `device:nr` of the port (null: the monitor). */
  portKey: string | null;
  open: boolean;
  /** Why it ended (or why it never opened). */
  ended: string | null;
  /** What Enter sends: CR for a tty (hvc console, the monitor), LF for a raw channel. */
  enter: '\r' | '\n';
}

interface Log {
  chunks: Uint8Array[];
  bytes: number;
}

export interface TerminalOwner {
  readonly client: ApiClient;
  say(text: string, error: boolean): void;
}

const encoder = new TextEncoder();

function decodeBase64(data: string): Uint8Array {
  const bin = atob(data);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A line of our own in a terminal (dim, on its own line). */
function notice(text: string, colour = '2'): Uint8Array {
  return encoder.encode(`\r\n\x1b[${colour}m[${text}]\x1b[0m\r\n`);
}

export class TerminalStore {
  tabs = $state.raw<TerminalTab[]>([]);
  /** The Console tab's shown session. */
  active = $state<string | null>(null);
  /** The Monitor tab's HMP session. */
  monitor = $state<string | null>(null);
  /** Echo typed bytes locally (a raw channel does not echo them back). */
  localEcho = $state(false);

  // Logs, listeners and early output are plumbing, not shown state: plain collections on purpose.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private readonly logs = new Map<string, Log>();
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private readonly listeners = new Map<string, Set<(bytes: Uint8Array) => void>>();
  private failures = 0;
  /** Output that came before the answer that opened its session (a few sessions, kept briefly). */
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private early = new Map<string, TerminalOutput[]>();
  private adopted = false;

  constructor(private readonly owner: TerminalOwner) {}

  tab(id: string | null): TerminalTab | undefined {
    return id === null ? undefined : this.tabs.find((t) => t.id === id);
  }

  /** Console tabs (the monitor has its own). */
  get consoleTabs(): TerminalTab[] {
    return this.tabs.filter((t) => t.kind !== 'monitor');
  }

  // ---------------------------------------------------------------- output

  /** One batch's terminal output. */
  apply(outputs: readonly TerminalOutput[]): void {
    for (const o of outputs) {
      if (!this.logs.has(o.session)) {
        this.stashEarly(o);
        continue;
      }
      if (o.dropped > 0)
        this.print(o.session, notice(`${o.dropped} bytes left out: the screen fell behind`, '33'));
      if (o.data !== '') this.print(o.session, decodeBase64(o.data));
      if (o.ended !== null) {
        this.print(o.session, notice(`ended: ${o.ended}`));
        this.update(o.session, { open: false, ended: o.ended });
      }
    }
  }

  private stashEarly(o: TerminalOutput): void {
    const list = this.early.get(o.session) ?? [];
    if (list.length >= 16) return;
    list.push(o);
    this.early.set(o.session, list);
    while (this.early.size > 8) this.early.delete(this.early.keys().next().value!);
  }

  private print(id: string, bytes: Uint8Array): void {
    const log = this.logs.get(id);
    if (log === undefined) return;
    log.chunks.push(bytes);
    log.bytes += bytes.length;
    while (log.bytes > LOG_BYTES && log.chunks.length > 1) log.bytes -= log.chunks.shift()!.length;
    for (const l of this.listeners.get(id) ?? []) l(bytes);
  }

  /** Get the log so far, then every new chunk; returns the unsubscribe. */
  subscribe(id: string, listener: (bytes: Uint8Array) => void): () => void {
    for (const c of this.logs.get(id)?.chunks ?? []) listener(c);
    let set = this.listeners.get(id);
    // eslint-disable-next-line svelte/prefer-svelte-reactivity
    if (set === undefined) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  private update(id: string, patch: Partial<TerminalTab>): void {
    this.tabs = this.tabs.map((t) => (t.id === id ? { ...t, ...patch } : t));
  }

  private add(s: TerminalSession, enter: '\r' | '\n'): TerminalTab {
    const tab: TerminalTab = {
      id: s.id,
      kind: s.kind,
      title: s.title,
      path: s.path,
      portKey: s.port === null ? null : `${s.port.device}:${s.port.nr}`,
      open: s.open,
      ended: null,
      enter,
    };
    if (!this.logs.has(s.id)) this.logs.set(s.id, { chunks: [], bytes: 0 });
    this.tabs = [...this.tabs.filter((t) => t.id !== s.id), tab];
    const early = this.early.get(s.id);
    if (early !== undefined) {
      this.early.delete(s.id);
      this.apply(early);
    }
    return this.tab(s.id) ?? tab;
  }

  // -------------------------------------------------------------- commands

  /** Sessions this service has open already (a reload, a second window). */
  async adopt(): Promise<void> {
    if (this.adopted) return;
    this.adopted = true;
    const r = await this.owner.client.call({ cmd: 'listTerminals' });
    if (!r.ok) return;
    for (const s of r.value.sessions) {
      if (this.tab(s.id) !== undefined) continue;
      this.add(s, s.kind === 'host' || s.kind === 'guest' ? '\n' : '\r');
      if (!s.open) this.update(s.id, { open: false, ended: 'ended' });
      if (s.kind === 'monitor' && s.open) this.monitor ??= s.id;
      else if (s.kind !== 'monitor') this.active ??= s.id;
    }
  }

  /** A terminal on one side of `port`; a refusal (EBUSY...) becomes a tab that says so. */
  async open(port: PortSnapshot, side: TerminalSide): Promise<void> {
    const r = await this.owner.client.call({
      cmd: 'openTerminal',
      port: { device: port.device, nr: port.nr },
      side,
    });
    const enter = port.kind === 'virtconsole' ? '\r' : '\n';
    if (r.ok) {
      this.active = this.add(r.value, enter).id;
      return;
    }
    const id = `failed-${++this.failures}`;
    this.add(
      {
        id,
        kind: side,
        port: { device: port.device, nr: port.nr },
        title: `${port.label} · ${side}`,
        path: '',
        open: false,
      },
      enter,
    );
    this.print(id, encoder.encode(`\x1b[31m${r.error.message}\x1b[0m\r\n`));
    this.update(id, { ended: r.error.message });
    this.active = id;
  }

  async openMonitor(): Promise<void> {
    const r = await this.owner.client.call({ cmd: 'openMonitor' });
    if (!r.ok) {
      this.owner.say(r.error.message, true);
      return;
    }
    this.monitor = this.add(r.value, '\r').id;
  }

  /** Typed text; Enter becomes the tab's line ending. Not awaited by the keyboard. */
  input(id: string, data: string): void {
    const tab = this.tab(id);
    if (tab === undefined || !tab.open) return;
    const text = data.replaceAll('\r', tab.enter);
    if (this.localEcho && tab.kind !== 'monitor')
      this.print(id, encoder.encode(text.replaceAll('\n', '\r\n')));
    void this.owner.client.call({ cmd: 'terminalInput', session: id, data: text }).then((r) => {
      if (!r.ok) this.print(id, notice(r.error.message, '31'));
    });
  }

  async close(id: string): Promise<void> {
    const tab = this.tab(id);
    if (tab === undefined) return;
    if (!id.startsWith('failed-')) {
      const r = await this.owner.client.call({ cmd: 'closeTerminal', session: id });
      if (!r.ok && r.error.kind !== 'NotFound') this.owner.say(r.error.message, true);
    }
    this.tabs = this.tabs.filter((t) => t.id !== id);
    this.logs.delete(id);
    this.listeners.delete(id);
    if (this.active === id) this.active = this.consoleTabs.at(-1)?.id ?? null;
    if (this.monitor === id) this.monitor = null;
  }
}
