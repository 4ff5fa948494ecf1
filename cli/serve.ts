/**
 * `vmchan serve`: the app in a browser. Serves the built renderer and the
 * API over a WebSocket on 127.0.0.1 (another address only when asked), with
 * a random token in the fragment of the URL it prints (web-server.ts);
 * the API refuses requests without the token. Another address than
 * loopback only with --allow-remote. Runs until SIGINT or SIGTERM.
 *
 *   vmchan serve [--port N] [--host 127.0.0.1 [--allow-remote] [--allow-host NAME...]]
 *                [--demo | --no-demo]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, type Command } from 'commander';
import { ApiService } from '../core/api/server/service.js';
import { isLoopbackHost } from '../core/api/contract/reach.js';
import {
  RemoteListenNotConfirmed,
  startWebServer,
  type WebServer,
} from '../core/api/server/web-server.js';

export interface ServeOptions {
  port?: number;
  host?: string;
  /** Open the demo lab alive (default) or an empty one. */
  demo?: boolean;
  /** The built renderer; found next to the CLI by default. */
  staticDir?: string;
  /** Directory under which the runtime directory (sockets) is made. */
  runtimeBase?: string;
  token?: string;
  /** Listening beyond loopback was confirmed (`--allow-remote`). */
  allowRemote?: boolean;
  /** Host names the Host/Origin checks also accept (`--allow-host`). */
  allowedHosts?: string[];
}

export interface ServeHandle {
  readonly url: string;
  readonly service: ApiService;
  readonly server: WebServer;
  close(): Promise<void>;
}

/** Where the built renderer is: dist/renderer, seen from dist/cli or from cli/. */
export function findRendererDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, '..', 'renderer'), path.join(here, '..', 'dist', 'renderer')];
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, 'index.html')) && fs.existsSync(path.join(dir, 'assets'))) {
      return dir;
    }
  }
  return candidates[candidates.length - 1]!;
}

/** Start the service and the web server; the caller prints the URL and closes it. */
export async function startServe(options: ServeOptions = {}): Promise<ServeHandle> {
  const host = options.host ?? '127.0.0.1';
  // Refuse before anything starts: nothing to clean up.
  if (!isLoopbackHost(host) && options.allowRemote !== true)
    throw new RemoteListenNotConfirmed(host);
  const service = await ApiService.create({
    face: 'web',
    lab: options.demo === false ? 'empty' : 'demo',
    // Its labs and attached QEMUs are Wireshark interfaces (vmchan extcap) while they run.
    publishSessions: true,
    ...(options.runtimeBase !== undefined ? { runtimeBase: options.runtimeBase } : {}),
  });
  let server: WebServer;
  try {
    server = await startWebServer({
      service,
      staticDir: options.staticDir ?? findRendererDir(),
      host,
      port: options.port ?? 0,
      allowRemote: options.allowRemote === true,
      allowedHosts: options.allowedHosts ?? [],
      ...(options.token !== undefined ? { token: options.token } : {}),
    });
  } catch (error) {
    await service.close();
    const e = error as NodeJS.ErrnoException;
    throw new Error(
      e.code === 'EADDRINUSE'
        ? `cannot listen on ${options.host ?? '127.0.0.1'}:${options.port}: address already in use`
        : `cannot listen: ${e.message}`,
      { cause: error },
    );
  }
  return {
    url: server.url,
    service,
    server,
    close: async () => {
      await server.close();
      await service.close();
    },
  };
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError('a port number (0-65535)');
  return n;
}

/** Register `vmchan serve` on the program; returns the subcommand. */
export function registerServeCommand(program: Command): Command {
  return program
    .command('serve')
    .description(
      'serve the app to a browser: the renderer and the API over a WebSocket,\n' +
        'on 127.0.0.1 with a random token in the printed URL',
    )
    .option('-p, --port <n>', 'TCP port (0: any free port)', parsePort, 0)
    .option(
      '--host <address>',
      'address to listen on (another than loopback only when you mean it)',
      '127.0.0.1',
    )
    .option(
      '--allow-remote',
      'confirm listening on an address other than loopback (anyone who reaches it can try)',
      false,
    )
    .option(
      '--allow-host <name...>',
      'more host names the browser may use to reach the server (Host and Origin checks)',
    )
    .option('--demo', 'open the demo lab, alive (the default)', true)
    .option('--no-demo', 'open an empty lab')
    .action(
      async (opts: {
        port: number;
        host: string;
        demo: boolean;
        allowRemote: boolean;
        allowHost?: string[];
      }) => {
        const handle = await startServe({
          port: opts.port,
          host: opts.host,
          demo: opts.demo,
          allowRemote: opts.allowRemote,
          allowedHosts: opts.allowHost ?? [],
        });
        if (!isLoopbackHost(opts.host)) {
          process.stderr.write(
            `vmchan: listening on ${opts.host}: anyone who can reach it and has the token can drive the lab\n`,
          );
        }
        process.stdout.write(`vmchan: serving the app at ${handle.url}\n`);
        process.stdout.write(`vmchan: sockets in ${handle.service.runtimeDir}; Ctrl-C to stop\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await handle.close();
      },
    );
}
