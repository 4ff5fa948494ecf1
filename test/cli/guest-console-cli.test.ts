/**
 * `vmchan attach --guest-console NAME` before it reaches a guest: the help
 * and the README name the options, bad options are one-line usage errors,
 * and a QEMU (the stand-in QMP server answering with QEMU 7.2's shapes)
 * whose guest has no agent to go through is one line naming why. The
 * console itself, through the real qemu-ga 7.2, is in
 * test/qemu/guest-console-real.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { registerAttach, runAttach } from '../../cli/attach.js';
import { UsageError } from '../../cli/errors.js';
import { fakeQemuModel } from '../api/attach-fake.js';
import { FakeQmpServer } from '../qemu/fake-qmp-server.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const io = { out: () => {}, err: () => {} };
let server: FakeQmpServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('vmchan attach --guest-console', () => {
  it('--help and the README name --guest-console and its mode', () => {
    const program = new Command('vmchan');
    registerAttach(program);
    const attach = program.commands.find((c) => c.name() === 'attach');
    const help = attach?.helpInformation() ?? '';
    expect(help).toMatch(/--guest-console <name>\s+a console on the guest side of port NAME/);
    expect(help).toMatch(/--guest-console-mode <mode>\s+the guest console’s open mode: r\+/);
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('vmchan attach --qmp ADDRESS --guest-console NAME');
    expect(readme).toContain('--guest-console-mode r+');
  });

  it('bad options are one-line usage errors, before QEMU is asked anything', async () => {
    await expect(
      runAttach(
        { qmp: '/nowhere.sock', guestConsole: 'p', guestConsoleMode: 'rw' },
        io,
        new Promise(() => {}),
      ),
    ).rejects.toThrow(new UsageError("--guest-console-mode expects r+, r or w, got 'rw'"));
    await expect(
      runAttach({ qmp: '/nowhere.sock', guestConsoleMode: 'r' }, io, new Promise(() => {})),
    ).rejects.toThrow(new UsageError('--guest-console-mode goes with --guest-console NAME'));
  });

  it('a VM without an agent port, or whose guest runs no agent, is one line saying so', async () => {
    const q = fakeQemuModel();
    server = await FakeQmpServer.start({ handlers: q.handlers });
    await expect(
      runAttach(
        { qmp: server.address, guestConsole: 'org.test.port.1', poll: '0' },
        io,
        new Promise(() => {}),
      ),
    ).rejects.toThrow(
      /^the guest side of a real QEMU is reached through a guest agent, and this VM has no org\.qemu\.guest_agent\.0 port$/,
    );
    await expect(
      runAttach(
        { qmp: server.address, guestConsole: 'org.no.such', poll: '0' },
        io,
        new Promise(() => {}),
      ),
    ).rejects.toThrow(
      /^QEMU has no port named org\.no\.such \(ports: org\.test\.console\.0, org\.test\.port\.1, anon\.port\)$/,
    );

    // the agent port is there, closed in the guest (no qemu-ga holds it)
    q.ports.push({
      path: '/machine/peripheral/qga',
      type: 'virtserialport',
      nr: 3,
      name: 'org.qemu.guest_agent.0',
      chardev: 'qga0',
    });
    q.chardevs.set('qga0', { filename: 'disconnected:unix:/tmp/guest/qga,server=on', open: false });
    await expect(
      runAttach(
        { qmp: server.address, guestConsole: 'org.test.port.1', poll: '0' },
        io,
        new Promise(() => {}),
      ),
    ).rejects.toThrow(
      /^no guest agent runs: the guest has not opened org\.qemu\.guest_agent\.0 \(start qemu-ga in the guest\)$/,
    );
  });
});
