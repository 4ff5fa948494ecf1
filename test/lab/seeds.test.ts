/**
 * The seeds' command lines and configurations, as written, end to end:
 * seed 000 (the Fedora feature page: legacy `server,nowait` syntax, consoles)
 * driven with socat, and seed 001 (two guests whose ports are cross-connected
 * through FIFO pairs, from the mailing list's libvirt XML).
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { GuestDir, isGuestDirError } from '../../core/guestdir/index.js';
import { topologyFromLibvirtXml } from '../../core/machine/libvirt-xml.js';
import { Machine } from '../../core/machine/machine.js';
import { isQemuError } from '../../core/base/qemu-error.js';
import {
  Collector,
  connectUnix,
  describeWithSocat,
  removeTempDirs,
  startMachine,
  tempDir,
  waitUntil,
} from './helpers.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close();
});
afterAll(removeTempDirs);

async function guestDirOf(m: Machine, dir: string): Promise<GuestDir> {
  const g = await GuestDir.open(m.lab, dir);
  if (isGuestDirError(g)) throw new Error(g.message);
  open.push(g);
  return g;
}

/**
 * socat writing `text` to a unix socket and keeping its end open until it hears `awaited`
 * (as `(printf ...; sleep 0.5) | socat - UNIX-CONNECT:...`: QEMU's socket
 * chardev, like vmchan's, drops a client at its end of file); resolves with
 * what socat printed.
 */
function socatSay(
  socketPath: string,
  text: string,
  awaited: string,
  timeoutMs = 5000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('socat', ['-', `UNIX-CONNECT:${socketPath}`]);
    let out = '';
    let err = '';
    // socat's input ends once it has heard `awaited` (or after timeoutMs:
    // the caller's expect then shows what it heard instead).
    const timer = setTimeout(() => p.stdin.end(), timeoutMs);
    p.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes(awaited)) {
        clearTimeout(timer);
        p.stdin.end();
      }
    });
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`socat: ${err}`))));
    p.stdin.write(text);
  });
}

describeWithSocat('seed 000: the Fedora page, legacy syntax', () => {
  it('H2 L2: -chardev socket,path=...,server,nowait; socat on the host reaches the guest app', async () => {
    const dir = tempDir('fedora');
    const foo = path.join(dir, 'foo');
    const m = await startMachine(
      [
        '-device',
        'virtio-serial',
        '-chardev',
        `socket,path=${foo},server,nowait,id=foo`,
        '-device',
        'virtserialport,chardev=foo,name=org.fedoraproject.port.0',
      ],
      dir,
    );
    open.push(m);
    // sysfs and udev as the page describes them.
    const ns = m.lab.guest.namespace;
    expect(ns.readFile('/sys/class/virtio-ports/vport0p1/name')).toBe('org.fedoraproject.port.0\n');
    expect(ns.readlink('/dev/virtio-ports/org.fedoraproject.port.0')).toBe('../vport0p1');
    expect(m.chardevs()).toContainEqual({
      id: 'foo',
      filename: `disconnected:unix:${foo},server=on`,
      frontendOpen: false,
      busy: true,
    });

    // A guest app on /dev/virtio-ports/org.fedoraproject.port.0 (the guest-dir socket).
    const g = await guestDirOf(m, path.join(dir, 'guest'));
    const app = new Collector(await connectUnix(path.join(g.dir, 'org.fedoraproject.port.0')));
    await waitUntil(() => m.chardevs().find((c) => c.id === 'foo')!.frontendOpen, 'frontend-open');
    // "Data written into host's /tmp/foo (via a utility like socat) will then be relayed to the guest."
    app.socket.write('hi from the guest\n');
    const heard = await socatSay(foo, 'hello from the host\n', 'hi from the guest\n');
    expect(await app.line()).toBe('hello from the host');
    expect(heard).toBe('hi from the guest\n');
    app.socket.destroy();
  });

  it('H2 L2: two virtioconsole ports (trailing commas) are hvc0 and hvc1; socat gets each console', async () => {
    const dir = tempDir('fedcons');
    const foo = path.join(dir, 'foo');
    const bar = path.join(dir, 'bar');
    const m = await startMachine(
      [
        '-device',
        'virtio-serial',
        '-chardev',
        `socket,path=${foo},server,nowait,id=foo`,
        '-chardev',
        `socket,path=${bar},server,nowait,id=bar`,
        '-device',
        'virtioconsole,chardev=foo,',
        '-device',
        'virtioconsole,chardev=bar,',
      ],
      dir,
    );
    open.push(m);
    const g = await guestDirOf(m, path.join(dir, 'guest'));
    expect(fs.readdirSync(g.dir).sort()).toEqual(['hvc0', 'hvc1']);
    // "agetty /dev/hvc0": a guest program on each console answers with its name.
    const getty = async (tty: string): Promise<Collector> => {
      const c = new Collector(await connectUnix(path.join(g.dir, tty)));
      c.socket.on('data', () => c.socket.write(`login on ${tty}: `));
      return c;
    };
    const c0 = await getty('hvc0');
    const c1 = await getty('hvc1');
    expect(await socatSay(foo, '\n', 'login on hvc0: ')).toBe('login on hvc0: ');
    expect(await socatSay(bar, '\n', 'login on hvc1: ')).toBe('login on hvc1: ');
    c0.socket.destroy();
    c1.socket.destroy();
  });
});

