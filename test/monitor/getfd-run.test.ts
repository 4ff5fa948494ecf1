/**
 * H7, issue 14 item 9: descriptors passed over the QMP socket itself, as
 * libvirt hands QEMU a socket it opened: the descriptor travels with the
 * command's bytes as SCM_RIGHTS, `getfd` names it, `chardev-add` with a
 * socket backend `fd: NAME` takes it, and a port hot-plugged on that chardev
 * carries bytes both ways between the client's end and the guest.
 *
 * QEMU 7.2's rules (monitor/misc.c qmp_getfd, qmp_closefd, monitor_get_fd,
 * qmp_add_fd, monitor_fdset_add_fd; util/qemu-sockets.c socket_get_fd;
 * chardev/char-socket.c tcp_chr_recv, tcp_get_msgfds):
 * - getfd with no descriptor: "No file descriptor supplied via SCM_RIGHTS";
 *   a name starting with a digit: "Parameter 'fdname' expects a name not
 *   starting with a digit" (the descriptor is closed); getfd on a name that
 *   has one replaces it (the old one is closed);
 * - closefd closes a name; an unknown one is "File descriptor named 'x' not
 *   found";
 * - chardev-add `fd: NAME` takes the name's descriptor (it leaves the
 *   monitor's list: a second chardev-add with it is "File descriptor named
 *   'NAME' has not been found"); a descriptor that is not a socket is "File
 *   descriptor 'NAME' is not a socket";
 * - add-fd puts the descriptor into a set (the lowest free id when none is
 *   given) and answers {fdset-id, fd}; "No file descriptor supplied via
 *   SCM_RIGHTS" without one; a set nobody opened is closed when the last
 *   monitor disconnects.
 * The client is python3 (socket.send_fds); the lab is `vmchan run` with the
 * native part built (npm run build); no descriptor stays open in it after
 * the client, the chardev and the port are gone.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, requireBuilt, ROOT, tempDir, waitUntil } from '../lab/helpers.js';
import { COMMON_STEPS, PRELUDE, startFdClient } from './qmp-fd-client.js';

const BIN = path.join(ROOT, 'bin', 'vmchan.js');
const ADDON = path.join(ROOT, 'build', 'fdpass.node');
const HAVE_PYTHON3 = spawnSync('python3', ['-c', 'pass'], { stdio: 'ignore' }).status === 0;
afterAll(removeTempDirs);

/** After the common steps: a port on the chardev, bytes both ways, add-fd, the clean-up. */
const CLIENT =
  PRELUDE +
  COMMON_STEPS +
  String.raw`
os.close(spare_r)
out('device_add', cmd('device_add', driver='virtserialport', chardev='passed', name='fdport', id='fdp'))
sys.stdin.readline()  # the test saw the guest's node appear
g = socket.socket(socket.AF_UNIX)
g.connect(os.path.join(sys.argv[2], 'fdport'))
g.sendall(b'from the guest')
got = b''
while len(got) < 14: got += host.recv(100)
out('host read', got.decode())
host.sendall(b'from the host')
got = b''
while len(got) < 13: got += g.recv(100)
out('guest read', got.decode())
g.close(); host.close()
out('add-fd without a descriptor', cmd('add-fd'))
a_r, a_w = os.pipe()
out('add-fd', cmd('add-fd', [a_w], opaque='passed-w'))
out('add-fd set 7', cmd('add-fd', [a_r], **{'fdset-id': 7}))
out('add-fd negative', cmd('add-fd', [a_r], **{'fdset-id': -1}))
os.close(a_r); os.close(a_w)
out('query-fdsets', cmd('query-fdsets'))
out('device_del', cmd('device_del', id='fdp')); event('DEVICE_DELETED')
out('chardev-remove', cmd('chardev-remove', id='passed'))
m.close()
`;

