/**
 * `vmchan attach --qmp PATH|HOST:PORT [--watch] [--tap CHARDEV=LISTEN ...] [-w FILE]`:
 * the virtio-serial ports of a running QEMU, their changes as they come,
 * and taps that capture the traffic of socket chardevs.
 *
 * The session code (table, watch loop, taps, capture) is shared with
 * `vmchan launch`, which starts QEMU first.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { CaptureError } from '../core/capture/error.js';
import { LiveHub } from '../core/capture/live-server.js';
import { SharedCaptureFile } from '../core/capture/shared-file.js';
import { parseRingOptions } from '../core/capture/ring-writer.js';
import { publishSession, type PublishedSession } from '../core/capture/live-session.js';
import {
  Capture,
  CaptureFeed,
  eventRecord,
  nowNs,
  type CaptureSink,
  type PortEventType,
} from '../core/capture/record.js';
import { AttachedMachine } from '../core/qemu/attach.js';
import { isAttachError, isAttachFailure } from '../core/qemu/attach-error.js';
import { DEFAULT_URI, domainXml, QmpProxy } from '../core/qemu/libvirt.js';
import { domainChannels, type DomainChannel } from '../core/machine/libvirt-channels.js';
import type { AttachedTopology, AttachEvent } from '../core/qemu/attach-model.js';
import { parseQmpAddress } from '../core/qemu/qmp-address.js';
import { isQmpError } from '../core/qemu/qmp-error.js';
import { tapChardevInPlace, type InPlaceTap } from '../core/qemu/inplace-tap.js';
import { tapChardev, type ChardevTap } from '../core/qemu/tap.js';
import { recoverMoves } from '../core/qemu/tap-journal.js';
import type { AttachedQueueSnapshot } from '../core/qemu/vring.js';
import { UsageError } from './errors.js';
import { checkConsoleMode, runGuestConsole, type ConsoleIo } from './guest-console.js';

/** Where a session writes: stdout for the table and events, stderr for problems. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export interface SessionOptions {
  watch?: boolean;
  tap?: string[];
  write?: string;
  vring?: boolean;
  json?: boolean;
  poll?: string;
  /** dumpcap's -b (ring buffer) and -a (stop conditions) for -w. */
  ringBuffer?: string[];
  autostop?: string[];
  /** One more sink for the capture (vmchan extcap's fifo). */
  extraSink?: CaptureSink;
  /** Publish the session for live capture (`vmchan extcap`); default true. */
  publish?: boolean;
  /** A libvirt domain's channels from its XML, printed after the ports (attach --domain). */
  libvirtChannels?: { domain: string; channels: DomainChannel[] };
}

interface AttachCliOptions extends SessionOptions {
  qmp?: string;
  /** A console on the guest side of this port, through the guest's qemu-ga (guest-console.ts). */
  guestConsole?: string;
  guestConsoleMode?: string;
  /** A libvirt domain instead of a QMP socket (QMP through virt-qemu-qmp-proxy). */
  domain?: string;
  connect?: string;
}

const processIo: CliIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Resolves on the first SIGINT or SIGTERM (and stops listening for them). */
export function untilSignal(): { promise: Promise<string>; cancel(): void } {
  let cancel = (): void => {};
  const promise = new Promise<string>((resolve) => {
    const on = (signal: string): void => {
      cancel();
      resolve(signal);
    };
    const int = (): void => on('SIGINT');
    const term = (): void => on('SIGTERM');
    process.on('SIGINT', int);
    process.on('SIGTERM', term);
    cancel = () => {
      process.off('SIGINT', int);
      process.off('SIGTERM', term);
    };
  });
  return { promise, cancel };
}

