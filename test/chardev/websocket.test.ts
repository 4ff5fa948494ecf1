/**
 * H1 websocket=on (issue 14 item 4) as QEMU 7.2 serves it (chardev/char-socket.c
 * with io/channel-websock.c): a client's HTTP upgrade is answered with
 * `101 Switching Protocols` (and `Sec-WebSocket-Protocol: binary` when the
 * client offers it), then the guest reads only the payload of the client's
 * binary frames and its writes go out as binary frames; the port is
 * host-connected only after the handshake; a plain HTTP request gets
 * `400 Bad Request` and the connection closes, the guest seeing nothing.
 * query-chardev names the tcp form `websocket:` as QEMU 7.2 does
 * ("disconnected:websocket:127.0.0.1:PORT,server=on", checked on
 * qemu-system-x86_64 7.2).
 */
import * as net from 'node:net';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { isQemuError } from '../../core/base/qemu-error.js';
import { Machine } from '../../core/machine/machine.js';
import { parseQemuArgs } from '../../core/machine/qemu-cmdline.js';
import { chardevFromQmp } from '../../core/monitor/chardev-spec.js';
import type { QDict } from '../../core/monitor/qobject.js';
import { JsonMessageParser } from '../../core/monitor/json-lexer.js';
import { ok, removeTempDirs, tempDir, waitFor } from '../monitor/helpers.js';

const machines: Machine[] = [];
afterEach(async () => {
  await Promise.all(machines.splice(0).map((m) => m.close()));
  removeTempDirs();
});

async function start(chardev: string, onNotice?: (line: string) => void): Promise<Machine> {
  const parsed = parseQemuArgs([
    '-chardev',
    chardev,
    '-device',
    'virtio-serial-pci,id=vser0',
    '-device',
    'virtserialport,bus=vser0.0,chardev=w,name=org.test.ws,id=wsport',
  ]);
  if (!parsed.ok) throw new Error(`parse: ${parsed.error.toString()}`);
  const dir = tempDir('ws');
  const machine = await Machine.start(parsed.value, {
    runtimeDir: dir,
    ...(onNotice !== undefined ? { onNotice } : {}),
  });
  if (isQemuError(machine)) throw new Error(`start: ${machine.message}`);
  machines.push(machine);
  await waitFor(() => {
    const names = machine.lab.guest.namespace.list('/dev/virtio-ports');
    return Array.isArray(names) && names.includes('org.test.ws');
  }, 'the guest symlink of the websocket port');
  return machine;
}

/** A JSON object as the QMP parser hands it over. */
function qdict(value: unknown): QDict {
  const [m] = new JsonMessageParser().feed(new TextEncoder().encode(JSON.stringify(value)));
  return (m as { value: QDict }).value;
}

describe('H1 websocket through chardev-add (qapi ChardevSocket.websocket)', () => {
  it('H1 a server takes it; a client is refused with QEMU 7.2 words', () => {
    const addr = { type: 'unix', data: { path: '/tmp/w.sock' } };
    const server = chardevFromQmp(
      qdict({
        id: 'w',
        backend: { type: 'socket', data: { addr, server: true, wait: false, websocket: true } },
      }),
    );
    expect(isQemuError(server) ? server.message : server.backend).toMatchObject({
      kind: 'socket',
      server: true,
      websocket: true,
    });
    const client = chardevFromQmp(
      qdict({
        id: 'w',
        backend: { type: 'socket', data: { addr, server: false, websocket: true } },
      }),
    );
    expect(isQemuError(client) && client.message).toBe('Websocket client is not implemented');
  });
});

const hostConnected = (m: Machine): boolean =>
  m.lab.device('vser0')?.port(1)?.hostConnected === true;

