import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChardevRegistry, isChardevError, MuxChardev } from '../../core/chardev/index.js';
import type { ChardevEndpoint } from '../../core/serial/endpoint.js';
import { until } from '../until.js';
import { lab, spec, tempDir, TestFrontend, waitFor, writeAll } from './helpers.js';

const registries: ChardevRegistry[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(registries.splice(0).map((r) => r.closeAll()));
});

const unixServer = (p: string) =>
  ({
    kind: 'socket',
    address: { type: 'unix', path: p },
    server: true,
    wait: false,
    nodelay: false,
  }) as const;

function must<T>(v: T | { kind: string; message: string }): T {
  if (isChardevError(v)) throw new Error(v.toString());
  return v as T;
}

async function connect(p: string): Promise<{ socket: net.Socket; text: () => string }> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ path: p }, () => resolve(s));
    s.once('error', reject);
  });
  sockets.push(socket);
  const got: Buffer[] = [];
  socket.on('data', (d: Buffer) => got.push(d));
  return { socket, text: () => Buffer.concat(got).toString('latin1') };
}

describe('mux=on (H1)', () => {
  it('H1 one socket shared by two frontends: ctrl-a c switches input focus, output from both reaches the host', async () => {
    const p = path.join(tempDir(), 'mux');
    const { ctx } = lab();
    const reg = new ChardevRegistry(ctx);
    registries.push(reg);
    const mux = must(await reg.add(spec('m1', unixServer(p), { mux: true })));
    expect(mux).toBeInstanceOf(MuxChardev);
    const console0 = new TestFrontend();
    const monitor = new TestFrontend();
    const ep0 = must<ChardevEndpoint>(reg.attach('m1', console0));
    const ep1 = must<ChardevEndpoint>(reg.attach('m1', monitor));
    expect(ep0).not.toBe(ep1);

    const host = await connect(p);
    await waitFor(
      () => console0.events.includes('opened') && monitor.events.includes('opened'),
      'opened to both',
    );

    host.socket.write('abc');
    await waitFor(() => console0.text() === 'abc', 'focus on the first frontend');
    host.socket.write('\x01cdef');
    await waitFor(() => monitor.text() === 'def', 'ctrl-a c moves the focus');
    // The escape split across two reads: the mux must have read the lone ctrl-a first.
    const readBefore = (mux as MuxChardev).base.counters.bytesIn;
    host.socket.write('\x01');
    await until(
      () => (mux as MuxChardev).base.counters.bytesIn > readBefore,
      'the lone ctrl-a read',
    );
    host.socket.write('\x01x'); // split escape, then a literal ctrl-a and 'x'
    await waitFor(() => monitor.text() === 'def\x01x', 'ctrl-a ctrl-a is one ctrl-a');
    host.socket.write('\x01c!');
    await waitFor(() => console0.text() === 'abc!', 'wraps around to the first');
    expect((mux as MuxChardev).stats.focusSwitches).toBe(2);
    expect(console0.events).toEqual(['opened']);
    expect(monitor.events).toEqual(['opened']);

    await writeAll(ep0, new TextEncoder().encode('[console]'));
    await writeAll(ep1, new TextEncoder().encode('[monitor]'));
    await waitFor(() => host.text() === '[console][monitor]', 'output from every frontend');

    host.socket.write('\x01h');
    await waitFor(
      () => host.text().includes('C-a c    switch between console and monitor'),
      'help',
    );

    expect(reg.info()).toEqual([
      { label: 'm1', filename: 'mux', 'frontend-open': false },
      { label: 'm1-base', filename: `unix:${p},server=on`, 'frontend-open': false },
    ]);
  });

  it('H1 a mux takes at most four frontends', async () => {
    const { ctx } = lab();
    const reg = new ChardevRegistry(ctx);
    registries.push(reg);
    must(await reg.add(spec('m2', { kind: 'null' }, { mux: true })));
    for (let i = 0; i < 4; i++) must<ChardevEndpoint>(reg.attach('m2', new TestFrontend()));
    const fifth = reg.attach('m2', new TestFrontend());
    expect(isChardevError(fifth) && fifth.message).toBe(
      "too many uses of multiplexed chardev 'm2' (maximum is 4)",
    );
  });

  it('H1 the focused frontend being slow holds its input, and ctrl-a c still works', async () => {
    const p = path.join(tempDir(), 'slow');
    const { ctx } = lab();
    const reg = new ChardevRegistry(ctx);
    registries.push(reg);
    const mux = must(await reg.add(spec('m3', unixServer(p), { mux: true }))) as MuxChardev;
    const a = new TestFrontend();
    const b = new TestFrontend();
    const epA = must<ChardevEndpoint>(reg.attach('m3', a));
    must<ChardevEndpoint>(reg.attach('m3', b));
    a.room = 0;
    const host = await connect(p);
    host.socket.write('held');
    await until(() => mux.base.counters.bytesIn === 4, "the mux read 'held' (held for a)");
    host.socket.write('\x01cfor b');
    await waitFor(() => b.text() === 'for b', 'b got its bytes');
    expect(a.received).toBe(0);
    a.room = Infinity;
    epA.acceptInput();
    await waitFor(() => a.text() === 'held', 'a gets what was held for it');
  });
});

describe('chardev registry', () => {
  it("H1 duplicate ids, busy chardevs and removal with QEMU's messages", async () => {
    const dir = tempDir();
    const p = path.join(dir, 'r');
    const { ctx } = lab();
    const reg = new ChardevRegistry(ctx);
    registries.push(reg);
    must(await reg.add(spec('c1', unixServer(p))));
    const dup = await reg.add(spec('c1', { kind: 'null' }));
    expect(isChardevError(dup) && dup.message).toBe("Duplicate ID 'c1' for chardev");
    const ep = must<ChardevEndpoint>(reg.attach('c1', new TestFrontend()));
    const again = reg.attach('c1', new TestFrontend());
    expect(isChardevError(again) && again.message).toBe("Device 'c1' is in use");
    const busy = await reg.remove('c1');
    expect(busy?.message).toBe("Chardev 'c1' is busy");
    ep.detach();
    expect(await reg.remove('c1')).toBeNull();
    expect(fs.existsSync(p)).toBe(false);
    expect((await reg.remove('c1'))?.message).toBe("Chardev 'c1' not found");
    const unsupported = await reg.add(spec('v1', { kind: 'other', driver: 'vc' }));
    expect(isChardevError(unsupported) && unsupported.kind).toBe('Unsupported');
  });
});
