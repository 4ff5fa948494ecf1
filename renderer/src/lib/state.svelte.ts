/**
 * The window's state, fed by batches: at most one is applied per animation
 * frame, and it is acknowledged from that frame, which is what lets the
 * service send the next one (core/api/server/batcher.ts). Big structures are kept
 * as raw state (replaced, never deeply proxied) so a batch costs little.
 */
import type { ApiClient } from '../../../core/api/browser/client.js';
import type {
  ApiEvent,
  Batch,
  ChardevSnapshot,
  CommandInputOf,
  CommandName,
  DeviceSnapshot,
  EngineState,
  PortSnapshot,
  Result,
  ResultOf,
  TopologySnapshot,
} from '../../../core/api/contract/contract.js';
import { ThroughputHistory, insertByTime } from '../../../core/api/browser/view.js';
import { PortHistory } from '../../../core/api/browser/event-history.js';
import { TerminalStore } from './terminals.svelte.js';

export type Selection =
  | { type: 'port'; key: string }
  | { type: 'device'; name: string }
  | { type: 'chardev'; id: string }
  | null;

export type DialogName =
  | 'add-device'
  | 'add-port'
  | 'add-chardev'
  | 'repoint'
  | 'import'
  | 'export'
  | 'about'
  | 'open-capture'
  | 'save-capture'
  | 'attach'
  | null;

const MAX_EVENTS = 2000;

export class AppState {
  topology = $state.raw<TopologySnapshot | null>(null);
  events = $state.raw<ApiEvent[]>([]);
  engine = $state.raw<EngineState | null>(null);
  selection = $state.raw<Selection>(null);
  dialog = $state<DialogName>(null);
  /** Set when the dialog is about one port (re-point). */
  dialogPort = $state.raw<PortSnapshot | null>(null);
  /** Bumped each time samples were applied (the chart and the rates follow it). */
  sampleTick = $state(0);
  connection = $state<'connecting' | 'open' | 'closed'>('connecting');
  connectionError = $state<string | null>(null);
  /** Events and samples the bridge folded, since the start. */
  coalescedEvents = $state(0);
  batches = $state(0);
  toast = $state<{ text: string; error: boolean } | null>(null);
  face = $state<'electron' | 'web'>('web');
  /** The service's hello: version, reference versions, docs (the About dialog). */
  hello = $state.raw<ResultOf<'hello'> | null>(null);
  /**
   * The next capture's ring buffer and stop conditions (dumpcap's -b and -a
   * words, checked by capture-settings.ts): every Start capture sends them.
   */
  captureSettings = $state.raw<{ ring: string[]; autostop: string[] }>({ ring: [], autostop: [] });

  readonly history = new ThroughputHistory(300);
  /** Each port's state changes, kept apart from the bounded list (event-history.ts). */
  readonly portEvents = new PortHistory();
  /** Terminal sessions and the HMP console (terminals.svelte.ts). */
  readonly terminals = new TerminalStore(this);
  private pending: Batch[] = [];
  private frameRequested = false;
  private toastTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(readonly client: ApiClient) {
    client.onBatch(
      (batch) => {
        this.pending.push(batch);
        this.requestFrame();
      },
      (why) => this.say(why, true),
    );
    client.onClose((reason) => {
      this.connection = 'closed';
      this.connectionError = reason;
    });
  }

  private requestFrame(): void {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      const batches = this.pending;
      this.pending = [];
      for (const b of batches) this.apply(b);
      const last = batches[batches.length - 1];
      if (last !== undefined) this.client.ack(last.seq);
    });
  }

  private apply(b: Batch): void {
    this.connection = 'open';
    this.batches++;
    if (b.topology !== null) {
      // Attaching to a real QEMU (or detaching): the same port keys, other ports; start afresh.
      if ((b.topology.attached?.qmp ?? null) !== (this.topology?.attached?.qmp ?? null))
        this.history.retain([]);
      this.topology = b.topology;
      this.history.retain(b.topology.ports.map((p) => p.key));
      this.checkSelection(b.topology);
    }
    this.engine = b.engine;
    if (b.terminals !== undefined) this.terminals.apply(b.terminals);
    if (b.events.length > 0) {
      this.portEvents.add(b.events);
      this.events = insertByTime(this.events, b.events, MAX_EVENTS);
    }
    if (b.coalesced.events > 0) this.coalescedEvents += b.coalesced.events;
    if (b.samples.length > 0) {
      for (const s of b.samples) this.history.add(s);
      this.sampleTick++;
    }
  }

  private checkSelection(t: TopologySnapshot): void {
    const s = this.selection;
    if (s === null) {
      const first = t.ports[0];
      if (first !== undefined) this.selection = { type: 'port', key: first.key };
      return;
    }
    const still =
      (s.type === 'port' && t.ports.some((p) => p.key === s.key)) ||
      (s.type === 'device' && t.devices.some((d) => d.name === s.name)) ||
      (s.type === 'chardev' && t.chardevs.some((c) => c.id === s.id));
    if (!still) this.selection = null;
  }

  // --------------------------------------------------------------- lookups

  get ports(): PortSnapshot[] {
    return this.topology?.ports ?? [];
  }

  get devices(): DeviceSnapshot[] {
    return this.topology?.devices ?? [];
  }

  get chardevs(): ChardevSnapshot[] {
    return this.topology?.chardevs ?? [];
  }

  port(key: string): PortSnapshot | undefined {
    return this.ports.find((p) => p.key === key);
  }

  // -------------------------------------------------------------- commands

  /** Run a command; a refusal is shown as a toast unless `quiet` (dialogs show their own). */
  async run<C extends CommandName>(
    command: CommandInputOf<C>,
    options: { quiet?: boolean; done?: string } = {},
  ): Promise<Result<ResultOf<C>>> {
    const r = await this.client.call(command);
    if (!r.ok && !options.quiet) this.say(r.error.message, true);
    if (r.ok && options.done !== undefined) this.say(options.done, false);
    return r;
  }

  say(text: string, error: boolean): void {
    this.toast = { text, error };
    if (this.toastTimer !== null) clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => (this.toast = null), error ? 8000 : 4000);
  }

  open(dialog: DialogName, port: PortSnapshot | null = null): void {
    this.dialogPort = port;
    this.dialog = dialog;
  }
}
