/**
 * `vmchan extcap`: vmchan as one of Wireshark's external capture programs
 * (extcap), so every running lab and attached QEMU shows in Wireshark's and
 * tshark's interface list and captures live into them.
 *
 * Wireshark runs the program with:
 *   --extcap-interfaces [--extcap-version=V]       the interfaces, one line each
 *   --extcap-dlts --extcap-interface I              the link type (147, USER0)
 *   --extcap-config --extcap-interface I            the options shown in the dialog
 *   --extcap-interface I --extcap-capture-filter F  check a capture filter: nothing on
 *                                                   stdout when it is good, the problem when not
 *   --capture --extcap-interface I --fifo P [--extcap-capture-filter F] [options]
 *                                                   write pcapng to P until SIGTERM or P's reader goes
 * The capture filter is vmchan's filter language (as `vmchan read -Y`).
 *
 * Interfaces: `vmchan-lab-<pid>` / `vmchan-attach-<pid>` for each running
 * session in the registry (core/capture/session-registry.ts), streamed from
 * the session's live socket; and `vmchan-qmp`, which attaches to a QEMU by
 * its QMP socket or libvirt domain (the dialog's options) and captures its
 * port events and tapped traffic in this process.
 *
 * `vmchan extcap install [--user|--system]` and `uninstall` put a launcher
 * into Wireshark's extcap folder and the dissector into its Lua plugins
 * folder, both asked of `tshark -G folders` (cli/extcap-install.ts).
 */
import * as fs from 'node:fs';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import type { Command } from 'commander';
import { CaptureError } from '../core/capture/error.js';
import { isFilterError, parseFilter } from '../core/capture/filter.js';
import { connectLive, LiveSink } from '../core/capture/live-server.js';
import { LINKTYPE_USER0, PcapngWriter, FdOutput } from '../core/capture/pcapng-writer.js';
import { findSession, listSessions } from '../core/capture/session-registry.js';
import { VERSION } from '../core/version.js';
import { installExtcap, uninstallExtcap, type InstallScope } from './extcap-install.js';
import { UsageError } from './errors.js';

/** The interface that attaches to a QEMU named in the capture dialog. */
export const QMP_INTERFACE = 'vmchan-qmp';

export function registerExtcap(program: Command): void {
  program
    .command('extcap')
    .summary("Wireshark's external capture interface (and its install/uninstall)")
    .description(
      'Run by Wireshark and tshark as an extcap program: lists running vmchan sessions as\n' +
        'capture interfaces and streams their capture live.\n\n' +
        '  vmchan extcap install [--user|--system]   put vmchan into Wireshark (default --user)\n' +
        '  vmchan extcap uninstall [--user|--system] take it out again',
    )
    .helpOption(false)
    .passThroughOptions()
    .allowUnknownOption()
    .argument('[args...]', 'extcap arguments, as Wireshark passes them')
    .action(async (args: string[]) => {
      process.exitCode = await runExtcap(args);
    });
}

interface ExtcapArgs {
  interfaces: boolean;
  dlts: boolean;
  config: boolean;
  capture: boolean;
  iface: string | undefined;
  fifo: string | undefined;
  filter: string | undefined;
  qmp: string | undefined;
  domain: string | undefined;
  tap: string | undefined;
}

function parseExtcapArgs(args: string[]): ExtcapArgs {
  const { values } = parseArgs({
    args,
    strict: false,
    options: {
      'extcap-interfaces': { type: 'boolean' },
      'extcap-version': { type: 'string' },
      'extcap-dlts': { type: 'boolean' },
      'extcap-config': { type: 'boolean' },
      'extcap-interface': { type: 'string' },
      'extcap-capture-filter': { type: 'string' },
      capture: { type: 'boolean' },
      fifo: { type: 'string' },
      qmp: { type: 'string' },
      domain: { type: 'string' },
      tap: { type: 'string' },
    },
  });
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  return {
    interfaces: values['extcap-interfaces'] === true,
    dlts: values['extcap-dlts'] === true,
    config: values['extcap-config'] === true,
    capture: values['capture'] === true,
    iface: str(values['extcap-interface']),
    fifo: str(values['fifo']),
    filter: str(values['extcap-capture-filter']),
    qmp: str(values['qmp']),
    domain: str(values['domain']),
    tap: str(values['tap']),
  };
}

