/**
 * Bad-input corpus, the app's API (issue 13): every bad command is answered
 * (never thrown, never an internal error) with one line naming what is
 * wrong, and the service keeps serving; the WebSocket envelope too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { apiProtocols } from '../../core/api/browser/client.js';
import { ServerMessageSchema } from '../../core/api/contract/contract.js';
import { ApiService } from '../../core/api/server/service.js';
import { startWebServer, type WebServer } from '../../core/api/server/web-server.js';
import { API_CASES } from './web-api.cases.js';
import { expectClearLine } from './clear.js';
import { until } from '../until.js';

let service: ApiService;
let server: WebServer;
let staticDir: string;
beforeAll(async () => {
  staticDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-bad-api-'));
  service = await ApiService.create({ face: 'web', lab: 'empty' });
  server = await startWebServer({ service, staticDir });
});
afterAll(async () => {
  await server.close();
  await service.close();
  fs.rmSync(staticDir, { recursive: true, force: true });
});

describe('bad input: API commands', () => {
  for (const c of API_CASES) {
    it(c.name, async () => {
      const r = await service.execute(c.command);
      expect(r.ok, 'accepted').toBe(false);
      if (r.ok) return;
      expect(r.error.kind).toBe(c.kind);
      expectClearLine(r.error.message, c.message);
      expect((await service.execute({ cmd: 'hello' })).ok).toBe(true);
    });
  }
});

/** Raw WebSocket frames, each answered with an error value naming the problem. */
const FRAMES: [string, string | Buffer, RegExp][] = [
  ['not JSON', 'not json', /^a message must be JSON$/],
  ['truncated JSON', '{"t":"req","id":1,', /^a message must be JSON$/],
  ['binary', Buffer.from([1, 2, 3]), /^binary messages are not part of the API$/],
  ['no t', '{"id":1}', /^t: /],
  ['unknown t', '{"t":"exec","id":1}', /^t: /],
  ['negative id', '{"t":"req","id":-1,"command":{"cmd":"hello"}}', /^id: Too small/],
  ['id as a string', '{"t":"req","id":"1","command":{"cmd":"hello"}}', /^id: /],
  ['ack without seq', '{"t":"ack"}', /^seq: /],
  ['ack seq 0', '{"t":"ack","seq":0}', /^seq: Too small/],
  [
    'confirm not an array',
    '{"t":"req","id":1,"command":{"cmd":"hello"},"confirm":"all"}',
    /^confirm: /,
  ],
  [
    'deeply nested JSON',
    `${'['.repeat(5000)}${']'.repeat(5000)}`,
    /^Invalid input|^t: |^a message must be JSON$/,
  ],
];

describe('bad input: WebSocket frames', () => {
  it('answers every bad frame with an error value and keeps the socket open', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api`, apiProtocols(server.token));
    const answers: { id: number; message: string }[] = [];
    ws.on('message', (d) => {
      const m = ServerMessageSchema.parse(JSON.parse(d.toString()));
      if (m.t !== 'res') return;
      const r = m.result as { ok: boolean; error?: { message: string } };
      answers.push({ id: m.id, message: r.ok ? 'ok' : r.error!.message });
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    for (const [, frame] of FRAMES) ws.send(frame);
    ws.send(JSON.stringify({ t: 'req', id: 77, command: { cmd: 'hello' } }));
    await until(() => answers.some((a) => a.id === 77), 'the hello sent after the bad frames');
    const errors = answers.filter((a) => a.id !== 77);
    expect(errors).toHaveLength(FRAMES.length);
    FRAMES.forEach(([name, , want], i) => {
      expect(errors[i]!.message, name).toMatch(want);
      expectClearLine(errors[i]!.message, want);
    });
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
  });
});
