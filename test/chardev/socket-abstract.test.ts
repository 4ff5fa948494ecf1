/**
 * H5, issue 14 item 4: abstract=on (Linux abstract unix sockets) in both of
 * QEMU's forms (util/qemu-sockets.c unix_listen_saddr / unix_connect_saddr:
 * `addrlen = tight ? offsetof(sun_path) + 1 + strlen(path) : sizeof(un)`;
 * qemu_chr_parse_socket defaults tight to on). The name lives in the
 * abstract namespace (a leading NUL), no file is made. Linux compares the
 * whole address (net/unix/af_unix.c unix_find_abstract hashes and compares
 * `len` bytes), so a tight client cannot reach a padded server and a padded
 * client cannot reach a tight one. Every check runs against a real peer:
 * socat's ABSTRACT-CONNECT/ABSTRACT-LISTEN bind tight, and with
 * `unix-tightsocklen=0` padded.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parseQemuArgs } from '../../core/machine/index.js';
import { createChardev, isChardevError, type OpenChardev } from '../../core/chardev/index.js';
import { socketKind } from '../../core/chardev/kinds/socket.js';
import type { SocketBackend } from '../../core/chardev/kinds/socket.js';
import {
  lab,
  skipWithoutSocat,
  socat,
  spec,
  TestFrontend,
  waitFor,
  writeAll,
  type Socat,
} from './helpers.js';

const opened: OpenChardev[] = [];
const peers: Socat[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.stop()));
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

const HAVE_PYTHON3 = spawnSync('python3', ['-c', 'pass'], { stdio: 'ignore' }).status === 0;

let counter = 0;
function uniqueName(): string {
  return `vmchan-abs-${process.pid}-${++counter}`;
}

/** /proc/net/unix's entries for `name`: `@name` (tight) or `@name@@@...` (padded, NULs shown as @). */
function procEntries(name: string): string[] {
  return fs
    .readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[7] ?? '')
    .filter((p) => p.startsWith(`@${name}`));
}
const PADDED_LENGTH = 108; // the whole sun_path, as /proc/net/unix prints it

function socketSpec(name: string, server: boolean, tight: boolean): ReturnType<typeof spec> {
  const backend: SocketBackend = {
    kind: 'socket',
    address: { type: 'unix', path: name },
    server,
    wait: false,
    nodelay: false,
    abstract: true,
  };
  if (!tight) backend.tight = false;
  return spec('abs', backend);
}

/** socat's address for `name` in the given form. */
function socatAddress(verb: 'CONNECT' | 'LISTEN', name: string, tight: boolean): string {
  return `ABSTRACT-${verb}:${name}${tight ? '' : ',unix-tightsocklen=0'}`;
}