/** The options `attach` and `launch` share. */
export function addSessionOptions(cmd: Command, options: { watch: boolean }): Command {
  if (options.watch) {
    cmd.option('--watch', 'keep running and print port events as they come, until Ctrl-C');
  }
  return cmd
    .option(
      '--tap <chardev[=listen]>',
      'tap a socket chardev: CHARDEV alone taps in place (QEMU listens on a unix socket: ' +
        'vmchan takes its path, applications connect as before); CHARDEV=LISTEN makes a new ' +
        'socket (a unix path, mode 0600, or 127.0.0.1:PORT) to point the application at; repeatable',
      collect,
    )
    .option('-w, --write <file>', 'write a pcapng capture: tapped bytes both ways and port events')
    .option(
      '-b, --ring-buffer <key:value>',
      'with -w, a ring of files as dumpcap: filesize:KB, duration:S, files:N (repeatable)',
      collect,
    )
    .option(
      '-a, --autostop <key:value>',
      'with -w, stop capturing at filesize:KB, duration:S or packets:N (repeatable)',
      collect,
    )
    .option('--vring', "while watching: print the indices of the ports' virtqueues when they move")
    .option('--json', 'print the topology and events as JSON lines instead of text')
    .option('--poll <ms>', 'query-chardev polling period in ms (0: events only)', '1000');
}

export const SESSION_HELP = `
Events (--watch):
  [event]   a QMP event: VSERPORT_CHANGE (the guest opened or closed a port) or
            DEVICE_DELETED. QEMU sends VSERPORT_CHANGE at most once a second per
            port, only for ports that have an id, and never for the host side.
  [poll]    a change seen by polling query-chardev (frontend-open is the guest
            side, the "disconnected:" filename prefix the host side): it fills
            the gaps the events leave. "late" marks an event that came after
            polling had already shown its state.
  [tap]     an application connected to or left a tap.

Taps (--tap CHARDEV, --tap CHARDEV=LISTEN):
  For chardevs QEMU listens on (-chardev socket,...,server=on). --tap CHARDEV
  taps a unix socket in place: QEMU's socket node is moved aside (QEMU keeps
  listening on it), vmchan listens at the original path with the same owner and
  mode, and the path is given back on exit, on SIGINT/SIGTERM, and at the next
  start of vmchan attach after a crash (a journal in $XDG_RUNTIME_DIR/vmchan). A
  client connected before the tap keeps its direct, uncaptured connection until
  it reconnects. --tap CHARDEV=LISTEN listens on a new socket instead. vmchan connects
  to QEMU's socket when an application connects to LISTEN, forwards both ways
  and captures every byte; when either side disconnects it disconnects the
  other, so the guest sees the host come and go as without the tap. One
  application at a time, as QEMU allows. Chardevs where QEMU is the client
  (server=off) cannot be tapped.`;

export function registerAttach(program: Command): void {
  const cmd = program
    .command('attach')
    .description(
      'list the virtio-serial ports of a running QEMU, follow their events, tap their traffic',
    )
    .option('--qmp <address>', 'the QMP socket: a unix socket path, or HOST:PORT')
    .option(
      '--domain <name>',
      'a libvirt domain instead: QMP goes through libvirt (virt-qemu-qmp-proxy), which owns its monitor',
    )
    .option('--connect <uri>', `the libvirt URI for --domain (default ${DEFAULT_URI})`)
    .option(
      '--guest-console <name>',
      'a console on the guest side of port NAME through the guest’s qemu-ga (guest-file-open/read/write on /dev/virtio-ports/NAME): stdin into the guest, the host’s bytes out on stdout',
    )
    .option('--guest-console-mode <mode>', 'the guest console’s open mode: r+ (default), r or w');
  addSessionOptions(cmd, { watch: true })
    .addHelpText(
      'after',
      `${SESSION_HELP}

QEMU serves one client per QMP socket: give QEMU a spare one for vmchan, e.g.
  -qmp unix:/tmp/vm-qmp.sock,server=on,wait=off

Examples:
  vmchan attach --qmp /tmp/vm-qmp.sock
  vmchan attach --qmp localhost:4444 --watch
  vmchan attach --qmp /tmp/vm-qmp.sock --tap c1=/tmp/p1-tapped.sock -w p1.pcapng
      (then point the host application at /tmp/p1-tapped.sock)
  vmchan attach --domain myvm --connect qemu:///system --watch
  vmchan attach --qmp /tmp/vm-qmp.sock --guest-console org.test.port.1
      (the guest runs qemu-ga on org.qemu.guest_agent.0, a socket QEMU listens on)`,
    )
    .action(async (options: AttachCliOptions) => {
      const stop = untilSignal();
      try {
        await runAttach(options, processIo, stop.promise);
      } finally {
        stop.cancel();
      }
    });
}

