/**
 * `vmchan launch -- QEMU-ARGS`: arguments checked before QEMU starts, a
 * QEMU that fails to start, and the real thing: the test guest launched
 * with a QMP socket vmchan adds, its ports printed, and QEMU quit over QMP
 * when vmchan is told to stop (SIGINT in the CLI).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { untilSignal } from '../../cli/attach.js';
import { UsageError } from '../../cli/errors.js';
import { runLaunch } from '../../cli/launch.js';
import { isGuestError } from '../guest/guest-shell.js';
import { buildGuest, INSTALL_HINT, missingPrerequisites } from '../guest/qemu.js';
import { until } from '../until.js';

const missing = missingPrerequisites();
const inCi = process.env['CI'] === 'true';
const missingText =
  missing.length > 0 ? `missing ${missing.join(', ')}; install with: ${INSTALL_HINT}` : '';
if (missingText && !inCi) console.warn(`launch tests on a real QEMU skipped: ${missingText}`);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-launch-test-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const defaults = { qemu: 'qemu-system-x86_64', stopTimeout: '5000' };

function capture() {
  let text = '';
  return {
    io: { out: (t: string) => void (text += t), err: (t: string) => void (text += t) },
    text: () => text,
  };
}

describe('vmchan launch: arguments and failures', () => {
  it('refuses bad arguments before starting anything (exit 2)', async () => {
    const { io } = capture();
    const never = new Promise<void>(() => {});
    await expect(runLaunch([], defaults, io, never)).rejects.toThrow(UsageError);
    await expect(runLaunch(['-m', '64', '-bogus'], defaults, io, never)).rejects.toThrow(
      new UsageError('QEMU would refuse these arguments: -bogus: invalid option'),
    );
    await expect(runLaunch(['-daemonize'], defaults, io, never)).rejects.toThrow(/foreground/);
    await expect(runLaunch(['-m', '64'], { ...defaults, tap: ['c1='] }, io, never)).rejects.toThrow(
      /--tap expects CHARDEV \(in place\) or CHARDEV=LISTEN/,
    );
  });

  it('reports a QEMU that ends before its monitor is up, with what it said', async () => {
    const fake = path.join(dir, 'fake-qemu.sh');
    fs.writeFileSync(
      fake,
      '#!/bin/sh\necho "qemu-system-x86_64: -device foo: \'foo\' is not a valid device model name" >&2\nexit 1\n',
      { mode: 0o755 },
    );
    const { io } = capture();
    await expect(
      runLaunch(['-m', '64'], { ...defaults, qemu: fake }, io, new Promise(() => {})),
    ).rejects.toThrow(
      "QEMU ended before its monitor came up (exit code 1): qemu-system-x86_64: -device foo: 'foo' is not a valid device model name",
    );
    await expect(
      runLaunch(
        ['-m', '64'],
        { ...defaults, qemu: path.join(dir, 'no-such-qemu') },
        io,
        new Promise(() => {}),
      ),
    ).rejects.toThrow(/not found \(apt-get install qemu-system-x86\)/);
  });

  it('stops on SIGINT or SIGTERM', async () => {
    const a = untilSignal();
    process.emit('SIGTERM', 'SIGTERM');
    expect(await a.promise).toBe('SIGTERM');
    const b = untilSignal();
    process.emit('SIGINT', 'SIGINT');
    expect(await b.promise).toBe('SIGINT');
  });
});

describe.skipIf(missingText !== '' && !inCi)(
  `vmchan launch with the test guest${missingText ? ` (${missingText})` : ''}`,
  () => {
    it('starts QEMU with its QMP socket, prints the ports, and quits QEMU over QMP when stopped', async () => {
      if (missingText) throw new Error(`cannot run the launch test: ${missingText}`);
      const image = buildGuest();
      if (isGuestError(image)) throw new Error(image.toString());
      const sock = path.join(dir, 'p1.sock');
      // prettier-ignore
      const args = [
        '-accel', 'tcg', '-machine', 'q35', '-m', '256',
        '-nographic', '-nodefaults', '-no-user-config', '-no-reboot',
        '-kernel', image.kernel, '-initrd', image.initrd,
        '-append', 'console=ttyS0 quiet panic=-1',
        '-device', 'virtio-serial-pci,id=vser0,max_ports=4',
        '-chardev', `socket,id=c1,path=${sock},server=on,wait=off`,
        '-device', 'virtserialport,bus=vser0.0,chardev=c1,id=port1,name=org.test.launch',
      ];
      const { io, text } = capture();
      let stop!: () => void;
      const stopped = new Promise<void>((r) => (stop = r));
      const run = runLaunch(args, { ...defaults, runDir: path.join(dir, 'run') }, io, stopped);
      await until(() => text().includes('Ctrl-C stops'), 'vmchan launch to come up', 60_000);
      const pid = Number(/\(pid (\d+)\)/.exec(text())?.[1]);
      expect(pid).toBeGreaterThan(0);
      expect(text()).toContain(`QMP at ${path.join(dir, 'run', 'qmp.sock')}`);
      expect(text()).toMatch(
        /vser0 +1 +port1 +org\.test\.launch +virtserialport +c1 +(no|yes) +no +unix:/,
      );
      stop();
      expect(await run).toBe(0);
      expect(text()).toContain('QEMU quit\n');
      expect(() => process.kill(pid, 0)).toThrow();
    }, 60_000);
  },
);
