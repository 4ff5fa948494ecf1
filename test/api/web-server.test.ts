/**
 * The web face: token in the URL (or the cookie it sets), 403 without it,
 * WebSocket closed without it, loopback only, Host checked, messages
 * checked both ways, batches acked one at a time.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ApiClient, webSocketTransport, type WebSocketLike } from '../../core/api/client.js';
import { ServerMessageSchema, type Batch } from '../../core/api/contract.js';
import { ApiService } from '../../core/api/service.js';
import { startWebServer, type WebServer } from '../../core/api/web-server.js';

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
): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(url, { headers });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('error', reject);
  });
}

describe('vmchan serve: the web face', () => {
  it('listens on 127.0.0.1 with a random token in the URL', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.token).toMatch(/^[0-9a-f]{48}$/);
    expect(server.url).toBe(`${base}/?token=${server.token}`);
  });

  it('refuses requests without the token with 403', async () => {
    for (const p of [
      '/',
      '/index.html',
      '/assets/app.js',
      '/capture.pcapng',
      `/?token=${'0'.repeat(48)}`,
    ]) {
      const res = await fetch(`${base}${p}`);
      expect(res.status, p).toBe(403);
      expect(await res.text()).toMatch(/^vmchan: this address needs the token/);
    }
  });

  it('serves the app with the token, with the CSP, and sets the cookie the page’s files need', async () => {
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(res.headers.get('content-security-policy')).not.toContain('unsafe-eval');
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^vmchan_token=[0-9a-f]{48}; HttpOnly; SameSite=Strict; Path=\/$/);
    const asset = await fetch(`${base}/assets/app.js`, {
      headers: { cookie: cookie.split(';')[0]! },
    });
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await fetch(`${base}/../../etc/passwd?token=${server.token}`)).status).toBe(404);
    expect((await fetch(`${base}/%2e%2e/%2e%2e/etc/passwd?token=${server.token}`)).status).toBe(
      404,
    );
    expect((await fetch(`${base}/?token=${server.token}`, { method: 'POST' })).status).toBe(405);
  });

  it('refuses a foreign Host header (DNS rebinding)', async () => {
    const http = await import('node:http');
    const status = await new Promise<number>((resolve) => {
      http
        .get(
          {
            host: '127.0.0.1',
            port: server.port,
            path: `/?token=${server.token}`,
            headers: { host: 'evil.example:80' },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
        .end();
    });
    expect(status).toBe(403);
  });

  it('closes a WebSocket that comes without the token, or from another origin', async () => {
    const bare = await open(`ws://127.0.0.1:${server.port}/api`);
    expect(await bare.closed).toEqual({ code: 1008, reason: 'vmchan: token required' });
    const foreign = await open(`ws://127.0.0.1:${server.port}/api?token=${server.token}`, {
      origin: 'http://evil.example',
    });
    expect((await foreign.closed).code).toBe(1008);
  });

  it('speaks the contract over the WebSocket: requests, answers, batches after acks', async () => {
    // As the page does: the transport listens from the start.
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api?token=${server.token}`);
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
    const made = await client.call({ cmd: 'createDevice', device: { id: 'vser0' } });
    expect(made).toEqual({ ok: true, value: { name: 'vser0', bus: 'vser0.0' } });
    const refused = await client.call({ cmd: 'createDevice', device: { id: 'vser0' } });
    expect(refused).toEqual({
      ok: false,
      error: { kind: 'Refused', message: "Duplicate device ID 'vser0'" },
    });
    await new Promise((r) => setTimeout(r, 300));
    // one batch, no ack yet: no second one
    expect(batches).toHaveLength(1);
    expect(batches[0]!.topology).not.toBeNull();
    client.ack(batches[0]!.seq);
    await new Promise((r) => setTimeout(r, 300));
    expect(batches).toHaveLength(2);
    expect(batches[1]!.topology!.devices.map((d) => d.name)).toEqual(['vser0']);
    ws.close();
  });

  it('answers malformed messages with an error value and stays up', async () => {
    const { ws } = await open(`ws://127.0.0.1:${server.port}/api?token=${server.token}`);
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
    await new Promise((r) => setTimeout(r, 300));
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
