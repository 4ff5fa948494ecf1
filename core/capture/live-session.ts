/**
 * Publish a running session for live capture: an entry in the session
 * registry and a live socket streaming its Capture (what `vmchan extcap`
 * lists and reads). Used by `vmchan run`, `vmchan attach` and `vmchan launch`.
 */
import { CaptureError } from './error.js';
import { startLiveServer, type LiveHub, type LiveServer } from './live-server.js';
import type { Capture } from './record.js';
import { registerSession, type SessionEntry, type SessionKind } from './session-registry.js';

export interface PublishedSession {
  readonly entry: SessionEntry;
  readonly server: LiveServer;
  /** Stop listening and remove the registry entry. */
  close(): Promise<void>;
}

export async function publishSession(
  capture: Capture,
  kind: SessionKind,
  description: string,
  onNotice: (line: string) => void = () => {},
  /** A live client's queue bound (default MAX_LIVE_QUEUE_BYTES; the bench sets it above its transfer). */
  queueBytes?: number,
  /** The encoder a capture file already shares (kept attached by the caller), so clients and file share one encoding. */
  hub?: LiveHub,
): Promise<PublishedSession | CaptureError> {
  const reg = registerSession(kind, description);
  if (reg instanceof CaptureError) return reg;
  const server = await startLiveServer(capture, reg.entry.socket, {
    onNotice,
    ...(queueBytes !== undefined ? { queueBytes } : {}),
    ...(hub !== undefined ? { hub } : {}),
  });
  if (server instanceof CaptureError) {
    reg.unregister();
    return server;
  }
  return {
    entry: reg.entry,
    server,
    close: async () => {
      reg.unregister();
      await server.close();
    },
  };
}
