/**
 * Boots the test guest (build.sh) in a real qemu-system-x86_64 and stops it.
 *
 * Layout of a run directory (a fresh temp dir unless one is given):
 *   qmp.sock       the QMP monitor for the test (free: the harness never uses it)
 *   control.sock   a second QMP monitor, kept for the harness's quit
 *   ttyS0.sock     the guest's serial console (the shell; see guest-shell.ts)
 *   serial.log     everything the guest printed on ttyS0 (deleted before a boot)
 *   <port id>.sock one unix socket chardev (server, wait=off) per port
 *   qga.sock       with `agent: true`: the agent channel (chardev qga0, port
 *                  id qga, org.qemu.guest_agent.0); the guest runs qemu-ga 7.2
 *                  on it (kernel command line vmchan.qga=on, build.sh)
 *
 * TCG only (KVM is not usable on these machines); a boot to a usable shell
 * takes about 5 s.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QmpClient } from '../../core/qemu/qmp-client.js';
import { isQmpError } from '../../core/qemu/qmp-error.js';
import { GuestError, GuestShell, isGuestError } from './guest-shell.js';

export const INSTALL_HINT = 'apt-get install qemu-system-x86 busybox-static';
const QEMU = 'qemu-system-x86_64';
const BUILD_SCRIPT = fileURLToPath(new URL('./build.sh', import.meta.url));

export interface PortSpec {
  /** qdev id (what VSERPORT_CHANGE and device_del name), e.g. "port1". */
  id: string;
  /** virtserialport (default) or virtconsole. */
  kind?: 'serialport' | 'console';
  /** The port name the guest sees in /dev/virtio-ports/, e.g. "org.test.port.1". */
  name?: string;
  /** Port number on the bus (QEMU picks the lowest free one otherwise). */
  nr?: number;
  /** Chardev id (default "c-<id>"); the chardev is a unix socket server, wait=off. */
  chardev?: string;
}

export interface StartGuestOptions {
  ports?: PortSpec[];
  /** virtio-serial-pci max_ports (default 8). */
  maxPorts?: number;
  /** Machine type (default q35, as the recorded samples). */
  machine?: string;
  memoryMb?: number;
  /** Added to the kernel command line. */
  append?: string;
  extraArgs?: string[];
  /** Time allowed from start to a usable shell with all named ports linked (default 90 s). */
  bootTimeoutMs?: number;
  /** Use this directory instead of a fresh temp dir (kept after stop). */
  runDir?: string;
  /**
   * Add the agent channel (qga.sock) and run the real qemu-ga in the guest
   * on it (`vmchan.qga=on`). Needs qemu-guest-agent on the host (build.sh
   * copies it in): see missingAgent().
   */
  agent?: boolean;
}

/** The agent port the harness adds with `agent: true`. */
export const AGENT_PORT = { id: 'qga', chardev: 'qga0', name: 'org.qemu.guest_agent.0' } as const;
export const AGENT_INSTALL_HINT = 'apt-get install qemu-guest-agent';

/** Why the guest cannot run qemu-ga (empty when it can): build.sh copies the host's in. */
export function missingAgent(): string[] {
  const qga = process.env['VMCHAN_QEMU_GA'] ?? '/usr/sbin/qemu-ga';
  return isExecutable(qga) ? [] : [`qemu-ga (${qga})`];
}

export interface Guest {
  readonly runDir: string;
  /** The test's QMP socket (the harness does not hold it). */
  readonly qmpPath: string;
  readonly serialPath: string;
  readonly serialLogPath: string;
  readonly shell: GuestShell;
  readonly pid: number;
  /** From spawning QEMU to a usable shell, in ms. */
  readonly bootMs: number;
  /** From spawning QEMU to every named port's /dev/virtio-ports link, in ms. */
  readonly portsMs: number;
  /** Unix socket of a port's chardev. */
  portSocket(id: string): string;
  /** The agent channel's socket (with `agent: true`). */
  readonly agentSocket: string;
  /** QEMU's stderr so far. */
  stderr(): string;
  /** quit over QMP, SIGKILL if QEMU has not exited within `timeoutMs` (default 5 s). */
  stop(timeoutMs?: number): Promise<void>;
}

