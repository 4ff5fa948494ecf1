/**
 * The guest side of a port on a real QEMU, through the guest's own agent:
 * the test guest runs Debian's qemu-ga 7.2 (test/guest/build.sh,
 * `vmchan.qga=on`) on org.qemu.guest_agent.0, vmchan attaches over QMP and
 * opens a guest console on org.test.con.1 with guest-file-open / read /
 * write / close (core/qga/guest-console.ts). Bytes go host socket -> guest
 * console and guest console -> host socket (L6: the console's open is a
 * guest open, VSERPORT_CHANGE / frontend-open).
 *
 * Also: the simulated agent (core/qga) answers the guest-file-* commands the
 * console uses with the real qemu-ga's reply shapes and error texts; and the
 * real qemu-ga answers guest-ping / guest-info through vmchan's in-place tap
 * of the agent socket (QEMU listens on it), the capture showing the qga
 * JSON decoded.
 */
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TapState, TopologySnapshot } from '../../core/api/contract/contract.js';
import type { TerminalSession } from '../../core/api/contract/terminal-contract.js';
import { CaptureError } from '../../core/capture/error.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { decodePayload } from '../../core/capture/protocols.js';
import { isQgaError, QgaClient } from '../../core/qga/client.js';
import { startGuestAgents } from '../../core/qga/index.js';
import { QmpClient } from '../../core/qemu/qmp-client.js';
import { isQmpError } from '../../core/qemu/qmp-error.js';
import { TapJournal } from '../../core/qemu/tap-journal.js';
import { runAttach } from '../../cli/attach.js';
import { rig, type Rig } from '../api/helpers.js';
import { isGuestError } from '../guest/guest-shell.js';
import {
  AGENT_INSTALL_HINT,
  AGENT_PORT,
  missingAgent,
  startGuest,
  type Guest,
} from '../guest/qemu.js';
import { startRig, tempDir, unixServer, waitFor } from '../monitor/helpers.js';
import {
  chardevLookup,
  connectUnix,
  describeRealGuest,
  poller,
  requirePrerequisites,
} from './real-guest.js';

const PORT_NAME = 'org.test.con.1';
const noAgent = missingAgent();
const inCi = process.env['CI'] === 'true';
if (noAgent.length > 0 && !inCi)
  console.warn(`guest console tests skipped: missing ${noAgent.join(', ')}: ${AGENT_INSTALL_HINT}`);

/** A client connected to the agent socket and synced, or the test fails naming why. */
async function agentClient(socketPath: string): Promise<QgaClient> {
  const c = await QgaClient.over(await connectUnix(socketPath), { syncTimeoutMs: 15_000 });
  if (isQgaError(c)) throw new Error(`agent at ${socketPath}: ${c.toString()}`);
  return c;
}

/** A reply reduced to its shape: each key with the type of its value, or the error class and text. */
function shape(reply: unknown): unknown {
  if (isQgaError(reply)) return { error: reply.errorClass, desc: reply.message };
  if (typeof reply !== 'object' || reply === null) return typeof reply;
  return Object.fromEntries(
    Object.entries(reply)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, typeof v]),
  );
}

/**
 * The guest-file-* calls the guest console makes, on a port with a host
 * client connected: what each answers, as shapes. `host.send` writes into
 * the port from the host side, `host.reads` waits for what the guest wrote.
 */
async function guestFileTranscript(
  c: QgaClient,
  host: { send(text: string): void; reads(text: string): Promise<string> },
  wait: <T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean) => Promise<T>,
): Promise<unknown[]> {
  const out: unknown[] = [];
  out.push(shape(await c.execute('guest-file-open', { path: '/no/such/port', mode: 'r' })));
  const h = await c.execute('guest-file-open', {
    path: `/dev/virtio-ports/${PORT_NAME}`,
    mode: 'r+',
  });
  out.push(typeof h);
  if (typeof h !== 'number') return [...out, shape(h)];
  // nothing queued: a one-byte read fails with EAGAIN, taking nothing
  out.push(shape(await c.execute('guest-file-read', { handle: h, count: 1 })));
  // a write after a failed read: the handle was not reading, so it is written (buffered)
  const b64 = (t: string): string => Buffer.from(t).toString('base64');
  out.push(shape(await c.execute('guest-file-write', { handle: h, 'buf-b64': b64('one.') })));
  out.push(shape(await c.execute('guest-file-flush', { handle: h })));
  out.push(await host.reads('one.'));
  // two bytes from the host; one read of one byte succeeds
  host.send('xy');
  const first = await wait(
    'a one-byte read brings the host byte',
    () => c.execute('guest-file-read', { handle: h, count: 1 }),
    (r) => !isQgaError(r),
  );
  out.push(shape(first), (first as { 'buf-b64': string })['buf-b64']);
  // the second comes out of qemu-ga's stdio buffer
  const second = await c.execute('guest-file-read', { handle: h, count: 1 });
  out.push((second as { 'buf-b64'?: string })['buf-b64'] ?? shape(second));
  // a write straight after a successful read: a port cannot seek
  out.push(shape(await c.execute('guest-file-write', { handle: h, 'buf-b64': b64('two.') })));
  // a flush forgets the reading; the write goes through
  out.push(shape(await c.execute('guest-file-flush', { handle: h })));
  out.push(shape(await c.execute('guest-file-write', { handle: h, 'buf-b64': b64('two.') })));
  out.push(shape(await c.execute('guest-file-flush', { handle: h })));
  out.push(await host.reads('two.'));
  out.push(shape(await c.execute('guest-file-close', { handle: h })));
  const gone = await c.execute('guest-file-read', { handle: h, count: 1 });
  out.push(isQgaError(gone) ? gone.message.replace(String(h), 'H') : gone);
  return out;
}

