/**
 * The QMP client against a fake server that replays the shapes recorded
 * from a real QEMU 7.2 (shared/design/qemu-7.2-samples): Q1-Q3.
 */
import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { JsonObjectStream, stringifyJson } from '../../core/qemu/json-stream.js';
import { parseQmpAddress } from '../../core/qemu/qmp-address.js';
import { QmpClient, type QmpClientState } from '../../core/qemu/qmp-client.js';
import { isQmpError, QmpError } from '../../core/qemu/qmp-error.js';
import { chardevBackend, parseChardevFilename } from '../../core/qemu/qmp-types.js';
import { FakeQmpServer, type FakeQmpOptions } from './fake-qmp-server.js';
import { until } from '../until.js';

// ---- recorded shapes (scenario.log, scenario2.log, status.json, qstatus.jsonl) ----

const QUERY_CHARDEV = [
  { 'frontend-open': false, filename: 'unix:/tmp/guest/p2,server=on', label: 'c2' },
  {
    'frontend-open': true,
    filename: 'disconnected:unix:/tmp/guest/ttyS0.sock,server=on',
    label: 'ser0',
  },
  { 'frontend-open': true, filename: 'disconnected:unix:/tmp/guest/con,server=on', label: 'c0' },
  { 'frontend-open': false, filename: 'disconnected:unix:/tmp/guest/p1,server=on', label: 'c1' },
  {
    'frontend-open': true,
    filename: 'unix:/tmp/guest/qmp.sock,server=on',
    label: 'compat_monitor0',
  },
];

const VIRTIO_STATUS = {
  'device-endian': 'little',
  'bus-name': 'vser0.0',
  'disable-legacy-check': false,
  name: 'virtio-serial',
  started: true,
  'device-id': 3,
  'backend-features': { 'dev-features': [], transports: [] },
  'start-on-kick': false,
  isr: 1,
  broken: false,
  status: {
    statuses: [
      'VIRTIO_CONFIG_S_ACKNOWLEDGE: Valid virtio device found',
      'VIRTIO_CONFIG_S_DRIVER: Guest OS compatible with device',
      'VIRTIO_CONFIG_S_FEATURES_OK: Feature negotiation complete',
      'VIRTIO_CONFIG_S_DRIVER_OK: Driver setup and ready',
    ],
  },
  'num-vqs': 18,
  'guest-features': {
    'unknown-dev-features': 1099511627776,
    'dev-features': ['VIRTIO_CONSOLE_F_MULTIPORT: Multiple ports for device supported'],
    transports: [
      'VIRTIO_RING_F_EVENT_IDX: Used & avail. event fields enabled',
      'VIRTIO_RING_F_INDIRECT_DESC: Indirect descriptors supported',
      'VIRTIO_F_VERSION_1: Device compliant for v1 spec (legacy)',
    ],
  },
  'host-features': {
    'unknown-dev-features': 1100585369600,
    'dev-features': [
      'VIRTIO_CONSOLE_F_EMERG_WRITE: Emergency write supported',
      'VIRTIO_CONSOLE_F_MULTIPORT: Multiple ports for device supported',
    ],
    transports: ['VIRTIO_F_VERSION_1: Device compliant for v1 spec (legacy)'],
  },
  'use-guest-notifier-mask': true,
  'vm-running': true,
  'queue-sel': 17,
  disabled: false,
  'vhost-started': false,
  'use-started': true,
};

const QUEUE_STATUS_2 = {
  'signalled-used': 38,
  inuse: 0,
  name: 'virtio-serial',
  'vring-align': 4096,
  'vring-desc': 44716032,
  'signalled-used-valid': true,
  'vring-num-default': 32,
  'vring-avail': 44716544,
  'queue-index': 2,
  'last-avail-idx': 38,
  'vring-used': 44716672,
  'used-idx': 38,
  'shadow-avail-idx': 64,
  'vring-num': 32,
};

const servers: FakeQmpServer[] = [];
const clients: QmpClient[] = [];

