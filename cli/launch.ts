/**
 * `vmchan launch [options] -- QEMU-ARGS...`: start qemu-system-x86_64 with
 * the given arguments plus a QMP socket for vmchan, attach to it and watch
 * it (the output of `vmchan attach --watch`). Ctrl-C or SIGTERM quits QEMU
 * over QMP (SIGKILL if it has not exited within --stop-timeout).
 */
import type { Command } from 'commander';
import { parseQemuArgs } from '../core/machine/qemu-cmdline.js';
import { LaunchedQemu } from '../core/qemu/launch.js';
import { isAttachFailure } from '../core/qemu/attach-error.js';
import {
  addSessionOptions,
  checkSessionOptions,
  runSession,
  SESSION_HELP,
  untilSignal,
  type CliIo,
  type SessionOptions,
} from './attach.js';
import { UsageError } from './errors.js';

interface LaunchCliOptions extends SessionOptions {
  qemu: string;
  runDir?: string;
  stopTimeout: string;
  qemuOutput?: boolean;
}

const processIo: CliIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

export function registerLaunch(program: Command): void {
  const cmd = program
    .command('launch')
    .description('start QEMU with a QMP socket for vmchan and watch its virtio-serial ports')
    .argument('<qemu-args...>', 'QEMU\'s arguments, after "--"')
    .option('--qemu <binary>', 'the QEMU program', 'qemu-system-x86_64')
    .option('--run-dir <dir>', 'where the QMP socket goes (default: a temporary directory)')
    .option('--stop-timeout <ms>', 'after quit, time QEMU has to exit before SIGKILL', '5000')
    .option('--no-qemu-output', "do not relay QEMU's own output (stderr, prefixed 'qemu:')");
  addSessionOptions(cmd, { watch: false })
    .addHelpText(
      'after',
      `
vmchan adds  -qmp unix:RUN-DIR/qmp.sock,server=on,wait=off  to the arguments and
attaches to it; the output is that of \`vmchan attach --watch\`. QEMU runs in its own
process group with no stdin: Ctrl-C (SIGINT) or SIGTERM to vmchan quits QEMU over
QMP, then kills it if it has not exited within --stop-timeout. When QEMU exits by
itself, vmchan exits too (status 0 if QEMU's was 0, else 1).
${SESSION_HELP}

Examples:
  vmchan launch -- -m 512 -nographic -kernel bzImage -initrd initrd.gz \\
      -device virtio-serial-pci,id=vser0 \\
      -chardev socket,id=c1,path=/tmp/c1.sock,server=on,wait=off \\
      -device virtserialport,bus=vser0.0,chardev=c1,name=org.example.1
  vmchan launch --tap c1=/tmp/c1-tapped.sock -w c1.pcapng -- <the same arguments>`,
    )
    .action(async (qemuArgs: string[], options: LaunchCliOptions) => {
      const stop = untilSignal();
      try {
        const code = await runLaunch(qemuArgs, options, processIo, stop.promise);
        if (code !== 0) process.exitCode = code;
      } finally {
        stop.cancel();
      }
    });
}

/** `vmchan launch`; resolves to the exit status (tests run it in-process). */
export async function runLaunch(
  qemuArgs: readonly string[],
  options: LaunchCliOptions,
  io: CliIo,
  stop: Promise<unknown>,
): Promise<number> {
  checkSessionOptions({ ...options, watch: true });
  if (!/^\d+$/.test(options.stopTimeout)) {
    throw new UsageError(
      `--stop-timeout expects milliseconds (a whole number), got '${options.stopTimeout}'`,
    );
  }
  if (qemuArgs.length === 0) throw new UsageError('give QEMU\'s arguments after "--"');
  for (const bad of ['-daemonize', '--daemonize']) {
    if (qemuArgs.includes(bad))
      throw new UsageError(`${bad}: launch keeps QEMU in the foreground; leave it out`);
  }
  const parsed = parseQemuArgs(qemuArgs);
  if (!parsed.ok) {
    const e = parsed.error;
    const where = e.option
      ? `${e.option}${e.arg !== undefined ? ` ${e.arg}` : ''}: `
      : e.token
        ? `${e.token}: `
        : '';
    throw new UsageError(`QEMU would refuse these arguments: ${where}${e.message}`);
  }
  const pollMs = Number(options.poll ?? '1000');
  const launched = await LaunchedQemu.start({
    qemu: options.qemu,
    args: qemuArgs,
    ...(options.runDir !== undefined ? { runDir: options.runDir } : {}),
    attach: { pollIntervalMs: pollMs },
    onOutput: (line) => {
      if (options.qemuOutput !== false) io.err(`qemu: ${line}\n`);
    },
  });
  if (isAttachFailure(launched)) throw new Error(launched.message);
  if (!options.json)
    io.out(`started ${options.qemu} (pid ${launched.pid}); QMP at ${launched.qmpPath}\n`);
  let byItself = false;
  try {
    await runSession(
      launched.machine,
      { ...options, watch: true },
      io,
      stop,
      launched.exited.then(() => {
        byItself = true;
      }),
    );
  } finally {
    const exit = await launched.stop(Number(options.stopTimeout));
    const how =
      exit.how === 'killed'
        ? 'did not exit in time after quit: killed'
        : exit.how === 'quit'
          ? 'quit'
          : exit.signal
            ? `ended by ${exit.signal}`
            : `exited with status ${exit.code}`;
    if (!options.json) io.out(`QEMU ${how}\n`);
    else io.out(`${JSON.stringify({ type: 'exit', ...exit })}\n`);
  }
  const exit = await launched.exited;
  return byItself && (exit.code !== 0 || exit.signal !== null) ? 1 : 0;
}