/** `vmchan attach`, with its output and stop signal given (tests run it in-process). */
export async function runAttach(
  options: AttachCliOptions,
  io: CliIo,
  stop: Promise<unknown>,
  consoleIo: ConsoleIo = {
    input: process.stdin,
    output: (b) => void process.stdout.write(b),
    note: (t) => void process.stderr.write(`vmchan: ${t}\n`),
  },
): Promise<void> {
  if ((options.qmp === undefined) === (options.domain === undefined))
    throw new UsageError('give either --qmp ADDRESS or --domain NAME');
  if (options.connect !== undefined && options.domain === undefined)
    throw new UsageError('--connect goes with --domain');
  const session = checkSessionOptions(options);
  const consoleMode =
    options.guestConsole !== undefined ? checkConsoleMode(options.guestConsoleMode) : null;
  if (options.guestConsoleMode !== undefined && options.guestConsole === undefined)
    throw new UsageError('--guest-console-mode goes with --guest-console NAME');
  // A vmchan killed while tapping in place left QEMU's socket nodes moved: give them back first.
  for (const line of recoverMoves()) io.err(`vmchan: after a crash: ${line}\n`);
  let proxy: QmpProxy | null = null;
  let qmpAddress = options.qmp ?? '';
  let libvirtChannels: SessionOptions['libvirtChannels'];
  if (options.domain !== undefined) {
    const target = { domain: options.domain, uri: options.connect ?? DEFAULT_URI };
    // the channels' targets, sources and libvirt's roles are in the domain's XML, not in QMP
    const xml = await domainXml(target);
    if (typeof xml !== 'string') throw new Error(xml.message);
    const channels = domainChannels(xml);
    if (!Array.isArray(channels))
      throw new Error(`virsh dumpxml ${options.domain}: ${channels.message}`);
    libvirtChannels = { domain: options.domain, channels };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-domain-'));
    const started = await QmpProxy.start(target, path.join(dir, 'qmp.sock'));
    if (isAttachError(started)) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(started.message);
    }
    proxy = started;
    qmpAddress = started.socketPath;
  }
  const address = parseQmpAddress(qmpAddress);
  if (isQmpError(address)) throw new UsageError(address.message);
  const machine = await AttachedMachine.connect(qmpAddress, {
    pollIntervalMs: session.pollMs,
    qmp: { greetingTimeoutMs: 3_000, ...(proxy !== null ? { oneAtATime: true } : {}) },
  });
  if (isQmpError(machine)) {
    await stopProxy(proxy);
    throw new Error(machine.message);
  }
  // QEMU going away ends a watch (status 1), as Ctrl-C does (status 0).
  let lost: string | undefined;
  let off = (): void => {};
  const gone = new Promise<void>((resolve) => {
    off = machine.qmp.onStateChange((state, reason) => {
      if (state !== 'closed') return;
      lost = reason?.message ?? `the QMP connection to ${machine.qmp.addressText} closed`;
      resolve();
    });
  });
  try {
    const sessionOptions =
      libvirtChannels !== undefined ? { ...options, libvirtChannels } : options;
    if (options.guestConsole !== undefined && consoleMode !== null)
      await runGuestConsole(
        machine,
        options.guestConsole,
        consoleMode,
        consoleIo,
        Promise.race([stop, gone]),
      );
    else await runSession(machine, sessionOptions, io, stop, gone);
  } finally {
    off();
    await machine.close();
    await stopProxy(proxy);
  }
  if (lost !== undefined) throw new Error(`${lost}; stopped watching`);
}

async function stopProxy(proxy: QmpProxy | null): Promise<void> {
  if (proxy === null) return;
  await proxy.stop();
  fs.rmSync(path.dirname(proxy.socketPath), { recursive: true, force: true });
}

interface CheckedSession {
  pollMs: number;
  /** listen null: in place, at QEMU's own path. */
  taps: { chardev: string; listen: string | null }[];
  keepRunning: boolean;
}

