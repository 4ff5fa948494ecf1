/**
 * The `vmchan` command line: the engine headless, as tshark is to Wireshark.
 * Each subcommand lives in its own module; this file only wires them up and
 * turns every failure into a one-line message and an exit code (never a
 * stack trace).
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../core/version.js';
import { UsageError } from './errors.js';
import { registerAttach } from './attach.js';
import { registerExtcap } from './extcap.js';
import { registerFollow } from './follow.js';
import { registerLaunch } from './launch.js';
import { registerRead } from './read.js';
import { registerRun } from './run.js';
import { registerServeCommand } from './serve.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('vmchan')
    .description(
      'Inspect QEMU virtio-serial channels: run a virtio-serial lab with no VM,\n' +
        'capture port traffic like tshark, and attach to a running QEMU.',
    )
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run `vmchan --help` for usage)')
    .exitOverride();
  registerRun(program);
  registerServeCommand(program);
  registerRead(program);
  registerFollow(program);
  registerAttach(program);
  registerLaunch(program);
  registerExtcap(program);
  // Subcommands inherit exitOverride so their usage errors come back here too.
  for (const sub of program.commands) sub.exitOverride();
  return program;
}

/** Run the CLI; resolves to the process exit code. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.configureOutput({
    writeOut: (s) => process.stdout.write(s),
    writeErr: (s) => process.stderr.write(s),
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    // A subcommand that reported its own failure (extcap, launch) set the code.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit through here with code 0
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`vmchan: ${err.message}\n`);
      return 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`vmchan: ${message}\n`);
    return 1;
  }
}