/** What is missing on this host to boot the guest (empty when all is there). */
export function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (!onPath(QEMU)) missing.push(QEMU);
  // The initramfs has no libc: only the static busybox runs there (ldd
  // succeeds on a dynamic binary, fails on a static one).
  if (!fs.existsSync('/bin/busybox') || spawnSync('ldd', ['/bin/busybox']).status === 0) {
    missing.push('busybox-static');
  }
  for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb']) if (!onPath(tool)) missing.push(tool);
  return missing;
}

export interface GuestImage {
  dir: string;
  kernel: string;
  initrd: string;
}

/** Build (or find in the cache) the guest kernel and initramfs. */
export function buildGuest(): GuestImage | GuestError {
  const missing = missingPrerequisites();
  if (missing.length > 0) {
    return new GuestError('Missing', `missing ${missing.join(', ')}: ${INSTALL_HINT}`);
  }
  const r = spawnSync('bash', [BUILD_SCRIPT, '--quiet'], {
    encoding: 'utf8',
    timeout: 10 * 60_000,
  });
  if (r.status !== 0) {
    return new GuestError(
      'BuildFailed',
      `${BUILD_SCRIPT} failed (${r.error?.message ?? `exit ${r.status}`}):\n${(r.stderr ?? '').slice(-2000)}`,
    );
  }
  const dir = r.stdout.trim().split('\n').at(-1) ?? '';
  const kernel = path.join(dir, 'vmlinuz');
  const initrd = path.join(dir, 'initramfs.gz');
  if (!fs.existsSync(kernel) || !fs.existsSync(initrd)) {
    return new GuestError('BuildFailed', `${BUILD_SCRIPT} printed '${dir}', which holds no guest`);
  }
  return { dir, kernel, initrd };
}

