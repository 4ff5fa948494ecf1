/** Real chardev backends (H1): see factory.ts for the entry point. */
export { createChardev, isMux } from './factory.js';
export type { ChardevContext, OpenChardev } from './factory.js';
export { ChardevRegistry } from './registry.js';
export {
  BackendEndpoint,
  READ_CHUNK,
  INBOUND_HIGH_WATER,
  INBOUND_LOW_WATER,
} from './backend-endpoint.js';
export type { ChardevInfo, Closeable, HangUpResult, ReadyOutcome } from './backend-endpoint.js';
export { ChardevError, chardevError, isChardevError } from './chardev-error.js';
export type { ChardevErrorKind } from './chardev-error.js';
export { DROP_REASONS, engineDropReason, totalDropped } from './counters.js';
export type { ChardevCounters, DropReason } from './counters.js';
export { SocketChardev, DEFAULT_TCP_HOST } from './socket-backend.js';
export type { SocketStats } from './socket-backend.js';
export { PipeChardev } from './pipe-backend.js';
export { FileChardev } from './file-backend.js';
export { PtyChardev } from './pty-backend.js';
export { SerialChardev } from './serial-backend.js';
export { StdioChardev } from './stdio-backend.js';
export type { StdioStreams } from './stdio-backend.js';
export { NullChardev } from './null-backend.js';
export { RingbufChardev } from './ringbuf-backend.js';
export { UdpChardev } from './udp-backend.js';
export { MuxChardev, MuxFrontend, MUX_ESCAPE, MUX_BUFFER_SIZE } from './mux.js';
export type { MuxStats } from './mux.js';