/** A host application on a port's socket that keeps what it reads. */
async function hostApp(socketPath: string): Promise<{
  socket: net.Socket;
  send(text: string): void;
  reads(text: string): Promise<string>;
}> {
  const socket = await connectUnix(socketPath);
  let got = '';
  let wake = (): void => {};
  socket.on('data', (b: Buffer) => {
    got += b.toString();
    wake();
  });
  return {
    socket,
    send: (t) => void socket.write(t),
    reads: async (text) => {
      const end = Date.now() + 30_000;
      while (!got.includes(text)) {
        if (Date.now() > end) throw new Error(`the host never read '${text}' (got '${got}')`);
        await new Promise<void>((res) => {
          wake = res;
          setTimeout(res, Math.max(0, end - Date.now())); // only the deadline: data wakes it
        });
      }
      const all = got;
      got = '';
      return all;
    },
  };
}

describeRealGuest('guest console through qemu-ga on a real QEMU', 'guest console tests', () => {
  let guest: Guest;
  let qmp: QmpClient;
  let runDir: string;
  let appQmp: string;
  let r: Rig | undefined;
  const until = poller(30_000, 50);
  const chardev = chardevLookup(() => qmp);

  beforeAll(async () => {
    requirePrerequisites('the guest console tests');
    if (noAgent.length > 0)
      throw new Error(
        `cannot run the guest console tests: missing ${noAgent.join(', ')}; install with: ${AGENT_INSTALL_HINT}`,
      );
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-gcon-real-'));
    appQmp = path.join(runDir, 'app-qmp.sock');
    const g = await startGuest({
      runDir,
      agent: true,
      // On a loaded host TCG can miss the kernel's IO-APIC timer check and panic at boot.
      append: 'no_timer_check',
      ports: [{ id: 'con1', name: PORT_NAME }],
      extraArgs: ['-qmp', `unix:${appQmp},server=on,wait=off`],
    });
    if (isGuestError(g)) throw new Error(g.toString());
    guest = g;
    const c = await QmpClient.connect(guest.qmpPath, { greetingTimeoutMs: 15_000 });
    if (isQmpError(c)) throw new Error(c.toString());
    qmp = c;
    await until(
      'qemu-ga opened org.qemu.guest_agent.0 in the guest',
      () => chardev(AGENT_PORT.chardev),
      (x) => x['frontend-open'],
      60_000,
    );
  }, 180_000);

  afterAll(async () => {
    await r?.close();
    await qmp?.close();
    await guest?.stop();
    if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
  }, 30_000);

  it('attached: the guest console of a port through qemu-ga, bytes both ways, close is a guest close', async () => {
    r = await rig({
      attach: { pollIntervalMs: 300, guestConsole: { pollMs: 50 } },
    });
    const t = await r.must<TopologySnapshot>({ cmd: 'attach', address: appQmp });
    expect(t.capabilities?.['guestTerminal']).toEqual({ can: true });
    const port = t.ports.find((p) => p.name === PORT_NAME)!;
    const agentPort = t.ports.find((p) => p.name === AGENT_PORT.name)!;

    // the agent's own port is not a console, and a port must be named to be opened by name
    const own = await r.run({
      cmd: 'openTerminal',
      port: { device: agentPort.device, nr: agentPort.nr },
      side: 'guest',
    });
    expect(own.ok).toBe(false);

    // the host application first: a guest read with no host gets EOF
    const host = await connectUnix(guest.portSocket('con1'));
    let atHost = '';
    host.on('data', (b: Buffer) => (atHost += b.toString()));
    await until(
      'QEMU sees the host',
      () => chardev('c-con1'),
      (c) => !c.filename.startsWith('disconnected:'),
    );
    const session = await r.must<TerminalSession>({
      cmd: 'openTerminal',
      port: { device: port.device, nr: port.nr },
      side: 'guest',
    });
    expect(session).toMatchObject({
      kind: 'guest',
      path: `/dev/virtio-ports/${PORT_NAME}`,
      open: true,
    });
    expect(session.title).toContain('qemu-ga');
    await until(
      'the guest opened the port (guest-file-open)',
      () => chardev('c-con1'),
      (c) => c['frontend-open'],
    );

    const screen = (): string =>
      r!.batches
        .flatMap((b) => b.terminals ?? [])
        .filter((o) => o.session === session.id)
        .map((o) => Buffer.from(o.data, 'base64').toString())
        .join('');
    host.write('hello from the host\n');
    await until('the guest console shows the host bytes', screen, (s) =>
      s.includes('hello from the host\n'),
    );
    await r.must({ cmd: 'terminalInput', session: session.id, data: 'hello from the guest\n' });
    await until(
      'the host socket reads what the console typed',
      () => atHost,
      (s) => s === 'hello from the guest\n',
    );
    // and again: reads after a write, a write after reads
    host.write('second\n');
    await until('the console reads again', screen, (s) => s.endsWith('second\n'));
    await r.must({ cmd: 'terminalInput', session: session.id, data: 'again\n' });
    await until(
      'the host reads again',
      () => atHost,
      (s) => s.endsWith('again\n'),
    );

    await r.must({ cmd: 'closeTerminal', session: session.id });
    await until(
      'guest-file-close closed the port in the guest',
      () => chardev('c-con1'),
      (c) => !c['frontend-open'],
    );
    // the agent socket is free again once no console uses it
    await until(
      'vmchan hung up on the agent',
      () => chardev(AGENT_PORT.chardev),
      (c) => c.filename.startsWith('disconnected:'),
    );
    host.destroy();
    await r.must({ cmd: 'detach' });
    await r.close();
    r = undefined;
  }, 180_000);

  it('Q8 the simulated agent answers the guest-file-* calls as the real qemu-ga does', async () => {
    const wait = <T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean) =>
      until(what, probe, done);
    // the real one, in the guest
    const host = await hostApp(guest.portSocket('con1'));
    await until(
      'QEMU sees the host',
      () => chardev('c-con1'),
      (c) => !c.filename.startsWith('disconnected:'),
    );
    const real = await agentClient(guest.agentSocket);
    const realTranscript = await guestFileTranscript(real, host, wait);
    real.close();
    host.socket.destroy();

    // the simulated one, in the lab's guest, on a port of the same name
    const dir = tempDir('gcon-sim');
    // prettier-ignore
    const sim = await startRig(
      [
        ...unixServer(dir, 'qga0'),
        ...unixServer(dir, 'c1'),
        '-device', 'virtio-serial-pci,id=vser0,max_ports=8',
        '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0,id=qga',
        '-device', `virtserialport,chardev=c1,name=${PORT_NAME},id=con1`,
      ],
      dir,
    );
    const agents = startGuestAgents(sim.machine.lab);
    try {
      await waitFor(() => agents.current?.state === 'running', 'the simulated agent');
      const simHost = await hostApp(path.join(dir, 'c1'));
      const simClient = await agentClient(path.join(dir, 'qga0'));
      const simTranscript = await guestFileTranscript(simClient, simHost, wait);
      simClient.close();
      simHost.socket.destroy();
      expect(simTranscript).toEqual(realTranscript);
    } finally {
      agents.close();
      await sim.close();
    }
    // what both said, for the record
    const eagain = {
      error: 'GenericError',
      desc: 'failed to read file: Resource temporarily unavailable',
    };
    const written = { count: 'number', eof: 'boolean' };
    const read = { 'buf-b64': 'string', count: 'number', eof: 'boolean' };
    expect(realTranscript).toEqual([
      {
        error: 'GenericError',
        desc: "failed to open file '/no/such/port' (mode: 'r'): No such file or directory",
      },
      'number',
      eagain,
      written,
      {},
      'one.',
      read,
      Buffer.from('x').toString('base64'),
      Buffer.from('y').toString('base64'),
      { error: 'GenericError', desc: 'failed to seek file: Illegal seek' },
      {},
      written,
      {},
      'two.',
      {},
      "handle 'H' has not been found",
    ]);
  }, 120_000);

  it('the real qemu-ga answers guest-ping and guest-info through the in-place tap of its socket, the capture decoded', async () => {
    await r?.close();
    r = await rig({
      attach: { pollIntervalMs: 300, journal: new TapJournal(path.join(runDir, 'journal')) },
    });
    await r.must({ cmd: 'attach', address: appQmp });
    const capPath = path.join(runDir, 'qga.pcapng');
    await r.must({ cmd: 'startCapture', path: capPath });
    const tap = await r.must<TapState>({ cmd: 'tapChardev', id: AGENT_PORT.chardev });
    expect(tap).toMatchObject({ mode: 'in-place', address: guest.agentSocket });

    // a client of the agent socket at its usual path (as libvirtd would be), through vmchan
    const c = await agentClient(guest.agentSocket);
    expect(await c.execute('guest-ping')).toEqual({});
    const info = (await c.execute('guest-info')) as {
      version: string;
      supported_commands: { name: string }[];
    };
    expect(info.version).toBe('7.2.22');
    expect(info.supported_commands.map((x) => x.name)).toEqual(
      expect.arrayContaining(['guest-ping', 'guest-file-open', 'guest-file-read']),
    );
    c.close();
    await until(
      'the client gone for QEMU',
      () => chardev(AGENT_PORT.chardev),
      (x) => x.filename.startsWith('disconnected:'),
    );
    await r.must({ cmd: 'stopCapture' });
    await r.must({ cmd: 'detach' });
    await r.close();
    r = undefined;

    const reader = openCaptureSync(capPath);
    if (reader instanceof CaptureError) throw new Error(reader.toString());
    const decoded: { direction: string | undefined; fields: Record<string, unknown> }[] = [];
    try {
      for (let n = 0; n < reader.count; n++) {
        if (reader.kind(n) !== 'data') continue;
        if (reader.interfaceOf(n).portName !== AGENT_PORT.name) continue;
        const bytes = reader.payload(n);
        if (bytes instanceof CaptureError) throw new Error(bytes.toString());
        const d = decodePayload(AGENT_PORT.name, bytes);
        if (d === undefined) continue;
        expect(d.protocol).toBe('qga');
        decoded.push({
          direction: reader.direction(n),
          fields: Object.fromEntries(d.fields.map((f) => [f.name, f.value])),
        });
      }
    } finally {
      reader.close();
    }
    const commands = decoded
      .filter((d) => d.direction === 'host-to-guest')
      .map((d) => d.fields['qga.command']);
    expect(commands).toEqual(
      expect.arrayContaining(['guest-sync-delimited', 'guest-ping', 'guest-info']),
    );
    expect(
      decoded.some((d) => d.direction === 'guest-to-host' && d.fields['qga.type'] !== undefined),
    ).toBe(true);
  }, 180_000);

  it('vmchan attach --guest-console NAME: stdin into the guest side, the host’s bytes on stdout, ends at the end of stdin', async () => {
    await r?.close();
    r = undefined;
    const host = await hostApp(guest.portSocket('con1'));
    await until(
      'QEMU sees the host',
      () => chardev('c-con1'),
      (c) => !c.filename.startsWith('disconnected:'),
    );
    const input = new PassThrough();
    let output = '';
    const notes: string[] = [];
    const io = { out: () => {}, err: (t: string) => void notes.push(t) };
    const done = runAttach(
      { qmp: appQmp, guestConsole: PORT_NAME, poll: '0' },
      io,
      new Promise(() => {}),
      {
        input,
        output: (b) => void (output += Buffer.from(b).toString()),
        note: (t) => void notes.push(t),
      },
    );
    await until(
      'the CLI’s console opened the port in the guest',
      () => chardev('c-con1'),
      (c) => c['frontend-open'],
    );
    expect(notes.join('')).toMatch(/guest console on \/dev\/virtio-ports\/org\.test\.con\.1/);
    host.send('to the cli\n');
    await until(
      'stdout shows the host bytes',
      () => output,
      (o) => o.includes('to the cli\n'),
    );
    input.write('from the cli\n');
    expect(await host.reads('from the cli\n')).toBe('from the cli\n');
    input.end('bye\n');
    await done;
    expect(await host.reads('bye\n')).toBe('bye\n');
    await until(
      'the console closed the port when stdin ended',
      () => chardev('c-con1'),
      (c) => !c['frontend-open'],
    );
    host.socket.destroy();

    // a port the VM does not have: one line
    await expect(
      runAttach({ qmp: appQmp, guestConsole: 'org.no.such', poll: '0' }, io, Promise.resolve()),
    ).rejects.toThrow(/QEMU has no port named org\.no\.such/);
  }, 120_000);
});
