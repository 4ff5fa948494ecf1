/**
 * ApiService: the commands of the contract (contract.ts) on top of the
 * engine, for every face. The Electron IPC handlers and the WebSocket
 * server are thin adapters: they hand it whatever arrived, it checks the
 * command against the schema, runs it, and checks its own answer before
 * returning it. Nothing here throws at a face: an engine bug comes back as
 * `{ok: false, error: {kind: 'Internal', message}}` in one line.
 *
 * Screens attach with `attachScreen(send)`: each gets its own BatchBridge
 * (one batch out at a time, the next after its ack) fed with the lab's
 * events, throughput samples every `sampleMs`, and topology changes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Emitter } from '../engine/emitter.js';
import type { EngineEvents } from '../engine/events.js';
import type { Lab } from '../engine/lab.js';
import { CaptureError } from '../capture/error.js';
import { portColumn, recordSummary } from '../capture/format.js';
import { topologyFromLibvirtXml, topologyToLibvirtXml } from '../machine/libvirt-xml.js';
import { parseQemuCommandLine } from '../machine/qemu-cmdline.js';
import { printQemuArgs } from '../machine/qemu-print.js';
import { emptyTopology, type Topology } from '../machine/topology.js';
import { queueRole } from '../serial/layout.js';
import { DOCS, REFERENCE, VERSION } from '../version.js';
import { adaptImport } from './import-adapt.js';
import { packageRoot } from '../package-root.js';
import { BatchBridge } from './batcher.js';
import { chardevFromSpec } from './chardev-hosts.js';
import {
  checkAnswer,
  fail,
  ok,
  parseCommand,
  type ApiEvent,
  type ApiErrorKind,
  type Batch,
  type CaptureRow,
  type CaptureState,
  type Command,
  type CommandName,
  type EventKind,
  type LabName,
  type PortRef,
  type PortSample,
  type Result,
  type ResultOf,
  type TopologySnapshot,
} from './contract.js';
import { demoTopology } from './demo.js';
import { AttachSession, failure, LAB_ONLY, type AttachSessionOptions } from './attach-session.js';
import { LabSession, makeRuntimeDir, portLabel, type SessionNote } from './lab-session.js';
import { CaptureRecorder, dropDirection } from './recorder.js';
import { TerminalService } from './terminal-service.js';
import { CaptureView, viewAnswer } from './capture-view.js';
import { VringService } from './vring-service.js';

export interface ApiServiceOptions {
  face: 'electron' | 'web';
  /** Can the face show native file dialogs (Electron)? */
  dialogs?: boolean;
  /** The lab a first start opens (default: the demo, alive). */
  lab?: LabName;
  /** Attach mode tuning (tests): polling periods, greeting and unplug timeouts. */
  attach?: AttachSessionOptions;
  /** Directory under which the runtime directory is made (default $XDG_RUNTIME_DIR or the temp dir). */
  runtimeBase?: string;
  /** Throughput sample period (ms). */
  sampleMs?: number;
  maxEvents?: number;
  maxSamples?: number;
}

export interface Screen {
  /** The screen applied batch `seq`; false for an ack that does not match the batch out. */
  ack(seq: number): boolean;
  close(): void;
  readonly bridge: BatchBridge;
}

type Answer = Result<unknown>;

const CAPTURE_ROWS = 2000;
/** Events a screen that attaches gets from before it came. */
const RECENT_EVENTS = 200;

