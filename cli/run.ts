/**
 * `vmchan run [options] [--] QEMU-ARGS...`: a headless virtio-serial lab from
 * a QEMU command line. The chardevs become real host endpoints (sockets,
 * pipes, ptys, files...), the guest is the engine's Linux-like guest, and
 * its side of every port is a unix socket in the guest directory. With no
 * QEMU arguments it runs the demo lab (core/api/server/demo-lab.ts, the app's too).
 *
 * Output (stdout; stderr when a stdio chardev owns stdout): one block per
 * host endpoint and per guest endpoint, the ignored options, the workloads,
 * then a line `ready`. It runs until SIGINT, SIGTERM or SIGHUP, then stops
 * everything, removes the runtime directory and exits 0.
 */
import { makeRuntimeDir } from '../core/base/runtime-dir.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Option, type Command } from 'commander';
import { tapLab, type LabTap } from '../core/capture/lab-tap.js';
import { isCaptureError, type CaptureError } from '../core/capture/error.js';
import { LiveHub } from '../core/capture/live-server.js';
import { parseRingOptions } from '../core/capture/ring-writer.js';
import { SharedCaptureFile } from '../core/capture/shared-file.js';
import type { CaptureSink } from '../core/capture/record.js';
import { publishSession } from '../core/capture/live-session.js';
import { GuestDir, isGuestDirError } from '../core/guestdir/index.js';
import { hostEndpoints } from '../core/machine/endpoints.js';
import { Machine, StartError } from '../core/machine/machine.js';
import { attachMonitors } from '../core/monitor/index.js';
import { QMP_EVENTS_MODES, type QmpEventsMode } from '../core/monitor/event-throttle.js';
import { CHARDEV_CHANGE_MODES, type ChardevChangeMode } from '../core/monitor/hub.js';
import { AGENT_PORT_NAME, startGuestAgents } from '../core/qga/index.js';
import { parseQemuArgs } from '../core/machine/qemu-cmdline.js';
import { QEMU_OPTIONS } from '../core/machine/qemu-tables.js';
import type { Chardev, ChardevBackend, Topology } from '../core/machine/topology.js';
import {
  findGuestPort,
  formatWorkload,
  isWorkloadError,
  parseWorkload,
  SHA1_HELP,
  startWorkloads,
  type Workload,
  type WorkloadSpec,
} from '../core/workloads/index.js';
import { prepareCaptureFile, type PendingCaptureFile } from './capture-file.js';
import { UsageError } from './errors.js';
import { demoGuestWorkloads, demoQemuArgs } from '../core/api/server/demo-lab.js';

interface RunOptions {
  guestDir?: string;
  workload?: string[];
  ring?: 'split' | 'packed';
  write?: string;
  ringBuffer?: string[];
  autostop?: string[];
  quiet?: boolean;
  /** false with --no-agent. */
  agent?: boolean;
  qmpEvents?: QmpEventsMode;
  qmpChardevChange?: ChardevChangeMode;
}

const DESCRIPTION = `Run a virtio-serial lab with no VM, from a QEMU command line.

The -chardev backends become real host endpoints (unix/tcp sockets, pipes,
ptys, files, udp, ringbuf, null), the -device virtio-serial/virtserialport/
virtconsole options become the emulated machine, and the guest (a Linux-like
driver) boots at once. Its side of every port is a unix socket in the guest
directory: connecting there is a guest program opening the port.

Monitors (-qmp, -monitor, -mon) answer QMP and HMP on their chardevs, and a
guest agent runs on a port named org.qemu.guest_agent.0 (--no-agent: none).

Without QEMU arguments, runs the case study of seed 002: console.0, test1,
test2 and org.qemu.guest_agent.0 on unix sockets, echo on console.0 and
test1, a text source on test2, a QMP and an HMP monitor.`;

