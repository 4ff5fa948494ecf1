/**
 * The in-place tap (core/qemu/inplace-tap.ts) on a unix socket a stand-in
 * for QEMU listens on (a real listening socket: what matters here is the
 * filesystem node, the owner and mode, and forwarding): the tap takes the
 * path with the same mode, QEMU's node moves aside and keeps answering,
 * every byte both ways is captured, a client from before the tap stays
 * direct until it reconnects, detach gives the path back, and a vmchan
 * killed with SIGKILL leaves a journal the next start restores from.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemorySink } from '../../core/capture/record.js';
import { isAttachError } from '../../core/qemu/attach-error.js';
import { InPlaceTap } from '../../core/qemu/inplace-tap.js';
import { recoverMoves, TapJournal } from '../../core/qemu/tap-journal.js';
import { poller } from './real-guest.js';

const until = poller(5000, 10);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface StandIn {
  server: net.Server;
  path: string;
  received: () => string;
  clients: net.Socket[];
  close(): Promise<void>;
}

/** "QEMU": listens on `p` (mode 0660), takes one client at a time, keeps what it reads. */
async function standIn(p: string): Promise<StandIn> {
  let got = '';
  const clients: net.Socket[] = [];
  const server = net.createServer((s) => {
    clients.push(s);
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(p, r));
  fs.chmodSync(p, 0o660);
  return {
    server,
    path: p,
    received: () => got,
    clients,
    close: () =>
      new Promise<void>((r) => {
        for (const c of clients) c.destroy();
        server.close(() => r());
      }),
  };
}

function connect(p: string): Promise<{ socket: net.Socket; got: () => string }> {
  return new Promise((resolve, reject) => {
    let got = '';
    const socket = net.connect({ path: p });
    socket.on('data', (d: Buffer) => (got += d.toString()));
    socket.once('connect', () => resolve({ socket, got: () => got }));
    socket.once('error', reject);
  });
}

let dir: string;
let qemu: StandIn | undefined;
let tap: InPlaceTap | undefined;
afterEach(async () => {
  await tap?.close();
  await qemu?.close();
  tap = qemu = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

function setup(): { sock: string; journal: TapJournal } {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-inplace-'));
  return { sock: path.join(dir, 'agent.sock'), journal: new TapJournal(path.join(dir, 'run')) };
}

describe('in-place tap on a unix socket QEMU listens on', () => {
  it('takes the path with the same mode, forwards and captures both ways, gives the path back on close', async () => {
    const { sock, journal } = setup();
    qemu = await standIn(sock);
    const qemuIno = fs.statSync(sock).ino;
    const sink = new MemorySink();
    const t = await InPlaceTap.start({
      chardev: 'ch0',
      target: { transport: 'unix', path: sock, server: true },
      port: { device: 'vser0', nr: 1, kind: 'virtserialport', name: 'org.test.agent' },
      sink,
      journal,
    });
    if (isAttachError(t)) throw new Error(t.toString());
    tap = t;
    // our socket at the path, QEMU's node aside and still listening, the move in the journal
    const ours = fs.statSync(sock);
    expect(ours.ino).not.toBe(qemuIno);
    expect(ours.isSocket()).toBe(true);
    expect(ours.mode & 0o777).toBe(0o660);
    expect(fs.statSync(t.entry.moved).ino).toBe(qemuIno);
    expect(journal.entries()).toEqual([
      expect.objectContaining({ original: sock, pid: process.pid }),
    ]);
    expect(t.waitingForReconnect).toBe(false);

    // the application connects to the path it always used
    const app = await connect(sock);
    app.socket.write('to-guest');
    await until(
      'QEMU reads the bytes',
      () => qemu!.received(),
      (v) => v === 'to-guest',
    );
    await until(
      'QEMU has the tap as its client',
      () => qemu!.clients.length,
      (n) => n === 1,
    );
    qemu.clients[0]!.write('to-host');
    await until(
      'the application reads',
      () => app.got(),
      (v) => v === 'to-host',
    );
    const data = sink.records.filter((r) => r.kind === 'data');
    expect(data.map((r) => [r.direction, Buffer.from(r.bytes).toString()])).toEqual([
      ['host-to-guest', 'to-guest'],
      ['guest-to-host', 'to-host'],
    ]);
    expect(t.tap.stats).toMatchObject({ toGuest: 8, toHost: 7 });
    app.socket.destroy();

    // detach: QEMU's own node is back at the path, nothing left behind
    expect(await t.close()).toMatch(/back at/);
    tap = undefined;
    expect(fs.statSync(sock).ino).toBe(qemuIno);
    expect(fs.existsSync(t.entry.moved)).toBe(false);
    expect(journal.entries()).toEqual([]);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.vmchan-tap-'))).toEqual([]);
    const direct = await connect(sock);
    direct.socket.write('direct');
    await until(
      'QEMU reads directly',
      () => qemu!.received(),
      (v) => v.endsWith('direct'),
    );
    direct.socket.destroy();
  });

  it('a client connected before the tap stays direct (uncaptured) until it reconnects through the tap', async () => {
    const { sock, journal } = setup();
    qemu = await standIn(sock);
    const before = await connect(sock);
    await until(
      'QEMU has the old client',
      () => qemu!.clients.length,
      (n) => n === 1,
    );
    const sink = new MemorySink();
    const t = await InPlaceTap.start({
      chardev: 'ch0',
      target: { transport: 'unix', path: sock, server: true },
      port: { device: 'vser0', nr: 1, kind: 'virtserialport', name: null },
      sink,
      journal,
      clientConnected: true,
    });
    if (isAttachError(t)) throw new Error(t.toString());
    tap = t;
    expect(t.waitingForReconnect).toBe(true);
    before.socket.write('old');
    await until(
      'QEMU reads the old client',
      () => qemu!.received(),
      (v) => v === 'old',
    );
    expect(sink.records.filter((r) => r.kind === 'data')).toEqual([]);
    before.socket.destroy();
    const again = await connect(sock);
    await until(
      'the tap serves the new connection',
      () => t.waitingForReconnect,
      (w) => !w,
    );
    again.socket.write('new');
    await until(
      'QEMU reads through the tap',
      () => qemu!.received(),
      (v) => v === 'oldnew',
    );
    expect(sink.records.some((r) => r.kind === 'data')).toBe(true);
    again.socket.destroy();
  });

  it('refuses what it cannot take in place, in one line: tcp, QEMU as the client, not a socket', async () => {
    const { sock, journal } = setup();
    const tcp = await InPlaceTap.start({
      chardev: 't',
      target: { transport: 'tcp', host: '127.0.0.1', port: 4444, server: true },
      journal,
    });
    expect(isAttachError(tcp) && tcp.message).toMatch(/tcp port cannot be taken.*new port/);
    const client = await InPlaceTap.start({
      chardev: 'c',
      target: { transport: 'unix', path: sock, server: false },
      journal,
    });
    expect(isAttachError(client) && client.message).toMatch(/reverse tap/);
    fs.writeFileSync(sock, '');
    const file = await InPlaceTap.start({
      chardev: 'f',
      target: { transport: 'unix', path: sock, server: true },
      journal,
    });
    expect(isAttachError(file) && file.message).toMatch(/is not a socket/);
  });
});

describe('a vmchan killed while tapping in place', () => {
  beforeAll(() => {
    // the child runs the built module (npm run build), as the CLI does
    const built = path.join(ROOT, 'dist/core/qemu/inplace-tap.js');
    if (!fs.existsSync(built)) throw new Error(`${built} is missing: run npm run build first`);
  });

  it('leaves the move in the journal; the next start puts QEMU’s node back (SIGKILL)', async () => {
    const { sock, journal } = setup();
    qemu = await standIn(sock);
    const qemuIno = fs.statSync(sock).ino;
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { InPlaceTap } from ${JSON.stringify(path.join(ROOT, 'dist/core/qemu/inplace-tap.js'))};
         import { TapJournal } from ${JSON.stringify(path.join(ROOT, 'dist/core/qemu/tap-journal.js'))};
         const t = await InPlaceTap.start({ chardev: 'ch0',
           target: { transport: 'unix', path: process.argv[1], server: true },
           journal: new TapJournal(process.argv[2]) });
         if (!(t instanceof InPlaceTap)) { console.error(String(t)); process.exit(1); }
         process.stdout.write('tapped\\n');
         setInterval(() => {}, 1000);`,
        sock,
        path.join(dir, 'run'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`child exited ${code}: ${err}`)));
    });
    expect(fs.statSync(sock).ino).not.toBe(qemuIno);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    // the path holds a dead socket; QEMU's node waits aside; the journal knows
    expect(journal.entries()).toHaveLength(1);
    const lines = recoverMoves(journal);
    expect(lines).toEqual([`chardev ch0: QEMU's socket is back at ${sock}`]);
    expect(fs.statSync(sock).ino).toBe(qemuIno);
    expect(journal.entries()).toEqual([]);
    const direct = await connect(sock);
    direct.socket.write('after');
    await until(
      'QEMU answers at its path again',
      () => qemu!.received(),
      (v) => v === 'after',
    );
    direct.socket.destroy();
  });

  it('SIGTERM: the path goes back before the process ends', async () => {
    const { sock, journal } = setup();
    qemu = await standIn(sock);
    const qemuIno = fs.statSync(sock).ino;
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { InPlaceTap } from ${JSON.stringify(path.join(ROOT, 'dist/core/qemu/inplace-tap.js'))};
         import { TapJournal } from ${JSON.stringify(path.join(ROOT, 'dist/core/qemu/tap-journal.js'))};
         const t = await InPlaceTap.start({ chardev: 'ch0',
           target: { transport: 'unix', path: process.argv[1], server: true },
           journal: new TapJournal(process.argv[2]) });
         if (!(t instanceof InPlaceTap)) { console.error(String(t)); process.exit(1); }
         process.stdout.write('tapped\\n');
         setInterval(() => {}, 1000);`,
        sock,
        path.join(dir, 'run'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, s) => r(s)));
    child.kill('SIGTERM');
    expect(await exited).toBe('SIGTERM');
    expect(fs.statSync(sock).ino).toBe(qemuIno);
    expect(journal.entries()).toEqual([]);
  });
});
