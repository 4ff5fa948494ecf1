/**
 * The guest agent, driven through the host socket of the
 * org.qemu.guest_agent.0 port as a real client would drive qemu-ga 7.2
 * (qemu-7.2-samples/qga.log): sync, ping, info, the file commands on guest
 * ports, QEMU's errors, and the L6 poll sequence of a port watched through
 * the vmchan extension x-guest-file-poll.
 */
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startGuestAgents, type GuestAgents } from '../../core/qga/index.js';
import {
  QmpClient,
  SocketClient,
  removeTempDirs,
  startRig,
  tempDir,
  unixServer,
  waitFor,
  type Rig,
} from '../monitor/helpers.js';

/** A qemu-ga client: one JSON command per line, replies LF-terminated (0xFF first when delimited). */
class AgentClient {
  private consumed = 0;

  constructor(readonly socket: SocketClient) {}

  static async connect(p: string): Promise<AgentClient> {
    return new AgentClient(await SocketClient.connect(p));
  }

  /** Send a line, return the raw reply bytes (up to and including the newline). */
  async raw(line: string): Promise<Buffer> {
    this.socket.write(`${line}\n`);
    await this.socket.until((b) => b.indexOf(0x0a, this.consumed) >= 0, `reply to ${line}`);
    const end = this.socket.received.indexOf(0x0a, this.consumed) + 1;
    const out = this.socket.received.subarray(this.consumed, end);
    this.consumed = end;
    return Buffer.from(out);
  }

  async text(execute: string, args?: Record<string, unknown>): Promise<string> {
    const line = JSON.stringify({ execute, ...(args ? { arguments: args } : {}) });
    return (await this.raw(line)).toString().replace(/\n$/, '');
  }

  async run(execute: string, args?: Record<string, unknown>): Promise<Record<string, unknown>> {
    return JSON.parse(await this.text(execute, args)) as Record<string, unknown>;
  }

  async ret(execute: string, args?: Record<string, unknown>): Promise<Record<string, unknown>> {
    const r = await this.run(execute, args);
    if (!('return' in r)) throw new Error(`${execute}: ${JSON.stringify(r)}`);
    return r.return as Record<string, unknown>;
  }

  close(): Promise<void> {
    return this.socket.close();
  }
}

let rig: Rig;
let agents: GuestAgents;
let qga: AgentClient;

function agentArgs(dir: string): string[] {
  return [
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
  ];
}

beforeEach(async () => {
  const dir = tempDir('qga');
  rig = await startRig(agentArgs(dir), dir);
  agents = startGuestAgents(rig.machine.lab);
  await waitFor(() => agents.current?.state === 'running', 'the agent');
  qga = await AgentClient.connect(path.join(dir, 'qga0'));
});

afterEach(async () => {
  await qga.close();
  agents.close();
  await rig.close();
  removeTempDirs();
});

describe('qemu-ga protocol as 7.2 answers it', () => {
  it('guest-sync, guest-sync-delimited (0xFF first), guest-ping', async () => {
    expect(await qga.raw('{"execute": "guest-sync", "arguments": {"id": 4242}}')).toEqual(
      Buffer.from('{"return": 4242}\n'),
    );
    expect(await qga.raw('{"execute": "guest-sync-delimited", "arguments": {"id": 7}}')).toEqual(
      Buffer.concat([Buffer.from([0xff]), Buffer.from('{"return": 7}\n')]),
    );
    expect(await qga.text('guest-ping')).toBe('{"return": {}}');
    expect(await qga.raw('{"execute": "guest-ping", "id": "p1"}')).toEqual(
      Buffer.from('{"return": {}, "id": "p1"}\n'),
    );
  });

  it('guest-info lists the commands, x-guest-file-poll among them', async () => {
    const info = await qga.ret('guest-info');
    expect(info.version).toBe('7.2.22');
    const names = (info.supported_commands as { name: string; enabled: boolean }[]).map(
      (c) => c.name,
    );
    expect(names).toEqual(
      expect.arrayContaining([
        'guest-sync',
        'guest-sync-delimited',
        'guest-ping',
        'guest-info',
        'guest-file-open',
        'guest-file-read',
        'guest-file-write',
        'guest-file-flush',
        'guest-file-close',
        'x-guest-file-poll',
      ]),
    );
  });

  it("answers errors with qemu-ga's classes and texts, and keeps answering", async () => {
    expect(await qga.text('guest-file-open', { path: '/nonexistent/x', mode: 'r' })).toBe(
      '{"error": {"class": "GenericError", "desc": "failed to open file \'/nonexistent/x\' (mode: \'r\'): No such file or directory"}}',
    );
    expect(await qga.text('guest-frobnicate')).toBe(
      '{"error": {"class": "CommandNotFound", "desc": "The command guest-frobnicate has not been found"}}',
    );
    expect(await qga.text('x-guest-file-poll', { handle: 1 })).toBe(
      '{"error": {"class": "GenericError", "desc": "handle \'1\' has not been found"}}',
    );
    // An object cut across lines waits for its end, as QEMU's streamer does.
    qga.socket.write('{"execute":\n');
    expect((await qga.raw('"guest-ping"}')).toString()).toBe('{"return": {}}\n');
  });
});

