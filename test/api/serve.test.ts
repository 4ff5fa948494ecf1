/** `vmchan serve` as a subcommand: its options, and its start on a port that is taken. */
import * as http from 'node:http';
import * as net from 'node:net';
import WebSocket from 'ws';
import { apiProtocols } from '../../core/api/browser/client.js';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerServeCommand, startServe } from '../../cli/serve.js';

describe('vmchan serve', () => {
  it('registers serve with --port, --host (127.0.0.1 by default) and --demo/--no-demo', () => {
    const program = new Command().exitOverride();
    const serve = registerServeCommand(program);
    expect(serve.name()).toBe('serve');
    const flags = serve.options.map((o) => o.flags);
    expect(flags).toEqual([
      '-p, --port <n>',
      '--host <address>',
      '--allow-remote',
      '--allow-host <name...>',
      '--demo',
      '--no-demo',
    ]);
    expect(serve.opts()).toEqual({ port: 0, host: '127.0.0.1', demo: true, allowRemote: false });
    expect(() => program.parse(['serve', '--port', 'eighty'], { from: 'user' })).toThrow(
      /a port number/,
    );
  });

  it('says in one line when the port is taken, and leaves nothing running', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await expect(startServe({ port, demo: false, staticDir: '/nonexistent' })).rejects.toThrow(
        `cannot listen on 127.0.0.1:${port}: address already in use`,
      );
    } finally {
      blocker.close();
    }
  });

  it('prints a tokened URL on loopback', async () => {
    const h = await startServe({ demo: false, staticDir: '/nonexistent' });
    try {
      expect(h.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=[0-9a-f]{48}$/);
      const res = await fetch(h.url);
      expect(res.status).toBe(503); // the app is not built there; the page says how to build it
      expect(await res.text()).toMatch(/npm run build:renderer/);
    } finally {
      await h.close();
    }
  });

  it('item 1: listens beyond loopback only after an explicit confirmation (--allow-remote)', async () => {
    await expect(
      startServe({ host: '0.0.0.0', demo: false, staticDir: '/nonexistent' }),
    ).rejects.toThrow(
      'listening on 0.0.0.0 lets anyone who can reach it try the lab; add --allow-remote to confirm',
    );
  });

  it('item 2: on 0.0.0.0 the Host and Origin checks stay on, allowing the names the user gave', async () => {
    const h = await startServe({
      host: '0.0.0.0',
      allowRemote: true,
      allowedHosts: ['vmchan.lan'],
      demo: false,
      staticDir: '/nonexistent',
    });
    const port = h.server.port;
    const get = (hostHeader: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: '/', headers: { host: hostHeader } }, (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          })
          .on('error', reject)
          .end();
      });
    const closeReason = (origin: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/api`, apiProtocols(h.server.token), {
          headers: { origin },
        });
        // A refused socket opens and is closed at once: a hello answered proves it stayed open.
        ws.once('open', () =>
          ws.send(JSON.stringify({ t: 'req', id: 1, command: { cmd: 'hello' } })),
        );
        ws.once('message', () => {
          ws.close();
          resolve('open');
        });
        ws.once('close', (_code, reason) => resolve(reason.toString()));
        ws.once('error', reject);
      });
    try {
      expect(await get('evil.example:80')).toEqual({
        status: 403,
        body: 'vmchan: wrong Host header (evil.example:80)\n',
      });
      expect((await get(`evil.example:${port}`)).status).toBe(403);
      expect((await get(`vmchan.lan:${port}`)).status).toBe(503); // passes the check; app not built here
      expect((await get(`127.0.0.1:${port}`)).status).toBe(503);
      expect(await closeReason('http://evil.example')).toBe(
        "vmchan: wrong Origin (http://evil.example): only the app's own page may connect",
      );
      expect(await closeReason(`http://vmchan.lan:${port}`)).toBe('open');
    } finally {
      await h.close();
    }
  });
});