/** Check the shared options before anything is started: bad ones are usage errors. */
export function checkSessionOptions(options: SessionOptions): CheckedSession {
  const poll = options.poll ?? '1000';
  if (!/^\d+$/.test(poll))
    throw new UsageError(`--poll expects milliseconds (a whole number), got '${poll}'`);
  const taps = (options.tap ?? []).map((t) => {
    const eq = t.indexOf('=');
    if (eq < 0 && t !== '') return { chardev: t, listen: null };
    if (eq <= 0 || eq === t.length - 1) {
      throw new UsageError(
        `--tap expects CHARDEV (in place) or CHARDEV=LISTEN (e.g. c1=/tmp/c1-tap.sock), got '${t}'`,
      );
    }
    return { chardev: t.slice(0, eq), listen: t.slice(eq + 1) };
  });
  const seen = new Set<string>();
  for (const t of taps) {
    if (seen.has(t.chardev)) throw new UsageError(`--tap names chardev '${t.chardev}' twice`);
    seen.add(t.chardev);
  }
  if (options.vring && !options.watch)
    throw new UsageError('--vring needs --watch (it prints while watching)');
  return {
    pollMs: Number(poll),
    taps,
    keepRunning:
      Boolean(options.watch) ||
      taps.length > 0 ||
      options.write !== undefined ||
      options.extraSink !== undefined,
  };
}

/**
 * Print the table, set up taps and capture, and (with --watch, --tap or -w)
 * print events until `stop` resolves. Taps and capture are closed before it returns.
 */