describe('qemu-ga malformed input', () => {
  it('answers JSON errors, non-objects and objects without execute', async () => {
    expect((await qga.raw('{"execute": }')).toString()).toBe(
      '{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}\n',
    );
    expect((await qga.raw('[1]')).toString()).toBe(
      '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}\n',
    );
    expect((await qga.raw('{"id": 1}')).toString()).toBe(
      '{"id": 1, "error": {"class": "GenericError", "desc": "QMP input lacks member \'execute\'"}}\n',
    );
    expect(await qga.text('guest-sync', {})).toBe(
      '{"error": {"class": "GenericError", "desc": "Parameter \'id\' is missing"}}',
    );
    expect(await qga.text('guest-sync', { id: 1 })).toBe('{"return": 1}');
  });
});

describe('L6 a guest port polled through the agent (guest-file-* and x-guest-file-poll)', () => {
  it('walks HUP, OUT, IN|OUT, IN|HUP, drained, OUT on reconnect', async () => {
    const p1 = path.join(rig.dir, 'c1');
    const handle = (
      await qga.run('guest-file-open', { path: '/dev/virtio-ports/org.test.port.1', mode: 'r+' })
    ).return as number;
    expect(handle).toBe(1000);
    const poll = async (): Promise<string> =>
      (await qga.ret('x-guest-file-poll', { handle })).events as string;

    // Host absent: HUP. Linux (and the lab) also set IN, since a read would not block (it returns 0).
    expect(await poll()).toBe('IN|HUP');
    const host = await SocketClient.connect(p1);
    await waitFor(() => rig.machine.lab.port('port1')?.port.hostConnected === true, 'host side');
    await waitFor(
      () =>
        rig.machine.lab.guest.ports().some((p) => p.name === 'org.test.port.1' && p.hostConnected),
      'guest sees the host',
    );
    expect(await poll()).toBe('OUT');

    host.write('hello');
    await waitFor(
      () => rig.machine.lab.guest.ports().some((p) => p.name === 'org.test.port.1' && p.hasData()),
      'data in the guest',
    );
    expect(await poll()).toBe('IN|OUT');
    expect(await qga.ret('guest-file-read', { handle, count: 5 })).toEqual({
      count: 5,
      'buf-b64': Buffer.from('hello').toString('base64'),
      eof: false,
    });
    expect(await poll()).toBe('OUT');

    // As qemu-ga: a write right after a read needs fseek, which a port refuses.
    expect(
      await qga.text('guest-file-write', {
        handle,
        'buf-b64': Buffer.from('xyz').toString('base64'),
      }),
    ).toBe('{"error": {"class": "GenericError", "desc": "failed to seek file: Illegal seek"}}');
    await qga.ret('guest-file-flush', { handle });
    expect(
      await qga.ret('guest-file-write', {
        handle,
        'buf-b64': Buffer.from('xyz').toString('base64'),
      }),
    ).toEqual({
      count: 3,
      eof: false,
    });
    // stdio buffers it: nothing reaches the host before guest-file-flush,
    // though the engine has done everything the write asked of it.
    await rig.machine.lab.scheduler.idle();
    expect(host.received.length).toBe(0);
    await qga.ret('guest-file-flush', { handle });
    await host.until((b) => b.toString() === 'xyz', 'the flushed bytes');

    host.write('bye');
    await waitFor(
      () => rig.machine.lab.guest.ports().some((p) => p.name === 'org.test.port.1' && p.hasData()),
      'data',
    );
    await host.close();
    await waitFor(() => rig.machine.lab.port('port1')?.port.hostConnected === false, 'host gone');
    await waitFor(
      () =>
        rig.machine.lab.guest.ports().some((p) => p.name === 'org.test.port.1' && !p.hostConnected),
      'guest sees host gone',
    );
    expect(await poll()).toBe('IN|HUP');
    expect(await qga.ret('guest-file-read', { handle, count: 3 })).toEqual({
      count: 3,
      'buf-b64': Buffer.from('bye').toString('base64'),
      eof: false,
    });
    // Drained: still IN|HUP in Linux and the lab (a read returns 0 at once); the read says eof.
    expect(await poll()).toBe('IN|HUP');
    expect(await qga.ret('guest-file-read', { handle, count: 10 })).toEqual({
      count: 0,
      eof: true,
    });

    const again = await SocketClient.connect(p1);
    await waitFor(
      () =>
        rig.machine.lab.guest.ports().some((p) => p.name === 'org.test.port.1' && p.hostConnected),
      'reconnect',
    );
    expect(await poll()).toBe('OUT');
    expect(await qga.ret('guest-file-close', { handle })).toEqual({});
    expect(await qga.text('guest-file-close', { handle })).toBe(
      '{"error": {"class": "GenericError", "desc": "handle \'1000\' has not been found"}}',
    );
    await again.close();
  });

  it("fails a read that asks for more than is queued, as qemu-ga's fread does", async () => {
    const host = await SocketClient.connect(path.join(rig.dir, 'c1'));
    const handle = (await qga.ret('guest-file-open', {
      path: '/dev/vport0p2',
      mode: 'r',
    })) as unknown as number;
    expect(handle).toBe(1000);
    const second = (await qga.ret('guest-file-open', {
      path: '/sys/class/virtio-ports/vport0p2/name',
    })) as unknown as number;
    expect(second).toBe(1001);
    expect(await qga.ret('guest-file-read', { handle: second })).toEqual({
      count: 16,
      'buf-b64': Buffer.from('org.test.port.1\n').toString('base64'),
      eof: true,
    });
    await waitFor(
      () =>
        rig.machine.lab.guest.ports().some((p) => p.name === 'org.test.port.1' && p.hostConnected),
      'host',
    );
    host.write('abc');
    await waitFor(
      () => rig.machine.lab.guest.ports().some((p) => p.name === 'org.test.port.1' && p.hasData()),
      'data',
    );
    expect(await qga.text('guest-file-read', { handle, count: 10 })).toBe(
      '{"error": {"class": "GenericError", "desc": "failed to read file: Resource temporarily unavailable"}}',
    );
    expect(await qga.text('guest-file-open', { path: '/dev/vport0p2', mode: 'r' })).toBe(
      '{"error": {"class": "GenericError", "desc": "failed to open file \'/dev/vport0p2\' (mode: \'r\'): Device or resource busy"}}',
    );
    expect(await qga.text('guest-file-open', { path: '/dev/vport0p2', mode: 'rw' })).toBe(
      '{"error": {"class": "GenericError", "desc": "invalid file open mode \'rw\'"}}',
    );
    await host.close();
  });
});

