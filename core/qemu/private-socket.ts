/**
 * Listening sockets for the tap: a unix socket with mode 0600 that appears
 * at its path already private, or TCP on a loopback address only.
 *
 * bind() creates a unix socket file with 0777 & ~umask, so "listen, then
 * chmod" leaves a moment in which another local user may connect; changing
 * process.umask around listen() is process-wide and throws in worker
 * threads. Instead the socket is bound inside a fresh directory (mkdtemp:
 * 0700, nobody else can reach into it), chmod'ed to 0600 there and renamed
 * onto the requested path, which is atomic. The directory sits next to the
 * target so the rename never crosses file systems.
 *
 * A socket file left at the path by an earlier run is replaced only when
 * nothing answers on it; a live one is "in use".
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { attachError, type AttachError } from './attach-error.js';

/** sun_path holds 108 bytes including the terminating NUL. */
const SUN_PATH_MAX = 107;

export type ListenSpec =
  { transport: 'unix'; path: string } | { transport: 'tcp'; host: string; port: number };

export interface Listening {
  /** Where applications connect: the socket path, or HOST:PORT with the port bound. */
  readonly address: string;
  readonly spec: ListenSpec;
  /** Stop listening and remove our socket file (not one that replaced it). */
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * Read a listen address as a person types it: a path (`/run/tap.sock`,
 * `./tap.sock`, `unix:/run/tap.sock`), or TCP on loopback: `127.0.0.1:5555`,
 * `localhost:5555`, `:5555`, `tcp:127.0.0.1:5555`, `[::1]:5555` (port 0:
 * any free port).
 */
export function parseListenSpec(text: string): ListenSpec | AttachError {
  const t = text.trim();
  if (t === '') return attachError('InvalidArgument', 'the listen address is empty');
  if (t.startsWith('unix:')) {
    const p = t.slice(5);
    return p === ''
      ? attachError('InvalidArgument', 'unix: needs a socket path')
      : { transport: 'unix', path: p };
  }
  const body = t.startsWith('tcp:') ? t.slice(4) : t;
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(body) ?? /^([^:/[\]]*):(\d+)$/.exec(body);
  if (m) {
    const host = m[1] === '' || m[1] === undefined ? '127.0.0.1' : m[1];
    const port = Number(m[2]);
    if (port > 65535)
      return attachError('InvalidArgument', `'${text}': the port must be from 0 to 65535`);
    if (!LOOPBACK.test(host)) {
      return attachError(
        'InvalidArgument',
        `'${text}': the tap listens on loopback only (127.0.0.1, ::1 or localhost): anyone who reaches it talks to the guest`,
      );
    }
    return { transport: 'tcp', host, port };
  }
  if (t.startsWith('tcp:'))
    return attachError('InvalidArgument', `'${text}': tcp: needs HOST:PORT`);
  return { transport: 'unix', path: t };
}

/** Listen on `spec` with `server`; the unix socket gets mode 0600 before it has a name. */
export async function listenPrivately(
  server: net.Server,
  spec: ListenSpec,
): Promise<Listening | AttachError> {
  if (spec.transport === 'tcp') {
    const err = await listen(server, { host: spec.host, port: spec.port });
    if (err)
      return attachError(
        'ListenFailed',
        `cannot listen on ${spec.host}:${spec.port}: ${describe(err)}`,
      );
    const a = server.address() as net.AddressInfo;
    const address = a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    return { address, spec: { ...spec, port: a.port }, close: () => closeServer(server) };
  }

  const target = path.resolve(spec.path);
  if (Buffer.byteLength(target) > SUN_PATH_MAX) {
    return attachError(
      'ListenFailed',
      `the socket path ${spec.path} is too long for a unix socket (${SUN_PATH_MAX} bytes at most)`,
    );
  }
  const stale = await clearStale(target);
  if (stale) return stale;
  let dir: string;
  try {
    dir = fs.mkdtempSync(path.join(path.dirname(target), '.vmchan-tap-'));
  } catch (e) {
    return attachError('ListenFailed', `cannot create ${spec.path}: ${describe(e)}`);
  }
  const temp = path.join(dir, 's');
  const err = await listen(server, { path: temp });
  if (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    return attachError('ListenFailed', `cannot listen on ${spec.path}: ${describe(err)}`);
  }
  let ino: number;
  try {
    fs.chmodSync(temp, 0o600);
    fs.renameSync(temp, target);
    ino = fs.statSync(target).ino;
  } catch (e) {
    await closeServer(server);
    fs.rmSync(dir, { recursive: true, force: true });
    return attachError('ListenFailed', `cannot listen on ${spec.path}: ${describe(e)}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    address: spec.path,
    spec,
    close: async () => {
      await closeServer(server);
      try {
        if (fs.statSync(target).ino === ino) fs.unlinkSync(target);
      } catch {
        // Already gone.
      }
    },
  };
}

function listen(server: net.Server, options: net.ListenOptions): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const onError = (e: Error): void => {
      server.off('listening', onListening);
      resolve(e);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve(undefined);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options);
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}

async function clearStale(target: string): Promise<AttachError | undefined> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(target);
  } catch {
    return undefined;
  }
  if (!st.isSocket()) return attachError('ListenFailed', `${target} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const s = net.connect({ path: target });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(true);
    }, 1000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (alive)
    return attachError('ListenFailed', `socket ${target} is in use (something listens there)`);
  try {
    fs.unlinkSync(target);
  } catch (e) {
    return attachError('ListenFailed', `cannot remove the stale socket ${target}: ${describe(e)}`);
  }
  return undefined;
}

export function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const code = typeof err?.code === 'string' ? err.code : undefined;
  const texts: Record<string, string> = {
    EADDRINUSE: 'address in use',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    ENOENT: 'no such file or directory',
    ECONNREFUSED: 'connection refused (nothing listens there)',
    ENOTDIR: 'a path component is not a directory',
    EADDRNOTAVAIL: 'address not available',
  };
  if (code && texts[code]) return texts[code];
  return code ?? (e instanceof Error ? e.message : String(e));
}
