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
import type { VmchanError } from '../../base/error.js';
import { failWith } from './api-error.js';
import type { Emitter } from '../../base/emitter.js';
import type { EngineEvents } from '../../serial/events.js';
import type { Lab } from '../../engine/lab.js';
import { CaptureError } from '../../capture/error.js';
import { topologyFromLibvirtXml } from '../../machine/libvirt-xml.js';
import { explainNoVirtioSerial } from '../../machine/libvirt-read.js';
import { parseQemuCommandLine } from '../../machine/qemu-cmdline.js';
import { emptyTopology, type Topology } from '../../machine/topology.js';
import { nonRegularAt } from '../../capture/regular-file.js';
import { DOCS, REFERENCE, VERSION } from '../../version.js';
import { adaptImport } from './import-adapt.js';
import { packageRoot } from '../../package-root.js';
import { BatchBridge } from './batcher.js';
import { chardevFormChoices } from './chardev-hosts.js';
import {
  checkAnswer,
  fail,
  ok,
  parseCommand,
  type ApiEvent,
  type Batch,
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
} from '../contract/contract.js';
import { demoTopology } from './demo-lab.js';
import { DEFAULT_URI, listDomains } from '../../qemu/libvirt.js';
import { AttachSession, failure, type AttachSessionOptions } from './attach-session.js';
import { makeRuntimeDir } from '../../base/runtime-dir.js';
import { labCommands } from './lab-commands.js';
import { LabSession, portLabel, type SessionNote } from './lab-session.js';
import { dropDirection } from './recorder.js';
import {
  isRefusal,
  isSessionCommand,
  Refusal,
  runCommand,
  type Recorder,
  type Session,
} from './session.js';
import type { Capability } from '../contract/capabilities.js';
import {
  captureDataDir,
  DEFAULT_CAPTURE_WARN_BYTES,
  ensureCaptureDataDir,
} from '../../capture/data-dir.js';
import { parseRingOptions } from '../../capture/ring-writer.js';
import { publishSession, type PublishedSession } from '../../capture/live-session.js';
import type { SessionEntry } from '../../capture/session-registry.js';
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
  /** Where the app's captures go by default (default: the user's data directory). */
  captureDir?: string;
  /**
   * Register the lab and an attached QEMU in the session registry
   * (core/capture/session-registry.ts), so `vmchan extcap` and Wireshark list
   * them as interfaces while they run: the app and `vmchan serve` do; tests
   * that do not look at it leave the user's registry alone.
   */
  publishSessions?: boolean;
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

/** Events a screen that attaches gets from before it came. */
const RECENT_EVENTS = 200;

