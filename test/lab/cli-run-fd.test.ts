/**
 * Issue 14 item 9: `-chardev socket,fd=N` on a descriptor `vmchan run`
 * inherited, as libvirt hands QEMU a listening socket it made (QEMU's
 * socket chardev takes an fd address: util/qemu-sockets.c socket_get_fd,
 * a number or a monitor name). The test makes a listening socket,
 * (tcp) passes it to `vmchan run` as its descriptor 3, closes its own copy, and
 * a client of that socket reaches the guest's echo through the chardev.
 * A descriptor name on the command line is QEMU's "Unable to parse FD
 * number" (monitor names come from getfd over QMP, H7); -add-fd
 * fd sets are tested in test/monitor/fdsets-run.test.ts (H6).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import net from 'node:net';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Collector, removeTempDirs, ROOT, tempDir, waitUntil } from './helpers.js';

const BIN = path.join(ROOT, 'bin', 'vmchan.js');
afterAll(removeTempDirs);

describe('vmchan run with an inherited socket (fd=N)', () => {
  it('H1 serves a listening socket passed as descriptor 3 (fd=3,server=on)', async () => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'run.js'))) {
      throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
    }
    const tmp = tempDir('fd');
    // tcp: closing the test's copy must not remove anything the child still serves
    // (closing a unix server in Node unlinks its path).
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    const child = spawn(
      process.execPath,
      [BIN, 'run', '--workload', 'p=echo', '--',
        '-chardev', 'socket,id=p,fd=3,server=on,wait=off',
        '-device', 'virtio-serial', '-device', 'virtserialport,chardev=p,name=p'],
      { env: { ...process.env, TMPDIR: tmp, XDG_RUNTIME_DIR: '' }, stdio: ['ignore', 'pipe', 'pipe', fd] },
    ); // prettier-ignore
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitUntil(() => /^ready$/m.test(out) || child.exitCode !== null, 'ready', 15_000);
      expect(err).toBe('');
      // Only the child listens now.
      await new Promise<void>((r) => server.close(() => r()));
      const c = new Collector(
        await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection({ host: '127.0.0.1', port }, () => resolve(s));
          s.once('error', reject);
        }),
      );
      c.socket.write('through fd 3\n');
      expect(await c.line()).toBe('through fd 3');
      c.socket.destroy();
    } finally {
      child.kill('SIGTERM');
      await exit;
    }
  }, 30_000);

  it('H1 a descriptor name on the command line: QEMU\'s "Unable to parse FD number"', async () => {
    const { parseQemuArgs } = await import('../../core/machine/index.js');
    const { createChardev, isChardevError } = await import('../../core/chardev/index.js');
    const { Scheduler } = await import('../../core/engine/scheduler.js');
    const t = parseQemuArgs(['-chardev', 'socket,id=p,fd=mysock,server=on,wait=off']);
    expect(t.ok).toBe(true);
    if (!t.ok) return;
    const r = await createChardev(t.value.chardevs[0]!, { post: new Scheduler().post });
    expect(isChardevError(r) && r.message).toBe('Unable to parse FD number mysock');
  });
});
