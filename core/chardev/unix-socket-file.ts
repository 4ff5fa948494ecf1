/**
 * Creating a listening unix socket file that nobody else can use, and
 * removing only our own file again.
 *
 * Mode 0600 without a race: bind() creates the file with 0777 & ~umask, so
 * "listen, then chmod" leaves a moment in which another user may connect.
 * Setting process.umask around listen() closes that window but is
 * process-wide state (a concurrent file creation on the thread pool would
 * inherit it) and throws in worker threads. So we bind inside a fresh
 * private directory (mkdtemp makes it 0700: nobody else can reach the socket
 * in it), chmod the socket to 0600 there, and rename() it onto the requested
 * path, which is atomic: the path appears already 0600. The directory sits
 * next to the target so the rename never crosses file systems.
 *
 * A socket file left at the path by an earlier run is removed only when a
 * connect() to it is refused (nothing listens); a live server there gives
 * "socket PATH is in use". QEMU itself unlinks whatever is at the path
 * before bind(), stealing a live server's name; vmchan does not.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { chardevError, describeSystemError, type ChardevError } from './chardev-error.js';

/** sun_path holds 108 bytes including the terminating NUL. */
const SUN_PATH_MAX = 107;

/** A socket file we created; remove() deletes it if it is still ours. */
export interface OwnedSocketFile {
  readonly path: string;
  remove(): void;
}

/** Is something accepting connections at `socketPath`? */
function probe(socketPath: string): Promise<'listening' | 'refused' | 'absent' | Error> {
  return new Promise((resolve) => {
    const s = net.connect({ path: socketPath });
    const timer = setTimeout(() => {
      s.destroy();
      resolve('listening'); // a full backlog still means a live server
    }, 1000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('listening');
    });
    s.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ECONNREFUSED') resolve('refused');
      else if (error.code === 'ENOENT') resolve('absent');
      else resolve(error);
    });
  });
}

/** Clear the way for a new socket at `socketPath`: remove a stale one, refuse a live one. */
async function clearStale(socketPath: string, id: string): Promise<ChardevError | null> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return chardevError(
      'ListenFailed',
      `Failed to stat ${socketPath}: ${describeSystemError(error)}`,
      id,
    );
  }
  if (!st.isSocket()) {
    return chardevError('WrongFileType', `${socketPath} exists and is not a socket`, id);
  }
  const state = await probe(socketPath);
  if (state === 'listening')
    return chardevError('SocketInUse', `socket ${socketPath} is in use`, id);
  if (state === 'absent') return null;
  if (state instanceof Error) {
    return chardevError(
      'ListenFailed',
      `Failed to probe ${socketPath}: ${describeSystemError(state)}`,
      id,
    );
  }
  try {
    fs.unlinkSync(socketPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      return chardevError(
        'ListenFailed',
        `Failed to unlink socket ${socketPath}: ${describeSystemError(error)}`,
        id,
      );
    }
  }
  return null;
}

function listen(server: net.Server, socketPath: string): Promise<Error | null> {
  return new Promise((resolve) => {
    const onError = (error: Error): void => {
      server.off('listening', onListening);
      resolve(error);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve(null);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(socketPath);
  });
}

/**
 * Make `server` listen on the unix socket `socketPath` with mode 0600.
 * Returns the file (to remove at close) or an error.
 */
export async function listenUnixPrivately(
  server: net.Server,
  socketPath: string,
  id: string,
): Promise<OwnedSocketFile | ChardevError> {
  if (Buffer.byteLength(socketPath) > SUN_PATH_MAX) {
    return chardevError('ListenFailed', `UNIX socket path '${socketPath}' is too long`, id);
  }
  const stale = await clearStale(socketPath, id);
  if (stale !== null) return stale;

  let privateDir: string;
  try {
    privateDir = fs.mkdtempSync(path.join(path.dirname(path.resolve(socketPath)), '.vmc'));
  } catch (error) {
    return chardevError(
      'ListenFailed',
      `Failed to bind socket to ${socketPath}: ${describeSystemError(error)}`,
      id,
    );
  }
  const inside = path.join(privateDir, 's');
  const cleanupDir = (): void => fs.rmSync(privateDir, { recursive: true, force: true });
  if (Buffer.byteLength(inside) > SUN_PATH_MAX) {
    cleanupDir();
    return chardevError(
      'ListenFailed',
      `UNIX socket path '${socketPath}' is too long to be created privately (its directory name is long)`,
      id,
    );
  }
  const failed = await listen(server, inside);
  if (failed !== null) {
    cleanupDir();
    return chardevError(
      'ListenFailed',
      `Failed to bind socket to ${socketPath}: ${describeSystemError(failed)}`,
      id,
    );
  }
  let st: fs.Stats;
  try {
    fs.chmodSync(inside, 0o600);
    fs.renameSync(inside, socketPath);
    st = fs.lstatSync(socketPath);
  } catch (error) {
    server.close();
    cleanupDir();
    return chardevError(
      'ListenFailed',
      `Failed to bind socket to ${socketPath}: ${describeSystemError(error)}`,
      id,
    );
  }
  cleanupDir();
  return {
    path: socketPath,
    remove(): void {
      // Only our inode: another program may have replaced the path since.
      try {
        const now = fs.lstatSync(socketPath);
        if (now.ino === st.ino && now.dev === st.dev) fs.unlinkSync(socketPath);
      } catch {
        // already gone
      }
    },
  };
}
