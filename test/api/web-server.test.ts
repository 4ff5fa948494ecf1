/**
 * The web face (issue 13 items 1, 2, 4): the token in the URL fragment and
 * never in a cookie, sent as a header and a WebSocket subprotocol; the API
 * closed without it, with the real cause; loopback only unless confirmed,
 * Host and Origin checked on every address; paths and listening addresses
 * only with the window's confirmation; messages checked both ways, batches
 * acked one at a time.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  ApiClient,
  apiProtocols,
  webSocketTransport,
  type WebSocketLike,
} from '../../core/api/browser/client.js';
import { ServerMessageSchema, type Batch } from '../../core/api/contract/contract.js';
import { ApiService } from '../../core/api/server/service.js';
import { startWebServer, type WebServer } from '../../core/api/server/web-server.js';
import { until } from '../until.js';

let service: ApiService;
let server: WebServer;
let staticDir: string;
let base: string;

beforeAll(async () => {
  staticDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-static-'));
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>vmchan</title>');
  fs.mkdirSync(path.join(staticDir, 'assets'));
  fs.writeFileSync(path.join(staticDir, 'assets', 'app.js'), 'export {};');
  service = await ApiService.create({ face: 'web', lab: 'empty' });
  server = await startWebServer({ service, staticDir });
  base = `http://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await server.close();
  await service.close();
  fs.rmSync(staticDir, { recursive: true, force: true });
});

function open(
  url: string,
  headers: Record<string, string> = {},
  protocols?: string[],
): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(url, protocols, { headers });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('error', reject);
  });
}

describe('vmchan serve: the web face', () => {
  it('listens on 127.0.0.1 with a random token in the URL fragment, never sent to a server', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.token).toMatch(/^[0-9a-f]{48}$/);
    expect(server.url).toBe(`${base}/#token=${server.token}`);
  });

  it('item 1: sets no cookie, and serves the page’s own files (the same for everyone) without the token', async () => {
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(res.headers.get('content-security-policy')).not.toContain('unsafe-eval');
    const asset = await fetch(`${base}/assets/app.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('set-cookie')).toBeNull();
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await fetch(`${base}/../../etc/passwd`)).status).toBe(404);
    expect((await fetch(`${base}/%2e%2e/%2e%2e/etc/passwd`)).status).toBe(404);
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(405);
  });

  it('item 1: the capture download needs the token header; a query token or a cookie is not enough', async () => {
    const attempts: RequestInit[] = [
      {},
      { headers: { cookie: `vmchan_token=${server.token}` } },
      { headers: { 'x-vmchan-token': '0'.repeat(48) } },
    ];
    for (const init of attempts) {
      const res = await fetch(`${base}/capture.pcapng?token=${server.token}`, init);
      expect(res.status).toBe(403);
      expect(await res.text()).toMatch(
        /^vmchan: (the capture needs the x-vmchan-token header|wrong token)$/m,
      );
    }
    const res = await fetch(`${base}/capture.pcapng`, {
      headers: { 'x-vmchan-token': server.token },
    });
    expect(res.status).toBe(404); // authorized: nothing captured yet
    expect(await res.text()).toBe('vmchan: nothing captured yet\n');
  });

  it('refuses a foreign Host header (DNS rebinding)', async () => {
    const http = await import('node:http');
    const answer = await new Promise<{ status: number; body: string }>((resolve) => {
      http
        .get(
          { host: '127.0.0.1', port: server.port, path: '/', headers: { host: 'evil.example:80' } },
          (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        )
        .end();
    });
    expect(answer).toEqual({ status: 403, body: 'vmchan: wrong Host header (evil.example:80)\n' });
  });

  it('item 1: takes the token only as the WebSocket subprotocol, and answers with the plain protocol', async () => {
    const inQuery = await open(`ws://127.0.0.1:${server.port}/api?token=${server.token}`);
    expect(await inQuery.closed).toEqual({ code: 1008, reason: 'vmchan: token required' });
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api`, apiProtocols(server.token));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    expect(ws.protocol).toBe('vmchan');
    ws.close();
  });

  it('item 4: WebSocket close reasons name the real cause', async () => {
    const url = `ws://127.0.0.1:${server.port}`;
    const cases: [string, string[] | undefined, Record<string, string>, string][] = [
      [`${url}/api`, undefined, {}, 'vmchan: token required'],
      [`${url}/api`, apiProtocols('0'.repeat(48)), {}, 'vmchan: wrong token'],
      [
        `${url}/api`,
        apiProtocols(server.token),
        { origin: 'http://evil.example' },
        "vmchan: wrong Origin (http://evil.example): only the app's own page may connect",
      ],
      [
        `${url}/api`,
        apiProtocols(server.token),
        { host: 'evil.example:80' },
        'vmchan: wrong Host header (evil.example:80)',
      ],
      [`${url}/ws`, apiProtocols(server.token), {}, 'vmchan: no API at /ws (it is at /api)'],
    ];
    for (const [where, protocols, headers, reason] of cases) {
      const ws = new WebSocket(where, protocols, { headers });
      const closed = await new Promise<{ code: number; reason: string }>((resolve) =>
        ws.on('close', (code, r) => resolve({ code, reason: r.toString() })),
      );
      expect(closed, reason).toEqual({ code: 1008, reason });
    }
    // The page's own origin passes.
    const own = new WebSocket(`${url}/api`, apiProtocols(server.token), {
      headers: { origin: `http://localhost:${server.port}` },
    });
    await new Promise((resolve, reject) => {
      own.once('open', resolve);
      own.once('error', reject);
    });
    own.close();
  });

  it('item 1: commands that reach files run only with the window’s confirmation of exactly that reach', async () => {
    const target = path.join(staticDir, 'written-by-a-page.pcapng');
    const unconfirmed = new WebSocket(
      `ws://127.0.0.1:${server.port}/api`,
      apiProtocols(server.token),
    );
    const bare = new ApiClient(webSocketTransport(unconfirmed as unknown as WebSocketLike));
    expect(await bare.call({ cmd: 'startCapture', path: target })).toEqual({
      ok: false,
      error: { kind: 'Refused', message: `not confirmed in the window: write the file ${target}` },
    });
    const chardev = await bare.call({
      cmd: 'createChardev',
      chardev: { id: 'f0', backend: { kind: 'file', path: target } },
    });
    expect(chardev.ok ? 'ran' : chardev.error.message).toBe(
      `not confirmed in the window: write the file ${target}`,
    );
    const listen = await bare.call({
      cmd: 'createChardev',
      chardev: { id: 't0', backend: { kind: 'tcp', host: '0.0.0.0', port: 0 } },
    });
    expect(listen.ok ? 'ran' : listen.error.message).toBe(
      'not confirmed in the window: listen for connections on 0.0.0.0',
    );
    const imported = await bare.call({
      cmd: 'importConfig',
      format: 'qemu',
      text: `-device virtio-serial -chardev file,id=c,path=${target} -device virtserialport,chardev=c`,
    });
    expect(imported.ok ? 'ran' : imported.error.message).toBe(
      `not confirmed in the window: write the file ${target}`,
    );
    expect(fs.existsSync(target)).toBe(false);
    unconfirmed.close();

    // The window asks; "no" sends nothing, "yes" sends the reach it agreed to.
    const asked: string[] = [];
    let answer = false;
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api`, apiProtocols(server.token));
    const client = new ApiClient(
      webSocketTransport(ws as unknown as WebSocketLike, {
        confirm: (q) => {
          asked.push(q);
          return answer;
        },
      }),
    );
    expect(await client.call({ cmd: 'startCapture', path: target })).toEqual({
      ok: false,
      error: { kind: 'Refused', message: `cancelled in the window: write the file ${target}` },
    });
    answer = true;
    const started = await client.call({ cmd: 'startCapture', path: target });
    expect(started.ok).toBe(true);
    expect(asked).toEqual([
      `Let vmchan write the file ${target}?`,
      `Let vmchan write the file ${target}?`,
    ]);
    expect((await client.call({ cmd: 'stopCapture' })).ok).toBe(true);
    expect(fs.existsSync(target)).toBe(true);
    // A command without reach is never asked about.
    expect((await client.call({ cmd: 'hello' })).ok).toBe(true);
    expect(asked).toHaveLength(2);
    ws.close();
  });

  it('item 1: a raw message cannot confirm a different path than the command names', async () => {
    const { ws } = await open(`ws://127.0.0.1:${server.port}/api`, {}, apiProtocols(server.token));
    const answer = new Promise<unknown>((resolve) =>
      ws.on('message', (d) => {
        const m = ServerMessageSchema.parse(JSON.parse(d.toString()));
        if (m.t === 'res') resolve(m.result);
      }),
    );
    ws.send(
      JSON.stringify({
        t: 'req',
        id: 9,
        command: { cmd: 'saveCapture', path: '/tmp/other' },
        confirm: ['write:/tmp/agreed'],
      }),
    );
    expect(await answer).toEqual({
      ok: false,
      error: { kind: 'Refused', message: 'not confirmed in the window: write the file /tmp/other' },
    });
    ws.close();
  });

  it('speaks the contract over the WebSocket: requests, answers, batches after acks', async () => {
    // As the page does: the transport listens from the start.
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api`, apiProtocols(server.token));
    const client = new ApiClient(webSocketTransport(ws as unknown as WebSocketLike));
    const batches: Batch[] = [];
    client.onBatch((b) => batches.push(b));
    expect(await client.call({ cmd: 'hello' })).toEqual({
      ok: true,
      value: {
        app: 'vmchan',
        version: expect.any(String),
        face: 'web',
        dialogs: false,
        reference: { qemu: '7.2', linux: '6.1' },
        docs: expect.objectContaining({ files: expect.arrayContaining(['README.md']) }),
      },
    });
    // A second screen that acks every batch: when it sees the new device, the
    // server has sent what it sends to screens that keep up.
    const ws2 = new WebSocket(`ws://127.0.0.1:${server.port}/api`, apiProtocols(server.token));
    const client2 = new ApiClient(webSocketTransport(ws2 as unknown as WebSocketLike));
    const batches2: Batch[] = [];
    client2.onBatch((b) => {
      batches2.push(b);
      client2.ack(b.seq);
    });
    await client2.call({ cmd: 'hello' });
    const made = await client.call({ cmd: 'createDevice', device: { id: 'vser0' } });
    expect(made).toEqual({ ok: true, value: { name: 'vser0', bus: 'vser0.0' } });
    const refused = await client.call({ cmd: 'createDevice', device: { id: 'vser0' } });
    expect(refused).toEqual({
      ok: false,
      error: { kind: 'Refused', message: "Duplicate device ID 'vser0'" },
    });
    await until(
      () => batches2.some((b) => b.topology?.devices.some((d) => d.name === 'vser0')),
      'the acking screen seeing vser0',
    );
    // one batch, no ack yet: no second one
    expect(batches).toHaveLength(1);
    expect(batches[0]!.topology).not.toBeNull();
    client.ack(batches[0]!.seq);
    await until(() => batches.length === 2, 'the next batch after the ack');
    ws2.close();
    expect(batches[1]!.topology!.devices.map((d) => d.name)).toEqual(['vser0']);
    ws.close();
  });

  it('answers malformed messages with an error value and stays up', async () => {
    const { ws } = await open(`ws://127.0.0.1:${server.port}/api`, {}, apiProtocols(server.token));
    const answers: unknown[] = [];
    ws.on('message', (data) => {
      const m = ServerMessageSchema.parse(JSON.parse(data.toString()));
      if (m.t === 'res') answers.push(m);
    });
    ws.send('not json');
    ws.send(
      JSON.stringify({
        t: 'req',
        id: 5,
        command: { cmd: 'unplugPort', port: { device: 'vser0', nr: 'x' } },
      }),
    );
    ws.send(JSON.stringify({ t: 'exec', id: 6 }));
    await until(() => answers.length === 3, 'three answers');
    const byId = (a: unknown, b: unknown): number =>
      (a as { id: number }).id - (b as { id: number }).id;
    expect(answers.sort(byId)).toEqual([
      {
        t: 'res',
        id: 0,
        result: { ok: false, error: { kind: 'InvalidRequest', message: 'a message must be JSON' } },
      },
      {
        t: 'res',
        id: 5,
        result: {
          ok: false,
          error: {
            kind: 'InvalidRequest',
            message: 'port.nr: Invalid input: expected number, received string',
          },
        },
      },
      {
        t: 'res',
        id: 6,
        result: {
          ok: false,
          error: { kind: 'InvalidRequest', message: expect.stringMatching(/^t: /) },
        },
      },
    ]);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
  });
});
