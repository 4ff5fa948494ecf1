/**
 * The host side of a port: the interface between a virtio-serial port (the
 * frontend) and whatever carries its bytes on the host (the backend: a unix
 * or tcp socket, a pipe, a file, a pty, or the in-memory pair in
 * memory-endpoint.ts). It is modelled on QEMU's chardev frontend API
 * (include/chardev/char-fe.h), reduced to what a port needs:
 *
 * | QEMU                                    | here                        |
 * |-----------------------------------------|-----------------------------|
 * | qemu_chr_fe_init (fails when in use)    | attach(handlers) -> boolean |
 * | qemu_chr_fe_set_handlers(... NULL ...)  | detach()                    |
 * | IOCanReadHandler / IOReadHandler        | handlers.canRead / read     |
 * | IOEventHandler OPENED / CLOSED          | handlers.event(...)         |
 * | qemu_chr_fe_write (non-blocking)        | write(bytes) -> accepted    |
 * | qemu_chr_fe_add_watch(G_IO_OUT|HUP)     | addWriteWatch(callback)     |
 * | qemu_chr_fe_accept_input                | acceptInput()               |
 * | qemu_chr_fe_set_open                    | setFrontendOpen(open)       |
 * | qemu_chr_fe_get_msgfd                   | takeDescriptor()            |
 * | be_open (a client is there)             | connected                   |
 *
 * Flow control, both directions:
 * - host -> guest is pull (D6): the backend calls `canRead()` and then
 *   `read()` with at most that many bytes. When canRead() returns 0 the
 *   backend stops and waits for `acceptInput()`, which the frontend calls
 *   whenever it may take more (the guest posted receive buffers, opened the
 *   port, ...). A backend never has to poll.
 * - guest -> host is push (D5): `write()` returns how many bytes the backend
 *   took; fewer than offered means "full". The frontend then registers a
 *   write watch and retries when it fires.
 *
 * Rules for implementers (the chardev backends):
 * - Call handlers only from engine tasks (post them as 'backend' tasks), never
 *   from inside a frontend call: write() and acceptInput() must not call back
 *   into the handlers synchronously.
 * - Deliver 'opened' when a host peer appears (and at attach() if one is
 *   already there, as QEMU does for an already-open backend), 'closed' when it
 *   goes away.
 * - write() while nothing is connected discards the bytes and returns their
 *   count, as QEMU's socket chardev does; frontends check `connected` first so
 *   the drop is counted where it is decided.
 * - A write watch is one-shot: it fires once when the backend can take more
 *   bytes or the peer hangs up (G_IO_OUT | G_IO_HUP).
 * - Buffers change hands: the array given to write() is the backend's to
 *   keep (the frontend made a copy for it), and the array given to read() is
 *   the frontend's (the backend must not reuse it), unless the frontend says
 *   it copies what it keeps (copiesWhatItKeeps): then read() may get a view
 *   of a buffer the backend reads into again after the call.
 */

export type ChardevEvent = 'opened' | 'closed';

/** What a port registers with its backend. */
export interface ChardevHandlers {
  /** How many bytes the port can take now; 0 stops the flow until acceptInput(). */
  canRead(): number;
  /** Bytes from the host, never more than the last canRead() allowed. */
  read(bytes: Uint8Array): void;
  /**
   * read() copies whatever it keeps of `bytes` before it returns (a port
   * copies them into guest memory), so the backend may pass views of the
   * buffers its socket reads into again (pooled-reads.ts) instead of copies.
   */
  readonly copiesWhatItKeeps?: boolean;
  /** The host side connected ('opened') or went away ('closed'). */
  event(event: ChardevEvent): void;
}

export interface ChardevEndpoint {
  /** The chardev id (`-chardev ...,id=ID`). */
  readonly id: string;
  /** Is a host peer there (a socket client, an open pipe)? */
  readonly connected: boolean;
  /** Does a frontend hold this backend? Only one may (QEMU: "Device 'c1' is in use"). */
  readonly attached: boolean;
  /** What the frontend last told the backend with setFrontendOpen (query-chardev's frontend-open). */
  readonly frontendOpen: boolean;
  /** Take the backend for a frontend; false when another one holds it. */
  attach(handlers: ChardevHandlers): boolean;
  /** Let go: no handler is called after this. */
  detach(): void;
  /**
   * Offer bytes to the host; returns how many were taken (fewer:
   * backpressure). `handover`: the caller made `bytes` for this call and
   * never touches them again, so a backend may keep the array as it is
   * instead of copying it (the device gathers a transmit chain into a fresh
   * buffer: QEMU's one copy out of guest memory). `release` (with
   * handover): a backend that keeps the array calls it once, with the array,
   * when nothing refers to it any more (the OS took the bytes, or the write
   * failed), and the caller may then reuse it; a backend that does not call
   * it simply lets the array go.
   */
  write(bytes: Uint8Array, handover?: boolean, release?: (bytes: Uint8Array) => void): number;
  /** Call `callback` once when the backend can take more bytes or the peer hangs up. Returns a cancel. */
  addWriteWatch(callback: () => void): () => void;
  /** The frontend may take more bytes now: the backend should ask canRead() again. */
  acceptInput(): void;
  /** The guest opened (true) or closed (false) the port. */
  setFrontendOpen(open: boolean): void;
  /**
   * The frontend takes descriptors passed with SCM_RIGHTS (a QMP monitor):
   * null when this backend can receive them from now on, else why not.
   * Absent on backends that never carry any (QEMU: no get_msgfds).
   */
  wantDescriptors?(): string | null;
  /** qemu_chr_fe_get_msgfd: the first descriptor of the latest batch (the rest closed), or null. */
  takeDescriptor?(): number | null;
  /** One line for `info chardev` / query-chardev's filename. */
  describe(): string;
}
