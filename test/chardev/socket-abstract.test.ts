/**
 * Issue 14 item 4: abstract=on (Linux abstract unix sockets, QEMU's
 * util/qemu-sockets.c unix_listen_saddr with abstract/tight). The name
 * lives in the abstract namespace (a leading NUL), no file is made. QEMU's
 * default tight=on binds the name at its own length; Node binds the name
 * padded to the whole sun_path, which is QEMU's tight=off, so vmchan takes
 * abstract=on only with tight=off and refuses the default by name.
 */
import fs from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseQemuArgs } from '../../core/machine/index.js';
import type { OpenChardev } from '../../core/chardev/index.js';
import { lab, TestFrontend, waitFor } from './helpers.js';

const opened: OpenChardev[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

describe('H1 socket abstract=on,tight=off (Linux abstract namespace)', () => {
  it('H1 listens on @NAME with no file, carries bytes, and prints back as written', async () => {
    const name = `vmchan-abstract-${process.pid}`;
    const r = parseQemuArgs([
      '-chardev',
      `socket,id=a,path=${name},server=on,wait=off,abstract=on,tight=off`,
    ]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const spec = r.value.chardevs[0]!;
    expect(spec.backend).toMatchObject({ kind: 'socket', abstract: true });
    expect(spec.ignoredKeys).toEqual({ tight: 'off' });

    const { open } = lab();
    const c = await open(spec);
    opened.push(c);
    expect(fs.existsSync(name)).toBe(false);
    expect(fs.readFileSync('/proc/net/unix', 'utf8')).toContain(`@${name}`);
    const fe = new TestFrontend();
    c.attach(fe);
    const client = net.createConnection({ path: `\0${name}` });
    client.on('error', () => {});
    await waitFor(() => c.connected, 'the client on the abstract name');
    client.write('abstract');
    await waitFor(() => fe.text() === 'abstract', 'bytes from the client');
    client.destroy();
  });

  it("H1 QEMU's default tight=on is refused by name", () => {
    const r = parseQemuArgs(['-chardev', 'socket,id=a,path=x,server=on,abstract=on']);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/^vmchan does not emulate tight abstract/);
  });
});