export async function runSession(
  machine: AttachedMachine,
  options: SessionOptions,
  io: CliIo,
  stop: Promise<unknown>,
  extraStop?: Promise<unknown>,
): Promise<void> {
  const session = checkSessionOptions(options);
  const json = Boolean(options.json);
  const topo = machine.topology();
  io.out(json ? `${JSON.stringify({ type: 'topology', topology: topo })}\n` : formatTopology(topo));
  const lv = options.libvirtChannels;
  if (lv !== undefined) {
    io.out(
      json
        ? `${JSON.stringify({ type: 'libvirt-channels', domain: lv.domain, channels: lv.channels })}\n`
        : formatDomainChannels(lv.domain, lv.channels),
    );
  }
  if (!session.keepRunning) return;

  // One capture feeds the file, an extcap's fifo and live clients (vmchan extcap).
  const capture = new Capture();
  capture.setAll(true);
  // With -w the file and live clients share one encoder (the hub): each record
  // becomes pcapng bytes once, whoever reads them.
  let file: SharedCaptureFile | undefined;
  let hub: LiveHub | undefined;
  const ringWords = options.ringBuffer ?? [];
  const stopWords = options.autostop ?? [];
  if (options.write === undefined && ringWords.length + stopWords.length > 0)
    throw new UsageError('-b and -a shape a capture file: give -w FILE too');
  if (options.write !== undefined) {
    const ring = parseRingOptions(ringWords, stopWords);
    if (typeof ring === 'string') throw new UsageError(ring);
    hub = new LiveHub({
      onDrop: (reason) => io.err(`vmchan: live capture client disconnected: ${reason}\n`),
    });
    const w = SharedCaptureFile.open(hub, options.write, ring, {
      onStop: (reason) => io.err(`vmchan: capture stopped at ${reason}\n`),
      onError: (err) => io.err(`vmchan: capture: ${err.message}\n`),
    });
    if (w instanceof CaptureError) throw new Error(w.message);
    file = w;
    capture.attach(hub);
  }
  if (options.extraSink) capture.attach(options.extraSink);
  capture.onError((err) => io.err(`vmchan: capture: ${err.message}\n`));
  const sink = new CaptureFeed(capture);
  let published: PublishedSession | undefined;
  if (options.publish !== false) {
    const p = await publishSession(
      capture,
      'attach',
      `QEMU at ${machine.qmp.addressText}`,
      (l) => io.err(`vmchan: ${l}\n`),
      undefined,
      hub,
    );
    if (p instanceof CaptureError) io.err(`vmchan: live capture unavailable: ${p.toString()}\n`);
    else published = p;
  }
  const taps: ChardevTap[] = [];
  const inPlace: InPlaceTap[] = [];
  const offs: (() => void)[] = [];
  const print = (line: string, obj: Record<string, unknown>): void =>
    io.out(json ? `${JSON.stringify(obj)}\n` : `${clock(Date.now())}  ${line}\n`);
  try {
    for (const t of session.taps) {
      const flag = t.listen === null ? t.chardev : `${t.chardev}=${t.listen}`;
      const made =
        t.listen === null
          ? await tapChardevInPlace(topo, t.chardev, { sink })
          : await tapChardev(topo, t.chardev, t.listen, { sink });
      if (isAttachFailure(made)) {
        if (
          made.kind === 'NotFound' ||
          made.kind === 'InvalidArgument' ||
          made.kind === 'Unsupported'
        ) {
          throw new UsageError(`--tap ${flag}: ${made.message}`);
        }
        throw new Error(`--tap ${flag}: ${made.message}`);
      }
      const tap = 'tap' in made ? made.tap : made;
      if ('tap' in made) inPlace.push(made);
      else taps.push(tap);
      offs.push(tap.onEvent((e) => print(`[tap]    ${e.text}`, { type: 'tap', ...e })));
      if ('tap' in made) {
        for (const n of made.notes) io.err(`vmchan: tap on ${t.chardev}: ${n}\n`);
        print(
          `[tap]    chardev ${t.chardev}: tapped in place at ${made.path}: applications connect as before, through vmchan` +
            (made.waitingForReconnect
              ? ' (the client connected before keeps talking to QEMU directly, uncaptured, until it reconnects)'
              : ''),
          {
            type: 'tap',
            kind: 'listening',
            mode: 'in-place',
            chardev: t.chardev,
            address: made.path,
            waiting: made.waitingForReconnect,
          },
        );
      } else {
        print(
          `[tap]    chardev ${t.chardev}: point the host application at ${tap.address} instead of QEMU's socket`,
          { type: 'tap', kind: 'listening', chardev: t.chardev, address: tap.address },
        );
      }
    }
    if (file && taps.length + inPlace.length === 0) {
      io.err('vmchan: no --tap given: the capture holds port events only, no data\n');
    }

    if (!json) {
      io.out(
        `watching ${machine.qmp.addressText}: QMP events marked [event], query-chardev changes [poll]` +
          (session.pollMs > 0 ? ` (every ${session.pollMs} ms)` : ' (polling off)') +
          '; VSERPORT_CHANGE comes at most once a second per port and only for ports with an id. Ctrl-C stops.\n',
      );
    }
    offs.push(
      machine.onEvent((e) => {
        print(formatEvent(e), { type: 'event', ...e });
        writeEventRecord(sink, e);
      }),
    );
    if (options.vring) offs.push(...watchVrings(machine, print));
    await Promise.race(extraStop ? [stop, extraStop] : [stop]);
  } finally {
    for (const off of offs) off();
    for (const tap of taps) await tap.close();
    // QEMU's socket nodes go back to their paths
    for (const t of inPlace) io.err(`vmchan: ${await t.close()}\n`);
    await published?.close();
    capture.close();
    if (file) {
      const err = file.close();
      if (err) io.err(`vmchan: ${err.message}\n`);
      else if (!json) io.out(`capture: ${file.records} records written to ${options.write}\n`);
    }
  }
}

// ---- formatting ------------------------------------------------------------------------------

export function formatTopology(t: AttachedTopology): string {
  const lines: string[] = [];
  lines.push(
    `QEMU ${t.qemu.version} at ${t.qmp}: ${t.devices.length} virtio-serial device${t.devices.length === 1 ? '' : 's'}`,
  );
  for (const d of t.devices) {
    lines.push(
      `  ${d.name}${d.id === null ? ' (no id)' : ''}: bus ${d.bus}, max_ports ${d.maxPorts ?? '?'}, ` +
        `${d.queues ?? '?'} virtqueues, ${d.status.includes('VIRTIO_CONFIG_S_DRIVER_OK') ? 'driver ready' : 'driver not ready'}`,
    );
  }
  if (t.ports.length === 0) {
    lines.push('no ports');
    return lines.join('\n') + '\n';
  }
  const chardevs = new Map(t.chardevs.map((c) => [c.id, c]));
  const rows = t.ports.map((p) => {
    const c = p.chardev === null ? undefined : chardevs.get(p.chardev);
    return [
      p.device,
      String(p.nr),
      p.id ?? '-',
      p.name ?? '-',
      p.kind,
      p.chardev ?? '-',
      p.guestOpen === null ? '?' : p.guestOpen ? 'yes' : 'no',
      p.hostConnected === null ? 'n/a' : p.hostConnected ? 'yes' : 'no',
      c ? c.filename.replace(/^disconnected:/, '') : '-',
    ];
  });
  lines.push('');
  lines.push(
    ...table(
      ['DEVICE', 'NR', 'ID', 'NAME', 'KIND', 'CHARDEV', 'GUEST OPEN', 'HOST CONNECTED', 'BACKEND'],
      rows,
    ),
  );
  return lines.join('\n') + '\n';
}

