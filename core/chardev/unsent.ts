/**
 * How many bytes given to a Node writable stream have not reached the
 * operating system yet: the ones a destroy() now would throw away.
 *
 * `writableLength` is not that number. It counts every byte whose write
 * callback has not run, and that includes the write in flight, of which
 * libuv has often already put a part into the kernel (a socket with some
 * room takes what fits at once; libuv queues the rest). Those bytes outlive
 * destroy(): a unix socket's data sits in the peer's receive queue and the
 * peer still reads it. Counting them as lost counts bytes the peer gets (the
 * packed-ring drop test found 36,544 bytes so counted twice).
 *
 * So: bytes Node still buffers (not handed to the handle) plus what the
 * handle still queues of the write in flight (libuv's write_queue_size,
 * exposed as `writeQueueSize` on stream handles: sockets, pipes, ttys). A
 * stream without such a handle (an fs.WriteStream) finishes its write in
 * flight even when destroyed, so only Node's buffer counts there.
 *
 * The fields read are Node internals (stable since Node 10 and used the same
 * way by Node's own http2 and tls); if one is missing the answer falls back
 * to `writableLength`, which can only over-count. Ask before destroy(): a
 * destroyed stream has already lost what it held and answers 0.
 */
import type { Writable } from 'node:stream';

interface WritableInternals {
  _writableState?: { writing?: unknown; writelen?: unknown };
  _handle?: { writeQueueSize?: unknown } | null;
}

export function bytesNotInKernel(stream: Writable): number {
  if (stream.destroyed) return 0;
  const internals = stream as unknown as WritableInternals;
  const state = internals._writableState;
  if (state === undefined || typeof state.writelen !== 'number') return stream.writableLength;
  const inFlight = state.writing === true ? state.writelen : 0;
  const handleQueue = internals._handle?.writeQueueSize;
  const queuedInHandle = typeof handleQueue === 'number' ? Math.min(handleQueue, inFlight) : 0;
  return stream.writableLength - inFlight + queuedInHandle;
}