const HELP_AFTER = `
QEMU arguments:
  Everything after vmchan's own options (or after --) is QEMU's, legacy
  syntax included (server,nowait). Options outside the virtio-serial
  topology (-drive, -enable-kvm...) are listed and ignored; -m sizes the
  guest's RAM (default 128 MiB), which bounds hot-plugged controllers. Relative
  paths are taken from the working directory, as QEMU does. Put -- before
  QEMU arguments that start with -w (-watchdog) so they are not read as -w.

Workloads (--workload PORT=KIND[:ARG], repeatable; PORT is the port's name,
qdev id, vportDpN or hvcK):
  echo              write back everything read
  sink              read and count
  source[:RATE]     numbered 64-byte text lines at RATE bytes/s (default 4K;
                    suffixes K and M, binary)
  sha1              the file exchange of seed 002, served on PORT (the
                    command port); requests name the data port:
                      PING                          -> PONG
                      RECV <port> <bytes> [<sha1>]  -> READY RECV <port> <bytes>
                        (send the bytes to <port>)  -> DONE RECV <bytes> <sha1> [PASS|FAIL]
                      SEND <port> <bytes> [<seed>]  -> READY SEND <port> <bytes>
                        (read the bytes from <port>)-> DONE SEND <bytes> <sha1>
                      errors                        -> ERR <message>
                    SEND's bytes are xorshift32 from <seed> (default 1).

Guest directory (--guest-dir, default RUNTIME/guest): a socket per port,
named after the port (vportDpN when unnamed, hvcK for an unnamed console),
mode 0600. One client at a time; a port already open in the guest answers
"vmchan: port NAME is already open in the guest (EBUSY)". When the host
hangs up the guest side stays connected and waits for the next host.

Examples:
  vmchan run
  vmchan run -- -chardev socket,path=/tmp/foo,server,nowait,id=foo \\
      -device virtio-serial -device virtserialport,chardev=foo,name=org.fedoraproject.port.0
  vmchan run --workload test1=sha1 -- \\
      -chardev socket,path=/tmp/vs/test1,server=on,wait=off,id=test1 \\
      -chardev socket,path=/tmp/vs/test2,server=on,wait=off,id=test2 \\
      -device virtio-serial -device virtserialport,chardev=test1,name=test1 \\
      -device virtserialport,chardev=test2,name=test2
    then: (printf 'SEND test2 1048576\\n'; sleep 2) | socat - UNIX-CONNECT:/tmp/vs/test1 &
          socat -u UNIX-CONNECT:/tmp/vs/test2 - | head -c 1048576 | sha1sum
  vmchan run -w lab.pcapng --guest-dir /tmp/guest -- -chardev pty,id=p \\
      -device virtio-serial -device virtconsole,chardev=p
  socat - UNIX-CONNECT:/tmp/guest/hvc0      # type into the guest's console`;