describe('the agent on the channel', () => {
  it("its own bytes cross the port like any other port's", async () => {
    const seen: number[] = [];
    const off = rig.machine.lab.events.on('data', (e) => {
      if (e.direction === 'to-host') seen.push(e.bytes.length);
    });
    await qga.ret('guest-ping');
    await waitFor(() => seen.length > 0, 'data events');
    expect(seen.reduce((a, b) => a + b, 0)).toBe('{"return": {}}\n'.length);
    off();
  });

  it('starts on a hot-plugged org.qemu.guest_agent.0 and stops when it is unplugged', async () => {
    await qga.close();
    agents.close();
    await rig.close();
    const dir = tempDir('qgahp');
    rig = await startRig(
      [
        ...unixServer(dir, 'qmp'),
        '-mon',
        'chardev=qmp,mode=control',
        '-device',
        'virtio-serial-pci,id=vser0',
      ],
      dir,
    );
    agents = startGuestAgents(rig.machine.lab);
    expect(agents.current).toBe(null);
    const q = await QmpClient.connect(path.join(dir, 'qmp'));
    await q.must('chardev-add', {
      id: 'qga0',
      backend: {
        type: 'socket',
        data: { addr: { type: 'unix', data: { path: path.join(dir, 'qga0') } } },
      },
    });
    const from = q.lines.length;
    await q.must('device_add', {
      driver: 'virtserialport',
      chardev: 'qga0',
      name: 'org.qemu.guest_agent.0',
      id: 'qga',
    });
    await waitFor(() => agents.current?.state === 'running', 'the agent');
    // The agent holds the port open, as qemu-ga does.
    expect((await q.event('VSERPORT_CHANGE', (d) => d.id === 'qga', from)).data).toEqual({
      open: true,
      id: 'qga',
    });
    qga = await AgentClient.connect(path.join(dir, 'qga0'));
    expect(await qga.text('guest-sync', { id: 5 })).toBe('{"return": 5}');
    await q.must('device_del', { id: 'qga' });
    await waitFor(() => agents.current?.state === 'stopped', 'the agent to stop');
    await agents.current!.done;
    // Stopped by the link going away, or by its read failing with ENODEV, whichever came first.
    expect(agents.current!.stopReason).toMatch(/^(stopped|read: No such device)$/);
    await q.close();
  });
});
