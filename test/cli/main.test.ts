/**
 * The CLI's entry: each command loads its own module alone (Wireshark starts
 * `vmchan extcap` several times at each of its starts), help lists them all,
 * and output cut short by a closed pipe ends quietly whichever command ran.
 */
import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { commandsFor } from '../../cli/main.js';
import { requireBuiltCli, VMCHAN_BIN, vmchan } from './run-vmchan.js';

const ALL = ['run', 'serve', 'read', 'follow', 'attach', 'launch', 'extcap'];

beforeAll(requireBuiltCli);

describe('which command modules a command line loads', () => {
  it("a command's own alone, none for the version, all for help or a word that is no command", () => {
    expect(commandsFor(['extcap', '--extcap-interfaces'])).toEqual(['extcap']);
    expect(commandsFor(['run', '-device', 'virtio-serial'])).toEqual(['run']);
    expect(commandsFor(['--version'])).toEqual([]);
    expect(commandsFor(['-V'])).toEqual([]);
    expect(commandsFor(['--help'])).toEqual(ALL);
    expect(commandsFor([])).toEqual(ALL);
    expect(commandsFor(['rnu'])).toEqual(ALL); // so commander can suggest `run`
  });
});

describe('vmchan with one command loaded', () => {
  it.each(ALL)('%s --help works with its module alone', (name) => {
    const r = vmchan([name, '--help']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^usage: vmchan ${name} `, 'i'));
  });

  it('extcap --extcap-interfaces answers Wireshark with the extcap module alone', () => {
    const r = vmchan(['extcap', '--extcap-interfaces']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^extcap \{version=/);
    expect(r.stdout).toContain('interface {value=vmchan-qmp}');
  });

  it('--help still lists every command, and a misspelt one gets its suggestion', () => {
    const help = vmchan(['--help']);
    expect(help.status).toBe(0);
    const commands = help.stdout.slice(help.stdout.indexOf('Commands:'));
    for (const name of ALL) expect(commands).toMatch(new RegExp(`^  ${name} `, 'm'));
    const typo = vmchan(['rnu']);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toContain("unknown command 'rnu'");
    expect(typo.stderr).toContain('Did you mean run?');
  });

  it('run --help into a pipe its reader closed ends with no stack trace (EPIPE)', async () => {
    const child = spawn(process.execPath, [VMCHAN_BIN, 'run', '--help'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy(); // the reader is gone before the help is written, as `| head -0`
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stderr).not.toContain('EPIPE');
    expect(status).toBe(0);
  });
});
