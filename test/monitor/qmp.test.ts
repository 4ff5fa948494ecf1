/**
 * Q1-Q3 through a real unix socket: the greeting, capabilities
 * negotiation, QEMU's error classes for malformed and unknown input (the
 * monitor keeps running), one client at a time, and the query commands.
 */
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  QmpClient,
  SocketClient,
  recordedMachineArgs,
  removeTempDirs,
  startRig,
  tempDir,
  unixServer,
  type Rig,
  waitFor,
} from './helpers.js';

let rig: Rig;
let qmpPath: string;

beforeEach(async () => {
  const dir = tempDir('qmp');
  rig = await startRig(recordedMachineArgs(dir), dir);
  qmpPath = path.join(dir, 'qmp');
});

afterEach(async () => {
  await rig.close();
  removeTempDirs();
});

describe('Q1 greeting and capabilities negotiation', () => {
  it('greets exactly like QEMU 7.2, with vmchan as the package', async () => {
    const c = await SocketClient.connect(qmpPath);
    await c.until((b) => b.includes('\r\n'), 'greeting');
    expect(c.received.toString()).toMatch(
      /^\{"QMP": \{"version": \{"qemu": \{"micro": 22, "minor": 2, "major": 7\}, "package": "vmchan [0-9.]+"\}, "capabilities": \["oob"\]\}\}\r\n$/,
    );
    await c.close();
  });

  it("refuses commands before qmp_capabilities with QEMU's text, then negotiates", async () => {
    const q = await QmpClient.connect(qmpPath, false);
    expect(await q.execute('query-version')).toEqual({
      id: 't1',
      error: {
        class: 'CommandNotFound',
        desc: "Expecting capabilities negotiation with 'qmp_capabilities'",
      },
    });
    q.send('{"execute": "qmp_capabilities", "id": "q1"}\n');
    await q.find((m) => m.id === 'q1', 'negotiation');
    expect(q.lines.at(-1)).toBe('{"return": {}, "id": "q1"}');
    expect(await q.execute('qmp_capabilities')).toEqual({
      id: 't2',
      error: {
        class: 'CommandNotFound',
        desc: 'Capabilities negotiation is already complete, command ignored',
      },
    });
    expect(await q.must('query-version')).toEqual({
      qemu: { micro: 22, minor: 2, major: 7 },
      package: expect.stringMatching(/^vmchan /),
    });
    await q.close();
  });

  it('accepts enable: ["oob"] and refuses unknown capabilities as QAPI does', async () => {
    const q = await QmpClient.connect(qmpPath, false);
    expect(await q.execute('qmp_capabilities', { enable: ['bogus'] })).toMatchObject({
      error: { class: 'GenericError', desc: "Parameter 'enable[0]' does not accept value 'bogus'" },
    });
    expect(await q.execute('qmp_capabilities', { enable: ['oob'] })).toMatchObject({ return: {} });
    q.send('{"exec-oob": "query-status", "id": "o1"}\n');
    expect(await q.find((m) => m.id === 'o1', 'oob reply')).toEqual({
      id: 'o1',
      error: { class: 'GenericError', desc: 'The command query-status does not support OOB' },
    });
    await q.close();
  });
});

describe('Q1 errors as QEMU reports them; the monitor keeps running', () => {
  it('answers malformed JSON, bad requests and unknown commands, then works on', async () => {
    const q = await QmpClient.connect(qmpPath);
    const from = q.lines.length;
    q.send('{"execute": }\n');
    q.send('[1, 2]\n');
    q.send('{"id": 7}\n');
    q.send('{"execute": "query-status", "foo": 1, "id": 8}\n');
    q.send('{"execute": 42, "id": 9}\n');
    q.send('{"execute": "query-status", "arguments": [], "id": 10}\n');
    q.send('{"execute": "no-such-command", "id": 11}\n');
    q.send('{"execute": "device_del", "id": 12}\n');
    q.send('{"execute": "device_del", "arguments": {"id": 5}, "id": 13}\n');
    q.send('{"execute": "query-status", "arguments": {"x": 1}, "id": 14}\n');
    await q.find((m) => m.id === 14, 'the last reply', from);
    expect(q.lines.slice(from)).toEqual([
      '{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}',
      '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}',
      '{"id": 7, "error": {"class": "GenericError", "desc": "QMP input lacks member \'execute\'"}}',
      '{"id": 8, "error": {"class": "GenericError", "desc": "QMP input member \'foo\' is unexpected"}}',
      '{"id": 9, "error": {"class": "GenericError", "desc": "QMP input member \'execute\' must be a string"}}',
      '{"id": 10, "error": {"class": "GenericError", "desc": "QMP input member \'arguments\' must be an object"}}',
      '{"id": 11, "error": {"class": "CommandNotFound", "desc": "The command no-such-command has not been found"}}',
      '{"id": 12, "error": {"class": "GenericError", "desc": "Parameter \'id\' is missing"}}',
      '{"id": 13, "error": {"class": "GenericError", "desc": "Invalid parameter type for \'id\', expected: string"}}',
      '{"id": 14, "error": {"class": "GenericError", "desc": "Parameter \'x\' is unexpected"}}',
    ]);
    expect(await q.must('query-status')).toEqual({
      status: 'running',
      singlestep: false,
      running: true,
    });
    await q.close();
  });

  it('answers device_del of an unknown id with DeviceNotFound', async () => {
    const q = await QmpClient.connect(qmpPath);
    expect(await q.execute('device_del', { id: 'nope' })).toMatchObject({
      error: { class: 'DeviceNotFound', desc: "Device 'nope' not found" },
    });
    await q.close();
  });
});