async function fake(options: FakeQmpOptions = {}): Promise<FakeQmpServer> {
  const server = await FakeQmpServer.start(options);
  servers.push(server);
  return server;
}

async function connected(server: FakeQmpServer, options = {}): Promise<QmpClient> {
  const client = await QmpClient.connect(server.address, options);
  if (isQmpError(client)) throw new Error(`connect failed: ${client.toString()}`);
  clients.push(client);
  return client;
}

function expectError(value: unknown, kind: QmpError['kind']): QmpError {
  expect(value).toBeInstanceOf(QmpError);
  const err = value as QmpError;
  expect(err.kind, err.message).toBe(kind);
  return err;
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of servers.splice(0)) await s.close();
});

describe('parseQmpAddress', () => {
  it.each([
    ['/run/vm/qmp.sock', { kind: 'unix', path: '/run/vm/qmp.sock' }],
    ['./qmp.sock', { kind: 'unix', path: './qmp.sock' }],
    ['qmp.sock', { kind: 'unix', path: 'qmp.sock' }],
    ['unix:/tmp/q.sock', { kind: 'unix', path: '/tmp/q.sock' }],
    ['unix:/tmp/q.sock,server=on,wait=off', { kind: 'unix', path: '/tmp/q.sock' }],
    ['unix:/tmp/a,,b.sock,server', { kind: 'unix', path: '/tmp/a,b.sock' }],
    ['/tmp/odd:4444', { kind: 'unix', path: '/tmp/odd:4444' }],
    ['localhost:4444', { kind: 'tcp', host: 'localhost', port: 4444 }],
    ['127.0.0.1:4444', { kind: 'tcp', host: '127.0.0.1', port: 4444 }],
    ['[::1]:4444', { kind: 'tcp', host: '::1', port: 4444 }],
    ['tcp:127.0.0.1:4444,server=on,wait=off', { kind: 'tcp', host: '127.0.0.1', port: 4444 }],
    [':4444', { kind: 'tcp', host: 'localhost', port: 4444 }],
  ])('%s', (input, expected) => {
    expect(parseQmpAddress(input)).toEqual(expected);
  });

  it.each(['', 'localhost:0', 'localhost:70000', 'tcp:nohost', 'unix:'])(
    'refuses %j with a clear message',
    (input) => {
      const err = expectError(parseQmpAddress(input), 'InvalidAddress');
      expect(err.message).toMatch(/QMP address/);
    },
  );
});

describe('JsonObjectStream', () => {
  it('splits several objects per chunk and joins objects split across chunks', () => {
    const s = new JsonObjectStream();
    const text = '{"a": 1}\r\n{"b": "x}{"}\r\n{"c": [1, {"d": 2}]}\r\n';
    const out = [];
    for (const ch of text) out.push(...s.push(ch));
    expect(out.map((o) => (o.kind === 'object' ? o.value : o))).toEqual([
      { a: 1 },
      { b: 'x}{' },
      { c: [1, { d: 2 }] },
    ]);
    expect(s.push('{"a": 1}{"b": 2}').length).toBe(2);
    expect(s.pending).toBe(0);
  });

  it('handles pretty-printed objects and escaped quotes', () => {
    const s = new JsonObjectStream();
    const out = s.push('{\n  "return": {\n    "x": "a\\"}b"\n  },\n  "id": 1\n}\n');
    expect(out).toHaveLength(1);
    expect(out[0]?.kind === 'object' && out[0].value).toEqual({ return: { x: 'a"}b' }, id: 1 });
  });

  it('decodes UTF-8 split inside a character', () => {
    const s = new JsonObjectStream();
    const bytes = Buffer.from('{"desc": "caf\u00e9 \u2713"}\n', 'utf8');
    const out = [];
    for (let i = 0; i < bytes.length; i++) out.push(...s.push(bytes.subarray(i, i + 1)));
    expect(out[0]?.kind === 'object' && out[0].value).toEqual({ desc: 'caf\u00e9 \u2713' });
  });

  it('keeps uint64 values above 2^53 exact, as bigint', () => {
    const s = new JsonObjectStream();
    const out = s.push(
      '{"descs": [{"addr": 12055409292258155293, "len": 4099327944}], "small": 9007199254740991, "neg": -1.5e3}\n',
    );
    const v = out[0]?.kind === 'object' ? out[0].value : undefined;
    expect(v).toEqual({
      descs: [{ addr: 12055409292258155293n, len: 4099327944 }],
      small: 9007199254740991,
      neg: -1500,
    });
    expect(stringifyJson({ addr: 12055409292258155293n })).toBe('{"addr":12055409292258155293}');
  });

  it('reports text that is not JSON objects', () => {
    const s = new JsonObjectStream();
    const out = s.push('SSH-2.0-OpenSSH_9.2\r\n');
    expect(out[0]?.kind).toBe('error');
    expect(s.push('{"a": tru}\n')[0]?.kind).toBe('error');
  });

  it('refuses an object beyond the size limit', () => {
    const s = new JsonObjectStream({ maxObjectChars: 100 });
    const out = s.push('{"a": "' + 'x'.repeat(200) + '"}\n');
    expect(out).toHaveLength(1);
    expect(out[0]?.kind === 'error' && out[0].message).toMatch(/longer than 100/);
  });
});