describe('seed 001: two guests cross-connected through FIFO pairs', () => {
  it('H1 L2 D6: bytes written by guest A arrive at guest B and back, on both port pairs', async () => {
    const dir = tempDir('fifo');
    const p = (name: string): string => path.join(dir, name);
    // mkfifo /tmp/guesta-virtioserial{1,2}.{in,out}; ln crosswise for guest b.
    for (const n of [1, 2]) {
      execFileSync('mkfifo', [p(`guesta-virtioserial${n}.in`), p(`guesta-virtioserial${n}.out`)]);
      fs.linkSync(p(`guesta-virtioserial${n}.in`), p(`guestb-virtioserial${n}.out`));
      fs.linkSync(p(`guesta-virtioserial${n}.out`), p(`guestb-virtioserial${n}.in`));
    }
    // The mail's XML as written (unclosed <channel> elements and all).
    const xml = (guest: string): string => `
<channel type='pipe'>
  <source path="${p(`${guest}-virtioserial1`)}"/>
  <target type='virtio' name='org.linux-kvm.port.1'/>
<channel type='pipe'>
  <source path="${p(`${guest}-virtioserial2`)}"/>
  <target type='virtio' name='org.linux-kvm.port.2'/>`;
    const machines: Machine[] = [];
    const dirs: GuestDir[] = [];
    for (const guest of ['guesta', 'guestb']) {
      const t = topologyFromLibvirtXml(xml(guest));
      if (!t.ok) throw new Error(t.error.toString());
      const m = await Machine.start(t.value, { runtimeDir: dir });
      if (isQemuError(m)) throw new Error(m.message);
      open.push(m);
      machines.push(m);
      dirs.push(await guestDirOf(m, p(`${guest}-ports`)));
    }
    for (const port of ['org.linux-kvm.port.1', 'org.linux-kvm.port.2']) {
      const a = new Collector(await connectUnix(path.join(dirs[0]!.dir, port)));
      const b = new Collector(await connectUnix(path.join(dirs[1]!.dir, port)));
      a.socket.write(`A to B on ${port}\n`);
      expect(await b.line()).toBe(`A to B on ${port}`);
      const big = Buffer.alloc(256 * 1024, port.at(-1));
      b.socket.write(big);
      expect((await a.bytesAtLeast(big.length)).equals(big)).toBe(true);
      a.socket.destroy();
      b.socket.destroy();
    }
  });
});