describe('H1 websocket=on (QEMU char-socket.c + channel-websock.c server side)', () => {
  it('H1 handshake, then binary frames both ways carry only the payload; close reaches the guest', async () => {
    const dir = tempDir('wsu');
    const sock = path.join(dir, 'w.sock');
    const machine = await start(`socket,id=w,path=${sock},server=on,wait=off,websocket=on`);
    const files = machine.lab.guest.files;
    const fd = ok(await files.open('/dev/virtio-ports/org.test.ws'));
    expect(hostConnected(machine)).toBe(false);

    const ws = new WebSocket(`ws+unix://${sock}:/`, ['binary']);
    const messages: { data: Buffer; binary: boolean }[] = [];
    let upgradeHeaders: Record<string, string | string[] | undefined> = {};
    ws.once('upgrade', (res) => (upgradeHeaders = res.headers));
    ws.on('message', (data: Buffer, binary: boolean) => messages.push({ data, binary }));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    expect(ws.protocol).toBe('binary');
    expect(upgradeHeaders.server).toBe('QEMU VNC');
    await waitFor(
      () => hostConnected(machine),
      'the port to be host-connected after the handshake',
    );

    ws.send(Buffer.from('hello guest\n'));
    expect(Buffer.from(ok(await files.read(fd, 100))).toString()).toBe('hello guest\n');
    ok(await files.write(fd, 'hello host\n'));
    await waitFor(() => messages.length > 0, 'a frame from the guest');
    expect(messages[0]!.binary).toBe(true);
    expect(messages[0]!.data.toString()).toBe('hello host\n');

    ws.close();
    await waitFor(() => !hostConnected(machine), 'the guest to see the host leave');
    ok(await files.close(fd));
  });

  it('H1 a text frame closes the connection with QEMU 1003 and never reaches the guest', async () => {
    const dir = tempDir('wst');
    const sock = path.join(dir, 'w.sock');
    const notices: string[] = [];
    const machine = await start(`socket,id=w,path=${sock},server=on,wait=off,websocket=on`, (l) =>
      notices.push(l),
    );
    const files = machine.lab.guest.files;
    const fd = ok(await files.open('/dev/virtio-ports/org.test.ws'));
    const ws = new WebSocket(`ws+unix://${sock}:/`, ['binary']);
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once('close', (code: number, reason: Buffer) =>
        resolve({ code, reason: reason.toString() }),
      ),
    );
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send('text frame');
    // As QEMU 7.2 answered the same frame (ws client against qemu-system-x86_64 7.2).
    expect(await closed).toEqual({
      code: 1003,
      reason: 'only binary, close, ping, and pong frames are supported',
    });
    await waitFor(() => !hostConnected(machine), 'the guest to see the host leave');
    expect(machine.lab.device('vser0')?.port(1)?.stats.toGuest ?? 0).toBe(0);
    expect(notices.some((n) => n.includes('text frame') && n.includes('10 bytes discarded'))).toBe(
      true,
    );
    ok(await files.close(fd));
  });

  it('H1 a plain HTTP request gets 400 Bad Request and the guest sees no host', async () => {
    const machine = await start(
      'socket,id=w,host=127.0.0.1,port=0,server=on,wait=off,websocket=on',
    );
    const described = machine.chardevs().find((c) => c.id === 'w')?.filename ?? '';
    expect(described).toMatch(/^disconnected:websocket:127\.0\.0\.1:\d+,server=on$/);
    const port = Number(/:(\d+),/.exec(described)![1]);
    const s = net.createConnection({ host: '127.0.0.1', port });
    let got = '';
    let closed = false;
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('close', () => (closed = true));
    s.on('error', () => {});
    s.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await waitFor(() => closed, 'the server to close the non-WebSocket connection');
    // QEMU 7.2 answers: 400, "Server: QEMU VNC", a Date, "Connection: close", the version it speaks.
    expect(got).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(got).toContain('Server: QEMU VNC\r\n');
    expect(got).toMatch(/\r\nDate: .+ GMT\r\n/);
    expect(got).toMatch(/\r\nConnection: close\r\n/i);
    expect(got).toContain('Sec-WebSocket-Version: 13\r\n');
    expect(hostConnected(machine)).toBe(false);
    // The listener serves the next client: a WebSocket one connects fine.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    await waitFor(() => hostConnected(machine), 'the WebSocket client to connect the port');
    expect(machine.chardevs().find((c) => c.id === 'w')?.filename).toMatch(
      /^websocket:127\.0\.0\.1:\d+,server=on <-> 127\.0\.0\.1:\d+$/,
    );
    ws.terminate();
  });
});