describe('QmpClient: connect and negotiate (Q1)', () => {
  it('reads the greeting and negotiates qmp_capabilities over a unix socket', async () => {
    const server = await fake();
    const client = await connected(server);
    expect(client.greeting).toEqual({
      version: { major: 7, minor: 2, micro: 22 },
      package: 'Debian 1:7.2+dfsg-7+deb12u18+b3',
      capabilities: ['oob'],
    });
    expect(client.state).toBe('ready');
    const [negotiate] = server.received;
    expect(negotiate?.execute).toBe('qmp_capabilities');
    expect(negotiate?.id).toBeTypeOf('string');
    // No capability asked for: none enabled (QEMU's default).
    expect(negotiate?.arguments).toBeUndefined();
  });

  it('connects over TCP given HOST:PORT and enables only offered capabilities', async () => {
    const server = await fake({ transport: 'tcp' });
    await connected(server, { capabilities: ['oob', 'no-such-capability'] });
    expect(server.received[0]?.arguments).toEqual({ enable: ['oob'] });
  });

  it('survives a server that writes byte by byte', async () => {
    const server = await fake({
      chunkBytes: 1,
      handlers: { 'query-chardev': () => ({ return: QUERY_CHARDEV }) },
    });
    const client = await connected(server);
    expect(await client.queryChardev()).toEqual(QUERY_CHARDEV);
  });

  it('delivers events that arrive in the same write as the negotiation reply', async () => {
    const event =
      '{"timestamp": {"seconds": 1795254502, "microseconds": 268927}, "event": "VSERPORT_CHANGE", "data": {"open": true, "id": "port1"}}';
    const server = await fake({ eventsWithNegotiation: [event] });
    const client = await QmpClient.connect(server.address);
    if (isQmpError(client)) throw new Error(client.message);
    clients.push(client);
    // Subscribing right after connect is soon enough to see it.
    const seen: unknown[] = [];
    client.on('*', (e) => seen.push(e.data));
    await until(() => seen.length > 0, 'the event sent with the negotiation reply');
    expect(seen).toEqual([{ open: true, id: 'port1' }]);
    expect(client.state).toBe('ready');
  });

  it('reports a refused connection: no socket file', async () => {
    const err = expectError(
      await QmpClient.connect('/tmp/vmchan-no-such-dir/qmp.sock'),
      'ConnectionRefused',
    );
    expect(err.message).toBe(
      'no QMP socket at /tmp/vmchan-no-such-dir/qmp.sock (is QEMU running with -qmp unix:/tmp/vmchan-no-such-dir/qmp.sock,server=on,wait=off?)',
    );
  });

  it('reports a refused connection: nothing listens on the TCP port', async () => {
    const port = await freePort();
    const err = expectError(await QmpClient.connect(`127.0.0.1:${port}`), 'ConnectionRefused');
    expect(err.message).toContain(`nothing listens on 127.0.0.1:${port}`);
  });

  it('says the socket is taken when no greeting comes', async () => {
    const server = await fake({ mode: 'silent' });
    const started = Date.now();
    const err = expectError(
      await QmpClient.connect(server.address, { greetingTimeoutMs: 300 }),
      'SocketTaken',
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(err.message).toBe(
      `the QMP socket ${server.address} is taken by another client (QEMU serves one at a time)`,
    );
  });

  it('says the socket is taken when a second client connects to a served socket', async () => {
    const server = await fake();
    await connected(server);
    const err = expectError(
      await QmpClient.connect(server.address, { greetingTimeoutMs: 300 }),
      'SocketTaken',
    );
    expect(err.message).toContain('is taken by another client (QEMU serves one at a time)');
    expect(server.connections).toBe(2);
  });

  it('says the socket is taken when the server closes at once', async () => {
    const server = await fake({ mode: 'close' });
    expectError(await QmpClient.connect(server.address), 'SocketTaken');
  });

  it('reports a peer that does not speak QMP', async () => {
    const garbage = await fake({ mode: 'garbage' });
    const err = expectError(await QmpClient.connect(garbage.address), 'ProtocolError');
    expect(err.message).toContain('does not speak QMP');
    const other = await fake({ mode: 'nongreeting' });
    const err2 = expectError(await QmpClient.connect(other.address), 'ProtocolError');
    expect(err2.message).toContain('expected a greeting');
  });

  it('reports a refused negotiation as CommandFailed', async () => {
    const server = await fake({
      handlers: {
        qmp_capabilities: () => ({
          error: {
            class: 'CommandNotFound',
            desc: 'Capabilities negotiation is already complete, command ignored',
          },
        }),
      },
    });
    const err = expectError(await QmpClient.connect(server.address), 'CommandFailed');
    expect(err.errorClass).toBe('CommandNotFound');
  });
});

describe('QmpClient: commands', () => {
  it('matches pipelined replies by id, whatever their order', async () => {
    const server = await fake({
      batchReplies: 3,
      reverseReplies: true,
      handlers: {
        'qom-get': (args) => ({
          return: ({ nr: 2, name: 'org.test.port.2', chardev: 'c2' } as Record<string, unknown>)[
            String(args?.['property'])
          ],
        }),
      },
    });
    const client = await connected(server);
    const path = '/machine/peripheral/port2';
    const [nr, name, chardev] = await Promise.all([
      client.qomGet(path, 'nr'),
      client.qomGet(path, 'name'),
      client.qomGet(path, 'chardev'),
    ]);
    expect([nr, name, chardev]).toEqual([2, 'org.test.port.2', 'c2']);
    const ids = server.commands('qom-get').map((c) => c.id);
    expect(new Set(ids).size).toBe(3);
  });

  it('returns QEMU errors as CommandFailed with class and desc', async () => {
    const server = await fake({
      handlers: {
        'chardev-remove': () => ({
          error: { class: 'GenericError', desc: "Chardev 'c1' is busy" },
        }),
        device_add: () => ({
          error: {
            class: 'GenericError',
            desc: 'virtio-serial-bus: A port already exists by name org.test.port.1',
          },
        }),
      },
    });
    const client = await connected(server);
    const err = expectError(await client.chardevRemove('c1'), 'CommandFailed');
    expect(err.errorClass).toBe('GenericError');
    expect(err.desc).toBe("Chardev 'c1' is busy");
    expect(err.command).toBe('chardev-remove');
    expect(err.toString()).toBe(
      "CommandFailed: chardev-remove: Chardev 'c1' is busy (GenericError)",
    );
    const dup = expectError(
      await client.deviceAdd({
        driver: 'virtserialport',
        bus: 'vser0.0',
        name: 'org.test.port.1',
        id: 'x2',
      }),
      'CommandFailed',
    );
    expect(dup.desc).toBe('virtio-serial-bus: A port already exists by name org.test.port.1');
    // Unknown commands come back as QEMU's CommandNotFound.
    expect(expectError(await client.execute('no-such-command'), 'CommandFailed').errorClass).toBe(
      'CommandNotFound',
    );
  });

  it('sends the documented arguments for the typed helpers', async () => {
    const server = await fake({
      handlers: {
        'chardev-add': () => ({ return: {} }),
        device_add: () => ({ return: {} }),
        device_del: () => ({ return: {} }),
        'chardev-remove': () => ({ return: {} }),
        'ringbuf-write': () => ({ return: {} }),
        'ringbuf-read': () => ({ return: 'hello' }),
        'x-query-virtio': () => ({
          return: [{ path: '/machine/peripheral/vser0/virtio-backend', name: 'virtio-serial' }],
        }),
        'x-query-virtio-status': () => ({ return: VIRTIO_STATUS }),
        'x-query-virtio-queue-status': () => ({ return: QUEUE_STATUS_2 }),
        'x-query-virtio-queue-element': () => ({
          return: {
            index: 19,
            name: 'virtio-serial',
            descs: [{ flags: ['write'], len: 4096, addr: 44736512 }],
            avail: { idx: 64, flags: 0, ring: 19 },
            used: { idx: 38, flags: 0 },
          },
        }),
        'query-commands': () => ({
          return: [{ name: 'query-chardev' }, { name: 'x-query-virtio' }],
        }),
        'qom-list': () => ({
          return: [
            { name: 'type', type: 'string' },
            { name: 'nr', type: 'uint32' },
            { name: 'chardev', description: 'ID of a chardev to use as a backend', type: 'str' },
          ],
        }),
      },
    });
    const client = await connected(server);
    expect(await client.chardevAdd('c2', chardevBackend.unixServer('/tmp/guest/p2'))).toEqual({});
    expect(
      await client.deviceAdd({
        driver: 'virtserialport',
        bus: 'vser0.0',
        chardev: 'c2',
        name: 'org.test.port.2',
        id: 'port2',
        nr: undefined,
      }),
    ).toBeUndefined();
    expect(await client.deviceDel('port2')).toBeUndefined();
    expect(await client.chardevRemove('c2')).toBeUndefined();
    expect(await client.ringbufWrite('rb0', 'hello')).toBeUndefined();
    expect(await client.ringbufRead('rb0', 5)).toBe('hello');
    const devices = await client.xQueryVirtio();
    expect(devices).toEqual([
      { path: '/machine/peripheral/vser0/virtio-backend', name: 'virtio-serial' },
    ]);
    const status = await client.xQueryVirtioStatus('/machine/peripheral/vser0/virtio-backend');
    expect(isQmpError(status) ? status.message : status['num-vqs']).toBe(18);
    const q = await client.xQueryVirtioQueueStatus('/machine/peripheral/vser0/virtio-backend', 2);
    expect(isQmpError(q) ? q.message : q['vring-num']).toBe(32);
    const el = await client.xQueryVirtioQueueElement('/machine/peripheral/vser0/virtio-backend', 4);
    expect(isQmpError(el) ? el.message : el.descs[0]?.flags).toEqual(['write']);
    expect(await client.queryCommands()).toHaveLength(2);
    expect(await client.qomList('/machine/peripheral/port2')).toHaveLength(3);

    const sent = Object.fromEntries(server.received.map((c) => [c.execute, c.arguments]));
    // The wire form recorded in scenario.log.
    expect(sent['chardev-add']).toEqual({
      id: 'c2',
      backend: {
        type: 'socket',
        data: {
          addr: { type: 'unix', data: { path: '/tmp/guest/p2' } },
          server: true,
          wait: false,
        },
      },
    });
    expect(sent['device_add']).toEqual({
      driver: 'virtserialport',
      bus: 'vser0.0',
      chardev: 'c2',
      name: 'org.test.port.2',
      id: 'port2',
    });
    expect(sent['device_del']).toEqual({ id: 'port2' });
    expect(sent['ringbuf-write']).toEqual({ device: 'rb0', data: 'hello', format: 'utf8' });
    expect(sent['ringbuf-read']).toEqual({ device: 'rb0', size: 5, format: 'utf8' });
    expect(sent['x-query-virtio-queue-status']).toEqual({
      path: '/machine/peripheral/vser0/virtio-backend',
      queue: 2,
    });
    expect(sent['x-query-virtio-queue-element']).toEqual({
      path: '/machine/peripheral/vser0/virtio-backend',
      queue: 4,
    });
  });

  it('keeps 64-bit descriptor addresses exact', async () => {
    const server = await fake({ handlers: { 'x-query-virtio-queue-element': () => 'silence' } });
    const client = await connected(server);
    const pending = client.xQueryVirtioQueueElement('/x', 2);
    const id = await until(
      () => server.commands('x-query-virtio-queue-element')[0]?.id,
      'QEMU receiving x-query-virtio-queue-element',
    );
    // Written by hand: JSON.stringify could not write this number exactly.
    // The shape is qapi/virtio.json's own example for virtio-scsi.
    server.sendRaw(
      `{"return": {"index": 19, "name": "virtio-scsi", "descs": [{"flags": ["used", "indirect", "write"], "len": 4099327944, "addr": 12055409292258155293}], "avail": {"idx": 1147, "flags": 0, "ring": 19}, "used": {"idx": 280, "flags": 0}}, "id": ${JSON.stringify(id)}}\r\n`,
    );
    const el = await pending;
    if (isQmpError(el)) throw new Error(el.message);
    expect(el.descs[0]?.addr).toBe(12055409292258155293n);
    expect(el.descs[0]?.len).toBe(4099327944);
  });

  it('returns unencodable arguments as an error value, without sending', async () => {
    const server = await fake();
    const client = await connected(server);
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    const err = expectError(await client.execute('qom-get', circular), 'ProtocolError');
    expect(err.message).toContain('cannot encode');
    expect(server.commands('qom-get')).toHaveLength(0);
  });

  it('reports a reply of the wrong shape as ProtocolError', async () => {
    const server = await fake({
      handlers: { 'query-chardev': () => ({ return: { not: 'a list' } }) },
    });
    const client = await connected(server);
    const err = expectError(await client.queryChardev(), 'ProtocolError');
    expect(err.message).toContain('query-chardev');
  });

  it('times out a command QEMU does not answer, and ignores the late reply', async () => {
    const server = await fake({
      handlers: { 'query-chardev': () => 'silence', 'query-commands': () => ({ return: [] }) },
    });
    const client = await connected(server);
    const err = expectError(await client.queryChardev({ timeoutMs: 100 }), 'Timeout');
    expect(err.message).toContain('query-chardev: no reply from QEMU');
    const id = server.commands('query-chardev')[0]?.id;
    server.sendRaw(JSON.stringify({ return: [], id }) + '\r\n');
    // The connection is still good after the stray reply.
    expect(await client.queryCommands()).toEqual([]);
  });

  it('fails waiting commands with Disconnected when QEMU goes away', async () => {
    const server = await fake({ handlers: { 'query-chardev': () => 'silence' } });
    const client = await connected(server);
    const states: QmpClientState[] = [];
    client.onStateChange((s) => states.push(s));
    const pending = client.queryChardev();
    await until(() => server.commands('query-chardev').length > 0, 'QEMU receiving query-chardev');
    server.dropClient();
    const err = expectError(await pending, 'Disconnected');
    expect(err.message).toContain('closed');
    expect(states).toEqual(['closed']);
    expectError(await client.queryCommands(), 'Disconnected');
  });

  it('drops the connection on a protocol violation mid-session', async () => {
    const server = await fake({ handlers: { 'query-chardev': () => 'silence' } });
    const client = await connected(server);
    const pending = client.queryChardev();
    await until(() => server.commands('query-chardev').length > 0, 'QEMU receiving query-chardev');
    server.sendRaw('this is not json\r\n');
    expectError(await pending, 'ProtocolError');
    await until(() => client.state === 'closed', 'the client closing after the protocol error');
  });
});

describe('QmpClient: events (Q3)', () => {
  it('delivers events with their timestamps, typed for the known ones', async () => {
    const server = await fake();
    const client = await connected(server);
    const changes: Array<{ id: string; open: boolean; time: number }> = [];
    const all: string[] = [];
    const off = client.on('VSERPORT_CHANGE', (e) =>
      changes.push({ id: e.data.id, open: e.data.open, time: e.time }),
    );
    client.on('*', (e) => all.push(e.event));
    // Two events and a stray newline in one write, as a busy QEMU may send them.
    server.sendRaw(
      '{"timestamp": {"seconds": 1795254502, "microseconds": 268927}, "event": "VSERPORT_CHANGE", "data": {"open": true, "id": "port1"}}\r\n' +
        '{"timestamp": {"seconds": 1795254502, "microseconds": 777939}, "event": "VSERPORT_CHANGE", "data": {"open": false, "id": "port1"}}\r\n',
    );
    server.sendEvent('DEVICE_DELETED', { device: 'port2', path: '/machine/peripheral/port2' });
    await until(() => all.length === 3, 'the three events');
    expect(changes).toEqual([
      { id: 'port1', open: true, time: 1795254502268.927 },
      { id: 'port1', open: false, time: 1795254502777.939 },
    ]);
    expect(all).toEqual(['VSERPORT_CHANGE', 'VSERPORT_CHANGE', 'DEVICE_DELETED']);
    off();
    server.sendEvent('VSERPORT_CHANGE', { open: true, id: 'port1' });
    // The '*' listener still sees it: only then is "not delivered to off()" a fact.
    await until(() => all.length === 4, "the event after off(), seen by '*'");
    expect(changes).toHaveLength(2);
  });

  it('waits for a matching event, or times out', async () => {
    const server = await fake();
    const client = await connected(server);
    const waiting = client.waitForEvent('DEVICE_DELETED', {
      timeoutMs: 2_000,
      match: (e) => e.data.device === 'port2',
    });
    server.sendEvent('DEVICE_DELETED', { device: 'other', path: '/machine/peripheral/other' });
    server.sendEvent(
      'DEVICE_DELETED',
      { device: 'port2', path: '/machine/peripheral/port2' },
      1795254502,
      268927,
    );
    const e = await waiting;
    if (isQmpError(e)) throw new Error(e.message);
    expect(e.data).toEqual({ device: 'port2', path: '/machine/peripheral/port2' });
    expect(e.timestamp).toEqual({ seconds: 1795254502, microseconds: 268927 });
    const err = expectError(await client.waitForEvent('SHUTDOWN', { timeoutMs: 50 }), 'Timeout');
    expect(err.message).toContain('no SHUTDOWN event');
    // A waiter learns at once when the connection is gone for good.
    const orphan = client.waitForEvent('SHUTDOWN', { timeoutMs: 10_000 });
    server.dropClient();
    expectError(await orphan, 'Disconnected');
    expectError(await client.waitForEvent('SHUTDOWN'), 'Disconnected');
  });

  it('keeps a known event of unexpected shape away from typed listeners', async () => {
    const server = await fake();
    const client = await connected(server);
    const typed: unknown[] = [];
    const any: unknown[] = [];
    client.on('VSERPORT_CHANGE', (e) => typed.push(e.data));
    client.on('*', (e) => any.push(e.data));
    server.sendEvent('VSERPORT_CHANGE', { open: 'yes' });
    await until(() => any.length > 0, "the event seen by '*'");
    expect(typed).toEqual([]);
    expect(any).toEqual([{ open: 'yes' }]);
  });

  it('is not broken by a listener that throws', async () => {
    const server = await fake({ handlers: { 'query-commands': () => ({ return: [] }) } });
    const client = await connected(server);
    client.on('*', () => {
      throw new Error('listener bug');
    });
    server.sendEvent('RESUME');
    // The event precedes the reply on the one socket: the reply proves it was dispatched.
    expect(await client.queryCommands()).toEqual([]);
  });
});

describe('QmpClient: reconnect, quit and close', () => {
  it('reconnects with backoff after QEMU drops the connection', async () => {
    const server = await fake({ handlers: { 'query-commands': () => ({ return: [] }) } });
    const client = await connected(server, { reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    const states: string[] = [];
    client.onStateChange((s, reason) => states.push(reason ? `${s}:${reason.kind}` : s));
    server.dropClient();
    await until(() => client.state === 'reconnecting', 'the client noticing the drop');
    // While reconnecting, commands fail at once instead of waiting.
    expectError(await client.queryCommands(), 'Disconnected');
    await waitUntil(() => client.state === 'ready');
    expect(states).toEqual(['reconnecting:Disconnected', 'ready']);
    expect(await client.queryCommands()).toEqual([]);
    // Negotiated again on the new connection.
    expect(server.commands('qmp_capabilities')).toHaveLength(2);
    expect(server.connections).toBe(2);
  });

  it('gives up after maxAttempts when QEMU is gone for good', async () => {
    const server = await fake();
    const client = await connected(server, {
      reconnect: { initialDelayMs: 10, maxDelayMs: 20, maxAttempts: 3 },
    });
    const reasons: string[] = [];
    client.onStateChange((s, reason) => reasons.push(`${s}:${reason?.kind ?? ''}`));
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    await waitUntil(() => client.state === 'closed', 3_000);
    expect(reasons[0]).toBe('reconnecting:Disconnected');
    expect(reasons.at(-1)).toBe('closed:ConnectionRefused');
  });

  it('quits: QEMU answers and closes, and the client does not reconnect', async () => {
    const server = await fake();
    const client = await connected(server, { reconnect: true });
    const closed = new Promise<void>((resolve) =>
      client.onStateChange((state) => state === 'closed' && resolve()),
    );
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      expect(await client.quit()).toBeUndefined();
      await closed;
      // No reconnect is scheduled: no timer is left (a reconnect is a setTimeout).
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
    expect(server.connections).toBe(1);
  });

  it('closes cleanly: waiting commands get Disconnected, the server sees the end', async () => {
    const server = await fake({ handlers: { 'query-chardev': () => 'silence' } });
    const client = await connected(server, { reconnect: true });
    const pending = client.queryChardev();
    await until(() => server.commands('query-chardev').length > 0, 'QEMU receiving query-chardev');
    await client.close();
    const err = expectError(await pending, 'Disconnected');
    expect(err.message).toContain('was closed');
    expect(client.state).toBe('closed');
    expectError(await client.queryChardev(), 'Disconnected');
    await client.close(); // twice is fine
    expect(server.connections).toBe(1);
  });
});

describe('parseChardevFilename', () => {
  it('reads the disconnected: prefix of socket chardevs', () => {
    expect(parseChardevFilename('disconnected:unix:/tmp/guest/p1,server=on')).toEqual({
      connected: false,
      spec: 'unix:/tmp/guest/p1,server=on',
      kind: 'unix',
    });
    expect(parseChardevFilename('unix:/tmp/guest/p1,server=on').connected).toBe(true);
    expect(parseChardevFilename('ringbuf').connected).toBeUndefined();
    expect(parseChardevFilename('pty:/dev/pts/3')).toEqual({
      connected: undefined,
      spec: 'pty:/dev/pts/3',
      kind: 'pty',
    });
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 2_000): Promise<void> {
  await until(cond, 'the client state', timeoutMs);
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