/** The domain's channels as its XML tells them: target, chardev, source, libvirt's view and role. */
export function formatDomainChannels(domain: string, channels: readonly DomainChannel[]): string {
  const lines = [
    '',
    `libvirt domain ${domain}: ${channels.length} virtio channel${channels.length === 1 ? '' : 's'} in its XML`,
  ];
  if (channels.length === 0) return lines.join('\n') + '\n';
  lines.push(
    ...table(
      ['TARGET', 'CHARDEV', 'SOURCE', 'GUEST (LIBVIRT)', 'ROLE'],
      channels.map((c) => [
        c.target ?? `(${c.element})`,
        c.chardev ?? '-',
        `${c.type}${c.mode !== null ? `/${c.mode}` : ''}${c.path !== null ? ` ${c.path}` : ''}`,
        c.state ?? '-',
        c.roleText,
      ]),
    ),
  );
  return lines.join('\n') + '\n';
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

export function formatEvent(e: AttachEvent): string {
  const source = `[${e.source === 'command' ? 'vmchan' : e.source}]`.padEnd(8);
  return `${source} ${e.kind.padEnd(14)} ${e.text}`;
}

function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

const CAPTURED_EVENTS: Partial<Record<AttachEvent['kind'], PortEventType>> = {
  'guest-open': 'guest-open',
  'guest-close': 'guest-close',
  'port-added': 'port-added',
  'port-removed': 'port-removed',
};

/** Port events go into the capture too (the tap records host-open/close itself). */
function writeEventRecord(sink: CaptureSink, e: AttachEvent): void {
  const type = CAPTURED_EVENTS[e.kind];
  if (!type || e.device === null || e.nr === null || e.late) return;
  sink.write(
    eventRecord({
      time: BigInt(Math.round(e.time * 1000)) * 1000n || nowNs(),
      device: e.device,
      port: e.nr,
      portName: e.port ?? undefined,
      event: type,
      text: `${e.text} [${e.source}]`,
    }),
  );
}

/** Print the port queues' indices whenever they move (2 Hz polling, backing off when slow). */
function watchVrings(
  machine: AttachedMachine,
  print: (line: string, obj: Record<string, unknown>) => void,
): (() => void)[] {
  const offs: (() => void)[] = [];
  for (const d of machine.devices) {
    const poller = machine.vring(d.name, { elements: 0 });
    if (isAttachFailure(poller)) continue;
    const last = new Map<number, string>();
    offs.push(
      poller.onSnapshot((snaps: AttachedQueueSnapshot[]) => {
        for (const q of snaps) {
          const key = `${q.qemu.lastAvailIdx}/${q.qemu.usedIdx}/${q.qemu.shadowAvailIdx}`;
          if (last.get(q.queue) === key) continue;
          const first = !last.has(q.queue);
          last.set(q.queue, key);
          if (first) continue;
          print(
            `[vring]  ${q.device} q${q.queue} (${q.role}): last-avail-idx ${q.qemu.lastAvailIdx}, used-idx ${q.qemu.usedIdx}, ` +
              `shadow-avail-idx ${q.qemu.shadowAvailIdx}, inuse ${q.qemu.inuse}`,
            { type: 'vring', device: q.device, queue: q.queue, role: q.role, ...q.qemu },
          );
        }
      }),
    );
    poller.start();
    offs.push(() => poller.stop());
  }
  return offs;
}