export class ApiService {
  /** The emulated lab: served, or waiting (paused) while a real QEMU is. */
  private lab!: LabSession;
  /** What the screens see and the session commands run on: the lab or an attached QEMU. */
  private current!: Session;
  /** The vring view, step mode and injected faults (vring-service.ts). */
  private readonly vrings = new VringService();
  private readonly screens = new Set<BatchBridge>();
  /** Terminal sessions and HMP consoles, their output in each screen's batches (terminal-service.ts). */
  private readonly terminals = new TerminalService({
    session: () => this.lab,
    hostSocket: (ref) => this.current.hostSocket(ref),
    guestConsole: (ref) => this.current.openGuestConsole?.(ref) ?? null,
    changed: () => this.topologyChanged(),
    servesLab: () => this.current === this.lab,
  });
  private unsubscribe: (() => void)[] = [];
  private eventSeq = 0;
  /** The latest `time` of the events sent so far (an earlier one is late). */
  private newestEvent = 0;
  private recent: ApiEvent[] = [];
  private sampler: NodeJS.Timeout | null = null;
  private lastSample = new Map<string, { toGuest: number; toHost: number }>();
  private lastSampleTime = Date.now();
  private recorder: Recorder | null = null;
  /** The capture open in the capture view (capture-view.ts). */
  private captureView: CaptureView | null = null;
  private lastCapture: string | null = null;
  /** The capture switches: the global one and ports' own (`device\0nr`), kept across captures of a lab. */
  private captureAll = true;
  private readonly portCapture = new Map<string, { device: string; nr: number; on: boolean }>();
  private labCount = 0;
  private closed = false;
  /** A real QEMU served in the lab's place (attach-session.ts) and the mode the waiting lab had. */
  private attachment: { session: AttachSession; parkedMode: 'free-run' | 'step' } | null = null;
  private attachCount = 0;
  private importCount = 0;
  /** The lab's and the attached QEMU's entries in the session registry (publishSessions). */
  private publishedLab: Promise<PublishedSession | null> | null = null;
  private publishedAttach: Promise<PublishedSession | null> | null = null;
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
      throw new Error(`cannot start the ${lab} lab: ${switched.error.message}`);
    }
    return service;
  }

  /** The emulated lab, served or waiting (tests and benches reach the engine through it). */
  get session(): LabSession {
    return this.lab;
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
    // The same chardev kinds in every session (attach mode adds them with chardev-add).
    if (c.cmd === 'chardevForms') return ok(chardevFormChoices());
    // What is served answers its own commands (a Refusal where it cannot, with the reason).
    if (isSessionCommand(c)) return runCommand(this.current.commands, c);
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
      case 'attach':
        return this.attachTo(c.address);
      case 'detach':
        return this.detachFrom();
      case 'listDomains': {
        const uri = c.connect ?? DEFAULT_URI;
        const domains = await listDomains(uri);
        return Array.isArray(domains) ? ok({ uri, domains }) : failure(domains);
      }
      case 'loadLab': {
        await this.leaveAttached();
        const switched = await this.switchLab(c.lab, c.lab === 'demo' ? null : emptyTopology());
        return 'error' in switched ? failWith(switched.error) : ok(this.snapshot());
      }
      case 'importConfig':
        await this.leaveAttached();
        return this.importConfig(c.format, c.text);
      case 'startCapture':
        return this.startCapture(c.path, c.ring, c.autostop, c.warnBytes);
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
      case 'setCaptureAll': {
        const refused = this.lacks('capture');
        if (refused !== null) return refused;
        this.captureAll = c.on;
        this.recorder?.setAll(c.on);
        return this.changed(ok(this.captureState()));
      }
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
      case 'openTerminal':
      case 'openMonitor': {
        const need =
          c.cmd === 'openMonitor'
            ? 'monitor'
            : c.side === 'guest'
              ? 'guestTerminal'
              : 'hostTerminal';
        return this.lacks(need) ?? this.terminals.execute(c);
      }
      case 'terminalInput':
      case 'closeTerminal':
      case 'listTerminals':
        return this.terminals.execute(c);
    }
  }

  /** The refusal when what is served lacks `capability`; null when it has it. */
  private lacks(capability: Capability): Answer | null {
    const can = this.current.capabilities()[capability];
    return can.can ? null : new Refusal(capability, can.reason).answer();
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
  ): Promise<{ error: VmchanError } | { notes: SessionNote[] }> {
    const n = ++this.labCount;
    const dir = path.join(this.runtimeDir, `${name}-${n}`);
    fs.mkdirSync(dir, { recursive: true });
    const old = this.labCount > 1 ? this.lab : null;
    const oldConfig = old?.exportTopology();
    // The old lab stops first, so the new one can have its socket paths.
    this.stopRecorder();
    this.portCapture.clear();
    await this.terminals.endAll('the lab was replaced');
    for (const u of this.unsubscribe.splice(0)) u();
    await this.unpublish('lab');
    await old?.dispose();
    if (old !== null) fs.rmSync(old.runtimeDir, { recursive: true, force: true });
    const options = (runtimeDir: string, demo: boolean) => ({
      runtimeDir,
      demo,
      onChange: () => this.topologyChanged(),
      onLab: (lab: Lab) => this.listen(lab),
      report: (line: string) => this.note(line),
      commands: (session: LabSession) =>
        labCommands(session, {
          vrings: this.vrings,
          changed: () => this.topologyChanged(),
          engineChanged: () => this.engineChanged(),
        }),
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
    if (this.lab !== session) this.publish('lab', session);
    this.lab = session;
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
          : explainNoVirtioSerial(text, parsed.notes),
      );
    }
    const channels = path.join(this.runtimeDir, `channels-${++this.importCount}`);
    const adapted = adaptImport(parsed.value, channels);
    if (adapted.topology.chardevs.some((c) => c.backend.kind === 'socket'))
      fs.mkdirSync(channels, { recursive: true, mode: 0o700 });
    const switched = await this.switchLab('imported', adapted.topology);
    if ('error' in switched) return failWith(switched.error);
    const more = switched.notes.map((n) => ({ kind: n.kind, message: n.message }));
    return ok({ topology: this.snapshot(), notes: [...notes, ...adapted.notes, ...more] });
  }

  // ------------------------------------------------------------ attach

  /** Attach to a real QEMU; the lab is paused and waits (a refused attach leaves it as it was). */
  private async attachTo(address: string): Promise<Answer> {
    await this.leaveAttached();
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
    this.publish('attach', a);
    const sch = this.lab.lab.scheduler;
    this.attachment = { session: a, parkedMode: sch.mode === 'step' ? 'step' : 'free-run' };
    sch.setMode('step');
    this.current = a;
    this.lastSample.clear();
    const info = a.info();
    this.note(`attached to ${info.qemu} at ${address}; the ${this.lab.name} lab waits`);
    for (const line of info.notes) this.note(line);
    this.topologyChanged();
    this.engineChanged();
    return ok(this.snapshot());
  }

  private async detachFrom(): Promise<Answer> {
    if (this.attachment === null) return fail('Refused', 'not attached to a QEMU');
    await this.leaveAttached();
    return ok(this.snapshot());
  }

  /** Close the QMP connection (QEMU keeps running) and give the screens the lab back; no-op when not attached. */
  private async leaveAttached(): Promise<void> {
    const attached = this.attachment;
    if (attached === null) return;
    this.attachment = null;
    this.stopRecorder();
    await this.terminals.endAll('detached from the QEMU');
    this.current = this.lab;
    await this.unpublish('attach');
    await attached.session.close();
    this.lab.lab.scheduler.setMode(attached.parkedMode);
    this.listen(this.lab.lab);
    this.note(`detached from ${attached.session.address}; back to the ${this.lab.name} lab`);
    this.adopt(this.lab);
  }

  // ------------------------------------------------------------ live capture

  /**
   * List a session in the session registry with a live socket streaming its
   * capture (what `vmchan extcap` lists), as `vmchan run` and `attach` do.
   * A registry that cannot be made is a note, not a failure of the lab.
   */
  private publish(kind: 'lab' | 'attach', session: Session): void {
    if (this.options.publishSessions !== true) return;
    const description =
      kind === 'lab'
        ? `app lab ${session.title} (pid ${process.pid})`
        : `app, QEMU at ${(session as AttachSession).address} (pid ${process.pid})`;
    // The session's own encoder: its capture file and these live clients share it.
    const published = publishSession(
      session.liveCapture(),
      kind,
      description,
      (line) => this.note(line),
      undefined,
      session.liveHub(),
    ).then((p) => {
      if (p instanceof CaptureError) {
        this.note(`live capture unavailable: ${p.message}`);
        return null;
      }
      this.note(`live capture: ${p.entry.id} (vmchan extcap, Wireshark)`);
      return p;
    });
    if (kind === 'lab') this.publishedLab = published;
    else this.publishedAttach = published;
  }

  /** Take a session out of the registry; its live clients see the stream end. */
  private async unpublish(kind: 'lab' | 'attach'): Promise<void> {
    const published = kind === 'lab' ? this.publishedLab : this.publishedAttach;
    if (kind === 'lab') this.publishedLab = null;
    else this.publishedAttach = null;
    await (await published)?.close();
  }

  /** The registry entries of the lab and the attached QEMU, once listed (tests). */
  async publishedSessions(): Promise<SessionEntry[]> {
    const out: SessionEntry[] = [];
    for (const p of [this.publishedLab, this.publishedAttach]) {
      const got = await p;
      if (got) out.push(got.entry);
    }
    return out;
  }

  /** The attached QEMU, when one is served (tests). */
  get attachedSession(): AttachSession | null {
    return this.attachment?.session ?? null;
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
      bytes: this.recorder?.bytes ?? 0,
      warnBytes: this.captureWarnBytes,
      warning: this.captureWarning,
    };
  }

  private captureWarnBytes = DEFAULT_CAPTURE_WARN_BYTES;
  private captureWarning: string | null = null;

  /** Warn once when the capture file passes the size the user set. */
  private checkCaptureSize(): void {
    const r = this.recorder;
    if (r === null || this.captureWarning !== null || r.bytes < this.captureWarnBytes) return;
    this.captureWarning = `capture file ${r.path} passed ${this.captureWarnBytes} bytes`;
    this.note(this.captureWarning);
  }

  private setPortCapture(ref: PortRef, on: boolean | null): Answer {
    const refused = this.lacks('capture');
    if (refused !== null) return refused;
    const found = this.current
      .ports()
      .find(
        (p) =>
          p.nr === ref.nr &&
          this.current
            .devices()
            .some(
              (d) =>
                d.name === p.device &&
                (d.name === ref.device || d.id === ref.device || d.bus === ref.device),
            ),
      );
    if (found === undefined) return fail('NotFound', `${ref.device} has no port ${ref.nr}`);
    const device = found.device;
    const nr = found.nr;
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

  private startCapture(
    requested: string | undefined,
    ringWords: string[] = [],
    stopWords: string[] = [],
    warnBytes = DEFAULT_CAPTURE_WARN_BYTES,
  ): Answer {
    if (this.recorder !== null)
      return fail('Refused', `already capturing to ${this.recorder.path}`);
    const ring = parseRingOptions(ringWords, stopWords);
    if (typeof ring === 'string') return fail('InvalidRequest', ring);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    let file: string;
    if (requested === undefined || requested === '') {
      // The user's data directory: the capture outlives the app (exit or crash).
      const dir = ensureCaptureDataDir(this.options.captureDir ?? captureDataDir());
      if (typeof dir !== 'string') return fail('IoError', dir.problem);
      file = path.join(dir, `capture-${stamp}.pcapng`);
    } else file = path.resolve(requested);
    this.captureWarnBytes = warnBytes;
    this.captureWarning = null;
    const r = this.current.record(file, {
      all: this.captureAll,
      ports: [...this.portCapture.values()],
      ring,
      // Outside the record write that met the condition.
      onStop: (reason) =>
        queueMicrotask(() => {
          if (this.recorder !== r) return;
          this.note(`capture stopped at ${reason}`);
          this.stopRecorder();
          this.topologyChanged();
        }),
    });
    if (isRefusal(r)) return r.answer();
    if (r instanceof CaptureError)
      return fail(r.kind === 'NotRegularFile' ? 'Refused' : 'IoError', r.toString());
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
    const what = nonRegularAt(to);
    if (what !== null) return fail('Refused', `cannot save the capture to ${to}: it is ${what}`);
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
    // The view keeps the file open; the list asks for the windows it shows (getCaptureRows).
    const view = await CaptureView.open(path.resolve(file));
    if ('kind' in view) return fail(view.kind, view.message);
    this.captureView?.close();
    this.captureView = view;
    this.topologyChanged();
    return ok({ path: file, records: view.reader.count });
  }

  // ------------------------------------------------------------ screens

  snapshot(): TopologySnapshot {
    const s = this.current;
    const capabilities = s.capabilities();
    const ports = s.ports();
    const info = s.info();
    return {
      lab: s.title,
      runtimeDir: s.runtimeDir,
      engine: s.engineState(),
      capture: this.captureState(),
      devices: s.devices(),
      ports: capabilities.capture.can
        ? ports.map((p) => ({ ...p, capture: this.portCaptureOf(p.device, p.nr) }))
        : ports,
      chardevs: s.chardevs(),
      capabilities,
      sessions: this.terminals.list(),
      ...(info !== null ? { attached: info } : {}),
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
        engine: () => this.current.engineState(),
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

  /**
   * An event for the screens, at the time it happened (`time`: QEMU's for a
   * QMP event, the poll's for a polled change; now when not given). One
   * that happened before an event already sent is late (a rate-limited
   * VSERPORT_CHANGE, a change polling found): it is marked so, and the
   * timeline shows it in its place.
   */
  private emit(event: Omit<ApiEvent, 'seq' | 'time'> & { time?: number | undefined }): void {
    const time = event.time ?? Date.now();
    const late = event.late === true || time < this.newestEvent;
    this.newestEvent = Math.max(this.newestEvent, time);
    const e: ApiEvent = { ...event, seq: ++this.eventSeq, time, ...(late ? { late } : {}) };
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
    const dt = Math.max(1, now - this.lastSampleTime);
    this.lastSampleTime = now;
    const ports: PortSample[] = [];
    const seen = new Map<string, { toGuest: number; toHost: number }>();
    for (const [key, totals] of this.current.portTotals()) {
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
    this.lastSample = seen;
    const sample = { t: now, dt, ports };
    for (const b of this.screens) b.pushSample(sample);
    // the capture view follows a file still growing (the live capture: its count moves below)
    if (this.captureView?.refresh() === true && this.recorder === null) this.topologyChanged();
    if (this.recorder !== null) {
      this.checkCaptureSize();
      this.topologyChanged(); // the record count and the file size move
    }
  }

  // ------------------------------------------------------------- events

  private listen(lab: Lab): void {
    this.unsubscribe.push(this.vrings.listen(lab));
    const ev: Emitter<EngineEvents> = lab.events;
    const labelOf: LabelOf = (device, nr) => {
      if (nr === null) return null;
      const p = lab.device(device)?.port(nr);
      return p === undefined ? `${device} port ${nr}` : portLabel(p, device);
    };
    // One subscription per row of FORWARDED: the API event, and whether the
    // topology the screens draw changed with it.
    const subscribe = <K extends ForwardedEvent>(type: K): (() => void) => {
      const row = FORWARDED[type] as Forward<K>;
      return ev.on(type, (e) => {
        this.emit(row.event(e, labelOf));
        if (row.topology) this.topologyChanged();
      });
    };
    for (const type of Object.keys(FORWARDED) as ForwardedEvent[]) {
      this.unsubscribe.push(subscribe(type));
    }
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
    await this.unpublish('attach');
    await this.attachment?.session.close();
    this.attachment = null;
    await this.unpublish('lab');
    await this.lab.dispose();
    fs.rmSync(this.runtimeDir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------ engine events

type ApiEventFields = Omit<ApiEvent, 'seq' | 'time'>;
type LabelOf = (device: string, nr: number | null) => string | null;

/** An engine event as the API shows it; `topology`: the screens' picture changed too. */
interface Forward<K extends keyof EngineEvents> {
  event: (e: EngineEvents[K], labelOf: LabelOf) => ApiEventFields;
  topology: boolean;
}

/** A port's event: its label first, then the text. */
function portEvent(
  kind: EventKind,
  e: PortRef,
  text: string,
  label: string | null,
  extra: Partial<Pick<ApiEvent, 'direction' | 'bytes' | 'rule'>> = {},
): ApiEventFields {
  return {
    kind,
    device: e.device,
    nr: e.nr,
    port: label,
    direction: extra.direction ?? null,
    bytes: extra.bytes ?? null,
    rule: extra.rule ?? null,
    text: `${label}: ${text}`,
  };
}

/** An event about the machine, not a port. */
function machineEvent(
  kind: EventKind,
  device: string | null,
  text: string,
  rule: string | null = null,
): ApiEventFields {
  return { kind, device, nr: null, port: null, direction: null, bytes: null, rule, text };
}

type ForwardedEvent = Exclude<keyof EngineEvents, 'data' | 'task' | 'vserport-change'>;

/** Every engine event the screens see, once. */
const FORWARDED: { [K in ForwardedEvent]: Forward<K> } = {
  'port-added': {
    event: (e) =>
      portEvent(
        'port-added',
        e,
        e.hotplug ? 'port added (hot-plug)' : 'port added',
        portLabel(e, e.device),
      ),
    topology: true,
  },
  'port-removed': {
    event: (e) => portEvent('port-removed', e, 'port removed', portLabel(e, e.device)),
    topology: true,
  },
  'guest-open': {
    event: (e, labelOf) =>
      portEvent(
        e.open ? 'guest-open' : 'guest-close',
        e,
        e.open ? 'guest opened the port' : 'guest closed the port',
        labelOf(e.device, e.nr),
      ),
    topology: true,
  },
  'host-open': {
    event: (e, labelOf) =>
      portEvent(
        e.open ? 'host-open' : 'host-close',
        e,
        e.open ? 'host connected' : 'host disconnected',
        labelOf(e.device, e.nr),
      ),
    topology: true,
  },
  control: {
    event: (e, labelOf) => {
      const nr = e.message.id === 0xffffffff ? null : e.message.id;
      return {
        kind: 'control',
        device: e.device,
        nr,
        port: labelOf(e.device, nr),
        direction: e.direction === 'to-guest' ? 'host-to-guest' : 'guest-to-host',
        bytes: null,
        rule: null,
        text: `${e.device} ${e.direction === 'to-guest' ? '→ guest' : '→ device'}: ${e.text}`,
      };
    },
    topology: false,
  },
  throttle: {
    event: (e, labelOf) =>
      portEvent(
        e.on ? 'throttle-on' : 'throttle-off',
        e,
        e.on ? 'throttled (the host is not taking bytes)' : 'unthrottled',
        labelOf(e.device, e.nr),
        { direction: 'guest-to-host' },
      ),
    topology: true,
  },
  drop: {
    event: (e, labelOf) => {
      const label = labelOf(e.device, e.nr);
      return {
        kind: 'drop',
        device: e.device,
        nr: e.nr,
        port: label,
        direction: dropDirection(e.reason, e.direction),
        bytes: e.bytes,
        rule: null,
        text:
          e.reason === 'hangup-unread'
            ? `${label ?? e.device}: QEMU discarded ${e.bytes} unread bytes when the host hung up`
            : `${label ?? e.device}: ${e.bytes} bytes dropped by the ${e.side} (${e.reason})`,
      };
    },
    // The port's dropped counts are in the snapshot (at most one per frame goes out).
    topology: true,
  },
  'control-ignored': {
    // D10: QEMU's own error line when it prints one; the device goes on.
    event: (e) =>
      machineEvent(
        'error',
        e.device,
        e.qemuReport !== null
          ? `${e.device}: ${e.qemuReport} (ignored, as QEMU does)`
          : `${e.device}: ${e.text} (ignored silently by QEMU)`,
        e.rule,
      ),
    topology: false,
  },
  'needs-reset': {
    event: (e) =>
      machineEvent(
        'needs-reset',
        e.device,
        `${e.device}: NEEDS_RESET (${e.rule}): ${e.fault.message}`,
        e.rule,
      ),
    topology: true,
  },
  'engine-error': {
    event: (e) =>
      machineEvent(
        'error',
        null,
        `engine task ${e.task.label} failed: ${e.message.split('\n', 1)[0]}`,
      ),
    topology: false,
  },
  'device-deleted': {
    event: (e) =>
      machineEvent(
        'device-deleted',
        e.device,
        `DEVICE_DELETED ${e.device ?? ''} ${e.path}`.replace('  ', ' '),
      ),
    topology: true,
  },
  'guest-node': {
    event: (e) =>
      machineEvent(
        'guest-node',
        null,
        `guest: ${e.action === 'add' ? 'added' : 'removed'} ${e.path}`,
      ),
    topology: true,
  },
  'emergency-write': {
    event: (e, labelOf) => ({
      kind: 'emergency-write',
      device: e.device,
      nr: e.nr,
      port: labelOf(e.device, e.nr),
      direction: 'guest-to-host',
      bytes: 1,
      rule: null,
      text: `${e.device}: emergency write 0x${e.byte.toString(16).padStart(2, '0')}`,
    }),
    topology: false,
  },
};

/** The names of the commands, for faces that list them. */
export type { CommandName };