export class ApiService {
  private current!: LabSession;
  /** The vring view, step mode and injected faults (vring-service.ts). */
  private readonly vrings = new VringService();
  private readonly screens = new Set<BatchBridge>();
  /** Terminal sessions and HMP consoles, their output in each screen's batches (terminal-service.ts). */
  private readonly terminals = new TerminalService({
    session: () => this.current,
    changed: () => this.topologyChanged(),
  });
  private unsubscribe: (() => void)[] = [];
  private eventSeq = 0;
  private recent: ApiEvent[] = [];
  private sampler: NodeJS.Timeout | null = null;
  private lastSample = new Map<string, { toGuest: number; toHost: number }>();
  private lastSampleTime = Date.now();
  private recorder: CaptureRecorder | null = null;
  /** The capture open in the capture view (capture-view.ts). */
  private captureView: CaptureView | null = null;
  private lastCapture: string | null = null;
  /** The capture switches: the global one and ports' own (`device\0nr`), kept across captures of a lab. */
  private captureAll = true;
  private readonly portCapture = new Map<string, { device: string; nr: number; on: boolean }>();
  private labCount = 0;
  private closed = false;
  /** A real QEMU served in the lab's place (attach-session.ts); the lab waits, paused. */
  private attached: AttachSession | null = null;
  private attachCount = 0;
  private importCount = 0;
  private parkedMode: 'free-run' | 'step' = 'free-run';
  /** Commands run one at a time, in arrival order (a lab switch is not interleaved with a hot-plug). */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly options: ApiServiceOptions,
    readonly runtimeDir: string,
  ) {}

  /** Make the service and its first lab (the demo unless told otherwise). */
  static async create(options: ApiServiceOptions): Promise<ApiService> {
    const service = new ApiService(options, makeRuntimeDir(options.runtimeBase));
    const lab = options.lab ?? 'demo';
    const switched = await service.switchLab(lab, lab === 'demo' ? null : emptyTopology());
    if ('error' in switched) {
      fs.rmSync(service.runtimeDir, { recursive: true, force: true });
      throw new Error(`cannot start the ${lab} lab: ${switched.error}`);
    }
    return service;
  }

  /** The lab running now (tests and benches reach the engine through it). */
  get session(): LabSession {
    return this.current;
  }

  // ------------------------------------------------------------ commands

  /** Run one command (anything that arrived); the answer is checked against the contract. */
  execute(input: unknown): Promise<Answer> {
    const parsed = parseCommand(input);
    if (!parsed.ok) return Promise.resolve(parsed);
    const command = parsed.value;
    const run = this.queue.then(() => this.run(command));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async run(command: Command): Promise<Answer> {
    if (this.closed) return fail('Unsupported', 'the service is closed');
    let answer: Answer;
    try {
      answer = await this.dispatch(command);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      answer = fail('Internal', `${command.cmd} failed: ${message}`);
    }
    return checkAnswer(command.cmd, answer);
  }

  private async dispatch(c: Command): Promise<Answer> {
    // Attach mode: a real QEMU answers what it can, the lab-only commands are refused.
    if (c.cmd === 'attach') return this.attachTo(c.address);
    if (c.cmd === 'detach') return this.detachFrom();
    if (this.attached !== null) {
      if (c.cmd === 'loadLab' || c.cmd === 'importConfig') await this.leaveAttached();
      else {
        const answer = await this.attached.run(c);
        if (answer !== null) return answer;
      }
    }
    const s = this.current;
    switch (c.cmd) {
      case 'hello':
        return ok<ResultOf<'hello'>>({
          app: 'vmchan',
          version: VERSION,
          face: this.options.face,
          dialogs: this.options.dialogs ?? false,
          reference: { ...REFERENCE },
          docs: { root: packageRoot(), files: [...DOCS.files], help: DOCS.help },
        });
      case 'getTopology':
        return ok(this.snapshot());
      case 'loadLab': {
        const switched = await this.switchLab(c.lab, c.lab === 'demo' ? null : emptyTopology());
        return 'error' in switched ? fail('Refused', switched.error) : ok(this.snapshot());
      }
      case 'createDevice': {
        const d = s.createDevice(c.device);
        this.vrings.watchDevices(); // its negotiation is recorded from the guest's probe on
        return typeof d === 'string'
          ? fail('Refused', d)
          : this.changed(ok({ name: d.name, bus: d.bus }));
      }
      case 'removeDevice': {
        const err = s.removeDevice(c.device);
        return err === null ? this.changed(ok({})) : fail(notFound(err), err);
      }
      case 'createChardev': {
        const host = await s.createChardev(chardevFromSpec(c.chardev, s.runtimeDir));
        if (typeof host === 'string') return fail('Refused', host);
        this.topologyChanged();
        return ok(s.chardevs().find((x) => x.id === c.chardev.id)!);
      }
      case 'removeChardev': {
        const err = await s.removeChardev(c.id);
        return err === null ? this.changed(ok({})) : fail(notFound(err), err);
      }
      case 'hotplugPort': {
        const spec = c.port;
        let chardev = spec.chardev;
        if (spec.newChardev !== undefined) {
          if (chardev !== undefined && chardev !== spec.newChardev.id) {
            return fail('InvalidRequest', 'give either chardev or newChardev, not both');
          }
          const host = await s.createChardev(chardevFromSpec(spec.newChardev, s.runtimeDir));
          if (typeof host === 'string') return fail('Refused', host);
          chardev = spec.newChardev.id;
        }
        const port = s.plugPort({ ...spec, ...(chardev !== undefined ? { chardev } : {}) });
        if (typeof port === 'string') {
          if (spec.newChardev !== undefined) await s.removeChardev(spec.newChardev.id);
          return fail('Refused', port);
        }
        const device = s.lab.registry.devices.find((d) => d.port(port.nr) === port)!;
        return this.changed(ok(s.portSnapshot(device, port)));
      }
      case 'unplugPort': {
        const err = s.unplugPort(c.port);
        return err === null ? this.changed(ok({})) : fail(notFound(err), err);
      }
      case 'connectHost': {
        let chardev = c.chardev;
        if (c.newChardev !== undefined) {
          const host = await s.createChardev(chardevFromSpec(c.newChardev, s.runtimeDir));
          if (typeof host === 'string') return fail('Refused', host);
          chardev = c.newChardev.id;
        }
        if (chardev === undefined)
          return fail('InvalidRequest', 'connectHost needs chardev or newChardev');
        const port = s.replug(c.port, chardev);
        if (typeof port === 'string') {
          if (c.newChardev !== undefined) await s.removeChardev(c.newChardev.id);
          return fail('Refused', port);
        }
        return this.changed(ok(s.portSnapshot(s.device(c.port.device)!, port)));
      }
      case 'disconnectHost': {
        const err = s.disconnectHost(c.port);
        if (err !== null) return fail(notFound(err), err);
        const found = s.port(c.port);
        if (typeof found === 'string') return fail('NotFound', found);
        return this.changed(ok(s.portSnapshot(found.device, found.port)));
      }
      case 'startCapture':
        return this.startCapture(c.path);
      case 'stopCapture':
        return this.stopCapture();
      case 'saveCapture':
        if (
          c.source === 'view' ||
          (c.source === undefined && (c.filter !== undefined || c.records !== undefined))
        )
          return await this.saveView(c.path, c.filter, c.records);
        return this.saveCapture(c.path);
      case 'setPortCapture':
        return this.setPortCapture(c.port, c.on);
      case 'setCaptureAll':
        if (this.attached !== null) return fail('Unsupported', LAB_ONLY['startCapture']!);
        this.captureAll = c.on;
        this.recorder?.setAll(c.on);
        return this.changed(ok(this.captureState()));
      case 'openCapture':
        return this.openCapture(c.path);
      case 'getCaptureRows':
      case 'getCaptureRecord':
      case 'followCapture':
      case 'saveFollowRaw':
      case 'findInFollow':
        return viewAnswer(this.captureView, c);
      case 'captureIoGraph': {
        const view = this.captureView;
        if (view === null) return fail('Refused', 'no capture is open: open a .pcapng file first');
        view.refresh();
        const r = await view.ioGraph(c.interval, c.metric, c.filters);
        return 'kind' in r ? fail(r.kind, r.message) : ok(r);
      }
      case 'closeCapture':
        this.captureView?.close();
        this.captureView = null;
        return this.changed(ok({}));
      case 'pause':
        s.lab.scheduler.setMode('step');
        this.engineChanged();
        return ok(s.engineState());
      case 'run':
        s.lab.scheduler.setMode('free-run');
        this.engineChanged();
        return ok(s.engineState());
      case 'step': {
        const ran: string[] = [];
        const sch = s.lab.scheduler;
        if (sch.mode !== 'step') sch.setMode('step');
        for (let i = 0; i < (c.count ?? 1); i++) {
          const t = sch.step();
          if (t === null) break;
          ran.push(`#${t.seq} ${t.kind}: ${t.label}`);
        }
        this.engineChanged();
        this.topologyChanged();
        return ok({ ran: ran.slice(-200), engine: s.engineState() });
      }
      case 'importConfig':
        return this.importConfig(c.format, c.text);
      case 'exportConfig': {
        const t = s.exportTopology();
        if (c.format === 'qemu') return ok({ text: printQemuArgs(t).shell, notes: [] });
        const x = topologyToLibvirtXml(t);
        return ok({
          text: x.xml,
          notes: x.notes.map((n) => ({ kind: n.kind, message: n.message })),
        });
      }
      case 'getVring': {
        const device = s.device(c.device);
        if (device === undefined) return fail('NotFound', `Device '${c.device}' not found`);
        const snap = device.queueSnapshot(c.queue);
        if (snap === null)
          return fail('NotFound', `queue ${c.queue} of ${device.name} is not set up`);
        const role = queueRole(c.queue);
        return ok({
          device: device.name,
          queue: c.queue,
          role: 'port' in role ? `${role.role} port ${role.port}` : role.role.replace('-', ' '),
          format: snap.format,
          size: snap.size,
          snapshot: JSON.parse(JSON.stringify(snap)) as Record<string, unknown>,
        });
      }
      case 'writeHost': {
        const n = await s.writeHost(c.port, decode(c.data, c.base64));
        if (typeof n === 'string') return fail(notFound(n), n);
        return ok({ written: n });
      }
      case 'writeGuest': {
        const n = await s.writeGuest(c.port, decode(c.data, c.base64));
        if (typeof n === 'string') return fail(notFound(n), n);
        return ok({ written: n });
      }
      case 'getVringView':
        return this.vrings.view(c.device, c.queue, c.since);
      case 'vringStep': {
        const r = this.vrings.step(c.device, c.queue, c.count ?? 1);
        this.engineChanged();
        this.topologyChanged();
        return r.ok ? ok({ ...r.value, engine: s.engineState() }) : r;
      }
      case 'injectFault':
        return this.changed(this.vrings.inject(c.device, c.queue, c.fault));
      case 'setWorkload': {
        let name: string | undefined;
        if (c.port !== undefined) {
          const found = s.port(c.port);
          if (typeof found === 'string') return fail('NotFound', found);
          name = found.port.name ?? undefined;
          if (name === undefined) return fail('NotFound', `port ${c.port.nr} has no demo workload`);
        }
        const r = await s.setWorkload(name, c.on, c.speed ?? 'paced');
        return typeof r === 'string' ? fail('Refused', r) : this.changed(ok({ running: r }));
      }
      case 'openTerminal':
      case 'openMonitor':
      case 'terminalInput':
      case 'closeTerminal':
      case 'listTerminals':
        return this.terminals.execute(c);
    }
  }

  private changed(answer: Answer): Answer {
    this.topologyChanged();
    return answer;
  }

  // ------------------------------------------------------------- labs

  /** Replace the running lab (or make the first); the old one comes back if the new one is refused. */
  private async switchLab(
    name: string,
    config: Topology | null,
  ): Promise<{ error: string } | { notes: SessionNote[] }> {
    const n = ++this.labCount;
    const dir = path.join(this.runtimeDir, `${name}-${n}`);
    fs.mkdirSync(dir, { recursive: true });
    const old = this.labCount > 1 ? this.current : null;
    const oldConfig = old?.exportTopology();
    // The old lab stops first, so the new one can have its socket paths.
    this.stopRecorder();
    this.portCapture.clear();
    await this.terminals.endAll('the lab was replaced');
    for (const u of this.unsubscribe.splice(0)) u();
    await old?.dispose();
    if (old !== null) fs.rmSync(old.runtimeDir, { recursive: true, force: true });
    const options = (runtimeDir: string, demo: boolean) => ({
      runtimeDir,
      demo,
      onChange: () => this.topologyChanged(),
      onLab: (lab: Lab) => this.listen(lab),
      report: (line: string) => this.note(line),
    });
    const built = await LabSession.build(
      name,
      config ?? demoTopology(dir),
      options(dir, config === null),
    );
    if ('error' in built) {
      for (const u of this.unsubscribe.splice(0)) u();
      fs.rmSync(dir, { recursive: true, force: true });
      if (old !== null && oldConfig !== undefined) {
        fs.mkdirSync(old.runtimeDir, { recursive: true });
        const back = await LabSession.build(
          old.name,
          oldConfig,
          options(old.runtimeDir, old.workloads !== null),
        );
        if ('session' in back) this.adopt(back.session);
      }
      return { error: built.error };
    }
    this.adopt(built.session);
    this.note(`lab ${name} loaded; sockets in ${dir}`);
    for (const note of built.notes) this.note(`${note.kind}: ${note.message}`);
    return { notes: built.notes };
  }

  private adopt(session: LabSession): void {
    this.current = session;
    this.lastSample.clear();
    this.topologyChanged();
    this.engineChanged();
  }

  private async importConfig(format: 'qemu' | 'libvirt', text: string): Promise<Answer> {
    const parsed = format === 'qemu' ? parseQemuCommandLine(text) : topologyFromLibvirtXml(text);
    // each note names what it is about: the option (and its argument) or the XML element
    const notes = parsed.notes.map((n) => ({
      kind: n.kind,
      message:
        n.element !== undefined
          ? `${n.element}: ${n.message}`
          : n.option !== undefined
            ? `${n.option}${n.arg === undefined ? '' : ` ${n.arg}`}: ${n.message}`
            : n.message,
    }));
    if (!parsed.ok) return fail('ParseError', parsed.error.toString());
    if (parsed.value.devices.length === 0) {
      return fail(
        'ParseError',
        format === 'qemu'
          ? 'no virtio-serial device on this command line (-device virtio-serial-pci,...)'
          : 'no virtio-serial controller in this XML (<controller type="virtio-serial">)',
      );
    }
    const channels = path.join(this.runtimeDir, `channels-${++this.importCount}`);
    const adapted = adaptImport(parsed.value, channels);
    if (adapted.topology.chardevs.some((c) => c.backend.kind === 'socket'))
      fs.mkdirSync(channels, { recursive: true, mode: 0o700 });
    const switched = await this.switchLab('imported', adapted.topology);
    if ('error' in switched) return fail('Refused', switched.error);
    const more = switched.notes.map((n) => ({ kind: n.kind, message: n.message }));
    return ok({ topology: this.snapshot(), notes: [...notes, ...adapted.notes, ...more] });
  }

  // ------------------------------------------------------------ attach

  /** Attach to a real QEMU; the lab is paused and waits (a refused attach leaves it as it was). */
  private async attachTo(address: string): Promise<Answer> {
    if (this.attached !== null) await this.leaveAttached();
    const dir = path.join(this.runtimeDir, `attach-${++this.attachCount}`);
    const a = await AttachSession.connect(
      address,
      dir,
      { emit: (e) => this.emit(e), changed: () => this.topologyChanged() },
      this.options.attach,
    );
    if (!(a instanceof AttachSession)) return failure(a);
    this.stopRecorder();
    for (const u of this.unsubscribe.splice(0)) u();
    const sch = this.current.lab.scheduler;
    this.parkedMode = sch.mode === 'step' ? 'step' : 'free-run';
    sch.setMode('step');
    this.attached = a;
    this.lastSample.clear();
    const info = a.info();
    this.note(`attached to ${info.qemu} at ${address}; the ${this.current.name} lab waits`);
    for (const line of info.notes) this.note(line);
    this.topologyChanged();
    this.engineChanged();
    return ok(this.snapshot());
  }

  private async detachFrom(): Promise<Answer> {
    if (this.attached === null) return fail('Refused', 'not attached to a QEMU');
    await this.leaveAttached();
    return ok(this.snapshot());
  }

  /** Close the QMP connection (QEMU keeps running) and give the screens the lab back. */
  private async leaveAttached(): Promise<void> {
    const a = this.attached;
    if (a === null) return;
    this.attached = null;
    await a.close();
    this.current.lab.scheduler.setMode(this.parkedMode);
    this.listen(this.current.lab);
    this.note(`detached from ${a.address}; back to the ${this.current.name} lab`);
    this.adopt(this.current);
  }

  /** The attached QEMU, when one is served (tests). */
  get attachedSession(): AttachSession | null {
    return this.attached;
  }

  // ------------------------------------------------------------ capture

  private captureState(): CaptureState {
    return {
      on: this.recorder !== null,
      path: this.recorder?.path ?? null,
      records: this.recorder?.records ?? 0,
      last: this.lastCapture,
      view: this.captureView?.state(this.recorder?.path ?? null) ?? null,
      all: this.captureAll,
    };
  }

  private setPortCapture(ref: PortRef, on: boolean | null): Answer {
    if (this.attached !== null) return fail('Unsupported', LAB_ONLY['startCapture']!);
    const found = this.current.port(ref);
    if (typeof found === 'string') return fail('NotFound', found);
    const device = found.device.name;
    const nr = found.port.nr;
    const key = `${device}\u0000${nr}`;
    if (on === null) this.portCapture.delete(key);
    else this.portCapture.set(key, { device, nr, on });
    this.recorder?.setPort(device, nr, on ?? undefined);
    return this.changed(ok({ device, nr, capture: this.portCaptureOf(device, nr) }));
  }

  private portCaptureOf(device: string, nr: number): { own: boolean | null; on: boolean } {
    const own = this.portCapture.get(`${device}\u0000${nr}`)?.on ?? null;
    return { own, on: own ?? this.captureAll };
  }

  private startCapture(requested: string | undefined): Answer {
    if (this.recorder !== null)
      return fail('Refused', `already capturing to ${this.recorder.path}`);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const file =
      requested === undefined || requested === ''
        ? path.join(this.runtimeDir, `capture-${stamp}.pcapng`)
        : path.resolve(requested);
    const s = this.current;
    const r = CaptureRecorder.start(s.lab, file, (d, nr) => s.captureInterface(d, nr), {
      all: this.captureAll,
      ports: [...this.portCapture.values()],
    });
    if (r instanceof CaptureError) return fail('IoError', r.message);
    this.recorder = r;
    this.note(`capture started: ${file}`);
    this.topologyChanged();
    return ok(this.captureState());
  }

  private stopRecorder(): void {
    const r = this.recorder;
    if (r === null) return;
    this.recorder = null;
    const err = r.stop();
    this.lastCapture = r.path;
    this.note(
      err === null
        ? `capture stopped: ${r.records} records in ${r.path}`
        : `capture stopped with an error: ${err.message}`,
    );
  }

  private stopCapture(): Answer {
    if (this.recorder === null) return fail('Refused', 'no capture is running');
    this.stopRecorder();
    this.topologyChanged();
    return ok(this.captureState());
  }

  /** The capture file to download (web) or copy (saveCapture). */
  get captureFile(): string | null {
    return this.recorder?.path ?? this.lastCapture;
  }

  private saveCapture(to: string): Answer {
    const from = this.captureFile;
    if (from === null) return fail('Refused', 'nothing captured yet: press Capture first');
    try {
      fs.copyFileSync(from, to);
      return ok({ path: to, bytes: fs.statSync(to).size });
    } catch (error) {
      return fail('IoError', `cannot save the capture to ${to}: ${(error as Error).message}`);
    }
  }

  private async saveView(
    to: string,
    filter: string | undefined,
    records: readonly number[] | undefined,
  ): Promise<Answer> {
    const view = this.captureView;
    if (view === null) return fail('Refused', 'no capture is open: open a .pcapng file first');
    view.refresh();
    const r =
      records !== undefined
        ? view.saveRecords(path.resolve(to), records)
        : await view.save(path.resolve(to), filter);
    return 'kind' in r ? fail(r.kind, r.message) : ok(r);
  }

  private async openCapture(file: string): Promise<Answer> {
    // The view keeps the file open (the list asks for windows of it); the first rows come along.
    const view = await CaptureView.open(path.resolve(file));
    if ('kind' in view) return fail(view.kind, view.message);
    this.captureView?.close();
    this.captureView = view;
    this.topologyChanged();
    const reader = view.reader;
    {
      const rows: CaptureRow[] = [];
      const n = Math.min(reader.count, CAPTURE_ROWS);
      for (let i = 0; i < n; i++) {
        const rec = reader.record(i);
        if (rec instanceof CaptureError) return fail('IoError', rec.message);
        rows.push({
          time: Number(rec.time / 1_000_000n),
          kind: rec.kind,
          port: portColumn(rec),
          direction: rec.direction ?? null,
          length: rec.length,
          summary: recordSummary(rec),
        });
      }
      return ok({ path: file, records: reader.count, rows, truncated: reader.count > n });
    }
  }

  // ------------------------------------------------------------ screens

  snapshot(): TopologySnapshot {
    const a = this.attached;
    if (a !== null) {
      return {
        lab: `attached: ${a.address}`,
        runtimeDir: a.runtimeDir,
        engine: a.engineState(),
        capture: this.captureState(),
        devices: a.devices(),
        ports: a.ports(),
        chardevs: a.chardevs(),
        attached: a.info(),
      };
    }
    const s = this.current;
    return {
      lab: s.name,
      runtimeDir: s.runtimeDir,
      engine: s.engineState(),
      capture: this.captureState(),
      devices: s.devices(),
      ports: s.ports().map((p) => ({ ...p, capture: this.portCaptureOf(p.device, p.nr) })),
      chardevs: s.chardevs(),
    };
  }

  /** A screen: batches go to `send`, one at a time, each after the previous one's ack. */
  attachScreen(
    send: (batch: Batch) => void,
    options: { defer?: (run: () => void) => void } = {},
  ): Screen {
    // Terminal output rides in the same batches; new output asks the bridge for one.
    const outbox = this.terminals.addScreen(() => bridge.engineChanged());
    const bridge = new BatchBridge({
      source: {
        topology: () => this.snapshot(),
        engine: () => this.attached?.engineState() ?? this.current.engineState(),
      },
      send: (batch) => {
        const terminals = outbox.take();
        send(terminals === undefined ? batch : { ...batch, terminals });
      },
      maxEvents: this.options.maxEvents,
      maxSamples: this.options.maxSamples,
      ...(options.defer !== undefined ? { defer: options.defer } : {}),
    });
    for (const e of this.recent.slice(-RECENT_EVENTS)) bridge.pushEvent(e);
    this.screens.add(bridge);
    this.startSampler();
    return {
      bridge,
      ack: (seq) => bridge.ack(seq),
      close: () => {
        bridge.close();
        this.terminals.removeScreen(outbox);
        this.screens.delete(bridge);
        if (this.screens.size === 0) this.stopSampler();
      },
    };
  }

  private topologyChanged(): void {
    for (const b of this.screens) b.topologyChanged();
  }

  private engineChanged(): void {
    for (const b of this.screens) b.engineChanged();
  }

  private emit(event: Omit<ApiEvent, 'seq' | 'time'>): void {
    const e: ApiEvent = { seq: ++this.eventSeq, time: Date.now(), ...event };
    // The recent past, for screens that attach later (a reload, a second tab).
    this.recent.push(e);
    if (this.recent.length > RECENT_EVENTS * 2) this.recent = this.recent.slice(-RECENT_EVENTS);
    for (const b of this.screens) b.pushEvent(e);
  }

  private note(text: string): void {
    this.emit({
      kind: 'note',
      device: null,
      nr: null,
      port: null,
      direction: null,
      bytes: null,
      rule: null,
      text,
    });
  }

  private startSampler(): void {
    if (this.sampler !== null) return;
    this.lastSampleTime = Date.now();
    this.sampler = setInterval(() => this.sample(), this.options.sampleMs ?? 200);
    this.sampler.unref();
  }

  private stopSampler(): void {
    if (this.sampler !== null) clearInterval(this.sampler);
    this.sampler = null;
  }

  /** One throughput sample: bytes each way per port since the last one. */
  sample(): void {
    const now = Date.now();
    if (this.attached !== null) {
      // QMP counts no bytes: the chart moves on, empty.
      const sample = { t: now, dt: Math.max(1, now - this.lastSampleTime), ports: [] };
      this.lastSampleTime = now;
      for (const b of this.screens) b.pushSample(sample);
      return;
    }
    const dt = Math.max(1, now - this.lastSampleTime);
    this.lastSampleTime = now;
    const ports: PortSample[] = [];
    const seen = new Map<string, { toGuest: number; toHost: number }>();
    for (const d of this.current.lab.registry.devices) {
      for (const p of d.ports) {
        const key = `${d.name}:${p.nr}`;
        const totals = { toGuest: p.stats.toGuest, toHost: p.stats.toHost };
        const before = this.lastSample.get(key) ?? { toGuest: 0, toHost: 0 };
        seen.set(key, totals);
        ports.push({
          key,
          toGuest: Math.max(0, totals.toGuest - before.toGuest),
          toHost: Math.max(0, totals.toHost - before.toHost),
          totalToGuest: totals.toGuest,
          totalToHost: totals.toHost,
        });
      }
    }
    this.lastSample = seen;
    const sample = { t: now, dt, ports };
    for (const b of this.screens) b.pushSample(sample);
    // the capture view follows a file still growing (the live capture: its count moves below)
    if (this.captureView?.refresh() === true && this.recorder === null) this.topologyChanged();
    if (this.recorder !== null) this.topologyChanged(); // the record count moves
  }

  // ------------------------------------------------------------- events

  private listen(lab: Lab): void {
    this.unsubscribe.push(this.vrings.listen(lab));
    const ev: Emitter<EngineEvents> = lab.events;
    const labelOf = (device: string, nr: number | null): string | null => {
      if (nr === null) return null;
      const p = lab.device(device)?.port(nr);
      return p === undefined ? `${device} port ${nr}` : portLabel(p, device);
    };
    const port = (
      kind: EventKind,
      e: PortRef,
      text: string,
      extra: Partial<Pick<ApiEvent, 'direction' | 'bytes' | 'rule'>> = {},
      label = labelOf(e.device, e.nr),
    ): void => {
      this.emit({
        kind,
        device: e.device,
        nr: e.nr,
        port: label,
        direction: extra.direction ?? null,
        bytes: extra.bytes ?? null,
        rule: extra.rule ?? null,
        text: `${label}: ${text}`,
      });
    };
    this.unsubscribe.push(
      ev.on('port-added', (e) => {
        port(
          'port-added',
          e,
          e.hotplug ? 'port added (hot-plug)' : 'port added',
          {},
          portLabel(e, e.device),
        );
        this.topologyChanged();
      }),
      ev.on('port-removed', (e) => {
        port('port-removed', e, 'port removed', {}, portLabel(e, e.device));
        this.topologyChanged();
      }),
      ev.on('guest-open', (e) => {
        port(
          e.open ? 'guest-open' : 'guest-close',
          e,
          e.open ? 'guest opened the port' : 'guest closed the port',
        );
        this.topologyChanged();
      }),
      ev.on('host-open', (e) => {
        port(
          e.open ? 'host-open' : 'host-close',
          e,
          e.open ? 'host connected' : 'host disconnected',
        );
        this.topologyChanged();
      }),
      ev.on('control', (e) => {
        const nr = e.message.id === 0xffffffff ? null : e.message.id;
        const label = labelOf(e.device, nr);
        this.emit({
          kind: 'control',
          device: e.device,
          nr,
          port: label,
          direction: e.direction === 'to-guest' ? 'host-to-guest' : 'guest-to-host',
          bytes: null,
          rule: null,
          text: `${e.device} ${e.direction === 'to-guest' ? '→ guest' : '→ device'}: ${e.text}`,
        });
      }),
      ev.on('throttle', (e) => {
        port(
          e.on ? 'throttle-on' : 'throttle-off',
          e,
          e.on ? 'throttled (the host is not taking bytes)' : 'unthrottled',
          {
            direction: 'guest-to-host',
          },
        );
        this.topologyChanged();
      }),
      ev.on('drop', (e) => {
        const label = labelOf(e.device, e.nr);
        this.emit({
          kind: 'drop',
          device: e.device,
          nr: e.nr,
          port: label,
          direction: dropDirection(e.reason),
          bytes: e.bytes,
          rule: null,
          text: `${label ?? e.device}: ${e.bytes} bytes dropped by the ${e.side} (${e.reason})`,
        });
      }),
      ev.on('needs-reset', (e) => {
        this.emit({
          kind: 'needs-reset',
          device: e.device,
          nr: null,
          port: null,
          direction: null,
          bytes: null,
          rule: e.rule,
          text: `${e.device}: NEEDS_RESET (${e.rule}): ${e.fault.message}`,
        });
        this.topologyChanged();
      }),
      ev.on('engine-error', (e) => {
        this.emit({
          kind: 'error',
          device: null,
          nr: null,
          port: null,
          direction: null,
          bytes: null,
          rule: null,
          text: `engine task ${e.task.label} failed: ${e.message.split('\n', 1)[0]}`,
        });
      }),
      ev.on('device-deleted', (e) => {
        this.emit({
          kind: 'device-deleted',
          device: e.device,
          nr: null,
          port: null,
          direction: null,
          bytes: null,
          rule: null,
          text: `DEVICE_DELETED ${e.device ?? ''} ${e.path}`.replace('  ', ' '),
        });
        this.topologyChanged();
      }),
      ev.on('guest-node', (e) => {
        this.emit({
          kind: 'guest-node',
          device: null,
          nr: null,
          port: null,
          direction: null,
          bytes: null,
          rule: null,
          text: `guest: ${e.action === 'add' ? 'added' : 'removed'} ${e.path}`,
        });
        this.topologyChanged();
      }),
      ev.on('emergency-write', (e) => {
        this.emit({
          kind: 'emergency-write',
          device: e.device,
          nr: e.nr,
          port: labelOf(e.device, e.nr),
          direction: 'guest-to-host',
          bytes: 1,
          rule: null,
          text: `${e.device}: emergency write 0x${e.byte.toString(16).padStart(2, '0')}`,
        });
      }),
    );
  }

  /** Stop everything: workloads, sockets, the runtime directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopSampler();
    this.stopRecorder();
    this.captureView?.close();
    this.captureView = null;
    await this.terminals.endAll('the app is closing');
    for (const b of this.screens) b.close();
    this.screens.clear();
    for (const u of this.unsubscribe.splice(0)) u();
    await this.attached?.close();
    this.attached = null;
    await this.current.dispose();
    fs.rmSync(this.runtimeDir, { recursive: true, force: true });
  }
}

function notFound(message: string): ApiErrorKind {
  return /not found|has no port|no chardev/.test(message) ? 'NotFound' : 'Refused';
}

function decode(data: string, base64: boolean | undefined): Uint8Array {
  if (base64) return new Uint8Array(Buffer.from(data, 'base64'));
  return new TextEncoder().encode(data);
}

/** The names of the commands, for faces that list them. */
export type { CommandName };
