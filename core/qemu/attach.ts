/**
 * A real QEMU, attached over QMP: the "attached" kind of machine beside the
 * emulated lab (docs/ARCHITECTURE.md, core/qemu).
 *
 * An AttachedMachine keeps a topology (devices, ports, chardevs: plain data,
 * attach-model.ts), follows the changes, and hot-plugs ports and chardevs.
 *
 * Following changes. QEMU tells a guest open/close of a port with
 * VSERPORT_CHANGE, but:
 *   - only for ports with an id (the event names the port by qdev id);
 *   - at most one per second per port: QEMU's event rate limiter sends the
 *     first at once and holds later ones until the second is over, keeping
 *     only the newest, so a quick open/close/open/close may show as one open
 *     and, a second later, one close (samples, scenario2.log B);
 *   - never for the host side: a client connecting to a socket chardev is
 *     only visible in query-chardev's filename (the `disconnected:` prefix).
 * So besides the events, query-chardev is polled (default once a second):
 * frontend-open is the guest side, the filename the host side. Each change
 * is reported once, marked with how it was learned: source 'event' (a QMP
 * event), 'poll' (query-chardev), or 'command' (vmchan's own hot-plug). A
 * QMP event that arrives after polling already showed its state is still
 * reported (people watching want to see QEMU's events), with `late: true`.
 * A change of the chardev list (a chardev added or removed, by us or by
 * another monitor) re-reads the topology; DEVICE_DELETED removes the port.
 *
 * QEMU serves one client per QMP socket: the machine owns its QmpClient.
 */
import { attachError, isAttachFailure, type AttachFailure } from './attach-error.js';
import {
  clonePlain,
  portLabelOf,
  type AttachedChardev,
  type AttachedDevice,
  type AttachedPort,
  type AttachedTopology,
  type AttachEvent,
  type AttachEventKind,
  type AttachEventSource,
  type PortKind,
} from './attach-model.js';
import { applyChardevState, chardevsOf, discoverTopology } from './discover.js';
import { QmpClient, type QmpClientOptions } from './qmp-client.js';
import { isQmpError, type QmpError } from './qmp-error.js';
import {
  type ChardevBackend,
  type ChardevInfo,
  type ChardevReturn,
  type QmpEvent,
  type QmpEventMap,
} from './qmp-types.js';
import { VringPoller, type VringPollOptions } from './vring.js';

export interface AttachOptions {
  /** query-chardev polling period (default 1000 ms; 0: no polling). */
  pollIntervalMs?: number;
  /** Options of the QMP connection (connect() only). */
  qmp?: QmpClientOptions;
  /** Events kept for late subscribers (default 200). */
  historySize?: number;
}

/** A port to hot-plug. */
export interface AddPortSpec {
  /** The virtio-serial device (its name, id or bus); may be left out when there is one. */
  device?: string;
  kind?: PortKind;
  /** qdev id; default `vmchan-pN`. An id makes VSERPORT_CHANGE and device_del work. */
  id?: string;
  /** The name the guest sees in /dev/virtio-ports/. */
  name?: string;
  /** Port number; QEMU picks the lowest free one otherwise. */
  nr?: number;
  /** An existing chardev, or one to create first (removed again if device_add fails). */
  chardev?: string | { id?: string; backend: ChardevBackend };
}

export interface RemovePortOptions {
  /** Also remove the port's chardev once the port is gone (default false). */
  removeChardev?: boolean;
  /** Time allowed for the guest to release the port (default 15 s). */
  timeoutMs?: number;
}

export type AttachEventListener = (event: AttachEvent) => void;

const VSERPORT_NOTE = 'QEMU sends VSERPORT_CHANGE at most once a second per port';

let nextGeneratedId = 1;

export class AttachedMachine {
  private topo: AttachedTopology;
  private readonly listeners = new Set<AttachEventListener>();
  private readonly history: AttachEvent[] = [];
  private seq = 0;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private rediscovering: Promise<AttachedTopology | QmpError> | undefined;
  private closed = false;
  private readonly offs: (() => void)[] = [];
  private readonly pollers = new Set<VringPoller>();
  /** connect() made the client, so close() closes it. */
  private ownClient = false;
  /** Hot-plug commands of ours under way (polling leaves the topology to them). */
  private busy = 0;