describe('H5 abstract unix socket names: parsing, printing and chardev-add', () => {
  it('H5 abstract=on defaults to tight; tight=off is kept and printed back', () => {
    const r = parseQemuArgs([
      '-chardev',
      'socket,id=a,path=n1,server=on,wait=off,abstract=on',
      '-chardev',
      'socket,id=b,path=n2,server=on,wait=off,abstract=on,tight=off',
    ]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const [a, b] = r.value.chardevs;
    expect(a!.backend).toMatchObject({ kind: 'socket', abstract: true });
    expect(a!.backend).not.toHaveProperty('tight');
    expect(b!.backend).toMatchObject({ kind: 'socket', abstract: true, tight: false });
    expect(b!.ignoredKeys ?? {}).toEqual({});
    const printed = socketKind.qemu!.print(b!.backend as SocketBackend);
    expect(printed).toContainEqual(['abstract', 'on']);
    expect(printed).toContainEqual(['tight', 'off']);
    expect(socketKind.qemu!.print(a!.backend as SocketBackend)).not.toContainEqual([
      'tight',
      'off',
    ]);
  });

  it('H5 chardev-add reads abstract and tight from a unix address and writes them back', () => {
    const wire = socketKind.qmp!;
    const read = wire.read('socket', {
      addr: { type: 'unix', data: { path: 'n3', abstract: true, tight: false } },
      server: true,
      wait: false,
    });
    expect(read).toMatchObject({ abstract: true, tight: false });
    const again = wire.write(read as SocketBackend);
    expect(again).toMatchObject({
      data: { addr: { type: 'unix', data: { path: 'n3', abstract: true, tight: false } } },
    });
    const tight = wire.read('socket', {
      addr: { type: 'unix', data: { path: 'n4', abstract: true } },
    });
    expect(tight).toMatchObject({ abstract: true });
    expect(tight).not.toHaveProperty('tight');
  });
});

describe.skipIf(!HAVE_PYTHON3 && process.env.CI !== 'true')(
  `H5 abstract unix sockets against socat${HAVE_PYTHON3 ? '' : ' (python3 missing: apt-get install python3-minimal)'}`,
  () => {
    if (skipWithoutSocat()) return;

    for (const tight of [true, false]) {
      const form = tight ? 'tight (the default)' : 'tight=off (padded)';
      const other = tight ? 'padded' : 'tight';

      it(`H5 a ${form} server: @name in /proc/net/unix, no file, a ${tight ? 'tight' : 'padded'} socat client carries bytes, a ${other} one is refused`, async () => {
        const name = uniqueName();
        const { open } = lab();
        const c = await open(socketSpec(name, true, tight));
        opened.push(c);
        expect(fs.existsSync(name)).toBe(false);
        const entries = procEntries(name);
        expect(entries).toHaveLength(1);
        expect(entries[0]!.length).toBe(tight ? name.length + 1 : PADDED_LENGTH);

        // The other form first: the kernel finds no such address.
        const wrong = socat(['-', socatAddress('CONNECT', name, !tight)]);
        peers.push(wrong);
        expect(await wrong.exited).not.toBe(0);
        expect(c.connected).toBe(false);

        const fe = new TestFrontend();
        c.attach(fe);
        const right = socat(['-', socatAddress('CONNECT', name, tight)]);
        peers.push(right);
        await waitFor(() => c.connected, `the ${form} client on @${name}`);
        right.write('abstract');
        await waitFor(() => fe.text() === 'abstract', 'bytes from the socat client');
        await writeAll(c, new TextEncoder().encode('back'));
        await waitFor(() => right.output().toString() === 'back', 'bytes to the socat client');
      });

      it(`H5 a ${form} client reaches a ${tight ? 'tight' : 'padded'} socat server and not a ${other} one`, async () => {
        const name = uniqueName();
        const server = socat([socatAddress('LISTEN', name, tight), '-']);
        peers.push(server);
        await waitFor(() => procEntries(name).length === 1, `socat listening on @${name}`);
        const { open } = lab();
        const fe = new TestFrontend();
        const c = await open(socketSpec(name, false, tight));
        opened.push(c);
        c.attach(fe);
        expect(c.connected).toBe(true);
        server.write('hello');
        await waitFor(() => fe.text() === 'hello', 'bytes from the socat server');

        const otherName = uniqueName();
        const otherServer = socat([socatAddress('LISTEN', otherName, !tight), '-']);
        peers.push(otherServer);
        await waitFor(
          () => procEntries(otherName).length === 1,
          `socat listening on @${otherName}`,
        );
        const refused = await createChardev(socketSpec(otherName, false, tight), lab().ctx);
        expect(isChardevError(refused)).toBe(true);
        if (isChardevError(refused))
          expect(refused.message).toBe(`Failed to connect to '${otherName}': Connection refused`);
      });
    }

    it('H5 a second tight server on the same name: QEMU\'s "Failed to bind socket" with EADDRINUSE', async () => {
      const name = uniqueName();
      const { open, ctx } = lab();
      opened.push(await open(socketSpec(name, true, true)));
      const second = await createChardev(socketSpec(name, true, true), ctx);
      expect(isChardevError(second)).toBe(true);
      if (isChardevError(second))
        expect(second.message).toBe(`Failed to bind socket to @${name}: Address already in use`);
      // The padded name is another address: it binds beside the tight one.
      opened.push(await open(socketSpec(name, true, false)));
      expect(procEntries(name)).toHaveLength(2);
    });
  },
);

if (!HAVE_PYTHON3 && process.env.CI === 'true') {
  it('H5 python3 is installed (tight abstract names use it)', () => {
    throw new Error('python3 not found: apt-get install python3-minimal');
  });
}
