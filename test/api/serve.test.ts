/** `vmchan serve` as a subcommand: its options, and its start on a port that is taken. */
import * as net from 'node:net';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerServeCommand, startServe } from '../../cli/serve.js';

describe('vmchan serve', () => {
  it('registers serve with --port, --host (127.0.0.1 by default) and --demo/--no-demo', () => {
    const program = new Command().exitOverride();
    const serve = registerServeCommand(program);
    expect(serve.name()).toBe('serve');
    const flags = serve.options.map((o) => o.flags);
    expect(flags).toEqual(['-p, --port <n>', '--host <address>', '--demo', '--no-demo']);
    expect(serve.opts()).toEqual({ port: 0, host: '127.0.0.1', demo: true });
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
      expect(h.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{48}$/);
      const res = await fetch(h.url);
      expect(res.status).toBe(503); // the app is not built there; the page says how to build it
      expect(await res.text()).toMatch(/npm run build:renderer/);
    } finally {
      await h.close();
    }
  });
});