describe('Q1 one client at a time, a fresh session per client', () => {
  it('H3 serves the waiting client with a new greeting after the first hangs up', async () => {
    const first = await QmpClient.connect(qmpPath);
    const second = await SocketClient.connect(qmpPath);
    // The chardev takes one client at a time (H3): the second waits in the backlog, as
    // with QEMU (char-socket.c stops accepting while a client is connected) ...
    await first.execute('query-version'); // a round trip: the second got nothing meanwhile
    expect(second.received.length).toBe(0);
    await first.close();
    // ... and gets its own greeting once the first has left.
    await waitFor(() => second.received.toString().startsWith('{"QMP": '), 'the greeting');
    await second.close();
    const third = await QmpClient.connect(qmpPath, false);
    expect(third.lines[0]).toMatch(/^\{"QMP": /);
    expect(await third.execute('query-status')).toMatchObject({
      error: { class: 'CommandNotFound' },
    });
    await third.close();
  });
});

describe('Q2 query commands', () => {
  it('lists every command it has', async () => {
    const q = await QmpClient.connect(qmpPath);
    const names = ((await q.must('query-commands')) as { name: string }[]).map((c) => c.name);
    for (const n of [
      'qmp_capabilities',
      'query-commands',
      'query-chardev',
      'query-version',
      'query-status',
      'chardev-add',
      'chardev-remove',
      'device_add',
      'device_del',
      'qom-list',
      'qom-get',
      'ringbuf-read',
      'ringbuf-write',
      'quit',
      'x-query-virtio',
      'x-query-virtio-status',
      'x-query-virtio-queue-status',
      'x-query-virtio-queue-element',
    ]) {
      expect(names).toContain(n);
    }
    await q.close();
  });

  it("query-chardev shows QEMU's shape, the disconnected: prefix and frontend-open", async () => {
    const q = await QmpClient.connect(qmpPath);
    const r = (await q.execute('query-chardev')) as { return: Record<string, unknown>[] };
    const c1 = r.return.find((c) => c.label === 'c1');
    expect(c1).toEqual({
      'frontend-open': false,
      filename: `disconnected:unix:${path.join(rig.dir, 'c1')},server=on`,
      label: 'c1',
    });
    const monitor = r.return.find((c) => c.label === 'qmp');
    expect(monitor).toEqual({
      'frontend-open': true,
      filename: `unix:${path.join(rig.dir, 'qmp')},server=on`,
      label: 'qmp',
    });
    expect(q.lines.at(-1)).toContain('{"frontend-open": false, "filename": "disconnected:unix:');
    await q.close();
  });

  it('quit answers, sends SHUTDOWN and hands over to the machine', async () => {
    const q = await QmpClient.connect(qmpPath);
    const from = q.lines.length;
    expect(await q.execute('quit')).toMatchObject({ return: {} });
    const e = await q.event('SHUTDOWN');
    expect(q.lines.slice(from).map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      { return: {}, id: expect.any(String) },
      expect.objectContaining({ event: 'SHUTDOWN' }),
    ]);
    expect(e.data).toEqual({ guest: false, reason: 'host-qmp-quit' });
    expect(e.timestamp).toEqual({ seconds: expect.any(Number), microseconds: expect.any(Number) });
    await waitFor(() => rig.quits === 1, 'the machine told to quit');
    await q.close();
  });
});

describe('Q1 pretty=on', () => {
  it('indents replies as QEMU does', async () => {
    await rig.close();
    const dir = tempDir('pretty');
    rig = await startRig(
      [
        ...unixServer(dir, 'qmp'),
        '-mon',
        'chardev=qmp,mode=control,pretty=on',
        '-device',
        'virtio-serial',
      ],
      dir,
    );
    const c = await SocketClient.connect(path.join(dir, 'qmp'));
    await c.until((b) => b.toString().endsWith('}\r\n'), 'greeting');
    c.take(c.received.length);
    c.write('{"execute": "qmp_capabilities", "id": 1}');
    await c.until((b) => b.toString().endsWith('}\r\n'), 'reply');
    expect(c.received.toString()).toBe('{\r\n    "return": {\r\n    },\r\n    "id": 1\r\n}\r\n');
    await c.close();
  });
});