function openDescriptors(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

describe.skipIf(!HAVE_PYTHON3 && process.env.CI !== 'true')(
  `H7 descriptors passed over QMP (getfd, closefd, add-fd, chardev-add fd=NAME)${HAVE_PYTHON3 ? '' : ' (python3 missing: apt-get install python3-minimal)'}`,
  () => {
    it('H7 a socket passed with getfd becomes a chardev, a hot-plugged port on it carries bytes both ways, and nothing leaks', async () => {
      requireBuilt([['dist/cli/run.js', 'cli/run.ts']]);
      if (!fs.existsSync(ADDON)) {
        throw new Error(
          'build/fdpass.node is not built: apt-get install build-essential, then npm run build',
        );
      }
      const dir = tempDir('getfd');
      const qmpPath = path.join(dir, 'qmp.sock');
      const guestDir = path.join(dir, 'guest');
      const child = spawn(
        process.execPath,
        [BIN, 'run', '--guest-dir', guestDir, '--', '-device', 'virtio-serial',
          '-qmp', `unix:${qmpPath},server=on,wait=off`],
        { env: { ...process.env, TMPDIR: dir, XDG_RUNTIME_DIR: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
      ); // prettier-ignore
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const exited = new Promise((resolve) => child.on('exit', resolve));
      try {
        await waitUntil(() => /^ready$/m.test(out) || child.exitCode !== null, 'ready', 30_000);
        expect(err).toBe('');
        const before = openDescriptors(child.pid!);

        const client = startFdClient(CLIENT, qmpPath, [guestDir]);
        // The hot-plugged port's guest side appears in the guest directory.
        await waitUntil(
          () => fs.existsSync(path.join(guestDir, 'fdport')) || client.exited(),
          'the guest node of the hot-plugged port',
          20_000,
        );
        client.go();
        const steps = new Map(await client.steps());
        const error = (desc: string): unknown => ({ error: { class: 'GenericError', desc } });
        const ok = { return: {} };
        expect(steps.get('getfd without a descriptor')).toEqual(
          error('No file descriptor supplied via SCM_RIGHTS'),
        );
        expect(steps.get('getfd')).toEqual(ok);
        expect(steps.get('getfd digit')).toEqual(
          error("Parameter 'fdname' expects a name not starting with a digit"),
        );
        expect(steps.get('getfd tmp')).toEqual(ok);
        expect(steps.get('getfd tmp again')).toEqual(ok);
        expect(steps.get('closefd tmp')).toEqual(ok);
        expect(steps.get('closefd tmp again')).toEqual(
          error("File descriptor named 'tmp' not found"),
        );
        expect(steps.get('chardev-add pipe')).toEqual(
          error("Failed to add chardev 'bad': File descriptor 'notsock' is not a socket"),
        );
        expect(steps.get('chardev-add')).toEqual(ok);
        expect(steps.get('chardev-add again')).toEqual(
          error("Failed to add chardev 'again': File descriptor named 'mine' has not been found"),
        );
        expect(steps.get('query-chardev')).toEqual([
          { label: 'passed', filename: 'unix:', 'frontend-open': false },
        ]);
        expect(steps.get('device_add')).toEqual(ok);
        expect(steps.get('host read')).toBe('from the guest');
        expect(steps.get('guest read')).toBe('from the host');
        expect(steps.get('add-fd without a descriptor')).toEqual(
          error('No file descriptor supplied via SCM_RIGHTS'),
        );
        // No set yet: the first free id is 0; then set 7 as asked.
        expect(steps.get('add-fd')).toMatchObject({ return: { 'fdset-id': 0 } });
        expect(steps.get('add-fd set 7')).toMatchObject({ return: { 'fdset-id': 7 } });
        expect(steps.get('add-fd negative')).toEqual(
          error("Parameter 'fdset-id' expects a non-negative value"),
        );
        const added = steps.get('add-fd') as { return: { fd: number } };
        const set7 = steps.get('add-fd set 7') as { return: { fd: number } };
        expect(steps.get('query-fdsets')).toEqual({
          return: [
            { 'fdset-id': 7, fds: [{ fd: set7.return.fd }] },
            { 'fdset-id': 0, fds: [{ fd: added.return.fd, opaque: 'passed-w' }] },
          ],
        });
        expect(steps.get('device_del')).toEqual(ok);
        expect(steps.get('chardev-remove')).toEqual(ok);
        // The client left: the sets nobody opened are closed with the last
        // monitor, the chardev's socket with the chardev, the unused names
        // with their replacement or closefd, the refused ones at once.
        await waitUntil(
          () => openDescriptors(child.pid!) === before,
          `vmchan's descriptors back to ${before}`,
          10_000,
        );
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    });
  },
);

if (!HAVE_PYTHON3 && process.env.CI === 'true') {
  it('H7 python3 is installed (the test passes descriptors with it)', () => {
    throw new Error('python3 not found: apt-get install python3-minimal');
  });
}