  private constructor(
    readonly qmp: QmpClient,
    topology: AttachedTopology,
    private readonly options: AttachOptions,
  ) {
    this.topo = topology;
    this.offs.push(
      qmp.on('VSERPORT_CHANGE', (e) => this.onVserportChange(e)),
      qmp.on('DEVICE_DELETED', (e) => this.onDeviceDeleted(e)),
      qmp.onStateChange((state, reason) => {
        if (state === 'ready') {
          this.emit({
            kind: 'note',
            source: 'command',
            text: `QMP connection to ${qmp.addressText} is back`,
          });
          void this.refresh();
          return;
        }
        this.emit({
          kind: 'error',
          source: 'command',
          text: reason ? reason.message : `QMP connection to ${qmp.addressText} ${state}`,
        });
        if (state === 'closed') this.stopPolling();
      }),
    );
    this.schedulePoll();
  }

  /** Connect to a QMP socket (path or HOST:PORT) and read the topology. */
  static async connect(
    address: string,
    options: AttachOptions = {},
  ): Promise<AttachedMachine | QmpError> {
    const qmp = await QmpClient.connect(address, options.qmp);
    if (isQmpError(qmp)) return qmp;
    const machine = await AttachedMachine.over(qmp, options);
    if (isQmpError(machine)) {
      await qmp.close();
      return machine;
    }
    machine.ownClient = true;
    return machine;
  }

  /** Attach over a client that is already connected (the machine does not close it). */
  static async over(
    qmp: QmpClient,
    options: AttachOptions = {},
  ): Promise<AttachedMachine | QmpError> {
    const topo = await discoverTopology(qmp);
    if (isQmpError(topo)) return topo;
    return new AttachedMachine(qmp, topo, options);
  }

  // ---- reading ---------------------------------------------------------------------------

  /** The last known topology (a copy: plain data, JSON-safe). */
  topology(): AttachedTopology {
    return clonePlain(this.topo);
  }

  get devices(): readonly AttachedDevice[] {
    return this.topo.devices;
  }

  get ports(): readonly AttachedPort[] {
    return this.topo.ports;
  }

  get chardevs(): readonly AttachedChardev[] {
    return this.topo.chardevs;
  }

  /** A port by key (`vser0:1`), id, name, label or chardev. */
  port(ref: string): AttachedPort | undefined {
    const ps = this.topo.ports;
    return (
      ps.find((p) => p.key === ref) ??
      ps.find((p) => p.id === ref) ??
      ps.find((p) => p.name === ref) ??
      ps.find((p) => p.label === ref) ??
      ps.find((p) => p.chardev === ref)
    );
  }

  chardev(id: string): AttachedChardev | undefined {
    return this.topo.chardevs.find((c) => c.id === id);
  }

  /** A device by name, id or bus; with no argument, the only one (or an error). */
  device(ref?: string): AttachedDevice | AttachFailure {
    const ds = this.topo.devices;
    if (ref === undefined) {
      if (ds.length === 1) return ds[0]!;
      return attachError(
        ds.length === 0 ? 'NotFound' : 'InvalidArgument',
        ds.length === 0
          ? `QEMU at ${this.qmp.addressText} has no virtio-serial device`
          : `QEMU has ${ds.length} virtio-serial devices (${ds.map((d) => d.name).join(', ')}): say which`,
      );
    }
    const d = ds.find((x) => x.name === ref || x.id === ref || x.bus === ref);
    return (
      d ??
      attachError(
        'NotFound',
        `no virtio-serial device '${ref}' (have: ${ds.map((x) => x.name).join(', ') || 'none'})`,
      )
    );
  }

  /** Re-read the whole topology now; reports ports that came or went (source 'poll'). */
  refresh(): Promise<AttachedTopology | QmpError> {
    return this.rediscover('poll');
  }

  /** Read the topology afresh (after any read under way: it may predate a change). */
  private async rediscover(source: AttachEventSource): Promise<AttachedTopology | QmpError> {
    while (this.rediscovering) await this.rediscovering;
    const run = (async (): Promise<AttachedTopology | QmpError> => {
      const next = await discoverTopology(this.qmp);
      if (isQmpError(next)) return next;
      if (!this.closed) this.adopt(next, source);
      return clonePlain(this.topo);
    })();
    this.rediscovering = run;
    try {
      return await run;
    } finally {
      if (this.rediscovering === run) this.rediscovering = undefined;
    }
  }

  // ---- events ----------------------------------------------------------------------------

