/**
 * vmchan as the client of a guest agent (core/qga/client.ts) and the guest
 * console through it (core/qga/guest-console.ts), against the simulated
 * guest's agent: the same calls test/qemu/guest-console-real.test.ts makes
 * against the real qemu-ga 7.2 in the test guest.
 *
 * L6 / L7: the console's guest-file-open is a guest open of the port, its
 * close a guest close; bytes cross the rings both ways.
 */
import net from 'node:net';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QgaClient, isQgaError } from '../../core/qga/client.js';
import { GuestConsole } from '../../core/qga/guest-console.js';
import { startGuestAgents, type GuestAgents } from '../../core/qga/index.js';
import {
  SocketClient,
  removeTempDirs,
  startRig,
  tempDir,
  unixServer,
  waitFor,
  type Rig,
} from '../monitor/helpers.js';

let rig: Rig;
let agents: GuestAgents;
let dir: string;

beforeEach(async () => {
  dir = tempDir('qgacon');
  rig = await startRig(
    [
      ...unixServer(dir, 'qmp'),
      '-mon',
      'chardev=qmp,mode=control',
      ...unixServer(dir, 'qga0'),
      ...unixServer(dir, 'c1'),
      '-device',
      'virtio-serial-pci,id=vser0,max_ports=8',
      '-device',
      'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0,id=qga',
      '-device',
      'virtserialport,chardev=c1,name=org.test.port.1,id=port1',
    ],
    dir,
  );
  agents = startGuestAgents(rig.machine.lab);
  await waitFor(() => agents.current?.state === 'running', 'the agent');
});

afterEach(async () => {
  agents.close();
  await rig.close();
  removeTempDirs();
});

function connect(p: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: p }, () => resolve(s));
    s.once('error', reject);
  });
}

async function client(): Promise<QgaClient> {
  const c = await QgaClient.over(await connect(path.join(dir, 'qga0')));
  if (isQgaError(c)) throw new Error(c.toString());
  return c;
}

describe('the qga client', () => {
  it('syncs past what an earlier client left half-written, then answers in order', async () => {
    const s = await connect(path.join(dir, 'qga0'));
    // an earlier client's half request: the 0xFF the client sends first resets the parser
    s.write('{"execute": "guest-ping", "argum');
    const c = await QgaClient.over(s);
    if (isQgaError(c)) throw new Error(c.toString());
    expect(await c.execute('guest-ping')).toEqual({});
    const info = (await c.execute('guest-info')) as { version: string };
    expect(info.version).toBe('7.2.22');
    const missing = await c.execute('guest-file-open', { path: '/no/such', mode: 'r' });
    expect(isQgaError(missing) && missing.kind).toBe('CommandFailed');
    expect(String(missing)).toBe(
      "failed to open file '/no/such' (mode: 'r'): No such file or directory",
    );
    c.close();
  });

  it('names the silence when no agent answers', async () => {
    agents.close();
    await waitFor(() => agents.current?.state === 'stopped', 'the agent stops');
    const c = await QgaClient.over(await connect(path.join(dir, 'qga0')), { syncTimeoutMs: 300 });
    expect(isQgaError(c) && c.kind).toBe('NoAnswer');
    expect(String(c)).toMatch(/no guest agent answered guest-sync-delimited within 300 ms/);
  });
});

describe('the guest console through the agent', () => {
  it('host bytes reach the console, typed bytes reach the host; close is a guest close', async () => {
    const host = await SocketClient.connect(path.join(dir, 'c1'));
    const c = await client();
    const con = await GuestConsole.open(c, '/dev/virtio-ports/org.test.port.1', { pollMs: 20 });
    if (isQgaError(con)) throw new Error(con.toString());
    let seen = Buffer.alloc(0);
    con.onData((b) => (seen = Buffer.concat([seen, b])));
    const port = () =>
      rig.machine.lab.device('vser0')!.ports.find((p) => p.name === 'org.test.port.1')!;
    await waitFor(() => port().guestConnected, 'the guest opens org.test.port.1');

    // more than one stdio buffer, so reads come out of the buffer and out of the port
    const text = Buffer.from(Array.from({ length: 5000 }, (_, i) => 65 + (i % 26)));
    host.write(text);
    await waitFor(() => seen.length >= text.length, 'the console reads 5000 bytes', 30_000);
    expect(seen.equals(text)).toBe(true);

    // typed right after reads: drained, flushed, written, flushed; nothing of the reads lost
    host.write('tail');
    expect(con.write(new TextEncoder().encode('hello host\n'))).toBe(11);
    await host.until((b) => b.includes('hello host\n'), 'the host reads the typed line');
    await waitFor(() => seen.toString().endsWith('tail'), 'the console reads the tail');

    await con.close();
    expect(con.open).toBe(false);
    await waitFor(() => !port().guestConnected, 'guest-file-close closes the port in the guest');
    c.close();
    await host.close();
  });

  it('a write-only console refuses nothing it should and reads nothing', async () => {
    const host = await SocketClient.connect(path.join(dir, 'c1'));
    const c = await client();
    const con = await GuestConsole.open(c, '/dev/virtio-ports/org.test.port.1', { mode: 'w' });
    if (isQgaError(con)) throw new Error(con.toString());
    con.write(new TextEncoder().encode('w only'));
    await host.until((b) => b.includes('w only'), 'the host reads it');
    expect(con.stats.polls).toBe(0);
    await con.close();
    c.close();
    await host.close();
  });

  it('a missing path is the agent’s error, as a value', async () => {
    const c = await client();
    const con = await GuestConsole.open(c, '/dev/virtio-ports/org.no.such');
    expect(isQgaError(con) && con.message).toBe(
      "failed to open file '/dev/virtio-ports/org.no.such' (mode: 'r+'): No such file or directory",
    );
    c.close();
  });
});
