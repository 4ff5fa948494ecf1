/**
 * The CLI's taps on a real QEMU running the test guest (rig: tap-rig.ts):
 * - `vmchan attach --tap CHARDEV=LISTEN -w FILE` (in-process): the sha1
 *   transfer of the case study (seeds/002) both ways, host app -> tap ->
 *   QEMU -> guest and guest -> QEMU -> tap -> host app, the capture holding
 *   every byte of each direction, the guest seeing the host come and go
 *   exactly as the application does;
 * - `vmchan attach --tap CHARDEV` in place, the built CLI in a child
 *   process, killed with SIGKILL: QEMU's socket node stays moved aside and
 *   the journal says where; the next `vmchan attach` puts it back at its
 *   path, and a new host application reaches the guest's port there, bytes
 *   both ways.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { runAttach } from '../../cli/attach.js';
import { answers } from '../../core/qemu/inplace-tap.js';
import { TapJournal } from '../../core/qemu/tap-journal.js';
import { requireBuilt, ROOT } from '../lab/helpers.js';
import { isGuestError } from '../guest/guest-shell.js';
import { connectUnix, describeRealGuest } from './real-guest.js';
import { expectBothCaptured, guestToHost, hostToGuest, PORT, useTapGuest } from './tap-rig.js';

const SIZE = 3 * 1024 * 1024;
const BIN = path.join(ROOT, 'bin', 'vmchan.js');

describeRealGuest('the CLI’s taps on a real QEMU', 'tap tests on a real QEMU', () => {
  const rig = useTapGuest({
    what: 'the tap tests',
    tmpPrefix: 'vmchan-tap-real-',
    extraArgs: (dir) => ['-qmp', `unix:${path.join(dir, 'cli-qmp.sock')},server=on,wait=off`],
  });
  const cliQmp = (): string => path.join(rig.runDir, 'cli-qmp.sock');

  // the SIGKILL test runs the built CLI, as a person does
  beforeAll(() =>
    requireBuilt([
      ['dist/cli/attach.js', 'cli/attach.ts'],
      ['dist/core/qemu/inplace-tap.js', 'core/qemu/inplace-tap.ts'],
    ]),
  );

  it("moves the case study's files both ways through the tap, sha1 intact, every byte captured", async () => {
    const tapPath = path.join(rig.runDir, 'port1-tapped.sock');
    const capPath = path.join(rig.runDir, 'port1.pcapng');
    let out = '';
    const io = { out: (t: string) => void (out += t), err: (t: string) => void (out += t) };
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const cli = runAttach(
      { qmp: cliQmp(), tap: [`${PORT.chardev}=${tapPath}`], write: capPath, poll: '500' },
      io,
      stopped,
    );
    cli.catch(() => {});
    await rig.until(
      'the tap listening',
      () => out,
      (o) => o.includes(`point the host application at ${tapPath}`),
    );
    expect(fs.statSync(tapPath).mode & 0o777).toBe(0o600);
    // Nobody on the tap yet: QEMU sees no host (the tap connects only for an application).
    expect((await rig.chardev(PORT.chardev)).filename.startsWith('disconnected:')).toBe(true);

    const h2g = await hostToGuest(rig, tapPath, SIZE);
    const g2h = await guestToHost(rig, tapPath, SIZE);
    await rig.until(
      'the CLI saw the second session end',
      () => out,
      (o) => o.includes('session 2: the application disconnected'),
    );
    stop();
    await cli;
    expect(out).toMatch(/capture: \d+ records written to /);
    expect(expectBothCaptured(capPath, PORT.name, SIZE, h2g, g2h)).toEqual([
      'host-open',
      'host-close',
      'host-open',
      'host-close',
    ]);
    const mibps = (ms: number): string => (SIZE / 1048576 / (ms / 1000)).toFixed(1);
    console.info(
      `through the tap under TCG: host->guest ${mibps(h2g.ms)} MiB/s, guest->host ${mibps(g2h.ms)} MiB/s (${SIZE} bytes)`,
    );
  }, 600_000);

  it('vmchan attach --tap CHARDEV in place, SIGKILLed: the next vmchan attach gives QEMU’s path back and a new client reaches the guest', async () => {
    const portPath = rig.guest.portSocket(PORT.id);
    const qemuIno = fs.statSync(portPath).ino;
    // the journal lives in the runtime directory: one of the test's own
    const xdg = path.join(rig.runDir, 'xdg');
    fs.mkdirSync(xdg, { mode: 0o700 });
    const env = { ...process.env, XDG_RUNTIME_DIR: xdg };
    const journal = new TapJournal(path.join(xdg, 'vmchan'));

    const child = spawn(
      process.execPath,
      [BIN, 'attach', '--qmp', cliQmp(), '--tap', PORT.chardev, '--poll', '0'],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, s) => r(s)));
    await rig.until(
      'vmchan attach tapped the chardev in place',
      () => (child.exitCode !== null ? `exited: ${out}` : out),
      (o) => o.includes(`tapped in place at ${portPath}`) || o.startsWith('exited'),
      120_000,
    );
    expect(out).toContain(`tapped in place at ${portPath}`);
    expect(fs.statSync(portPath).ino).not.toBe(qemuIno);
    expect(journal.entries()).toMatchObject([{ original: portPath, chardev: PORT.chardev }]);

    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    // vmchan's socket is dead at the path; QEMU's node waits aside, the journal knows
    expect(await answers(portPath)).toBe(false);
    expect(journal.entries()).toHaveLength(1);

    // the next start: vmchan attach (here only listing the ports) replays the journal
    const again = spawn(process.execPath, [BIN, 'attach', '--qmp', cliQmp(), '--poll', '0'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out2 = '';
    again.stdout.on('data', (d: Buffer) => (out2 += d.toString()));
    again.stderr.on('data', (d: Buffer) => (out2 += d.toString()));
    const code = await new Promise<number | null>((r) => again.once('exit', (c) => r(c)));
    expect(out2).toContain(
      `vmchan: after a crash: chardev ${PORT.chardev}: QEMU's socket is back at ${portPath}`,
    );
    expect(code).toBe(0);
    expect(fs.statSync(portPath).ino).toBe(qemuIno);
    expect(journal.entries()).toEqual([]);

    // a new host application at the path reaches the guest's port, both ways
    const app = await connectUnix(portPath);
    let fromGuest = '';
    app.on('data', (d: Buffer) => (fromGuest += d.toString()));
    await rig.hostSeen(PORT.chardev, true, 'QEMU sees the new host application');
    const reading = rig.guest.shell.run(`head -c 5 /dev/virtio-ports/${PORT.name}`, {
      timeoutMs: 120_000,
    });
    await rig.guestOpened(PORT.chardev, 'the guest opened the port to read');
    app.write('ping!');
    const read = await reading;
    if (isGuestError(read)) throw new Error(read.toString());
    expect(read.output).toBe('ping!');
    await rig.sh(`printf pong > /dev/virtio-ports/${PORT.name}`, 120_000);
    await rig.until(
      'the host application reads the guest’s answer',
      () => fromGuest,
      (v) => v === 'pong',
    );
    // a full close: QEMU reads nothing while the guest has the port closed, so it sees
    // a half-close (end) only when it reads again; the hang-up it sees at once
    app.destroy();
    await rig.hostSeen(PORT.chardev, false, 'the host application gone for QEMU');
  }, 600_000);
});