export function registerRun(program: Command): void {
  // Everything after `run` and its own options belongs to QEMU (the program
  // has positional options, main.ts): `vmchan run -chardev ...` must not
  // read -chardev as vmchan's.
  program
    .command('run')
    .summary('run a headless virtio-serial lab from a QEMU command line')
    .description(DESCRIPTION)
    .usage('[options] [--] [QEMU-ARGS...]')
    .argument('[qemu-args...]', 'QEMU options (-chardev, -device, -mon, -qmp, -monitor, ...)')
    .option(
      '--guest-dir <dir>',
      'where the guest side of each port appears (default RUNTIME/guest)',
    )
    .option(
      '--workload <port=kind[:arg]>',
      'run a built-in guest program on a port: echo, sink, source[:RATE], sha1 (repeatable)',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .addOption(
      new Option('--ring <format>', 'virtqueue format of every device').choices([
        'split',
        'packed',
      ]),
    )
    .addOption(
      new Option(
        '--qmp-events <mode>',
        "QMP events: 'qemu' rate-limits VSERPORT_CHANGE as QEMU does (one per port per second), 'all' sends every change",
      )
        .choices([...QMP_EVENTS_MODES])
        .default('qemu'),
    )
    .addOption(
      new Option(
        '--qmp-chardev-change <mode>',
        "QMP chardev-change on a port's chardev: 'qemu' refuses as QEMU 7.2 does, 'ports' swaps the backend under the running port (vmchan extra)",
      )
        .choices([...CHARDEV_CHANGE_MODES])
        .default('qemu'),
    )
    .option('-w, --write <file>', 'capture everything to a pcapng file (vmchan read, Wireshark)')
    .option(
      '-b, --ring-buffer <key:value>',
      'with -w, a ring of files as dumpcap: filesize:KB, duration:S, files:N (repeatable)',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option(
      '-a, --autostop <key:value>',
      'with -w, stop capturing at filesize:KB, duration:S or packets:N (repeatable)',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option('--no-agent', `no guest agent on a port named ${AGENT_PORT_NAME}`)
    .option('--quiet', 'print only the ready line (and problems)')
    .helpOption('--help', 'show this help')
    .passThroughOptions()
    .allowUnknownOption()
    .addHelpText('after', HELP_AFTER)
    .action(async (qemuArgs: string[], options: RunOptions, command: Command) => {
      const fixed = reclaimQemuOption(command, qemuArgs, options);
      if (fixed.length === 1 && (fixed[0] === '-h' || fixed[0] === '-help')) {
        command.outputHelp();
        return;
      }
      await runLab(fixed, options);
    });
}

/**
 * `-watchdog` as the first QEMU argument reads as vmchan's `-w atchdog`
 * (short options cluster). When the value of -w together with -w is a QEMU
 * option, give it back to QEMU.
 */
function reclaimQemuOption(command: Command, qemuArgs: string[], options: RunOptions): string[] {
  // commander keeps the words it was given on the program (not in its typings).
  const raw = (command.parent as { rawArgs?: string[] } | null)?.rawArgs ?? [];
  // -boot and -audio... read as -b oot / -a udio in the same way.
  for (const [flag, key] of [
    ['-b', 'ringBuffer'],
    ['-a', 'autostop'],
  ] as const) {
    const values = options[key];
    const first = values?.[0];
    if (
      first !== undefined &&
      raw.includes(`${flag}${first}`) &&
      QEMU_OPTIONS.has(`${flag}${first}`)
    ) {
      options[key] = values!.slice(1);
      qemuArgs = [`${flag}${first}`, ...qemuArgs];
    }
  }
  if (options.write === undefined) return qemuArgs;
  const joined = `-w${options.write}`;
  if (raw.includes(joined) && QEMU_OPTIONS.has(joined)) {
    delete options.write;
    return [joined, ...qemuArgs];
  }
  return qemuArgs;
}

// ------------------------------------------------------------------ helpers

/**
 * The demo lab (core/api/server/demo-lab.ts, the app's too) and, as `vmchan run`'s
 * own addition, its monitors in the legacy shorthand people paste from QEMU
 * how-tos.
 */
function demoArgs(dir: string): string[] {
  return [
    ...demoQemuArgs(dir),
    '-qmp',
    `unix:${path.join(dir, 'qmp')},server,nowait`,
    '-monitor',
    `unix:${path.join(dir, 'hmp')},server,nowait`,
  ];
}

/** QEMU takes relative paths from its working directory; the Machine from its runtime dir. */
function absolutePaths(t: Topology, cwd: string): Topology {
  const abs = (p: string): string => path.resolve(cwd, p);
  const fix = (b: ChardevBackend): ChardevBackend => {
    switch (b.kind) {
      case 'socket':
        return b.address.type === 'unix'
          ? { ...b, address: { ...b.address, path: abs(b.address.path) } }
          : b;
      case 'pipe':
      case 'file':
      case 'serial':
        return { ...b, path: abs(b.path) };
      default:
        return b;
    }
  };
  const chardevs = t.chardevs.map((c): Chardev => ({
    ...c,
    backend: fix(c.backend),
    ...(c.logfile !== undefined ? { logfile: abs(c.logfile) } : {}),
  }));
  return { ...t, chardevs };
}

function parseWorkloads(texts: readonly string[]): WorkloadSpec[] {
  return texts.map((t) => {
    const spec = parseWorkload(t);
    if (isWorkloadError(spec)) throw new UsageError(`--workload ${spec.message}`);
    return spec;
  });
}

function quoteArg(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

// ---------------------------------------------------------------- the run

async function runLab(qemuArgs: string[], options: RunOptions): Promise<void> {
  const demo = qemuArgs.length === 0;
  let specs = parseWorkloads(options.workload ?? []);
  if (demo) {
    // The demo's own workloads, except on ports the user gave one.
    const mine = new Set(specs.map((s) => s.port));
    specs = [...demoGuestWorkloads('paced').filter((s) => !mine.has(s.port)), ...specs];
  }

  // Parse before creating anything: a bad command line leaves nothing behind.
  let topology: Topology | null = null;
  if (!demo) {
    const parsed = parseQemuArgs(qemuArgs);
    if (!parsed.ok) throw new UsageError(parsed.error.toString());
    topology = absolutePaths(parsed.value, process.cwd());
  }

  const runtimeDir = makeRuntimeDir();
  const cleanup: (() => Promise<void> | void)[] = [
    () => fs.rmSync(runtimeDir, { recursive: true, force: true }),
  ];
  const undo = async (): Promise<void> => {
    for (const step of cleanup.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        process.stderr.write(`vmchan: while stopping: ${(error as Error).message}\n`);
      }
    }
  };

  try {
    if (topology === null) {
      const parsed = parseQemuArgs(demoArgs(runtimeDir));
      if (!parsed.ok) throw new Error(`demo: ${parsed.error.toString()}`);
      topology = parsed.value;
    }
    const usesStdio = topology.chardevs.some((c) => c.backend.kind === 'stdio');
    // A stdio chardev is the guest's terminal on stdout: our own lines go to stderr then.
    const out = usesStdio ? process.stderr : process.stdout;
    const info = (line: string): void => {
      if (!options.quiet) out.write(`${line}\n`);
    };
    const notice = (line: string): void => void process.stderr.write(`vmchan: ${line}\n`);

    // The capture file first, so the tap sees the whole boot. With -w the file
    // and live clients (vmchan extcap) share one encoder, the hub: each record
    // becomes pcapng bytes once, whoever reads them.
    let tap: LabTap | null = null;
    let writer: CaptureSink | null = null;
    let hub: LiveHub | undefined;
    // A plain -w FILE is written to a new file beside FILE and renamed onto it
    // once the lab is up: FILE survives a failed start. A ring of files
    // (-b, -a) writes numbered files of its own and never touches FILE.
    let pending: PendingCaptureFile | null = null;
    const ringWords = options.ringBuffer ?? [];
    const stopWords = options.autostop ?? [];
    if (options.write === undefined && ringWords.length + stopWords.length > 0)
      throw new UsageError('-b and -a shape a capture file: give -w FILE too');
    if (options.write !== undefined) {
      const shared = new LiveHub({
        onDrop: (reason) => notice(`live capture client disconnected: ${reason}`),
      });
      const fileHooks = {
        onStop: (reason: string) => notice(`capture stopped at ${reason}`),
        onError: (err: CaptureError) => notice(`capture: ${err.message}`),
      };
      let file: SharedCaptureFile;
      if (ringWords.length + stopWords.length > 0) {
        const ring = parseRingOptions(ringWords, stopWords);
        if (typeof ring === 'string') throw new UsageError(ring);
        const created = SharedCaptureFile.open(
          shared,
          path.resolve(options.write),
          ring,
          fileHooks,
        );
        if (isCaptureError(created))
          throw new UsageError(`-w ${options.write}: ${created.message}`);
        file = created;
      } else {
        const prepared = prepareCaptureFile(options.write, shared, fileHooks);
        if (typeof prepared === 'string') throw new UsageError(prepared);
        pending = prepared;
        file = prepared.writer;
        const p = prepared;
        cleanup.push(() => p.discard());
      }
      // Runs after the tap stopped (cleanup runs backwards): the file keeps the last records.
      cleanup.push(() => void file.close());
      hub = shared;
      writer = shared;
    }

    const machine = await Machine.start(topology, {
      runtimeDir,
      ...(options.ring !== undefined ? { ring: options.ring } : {}),
      onNotice: notice,
      // Always tapped: without -w the tap has no sink and costs nothing until a
      // live client (vmchan extcap) attaches to its capture.
      onLab: (lab) => {
        tap = tapLab(lab, writer);
      },
    });
    if (machine instanceof StartError) {
      (tap as LabTap | null)?.stop();
      // Nothing ran: the new capture file goes; the user's FILE was never touched.
      pending?.discard();
      // A device QEMU refuses is a mistake in the arguments (exit 2); a socket that cannot be bound is not.
      if (machine.stage === 'device' || machine.stage === 'topology') {
        throw new UsageError(machine.message);
      }
      throw new Error(machine.message);
    }
    cleanup.push(() => machine.close());
    // Every lost byte is shown: one summary line on SIGUSR1 and when the lab stops.
    const dropsLine = (): string => `vmchan run: ${machine.lab.drops.summary()}`;
    const onUsr1 = (): void => void out.write(`${dropsLine()}\n`);
    process.on('SIGUSR1', onUsr1);
    cleanup.push(() => {
      process.off('SIGUSR1', onUsr1);
      if (!options.quiet || machine.lab.drops.total > 0) out.write(`${dropsLine()}\n`);
    });
    if (tap !== null) {
      const t: LabTap = tap;
      cleanup.push(() => t.stop());
      const published = await publishSession(
        t.capture,
        'lab',
        `${demo ? 'demo' : 'lab'} (pid ${process.pid}${options.write !== undefined ? `, -w ${path.basename(options.write)}` : ''})`,
        notice,
        undefined,
        hub,
      );
      if (isCaptureError(published)) notice(`live capture unavailable: ${published.toString()}`);
      else {
        cleanup.push(() => published.close());
        info(`live capture: ${published.entry.id} (vmchan extcap, Wireshark)`);
      }
    }

    // `quit` on a monitor stops the run as a signal does.
    const stopped = untilSignal();
    cleanup.push(() => stopped.stop());
    const monitors = attachMonitors(machine, {
      onQuit: () => stopped.stop(),
      qmpEvents: options.qmpEvents ?? 'qemu',
      chardevChange: options.qmpChardevChange ?? 'qemu',
    });
    for (const e of monitors.errors) notice(`monitor: ${e.message}`);
    cleanup.push(() => monitors.close());

    const guestDir = await GuestDir.open(
      machine.lab,
      options.guestDir ?? path.join(runtimeDir, 'guest'),
      { onNotice: notice },
    );
    if (isGuestDirError(guestDir)) throw new Error(guestDir.message);
    cleanup.push(() => guestDir.close());

    const started = await startWorkloads(machine.lab, specs, { report: info });
    if (isWorkloadError(started)) throw new UsageError(started.message);
    const workloads: Workload[] = started;
    cleanup.push(async () => {
      await Promise.all(workloads.map((w) => w.stop()));
      for (const w of workloads) info(`workload ${w.describe()}`);
    });

    // The guest agent, unless told not to or a workload has its port.
    const agentPort = findGuestPort(machine.lab, AGENT_PORT_NAME);
    const agentTaken = workloads.some((w) => w.stats().node === agentPort?.guestPath);
    const holders = new Map(
      workloads.map((w) => [w.stats().node, `workload ${formatWorkload(w.spec)}`]),
    );
    if (options.agent !== false && !agentTaken) {
      const agents = startGuestAgents(machine.lab);
      cleanup.push(() => agents.close());
      if (agentPort !== undefined) holders.set(agentPort.guestPath, 'the guest agent');
    }

    printEndpoints(
      info,
      machine,
      guestDir,
      workloads,
      holders,
      topology,
      runtimeDir,
      demo,
      options.write,
    );
    const committed = pending?.commit() ?? null;
    if (committed !== null) notice(committed);
    out.write('ready\n');

    // A lab runs until it is told to stop (issue 13 item 8): with no socket, timer or
    // stdin reader left, Node would end the process here (exit 13, runtime dir left).
    const alive = setInterval(() => {}, 1 << 30);
    cleanup.push(() => clearInterval(alive));
    await stopped;
    info('vmchan run: stopping');
  } finally {
    await undo();
  }
}

function printEndpoints(
  info: (line: string) => void,
  machine: Machine,
  guestDir: GuestDir,
  workloads: readonly Workload[],
  /** Guest node -> the guest program that holds it open. */
  holders: ReadonlyMap<string, string>,
  topology: Topology,
  runtimeDir: string,
  demo: boolean,
  capture: string | undefined,
): void {
  const what = demo ? 'the demo lab (seed 002 case study)' : 'the lab';
  info(`vmchan run: ${what} is up; runtime dir ${runtimeDir}`);
  const hosts = hostEndpoints(machine);
  const idWidth = Math.max(0, ...hosts.map((h) => h.chardev.length));
  const kindWidth = Math.max(0, ...hosts.map((h) => h.kind.length));
  const indent = ' '.repeat(idWidth + kindWidth + 6);
  info('host endpoints (chardev, kind, where -> what it feeds):');
  for (const h of hosts) {
    const feeds = h.feeds.length > 0 ? h.feeds.join(', ') : 'nothing';
    info(`  ${h.chardev.padEnd(idWidth)}  ${h.kind.padEnd(kindWidth)}  ${h.where} -> ${feeds}`);
    if (h.connect !== null) info(`${indent}${h.connect}`);
  }
  const sockets = guestDir.sockets();
  const nameWidth = Math.max(0, ...sockets.map((s) => s.port.fileName.length));
  info(`guest endpoints (guest dir ${guestDir.dir}: port, socket -> guest node):`);
  for (const s of sockets) {
    const holder = holders.get(s.port.guestPath);
    const held = holder !== undefined ? ` (held by ${holder})` : '';
    info(`  ${s.port.fileName.padEnd(nameWidth)}  ${s.path} -> ${s.port.guestPath}${held}`);
    if (holder === undefined) {
      info(`  ${' '.repeat(nameWidth)}  socat - UNIX-CONNECT:${quoteArg(s.path)}`);
    }
  }
  if (workloads.length > 0) {
    info(
      `workloads: ${workloads.map((w) => `${formatWorkload(w.spec)} (${w.stats().node})`).join(', ')}`,
    );
  }
  if (workloads.some((w) => w.spec.kind === 'sha1')) info(`sha1 requests: ${SHA1_HELP.slice(13)}`);
  // -m is read (it sizes the guest's RAM, D11); the rest is kept as written and ignored.
  const ramMiB = machine.lab.memory.layout.reduce((n, r) => n + r.size, 0) / (1024 * 1024);
  info(`guest RAM: ${ramMiB} MiB (bounds hot-plugged controllers; -m sets it)`);
  const ignored = topology.ignored.filter((o) => o.option !== '-m');
  if (ignored.length > 0) {
    const words = ignored.map((o) =>
      [o.option, o.arg]
        .filter((x): x is string => x !== undefined && x !== '')
        .map(quoteArg)
        .join(' '),
    );
    info(`ignored (not part of the virtio-serial topology): ${words.join(' ')}`);
  }
  if (capture !== undefined) info(`capturing to ${path.resolve(capture)}`);
  if (demo) {
    const sock = (id: string): string => quoteArg(path.join(runtimeDir, id));
    info('try: read console.0 (numbered lines), ask the sha1 service on test1 for 1 MiB on test2:');
    info(`  socat -u UNIX-CONNECT:${sock('test0')} -`);
    info(`  socat -u UNIX-CONNECT:${sock('test2')} - | head -c 1048576 | sha1sum &`);
    info(`  (echo 'SEND test2 1048576'; sleep 2) | socat - UNIX-CONNECT:${sock('test1')}`);
  }
}

/**
 * Settles at SIGINT, SIGTERM or SIGHUP, or when stop() is called (a
 * monitor's quit); after that a second signal kills at once (Node's default).
 */
function untilSignal(): Promise<void> & { stop: () => void } {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  let resolve: () => void = () => {};
  const done = new Promise<void>((r) => (resolve = r));
  const stop = (): void => {
    for (const s of signals) process.off(s, stop);
    resolve();
  };
  for (const s of signals) process.on(s, stop);
  return Object.assign(done, { stop });
}