/** Run `vmchan extcap ARGS`; resolves to the exit status. */
export async function runExtcap(args: string[]): Promise<number> {
  const out = (s: string): void => void process.stdout.write(s);
  if (args[0] === 'install' || args[0] === 'uninstall') {
    const scope = installScope(args.slice(1));
    const result = args[0] === 'install' ? installExtcap(scope) : uninstallExtcap(scope);
    for (const line of result) out(`${line}\n`);
    return 0;
  }
  if (args.includes('--help') || args.includes('-h') || args.length === 0) {
    out(
      'usage: vmchan extcap --extcap-interfaces | --extcap-dlts|--extcap-config --extcap-interface I\n' +
        '       vmchan extcap --capture --extcap-interface I --fifo PATH [--extcap-capture-filter F]\n' +
        '       vmchan extcap install|uninstall [--user|--system]\n',
    );
    return 0;
  }
  const a = parseExtcapArgs(args);
  if (a.interfaces) {
    out(interfacesText());
    return 0;
  }
  if (a.iface === undefined) throw new UsageError('--extcap-interface is required');
  checkInterface(a.iface);
  if (a.dlts) {
    out(`dlt {number=${LINKTYPE_USER0}}{name=USER0}{display=vmchan virtio-serial channel}\n`);
    return 0;
  }
  if (a.config) {
    out(configText(a.iface));
    return 0;
  }
  const problem = a.filter === undefined ? undefined : filterProblem(a.filter);
  if (!a.capture) {
    // Wireshark's filter check: silence means valid, a line says why not.
    if (problem !== undefined) out(`${problem}\n`);
    return 0;
  }
  if (a.fifo === undefined) throw new UsageError('--capture needs --fifo PATH');
  const fifo = a.fifo;
  try {
    if (problem !== undefined) throw new UsageError(`capture filter: ${problem}`);
    if (a.iface === QMP_INTERFACE) return await captureAttached(a, fifo);
    return await captureSession(a.iface, fifo, a.filter);
  } catch (err) {
    // The one line first (Wireshark shows the extcap's stderr), then the fifo.
    const usage = err instanceof UsageError;
    process.stderr.write(`vmchan: ${err instanceof Error ? err.message : String(err)}\n`);
    await releaseFifo(fifo);
    return usage ? 2 : 1;
  }
}

/** How long a refused capture waits for dumpcap to open the fifo before it gives up. */
const FIFO_READER_WAIT_MS = 10_000;

/**
 * A refused capture never writes to the fifo, but it must not leave its
 * reader waiting: dumpcap 4.0 opens the extcap fifo non-blocking and waits
 * in select() for the first bytes, with no timeout and no look at whether
 * the extcap is still alive; tshark deletes the fifo once the extcap has
 * exited, so nobody could open it later. So, before exiting, open the write
 * side (once dumpcap has the read side open) and close it: dumpcap reads
 * end-of-file, stops at once, and tshark shows the extcap's stderr
 * ("Error by extcap pipe: vmchan: ...") and exits non-zero.
 * Non-blocking opens, retried while no reader is there (ENXIO), so a fifo
 * nobody reads (the filter check of Wireshark's dialog) costs at most the wait.
 */
export async function releaseFifo(fifo: string, waitMs = FIFO_READER_WAIT_MS): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    try {
      const st = fs.statSync(fifo);
      if (!st.isFIFO()) return; // only ever a fifo: never truncate a file by mistake
      const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      fs.closeSync(fd);
      return;
    } catch (err) {
      // ENXIO: no reader yet. Anything else (gone, not ours): nothing to release.
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() >= deadline) return;
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

function installScope(args: string[]): InstallScope {
  let scope: InstallScope = 'user';
  for (const arg of args) {
    if (arg === '--user') scope = 'user';
    else if (arg === '--system') scope = 'system';
    else throw new UsageError(`unknown option '${arg}' (expected --user or --system)`);
  }
  return scope;
}

/** extcap's braces syntax: no brace or newline may leak into a value. */
function clean(text: string): string {
  return text.replace(/[{}\n\r]/g, ' ');
}

function interfacesText(): string {
  const lines = [
    `extcap {version=${VERSION}}{help=https://github.com/vmchan/vmchan}`,
    ...listSessions().map(
      (s) => `interface {value=${s.id}}{display=vmchan ${s.kind}: ${clean(s.description)}}`,
    ),
    `interface {value=${QMP_INTERFACE}}{display=vmchan: attach to a QEMU (QMP socket or libvirt domain)}`,
  ];
  return lines.join('\n') + '\n';
}

function checkInterface(iface: string): void {
  if (iface === QMP_INTERFACE) return;
  if (findSession(iface) === undefined)
    throw new UsageError(
      `no running vmchan session '${iface}' (see vmchan extcap --extcap-interfaces)`,
    );
}

function configText(iface: string): string {
  if (iface !== QMP_INTERFACE) return '';
  return (
    [
      'arg {number=0}{call=--qmp}{display=QMP socket}{type=fileselect}{mustexist=true}' +
        '{tooltip=The QMP socket of the QEMU to attach to (-qmp unix:PATH,server=on)}',
      'arg {number=1}{call=--domain}{display=libvirt domain}{type=string}' +
        '{tooltip=A libvirt domain name, instead of a QMP socket}',
      'arg {number=2}{call=--tap}{display=Tap (CHARDEV=LISTEN)}{type=string}' +
        '{tooltip=Capture the traffic of a socket chardev: point its host application at LISTEN}',
    ].join('\n') + '\n'
  );
}

