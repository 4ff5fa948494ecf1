/**
 * The one seam between ApiService and what it serves: the emulated lab
 * (lab-session.ts) or a real QEMU it is attached to (attach-session.ts).
 * Both implement `Session`: snapshots of devices, ports and chardevs, the
 * engine's state, what the session can do (capabilities, with the reason
 * where it cannot), per-port byte totals for the throughput chart, and one
 * command table typed by command name (as core/monitor/qmp-commands.ts
 * keeps QMP's), in which a command the session cannot run is a `Refusal`
 * value naming the capability it lacks, never a branch in the service.
 */
import { VmchanError } from '../../base/error.js';
import type { CaptureError } from '../../capture/error.js';
import type { Capture } from '../../capture/record.js';
import type { LiveHub } from '../../capture/live-server.js';
import type { RingOptions } from '../../capture/ring-writer.js';
import type { GuestConsole } from '../../qga/guest-console.js';
import {
  fail,
  type ApiErrorKind,
  type AttachedInfo,
  type ChardevSnapshot,
  type Command,
  type DeviceSnapshot,
  type EngineState,
  type PortRef,
  type PortSnapshot,
  type Result,
} from '../contract/contract.js';
import { CAPABILITIES, type Capabilities, type Capability } from '../contract/capabilities.js';

/**
 * A command this session does not run, as a value: the capability it lacks
 * and why. One of core's named errors (domain 'session'), so the API maps it
 * by the same table as every other (core/api/server/api-error.ts).
 */
export class Refusal extends VmchanError<'Unsupported' | 'Refused'> {
  readonly domain = 'session';
  constructor(
    readonly capability: Capability,
    reason: string,
    /** Unsupported: the session never can; Refused: not now. */
    kind: 'Unsupported' | 'Refused' = 'Unsupported',
  ) {
    super(kind, reason);
  }

  get reason(): string {
    return this.message;
  }

  answer(): { ok: false; error: { kind: ApiErrorKind; message: string } } {
    return fail(this.kind, this.message);
  }
}

export function isRefusal(x: unknown): x is Refusal {
  return x instanceof Refusal;
}

/** Every capability present, but those named (with the reason). */
export function capableBut(lacking: { [K in Capability]?: string } = {}): Capabilities {
  return Object.fromEntries(
    CAPABILITIES.map((c) => {
      const reason = lacking[c];
      return [c, reason === undefined ? { can: true } : { can: false, reason }];
    }),
  ) as Capabilities;
}

/** The commands a session answers itself (the service keeps hello, labs, capture files, terminals). */
export const SESSION_COMMANDS = [
  'createDevice',
  'removeDevice',
  'createChardev',
  'removeChardev',
  'hotplugPort',
  'unplugPort',
  'connectHost',
  'repointPort',
  'disconnectHost',
  'resetDevice',
  'pause',
  'run',
  'step',
  'exportConfig',
  'getVring',
  'getVringView',
  'vringStep',
  'injectFault',
  'writeHost',
  'writeGuest',
  'setWorkload',
  'tapChardev',
  'untapChardev',
] as const satisfies readonly Command['cmd'][];
export type SessionCommandName = (typeof SESSION_COMMANDS)[number];

/** The capability each session command needs (null: every session runs it). */
export const COMMAND_CAPABILITY: { readonly [K in SessionCommandName]: Capability | null } = {
  createDevice: 'devices',
  removeDevice: 'devices',
  createChardev: 'hotplug',
  removeChardev: 'hotplug',
  hotplugPort: 'hotplug',
  unplugPort: 'hotplug',
  connectHost: 'rewire',
  repointPort: 'rewire',
  disconnectHost: 'rewire',
  resetDevice: 'devices',
  pause: 'stepMode',
  run: 'stepMode',
  step: 'stepMode',
  vringStep: 'stepMode',
  injectFault: 'faults',
  writeHost: 'writeHost',
  writeGuest: 'writeGuest',
  setWorkload: 'workloads',
  exportConfig: 'exportConfig',
  getVring: null,
  getVringView: null,
  tapChardev: 'tap',
  untapChardev: 'tap',
};
export type SessionCommand<K extends SessionCommandName = SessionCommandName> = Extract<
  Command,
  { cmd: K }
>;