  /** Subscribe to changes; returns the unsubscribe call. */
  onEvent(listener: AttachEventListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** The last events (up to historySize), oldest first. */
  recentEvents(): AttachEvent[] {
    return clonePlain(this.history);
  }

  // ---- vring -----------------------------------------------------------------------------

  /** A vring poller for one device (started by the caller; stopped at close()). */
  vring(device?: string, options: VringPollOptions = {}): VringPoller | AttachFailure {
    const d = this.device(device);
    if (isAttachFailure(d)) return d;
    const poller = new VringPoller(this.qmp, d, options);
    this.pollers.add(poller);
    return poller;
  }

  // ---- hot-plug --------------------------------------------------------------------------

  /** chardev-add; pty backends return the slave path in `pty`. */
  addChardev(id: string, backend: ChardevBackend): Promise<ChardevReturn | AttachFailure> {
    return this.exclusive(() => this.addChardevNow(id, backend));
  }

  private async addChardevNow(
    id: string,
    backend: ChardevBackend,
  ): Promise<ChardevReturn | AttachFailure> {
    const r = await this.qmp.chardevAdd(id, backend);
    if (isQmpError(r)) return r;
    this.emit({
      kind: 'note',
      source: 'command',
      chardev: id,
      text: `chardev ${id} added (${backend.type})${r.pty ? `: ${r.pty}` : ''}`,
    });
    await this.rediscover('command');
    return r;
  }

  removeChardev(id: string): Promise<undefined | AttachFailure> {
    return this.exclusive(() => this.removeChardevNow(id));
  }

  private async removeChardevNow(id: string): Promise<undefined | AttachFailure> {
    const r = await this.qmp.chardevRemove(id);
    if (isQmpError(r)) return r;
    this.emit({ kind: 'note', source: 'command', chardev: id, text: `chardev ${id} removed` });
    await this.rediscover('command');
    return undefined;
  }

  /**
   * Hot-plug a port (chardev-add when given a backend, then device_add) and
   * return it as the topology now shows it.
   */
  addPort(spec: AddPortSpec = {}): Promise<AttachedPort | AttachFailure> {
    return this.exclusive(() => this.addPortNow(spec));
  }

  private async addPortNow(spec: AddPortSpec): Promise<AttachedPort | AttachFailure> {
    const device = this.device(spec.device);
    if (isAttachFailure(device)) return device;
    const id = spec.id ?? `vmchan-p${nextGeneratedId++}`;
    let chardev: string | undefined;
    let created = false;
    if (typeof spec.chardev === 'string') chardev = spec.chardev;
    else if (spec.chardev) {
      chardev = spec.chardev.id ?? `${id}-chr`;
      const r = await this.qmp.chardevAdd(chardev, spec.chardev.backend);
      if (isQmpError(r)) return r;
      created = true;
    }
    const added = await this.qmp.deviceAdd({
      driver: spec.kind ?? 'virtserialport',
      bus: device.bus,
      id,
      chardev,
      name: spec.name,
      nr: spec.nr,
    });
    if (isQmpError(added)) {
      if (created && chardev) await this.qmp.chardevRemove(chardev);
      return added;
    }
    const topo = await this.rediscover('command');
    if (isQmpError(topo)) return topo;
    const port = topo.ports.find((p) => p.id === id);
    if (!port) return attachError('NotFound', `port ${id} was added but QEMU does not list it`);
    return port;
  }

  /**
   * device_del, then wait for DEVICE_DELETED (the guest has to let go of
   * the port: a guest that never answers keeps it, and this times out).
   */
  removePort(ref: string, options: RemovePortOptions = {}): Promise<undefined | AttachFailure> {
    return this.exclusive(() => this.removePortNow(ref, options));
  }

  private async removePortNow(
    ref: string,
    options: RemovePortOptions,
  ): Promise<undefined | AttachFailure> {
    const port = this.port(ref);
    if (!port)
      return attachError(
        'NotFound',
        `no port '${ref}' (have: ${this.topo.ports.map((p) => p.label).join(', ') || 'none'})`,
      );
    const target = port.id ?? port.path;
    // Listen before asking: the event must not slip between reply and subscription.
    const timeoutMs = options.timeoutMs ?? 15_000;
    let off: () => void = () => {};
    let timer: NodeJS.Timeout | undefined;
    const deleted = new Promise<true | AttachFailure>((resolve) => {
      off = this.qmp.on('DEVICE_DELETED', (e) => {
        if (e.data.path === port.path || (port.id !== null && e.data.device === port.id))
          resolve(true);
      });
      timer = setTimeout(
        () =>
          resolve(
            attachError(
              'Timeout',
              `device_del ${target}: no DEVICE_DELETED within ${timeoutMs} ms (the guest has not released the port)`,
            ),
          ),
        timeoutMs,
      );
    });
    const r = await this.qmp.deviceDel(target);
    // A QMP proxy that may not forward events (libvirt.ts) must not hide a removal:
    // the device's QOM path going away says the same as DEVICE_DELETED.
    let watching = !isQmpError(r);
    const gone = (async (): Promise<true | AttachFailure> => {
      while (watching) {
        await new Promise((res) => setTimeout(res, 1000).unref());
        if (!watching) break;
        const q = await this.qmp.qomList(port.path);
        if (isQmpError(q) && q.kind === 'CommandFailed' && q.errorClass === 'DeviceNotFound')
          return true;
      }
      return attachError('Closed', 'no longer watched');
    })();
    const e = isQmpError(r) ? r : await Promise.race([deleted, gone]);
    watching = false;
    off();
    clearTimeout(timer);
    if (e !== true) return e;
    if (options.removeChardev && port.chardev) {
      const c = await this.qmp.chardevRemove(port.chardev);
      if (isQmpError(c)) return c;
      this.emit({
        kind: 'note',
        source: 'command',
        chardev: port.chardev,
        text: `chardev ${port.chardev} removed`,
      });
      await this.rediscover('command');
    }
    return undefined;
  }

  private async exclusive<T>(work: () => Promise<T>): Promise<T> {
    this.busy++;
    try {
      await this.polling;
      return await work();
    } finally {
      this.busy--;
    }
  }

  // ---- closing ---------------------------------------------------------------------------

  /** Stop polling and, when the machine opened the connection, close it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopPolling();
    for (const p of this.pollers) p.stop();
    this.pollers.clear();
    for (const off of this.offs) off();
    await this.polling;
    if (this.ownClient) await this.qmp.close();
  }

  // ---- internals -------------------------------------------------------------------------

  private schedulePoll(): void {
    const every = this.options.pollIntervalMs ?? 1_000;
    if (every <= 0 || this.closed) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      void this.pollNow().then(() => this.schedulePoll());
    }, every);
    this.pollTimer.unref?.();
  }

  private stopPolling(): void {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
  }

  /** One query-chardev now (or the one under way). */
  pollNow(): Promise<void> {
    this.polling ??= (async () => {
      // A hot-plug of ours is under way: it reports its own changes.
      if (this.closed || this.qmp.state !== 'ready' || this.busy > 0) return;
      const list = await this.qmp.queryChardev({ timeoutMs: 5_000 });
      if (isQmpError(list) || this.closed) return;
      const known = new Set(this.topo.chardevs.map((c) => c.id));
      const now = new Set(list.map((c) => c.label));
      const changed = known.size !== now.size || [...now].some((l) => !known.has(l));
      if (changed) {
        // A chardev came or went: ports may have too.
        if (!this.closed) await this.rediscover('poll');
        return;
      }
      this.applyChardevs(list, 'poll');
    })().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  /** Take a freshly read topology: report ports added and removed, and state changes. */
  private adopt(next: AttachedTopology, source: AttachEventSource): void {
    const before = new Map(this.topo.ports.map((p) => [p.path, p]));
    const after = new Map(next.ports.map((p) => [p.path, p]));
    for (const [path, p] of before) {
      if (!after.has(path))
        this.emit({
          kind: 'port-removed',
          source,
          ...about(p),
          text: `${describe(p)}: port removed`,
        });
    }
    const oldState = new Map(
      this.topo.ports.map((p) => [p.path, { g: p.guestOpen, h: p.hostConnected }]),
    );
    this.topo = next;
    for (const [path, p] of after) {
      if (!before.has(path)) {
        this.emit({
          kind: 'port-added',
          source,
          ...about(p),
          text: `${describe(p)}: ${p.kind} added as ${p.device} port ${p.nr}${p.chardev ? `, chardev ${p.chardev}` : ''}`,
        });
        continue;
      }
      const old = oldState.get(path)!;
      this.reportStateChange(p, old.g, old.h, source);
    }
  }

  private applyChardevs(list: readonly ChardevInfo[], source: AttachEventSource): void {
    const old = new Map(
      this.topo.ports.map((p) => [p.path, { g: p.guestOpen, h: p.hostConnected }]),
    );
    applyChardevState(this.topo.ports, list);
    this.topo.chardevs = chardevsOf(list, this.topo.ports);
    this.topo.time = Date.now();
    for (const p of this.topo.ports) {
      const o = old.get(p.path);
      if (o) this.reportStateChange(p, o.g, o.h, source);
    }
  }

  private reportStateChange(
    p: AttachedPort,
    guestBefore: boolean | null,
    hostBefore: boolean | null,
    source: AttachEventSource,
  ): void {
    const how = source === 'poll' ? ' (seen by polling query-chardev)' : '';
    if (p.guestOpen !== null && guestBefore !== null && p.guestOpen !== guestBefore) {
      this.emit({
        kind: p.guestOpen ? 'guest-open' : 'guest-close',
        source,
        ...about(p),
        text: `${describe(p)}: guest ${p.guestOpen ? 'opened' : 'closed'} the port${how}`,
      });
    }
    if (p.hostConnected !== null && hostBefore !== null && p.hostConnected !== hostBefore) {
      this.emit({
        kind: p.hostConnected ? 'host-open' : 'host-close',
        source,
        ...about(p),
        text: `${describe(p)}: host ${p.hostConnected ? 'connected to' : 'disconnected from'} chardev ${p.chardev}${how}`,
      });
    }
  }

  private onVserportChange(e: QmpEvent<QmpEventMap['VSERPORT_CHANGE']>): void {
    if (this.closed) return;
    const port = this.topo.ports.find((p) => p.id === e.data.id);
    const kind: AttachEventKind = e.data.open ? 'guest-open' : 'guest-close';
    if (!port) {
      // A port we have not read yet (plugged by another monitor): read it, then report.
      void this.refresh().then(() => {
        const p = this.topo.ports.find((x) => x.id === e.data.id);
        this.emit({
          kind,
          source: 'event',
          time: e.time,
          qmpEvent: 'VSERPORT_CHANGE',
          ...(p ? about(p) : { id: e.data.id }),
          text: `${p ? describe(p) : e.data.id}: guest ${e.data.open ? 'opened' : 'closed'} the port [VSERPORT_CHANGE]`,
        });
      });
      return;
    }
    const late = port.guestOpen === e.data.open;
    port.guestOpen = e.data.open;
    const chardev = this.topo.chardevs.find((c) => c.id === port.chardev);
    if (chardev) chardev.frontendOpen = e.data.open;
    this.emit({
      kind,
      source: 'event',
      time: e.time,
      qmpEvent: 'VSERPORT_CHANGE',
      late,
      ...about(port),
      text:
        `${describe(port)}: guest ${e.data.open ? 'opened' : 'closed'} the port [VSERPORT_CHANGE]` +
        (late ? ` (late: polling showed it first; ${VSERPORT_NOTE})` : ''),
    });
  }

  private onDeviceDeleted(e: QmpEvent<QmpEventMap['DEVICE_DELETED']>): void {
    if (this.closed) return;
    const port = this.topo.ports.find((p) => p.path === e.data.path);
    this.emit({
      kind: 'device-deleted',
      source: 'event',
      time: e.time,
      qmpEvent: 'DEVICE_DELETED',
      ...(port ? about(port) : { id: e.data.device ?? null }),
      text: `${port ? describe(port) : (e.data.device ?? e.data.path)}: device deleted [DEVICE_DELETED] (${e.data.path})`,
    });
    if (port) {
      this.topo.ports = this.topo.ports.filter((p) => p !== port);
      for (const c of this.topo.chardevs) if (c.id === port.chardev) c.usedBy = null;
      this.emit({
        kind: 'port-removed',
        source: 'event',
        time: e.time,
        qmpEvent: 'DEVICE_DELETED',
        ...about(port),
        text: `${describe(port)}: port removed`,
      });
    } else if (
      this.topo.devices.some((d) => e.data.path === d.path || d.path.startsWith(`${e.data.path}/`))
    ) {
      // The virtio-serial device itself went away.
      void this.refresh();
    }
  }

  private emit(
    e: Partial<AttachEvent> & { kind: AttachEventKind; source: AttachEventSource; text: string },
  ): void {
    const event: AttachEvent = {
      seq: ++this.seq,
      time: e.time ?? Date.now(),
      kind: e.kind,
      source: e.source,
      device: e.device ?? null,
      nr: e.nr ?? null,
      port: e.port ?? null,
      id: e.id ?? null,
      chardev: e.chardev ?? null,
      qmpEvent: e.qmpEvent ?? null,
      late: e.late ?? false,
      text: e.text,
    };
    this.history.push(event);
    const max = this.options.historySize ?? 200;
    if (this.history.length > max) this.history.splice(0, this.history.length - max);
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch {
        // A listener's bug must not stop the machine.
      }
    }
  }
}

function about(p: AttachedPort): Pick<AttachEvent, 'device' | 'nr' | 'port' | 'id' | 'chardev'> {
  return { device: p.device, nr: p.nr, port: p.label, id: p.id, chardev: p.chardev };
}

/** `org.test.port.1 (port1)`, `port1`, `vser0 port 3`. */
function describe(p: AttachedPort): string {
  const label = portLabelOf(p);
  if (p.id !== null && label !== p.id) return `${label} (${p.id})`;
  return p.name === null && p.id === null ? `${p.device} port ${p.nr}` : label;
}
