/**
 * H1: every chardev kind the factory opens carries data through a whole lab:
 * a real host endpoint on one side, a guest program on the other (a
 * workload, or a client of the guest-dir socket).
 */
import * as dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tty from 'node:tty';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PtyChardev, SocketChardev } from '../../core/chardev/index.js';
import { GuestDir, isGuestDirError } from '../../core/guestdir/index.js';
import type { Machine } from '../../core/machine/machine.js';
import { isErrno } from '../../core/serial/guest/errno.js';
import { O_NONBLOCK, O_RDWR } from '../../core/serial/guest/files.js';
import { isQemuError } from '../../core/base/qemu-error.js';
import {
  isWorkloadError,
  parseWorkload,
  startWorkloads,
  type Workload,
} from '../../core/workloads/index.js';
import {
  Collector,
  connectTcp,
  connectUnix,
  removeTempDirs,
  startMachine,
  tempDir,
  waitUntil,
} from './helpers.js';

const open: { close(): Promise<void> }[] = [];
let workloads: Workload[] = [];
afterEach(async () => {
  await Promise.all(workloads.map((w) => w.stop()));
  workloads = [];
  for (const x of open.splice(0).reverse()) await x.close();
});
afterAll(removeTempDirs);

/** A machine with one port (a console if asked) on the chardev `-chardev SPEC,id=c`. */
async function oneDevice(dir: string, spec: string, driver = 'virtserialport'): Promise<Machine> {
  const m = await startMachine(
    [
      '-chardev',
      `${spec},id=c`,
      '-device',
      'virtio-serial',
      '-device',
      `${driver},chardev=c,name=p`,
    ],
    dir,
  );
  open.push(m);
  return m;
}

async function echoOn(m: Machine, port = 'p'): Promise<void> {
  const spec = parseWorkload(`${port}=echo`);
  if (isWorkloadError(spec)) throw new Error(spec.message);
  const w = await startWorkloads(m.lab, [spec]);
  if (isWorkloadError(w)) throw new Error(w.message);
  workloads.push(...w);
}

async function guestClient(m: Machine, dir: string, port = 'p'): Promise<Collector> {
  const g = await GuestDir.open(m.lab, path.join(dir, 'guest'));
  if (isGuestDirError(g)) throw new Error(g.message);
  open.push(g);
  return new Collector(await connectUnix(path.join(g.dir, port)));
}

