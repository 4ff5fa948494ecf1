/**
 * Socket reads into buffers that are used again (issue 18).
 *
 * Node reads a socket into a fresh 64 KiB ArrayBuffer per read(2) and hands
 * it to 'data' listeners. A chardev copies the bytes into guest memory
 * within a few tasks, so each of those buffers lives a moment and then
 * costs a free, a share of a scavenge and V8's external-memory accounting:
 * on the host-to-guest path that was 4096 allocations and 16 scavenges per
 * 256 MiB. Node's `onread` mode (a user buffer the handle reads into, with a
 * callback per read and a function that names the next buffer) lets a
 * backend read into a few buffers of its own instead; the read sizes stay
 * Node's (up to 64 KiB per read(2)), so nothing a peer sees changes.
 *
 * Node offers `onread` only for sockets it creates from options; a server's
 * accepted connections have no such option, but they carry the same fields
 * (the symbols kBuffer, kBufferCb, kBufferGen) and their handle the same
 * useUserBuffer(). They are found by their descriptions; where a Node
 * version lacks them, readIntoPool() says so and the caller keeps 'data'
 * events (the behaviour is the same, only the allocation differs).
 *
 * Ownership: a chunk handed to `onChunk` is a view of a pool buffer, lent
 * until its `release` runs; the socket reads into that buffer again only
 * after that (until then it reads into another one, made if none is free).
 */
import type { Socket } from 'node:net';

/** Bytes per read buffer: Node's own read size for a stream socket. */
export const POOLED_READ_SIZE = 64 * 1024;
/**
 * Free buffers kept for reuse, for all sockets of the process: a transfer
 * has two or three out at once (the read in flight and the chardev's queue,
 * which pauses the socket at 64 KiB), so a few busy sockets at a time reuse
 * theirs and the rest are left to the collector.
 */
export const POOL_KEEP = 16;

const freeBuffers: Buffer[] = [];
/** Buffers handed out and not released: a double release must not add one twice. */
const lent = new WeakSet<Buffer>();

function acquire(): Buffer {
  const buffer = freeBuffers.pop() ?? Buffer.allocUnsafeSlow(POOLED_READ_SIZE);
  lent.add(buffer);
  return buffer;
}

function release(buffer: Buffer): void {
  if (!lent.has(buffer)) return;
  lent.delete(buffer);
  if (freeBuffers.length < POOL_KEEP) freeBuffers.push(buffer);
}

interface UserBufferHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

/** The fields of Node's onread mode on a socket, or null where this Node has none. */
function onreadFields(
  socket: Socket,
): { buffer: symbol; callback: symbol; next: symbol; handle: UserBufferHandle } | null {
  const handle = (socket as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') {
    return null;
  }
  const symbols = Object.getOwnPropertySymbols(socket);
  const find = (name: string): symbol | undefined => symbols.find((s) => s.description === name);
  const buffer = find('kBuffer');
  const callback = find('kBufferCb');
  const next = find('kBufferGen');
  if (buffer === undefined || callback === undefined || next === undefined) return null;
  return { buffer, callback, next, handle: handle as UserBufferHandle };
}

/**
 * From now on `socket` reads into pool buffers and each read goes to
 * `onChunk` (instead of a 'data' event) with the release that lends the
 * buffer back. False, with nothing changed, when this Node cannot.
 * Bytes Node read before the switch still come as 'data' events, so a
 * caller keeps its 'data' listener too.
 */
export function readIntoPool(
  socket: Socket,
  onChunk: (chunk: Uint8Array, release: () => void) => void,
): boolean {
  const fields = onreadFields(socket);
  if (fields === null) return false;
  const slots = socket as unknown as Record<symbol, unknown>;
  const first = acquire();
  slots[fields.buffer] = first;
  slots[fields.callback] = (nread: number, buffer: Buffer): boolean => {
    onChunk(new Uint8Array(buffer.buffer, buffer.byteOffset, nread), () => release(buffer));
    return true; // pausing is the backend's call (socket.pause), as with 'data'
  };
  slots[fields.next] = acquire;
  fields.handle.useUserBuffer(first);
  return true;
}
