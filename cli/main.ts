/**
 * The `vmchan` command line: the engine headless, as tshark is to Wireshark.
 * Each subcommand lives in its own module; this file only wires them up and
 * turns every failure into a one-line message and an exit code (never a
 * stack trace).
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../core/version.js';
import { UsageError } from './errors.js';
// For its stdout EPIPE handler: `vmchan run --help | head -3` ends quietly whichever command is loaded.
import './output.js';

type Register = (program: Command) => unknown;

/**
 * The subcommands, in the order help lists them, each loaded only when it
 * is needed: a command's module brings the engine parts it uses, and loading
 * them all took a third of a second before anything ran. `vmchan extcap`
 * is started by Wireshark and tshark several times whenever they start, to
 * list interfaces, so a command loads its own module alone; help, or a word
 * that is no command (commander then suggests the nearest), loads them all.
 */
const COMMANDS: readonly { name: string; load: () => Promise<Register> }[] = [
  { name: 'run', load: async () => (await import('./run.js')).registerRun },
  { name: 'serve', load: async () => (await import('./serve.js')).registerServeCommand },
  { name: 'read', load: async () => (await import('./read.js')).registerRead },
  { name: 'follow', load: async () => (await import('./follow.js')).registerFollow },
  { name: 'attach', load: async () => (await import('./attach.js')).registerAttach },
  { name: 'launch', load: async () => (await import('./launch.js')).registerLaunch },
  { name: 'extcap', load: async () => (await import('./extcap.js')).registerExtcap },
];

/** The subcommands `argv` needs: its command's alone, none for the version, else all. */
export function commandsFor(argv: readonly string[]): readonly string[] {
  const first = argv[0];
  if (first === '-V' || first === '--version') return [];
  const named = COMMANDS.find((c) => c.name === first);
  return named !== undefined ? [named.name] : COMMANDS.map((c) => c.name);
}

/** The program with the subcommands `argv` needs (all of them for none). */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command();
  program
    .name('vmchan')
    .description(
      'Inspect QEMU virtio-serial channels: run a virtio-serial lab with no VM,\n' +
        'capture port traffic like tshark, and attach to a running QEMU.',
    )
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run `vmchan --help` for usage)')
    // The program's own options (-V, --help) come before the command; what
    // follows belongs to it (run and extcap pass unknown options through).
    .enablePositionalOptions()
    .exitOverride();
  const wanted = commandsFor(argv);
  const registers = await Promise.all(
    COMMANDS.filter((c) => wanted.includes(c.name)).map((c) => c.load()),
  );
  for (const register of registers) register(program);
  // Subcommands inherit exitOverride so their usage errors come back here too.
  for (const sub of program.commands) sub.exitOverride();
  return program;
}

/** Run the CLI; resolves to the process exit code. */
export async function run(argv: string[]): Promise<number> {
  try {
    const program = await buildProgram(argv);
    program.configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
    });
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