describe('H1: each backend kind through a whole lab', () => {
  it('socket unix server: echo round trip', async () => {
    const dir = tempDir('unix');
    const m = await oneDevice(dir, `socket,path=${path.join(dir, 's')},server=on,wait=off`);
    await echoOn(m);
    const c = new Collector(await connectUnix(path.join(dir, 's')));
    c.socket.write('over unix\n');
    expect(await c.line()).toBe('over unix');
    c.socket.destroy();
  });

  it('socket tcp server (port 0: the kernel picks) : echo round trip', async () => {
    const dir = tempDir('tcp');
    const m = await oneDevice(dir, 'socket,host=127.0.0.1,port=0,server=on,wait=off');
    await echoOn(m);
    const at = (m.backend('c') as SocketChardev).listeningOn;
    if (at === null || at.type !== 'tcp') throw new Error('not listening on tcp');
    const c = new Collector(await connectTcp(Number(at.port)));
    c.socket.write('over tcp\n');
    expect(await c.line()).toBe('over tcp');
    c.socket.destroy();
  });

  it('socket unix and tcp clients: vmchan dials the host program', async () => {
    const dir = tempDir('client');
    for (const kind of ['unix', 'tcp'] as const) {
      const server = net.createServer();
      const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
      const where =
        kind === 'unix'
          ? await new Promise<string>((r) =>
              server.listen(path.join(dir, 'l'), () => r(`path=${path.join(dir, 'l')}`)),
            )
          : await new Promise<string>((r) =>
              server.listen(0, '127.0.0.1', () =>
                r(`host=127.0.0.1,port=${(server.address() as net.AddressInfo).port}`),
              ),
            );
      const m = await oneDevice(dir, `socket,${where}`);
      await echoOn(m);
      const c = new Collector(await accepted);
      c.socket.write(`dialled over ${kind}\n`);
      expect(await c.line()).toBe(`dialled over ${kind}`);
      c.socket.destroy();
      await m.close();
      await new Promise((r) => server.close(r));
    }
  });

  it('pipe: path.in and path.out FIFOs', async () => {
    const dir = tempDir('pipe');
    const base = path.join(dir, 'fifo');
    execFileSync('mkfifo', [`${base}.in`, `${base}.out`]);
    const m = await oneDevice(dir, `pipe,path=${base}`);
    await echoOn(m);
    const flags = fs.constants.O_RDWR | fs.constants.O_NONBLOCK;
    const toGuest = new net.Socket({
      fd: fs.openSync(`${base}.in`, flags),
      readable: false,
      writable: true,
    });
    const fromGuest = new Collector(
      new net.Socket({ fd: fs.openSync(`${base}.out`, flags), readable: true, writable: false }),
    );
    toGuest.write('through a FIFO\n');
    expect(await fromGuest.line()).toBe('through a FIFO');
    toGuest.destroy();
    fromGuest.socket.destroy();
  });

  it('file: the guest output lands in the file', async () => {
    const dir = tempDir('file');
    const file = path.join(dir, 'out.log');
    const m = await oneDevice(dir, `file,path=${file}`);
    const g = await guestClient(m, dir);
    g.socket.write('written by the guest\n');
    await waitUntil(
      () => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('\n'),
      'file',
    );
    expect(fs.readFileSync(file, 'utf8')).toBe('written by the guest\n');
    g.socket.destroy();
  });

  it('pty: a host program on the slave talks to the guest', async () => {
    const dir = tempDir('pty');
    const m = await oneDevice(dir, 'pty');
    await echoOn(m);
    const slave = (m.backend('c') as PtyChardev).slavePath;
    expect(slave).toMatch(/^\/dev\/pts\/\d+$/);
    const fd = fs.openSync(slave, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
    const reader = new tty.ReadStream(fd);
    const c = new Collector(reader as unknown as net.Socket);
    fs.writeSync(fd, 'via the pty\n');
    expect(await c.line()).toBe('via the pty');
    reader.destroy();
  });

  it('serial: a host tty device (here the pty of another lab: two guests on one line)', async () => {
    const dir = tempDir('tty');
    const a = await oneDevice(dir, 'pty');
    await echoOn(a);
    const slave = (a.backend('c') as PtyChardev).slavePath;
    const b = await oneDevice(path.join(dir), `serial,path=${slave}`);
    const g = await guestClient(b, dir);
    g.socket.write('over the line\n');
    expect(await g.line()).toBe('over the line');
    g.socket.destroy();
  });

  it('null: the host never connects; the guest reads end of file and cannot write', async () => {
    const dir = tempDir('null');
    const m = await oneDevice(dir, 'null');
    const files = m.lab.guest.files;
    const fd = await files.open('/dev/virtio-ports/p', O_RDWR | O_NONBLOCK);
    if (isErrno(fd)) throw new Error(fd.toString());
    const r = await files.read(fd, 100);
    expect(r).toEqual(new Uint8Array(0)); // L4
    const w = await files.write(fd, 'x');
    expect(isErrno(w) && w.code).toBe('EAGAIN'); // L5
    expect(m.chardevs()).toContainEqual({
      id: 'c',
      filename: 'null',
      frontendOpen: true,
      busy: true,
    });
    await files.close(fd);
  });

  it('ringbuf: guest output is read with ringbuf-read; QEMU refusals in its words', async () => {
    const dir = tempDir('ring');
    const m = await oneDevice(dir, 'ringbuf,size=16');
    const g = await guestClient(m, dir);
    g.socket.write('0123456789abcdefXYZ'); // 19 bytes into 16: the oldest 3 are overwritten
    await waitUntil(() => m.lab.port('p')!.port.stats.toHost === 19, 'guest bytes in the ring');
    const got = m.ringbufRead('c', 100);
    if (isQemuError(got)) throw new Error(got.message);
    expect(new TextDecoder().decode(got)).toBe('3456789abcdefXYZ');
    expect(m.ringbufWrite('c', new TextEncoder().encode('back'))).toBe(null);
    expect(new TextDecoder().decode(m.ringbufRead('c', 10) as Uint8Array)).toBe('back');
    expect((m.ringbufRead('nope', 1) as { message: string }).message).toBe(
      "Device 'nope' not found",
    );
    expect((m.ringbufRead('c', 0) as { message: string }).message).toBe(
      'size must be greater than zero',
    );
    g.socket.destroy();
  });

  it('ringbuf-read on another kind is refused', async () => {
    const dir = tempDir('ring2');
    const m = await oneDevice(dir, 'null');
    expect(m.ringbufWrite('c', new Uint8Array(1))?.message).toBe('c is not a ringbuf device');
  });

  it('udp: host datagrams reach the guest program, though udp is never "opened" (QEMU: be_opened = false)', async () => {
    const dir = tempDir('udp');
    const host = dgram.createSocket('udp4');
    await new Promise<void>((r) => host.bind(0, '127.0.0.1', () => r()));
    const probe = dgram.createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
    const localPort = probe.address().port;
    await new Promise<void>((r) => probe.close(() => r()));
    const m = await oneDevice(
      dir,
      `udp,host=127.0.0.1,port=${host.address().port},localaddr=127.0.0.1,localport=${localPort}`,
    );
    const g = await guestClient(m, dir);
    await waitUntil(() => m.chardevs()[0]!.frontendOpen, 'the guest to open the port');
    host.send('a datagram\n', localPort, '127.0.0.1');
    // The guest reads end of file first (no host, L4), then the datagram once it arrives (SIGIO).
    expect(await g.line()).toBe('a datagram');
    // Guest -> host needs a connected host for a serial port (L5); a console
    // on udp does send (test/serial/console-udp.test.ts covers that way).
    g.socket.destroy();
    await new Promise<void>((r) => host.close(() => r()));
  });
});
