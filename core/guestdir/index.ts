/** The guest side of a lab's ports from outside: unix sockets in a directory (`--guest-dir`). */
export { GuestDir, GuestDirError, isGuestDirError, busyLine } from './guest-dir.js';
export type { GuestDirOptions, GuestSocket } from './guest-dir.js';
export { ClientBridge, LINGER_MS } from './bridge.js';
export type { BridgeStats } from './bridge.js';