export type Answer = Result<unknown>;
export type Handler<K extends SessionCommandName> = (
  c: SessionCommand<K>,
) => Answer | Promise<Answer>;

/** One entry per session command: how this session runs it, or why it does not. */
export type CommandTable = { readonly [K in SessionCommandName]: Handler<K> | Refusal };

const sessionCommands: ReadonlySet<string> = new Set(SESSION_COMMANDS);
export function isSessionCommand(c: Command): c is SessionCommand {
  return sessionCommands.has(c.cmd);
}

/** Run `c` through `table`: the handler's answer, or the refusal as an answer. */
export async function runCommand(table: CommandTable, c: SessionCommand): Promise<Answer> {
  // The table is total over SESSION_COMMANDS; the cast joins the entry to its own command's type.
  const entry = table[c.cmd] as Handler<typeof c.cmd> | Refusal;
  if (isRefusal(entry)) return entry.answer();
  return entry(c as never);
}

/** Byte totals of one port since it was plugged (or since the tap saw it), each way. */
export interface PortTotals {
  toGuest: number;
  toHost: number;
}

/** The switches a capture starts with (recorder.ts CaptureSwitches). */
export interface CaptureSwitches {
  /** Ports without a switch of their own are captured (default true). */
  all?: boolean;
  /** Ports with a switch of their own. */
  ports?: readonly { device: string; nr: number; on: boolean }[];
  /** dumpcap's ring buffer and stop conditions (core/capture/ring-writer.ts). */
  ring?: RingOptions;
  /** Told once when a stop condition ends the capture. */
  onStop?: (reason: string) => void;
}

/** A live capture into one pcapng file, whatever feeds it (the engine's events, a tap's bytes). */
export interface Recorder {
  readonly path: string;
  readonly records: number;
  /** Bytes of the (current) capture file, flushed or about to be. */
  readonly bytes: number;
  setAll(on: boolean): void;
  setPort(device: string, nr: number, on: boolean | undefined): void;
  /** Flush and close the file; the write error, if there was one. */
  stop(): CaptureError | null;
}

/** Where a host terminal connects to be a port's host application (an attached QEMU's tap). */
export interface HostSocket {
  /** The port's label, for the terminal's title. */
  label: string;
  address: { type: 'unix'; path: string } | { type: 'tcp'; host: string; port: number };
}

/** A console on the guest side of a port that the session opened (an attached QEMU's guest agent). */
export interface GuestConsoleOpened {
  /** The port's label, for the terminal's title. */
  label: string;
  console: GuestConsole;
}

export interface Session {
  /** 'lab': the emulated machine; 'attached': a real QEMU over QMP. */
  readonly kind: 'lab' | 'attached';
  /** The name the window shows (`demo`, `attached: /run/qmp.sock`). */
  readonly title: string;
  /** Where this session's sockets and captures go. */
  readonly runtimeDir: string;
  readonly commands: CommandTable;
  capabilities(): Capabilities;
  engineState(): EngineState;
  devices(): DeviceSnapshot[];
  ports(): PortSnapshot[];
  chardevs(): ChardevSnapshot[];
  /** The attached QEMU's description, null for the lab. */
  info(): AttachedInfo | null;
  /** Byte totals by port key (`device:nr`), for the throughput chart. */
  portTotals(): Map<string, PortTotals>;
  /**
   * Where the app connects as the host application of a port: null where
   * the session's own terminals do it (the lab), or why it cannot.
   */
  hostSocket(ref: PortRef): HostSocket | string | null;
  /**
   * A console on the guest side of a port where the session's own guest
   * programs cannot run it (an attached QEMU: through the guest's qemu-ga),
   * or why not; absent where the session's terminals do it (the lab).
   */
  openGuestConsole?(ref: PortRef): Promise<GuestConsoleOpened | string>;
  /** Start a live capture into `file`; the file's error, or why this session cannot. */
  record(file: string, switches: CaptureSwitches): Recorder | CaptureError | Refusal;
  /**
   * Everything this session captures, every port, for live clients (`vmchan
   * extcap`, Wireshark): the service publishes it in the session registry.
   * Costs nothing while no client is attached.
   */
  liveCapture(): Capture;
  /**
   * The one encoder of that capture (its source is liveCapture): the
   * published live socket and the capture file (record) both consume it,
   * so a record is encoded once whoever reads it.
   */
  liveHub(): LiveHub;
}