/** Why a capture filter is not valid vmchan filter language, or undefined. */
export function filterProblem(filter: string): string | undefined {
  if (filter.trim() === '') return undefined;
  const parsed = parseFilter(filter);
  return isFilterError(parsed) ? parsed.toString() : undefined;
}

/** Resolves on SIGTERM/SIGINT (Wireshark stops an extcap with SIGTERM). */
function untilStopped(): { promise: Promise<void>; cancel(): void } {
  let cancel = (): void => {};
  const promise = new Promise<void>((resolve) => {
    const on = (): void => {
      cancel();
      resolve();
    };
    cancel = () => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
  return { promise, cancel };
}

/** Open the fifo Wireshark reads (it is open for reading already, so this does not wait). */
function openFifo(fifo: string): number {
  try {
    return fs.openSync(fifo, 'w');
  } catch (err) {
    throw new Error(`cannot open the fifo ${fifo}: ${(err as Error).message}`, { cause: err });
  }
}

/** A running session: its live socket, copied to the fifo as it comes. */
async function captureSession(
  iface: string,
  fifo: string,
  filter: string | undefined,
): Promise<number> {
  const session = findSession(iface);
  if (session === undefined) throw new Error(`the vmchan session '${iface}' is gone`);
  const stop = untilStopped();
  const live = await connectLive(session.socket, filter);
  if (live instanceof CaptureError) {
    stop.cancel();
    throw new Error(live.message);
  }
  const fd = openFifo(fifo);
  const sink: Writable = fs.createWriteStream('', { fd, autoClose: true });
  const done = new Promise<void>((resolve) => {
    // The fifo's reader went away (EPIPE), or the session ended: stop either way.
    sink.on('error', () => resolve());
    sink.on('close', () => resolve());
    live.socket.on('close', () => resolve());
    live.socket.on('error', () => resolve());
  });
  if (live.rest.length > 0) sink.write(live.rest);
  live.socket.pipe(sink);
  live.socket.resume();
  await Promise.race([stop.promise, done]);
  stop.cancel();
  live.socket.destroy();
  sink.destroy();
  return 0;
}

/** `vmchan-qmp`: attach in this process and write its capture to the fifo. */
async function captureAttached(a: ExtcapArgs, fifo: string): Promise<number> {
  const qmp = a.qmp ?? (a.domain === undefined ? undefined : libvirtMonitor(a.domain));
  if (qmp === undefined || qmp === '')
    throw new UsageError('the vmchan-qmp interface needs --qmp PATH or --domain NAME');
  const filter =
    a.filter === undefined || a.filter.trim() === '' ? undefined : parseFilter(a.filter);
  if (isFilterError(filter)) throw new UsageError(filter.toString());
  const fd = openFifo(fifo);
  const writer = PcapngWriter.to(new FdOutput(fd, fifo), { flushIntervalMs: 1000 });
  if (writer instanceof CaptureError) throw new Error(writer.message);
  // Loaded here, not at the top: Wireshark runs `vmchan extcap` for its
  // interface lists at every start, and those need none of attach's engine.
  const { runAttach } = await import('./attach.js');
  const stop = untilStopped();
  try {
    await runAttach(
      {
        qmp,
        ...(a.tap !== undefined && a.tap !== '' ? { tap: [a.tap] } : {}),
        extraSink: new LiveSink(writer, filter),
        publish: false,
      },
      { out: () => {}, err: (t) => void process.stderr.write(t) },
      stop.promise,
    );
  } finally {
    stop.cancel();
    writer.close();
  }
  return 0;
}

/**
 * libvirt keeps a domain's QMP monitor at
 * /var/lib/libvirt/qemu/domain-<id>-<name>/monitor.sock (system) or under
 * ~/.config/libvirt/qemu/lib (session); libvirt holds it, so QEMU's
 * one-client rule may refuse us: the attach error says so.
 */
function libvirtMonitor(domain: string): string {
  const roots = ['/var/lib/libvirt/qemu', `${process.env['HOME'] ?? ''}/.config/libvirt/qemu/lib`];
  for (const root of roots) {
    let names: string[];
    try {
      names = fs.readdirSync(root);
    } catch {
      continue;
    }
    const dir = names.find(
      (n) => /^domain-\d+-/.test(n) && n.replace(/^domain-\d+-/, '') === domain,
    );
    if (dir !== undefined) return `${root}/${dir}/monitor.sock`;
  }
  throw new UsageError(`no running libvirt domain '${domain}' (looked in ${roots.join(', ')})`);
}