/** Start QEMU with the guest and wait until its shell is usable. */
export async function startGuest(options: StartGuestOptions = {}): Promise<Guest | GuestError> {
  const image = buildGuest();
  if (isGuestError(image)) return image;

  const ownDir = options.runDir === undefined;
  const runDir = options.runDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-guest-'));
  fs.mkdirSync(runDir, { recursive: true });
  const qmpPath = path.join(runDir, 'qmp.sock');
  const controlPath = path.join(runDir, 'control.sock');
  const serialPath = path.join(runDir, 'ttyS0.sock');
  const serialLogPath = path.join(runDir, 'serial.log');
  const portSocket = (id: string): string => path.join(runDir, `${id}.sock`);
  // A log from an earlier boot would make this boot's failure look like that one's.
  for (const stale of [qmpPath, controlPath, serialPath, serialLogPath])
    fs.rmSync(stale, { force: true });

  const ports = [
    ...(options.ports ?? []),
    ...(options.agent
      ? [{ id: AGENT_PORT.id, name: AGENT_PORT.name, chardev: AGENT_PORT.chardev }]
      : []),
  ];
  const agentSocket = portSocket(AGENT_PORT.id);
  const append = [options.append, options.agent ? 'vmchan.qga=on' : undefined]
    .filter((x) => x !== undefined)
    .join(' ');
  // Option and value on one line each, as one would type them.
  // prettier-ignore
  const args = [
    '-accel', 'tcg',
    '-machine', options.machine ?? 'q35',
    '-m', String(options.memoryMb ?? 256),
    '-nographic', '-nodefaults', '-no-user-config',
    // A kernel panic ends QEMU (panic=-1 reboots at once, -no-reboot exits)
    // instead of hanging the test until its timeout.
    '-no-reboot',
    '-kernel', image.kernel,
    '-initrd', image.initrd,
    '-append', `console=ttyS0 quiet panic=-1${append ? ` ${append}` : ''}`,
    '-chardev', `socket,id=ser0,path=${serialPath},server=on,wait=off,logfile=${serialLogPath}`,
    '-serial', 'chardev:ser0',
    '-qmp', `unix:${qmpPath},server=on,wait=off`,
    '-chardev', `socket,id=control,path=${controlPath},server=on,wait=off`,
    '-mon', 'chardev=control,mode=control',
    '-device', `virtio-serial-pci,id=vser0,max_ports=${options.maxPorts ?? 8}`,
  ];
  for (const port of ports) {
    const chardev = port.chardev ?? `c-${port.id}`;
    fs.rmSync(portSocket(port.id), { force: true });
    args.push('-chardev', `socket,id=${chardev},path=${portSocket(port.id)},server=on,wait=off`);
    const props = [
      port.kind === 'console' ? 'virtconsole' : 'virtserialport',
      'bus=vser0.0',
      `chardev=${chardev}`,
      `id=${port.id}`,
    ];
    if (port.name !== undefined) props.push(`name=${port.name}`);
    if (port.nr !== undefined) props.push(`nr=${port.nr}`);
    args.push('-device', props.join(','));
  }
  args.push(...(options.extraArgs ?? []));

  const started = Date.now();
  const child = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  // If this process dies without stop() (a killed test run), nothing would
  // end QEMU, and a TCG guest spins a CPU for ever. The watchdog holds the
  // read end of a pipe from us: when we die the pipe closes and it kills
  // QEMU (and removes our run directory). stop() ends the watchdog itself
  // once QEMU is gone.
  const cleanup = ownDir ? `; rm -rf '${runDir.replaceAll("'", `'\\''`)}'` : '';
  const watchdog = spawn('sh', ['-c', `read _ ; kill -9 ${child.pid ?? 0} 2>/dev/null${cleanup}`], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  watchdog.on('error', () => {});
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (t: string) => {
    stderr = (stderr + t).slice(-16_384);
  });
  let exited: string | undefined;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = signal ? `signal ${signal}` : `exit code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      exited = err.message;
      resolve();
    });
  });

  const endWatchdog = (): void => {
    watchdog.kill('SIGKILL');
  };
  const fail = async (err: GuestError): Promise<GuestError> => {
    if (!exited) {
      child.kill('SIGKILL');
      await exitedPromise;
    }
    endWatchdog();
    const log = fs.existsSync(serialLogPath) ? fs.readFileSync(serialLogPath, 'utf8') : '';
    if (ownDir) fs.rmSync(runDir, { recursive: true, force: true });
    return new GuestError(
      err.kind,
      `${err.message}\nqemu stderr:\n${stderr.trim()}\nserial log (tail):\n${log.slice(-2000)}`,
    );
  };

  const bootTimeoutMs = options.bootTimeoutMs ?? 90_000;
  const shellOrExit = await Promise.race([
    GuestShell.connect(serialPath, { readyTimeoutMs: bootTimeoutMs }),
    exitedPromise.then(() => new GuestError('BootFailed', `QEMU ended during boot (${exited})`)),
  ]);
  if (isGuestError(shellOrExit)) return fail(shellOrExit);
  const shell = shellOrExit;
  const bootMs = Date.now() - started;

  // The port links appear once the host has named each port (a change
  // uevent after PORT_NAME), a little after the shell is up.
  const names = ports.flatMap((p) => (p.name ? [p.name] : []));
  const deadline = started + bootTimeoutMs;
  while (names.length > 0) {
    const ls = await shell.run('ls /dev/virtio-ports/ 2>/dev/null', { timeoutMs: 10_000 });
    if (isGuestError(ls)) return fail(ls);
    const present = new Set(ls.output.split(/\s+/));
    if (names.every((n) => present.has(n))) break;
    if (Date.now() > deadline || exited) {
      return fail(
        new GuestError(
          'Timeout',
          `ports ${names.filter((n) => !present.has(n)).join(', ')} never appeared in /dev/virtio-ports (have: ${ls.output.trim()})`,
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const portsMs = Date.now() - started;

  let stopped: Promise<void> | undefined;
  const stop = (timeoutMs = 5_000): Promise<void> => {
    stopped ??= (async () => {
      shell.close();
      if (!exited) {
        const control = await QmpClient.connect(controlPath, {
          connectTimeoutMs: 1_000,
          greetingTimeoutMs: 1_000,
        });
        if (!isQmpError(control)) {
          await control.quit({ timeoutMs: 2_000 });
          await control.close();
        }
        const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exitedPromise;
        clearTimeout(killer);
      }
      endWatchdog();
      if (ownDir) fs.rmSync(runDir, { recursive: true, force: true });
    })();
    return stopped;
  };

  return {
    runDir,
    qmpPath,
    serialPath,
    serialLogPath,
    shell,
    pid: child.pid ?? -1,
    bootMs,
    portsMs,
    portSocket,
    agentSocket,
    stderr: () => stderr,
    stop,
  };
}

function onPath(tool: string): boolean {
  return (process.env['PATH'] ?? '')
    .split(path.delimiter)
    .some((dir) => dir !== '' && isExecutable(path.join(dir, tool)));
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
