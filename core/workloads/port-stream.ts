/**
 * One guest port as a guest program uses it: open(2), read(2) and write(2)
 * on the port file through GuestFiles, with the waiting a real program does
 * with poll(2) and SIGIO, so every byte goes through the Linux driver's
 * semantics (L3-L7) and nothing here looks inside the driver.
 *
 * Why non-blocking descriptors and SIGIO instead of plain blocking calls:
 * - a program must be able to stop while a read is parked (the guest-dir
 *   client left). A blocking read still parked when the port is closed and
 *   opened again by the next client would wake on the new open and take its
 *   data. Non-blocking calls never park in the driver; the waiting happens
 *   here and is cancelled by close().
 * - poll(2) always reports POLLHUP while the host is away (L6), so it cannot
 *   wait for the host to come back; Linux sends SIGIO on host connect (L7),
 *   which is what a program waiting for its peer uses.
 *
 * Reads: data, 'eof' (L4: the host is not connected and nothing is queued),
 * or an errno (ENODEV after unplug, EBADF after close). Writes: everything
 * is written, waiting while the host is away or the queue is full (L5).
 */
import { errno, isErrno, type Errno } from '../serial/guest/errno.js';
import {
  O_ASYNC,
  O_NONBLOCK,
  O_RDWR,
  POLLHUP,
  POLLIN,
  POLLOUT,
  type GuestFiles,
} from '../serial/guest/files.js';

export type ReadResult = Uint8Array | 'eof' | Errno;
export type HostWait = 'retry' | 'gone' | 'closed';

/** Largest read asked of the driver; one read returns one receive buffer at most (4 KiB). */
export const READ_SIZE = 64 * 1024;

export class PortStream {
  private closed = false;
  private closing: Promise<void> | null = null;
  /** Who waits for the next SIGIO (or for close). */
  private sigioWaiters: (() => void)[] = [];
  /** SIGIOs so far, and the count when the last read was issued (see waitForHost). */
  private sigios = 0;
  private sigiosAtRead = 0;
  /**
   * Polls in progress, ended (EBADF) by close() so a wait can be abandoned
   * without a syscall. Each leaves the set when it settles: a promise that
   * lives as long as the stream, with a reaction added per poll, would keep
   * every poll's closures until close (memory growing with the bytes moved).
   */
  private readonly pollsOpen = new Set<() => void>();

  private constructor(
    private readonly files: GuestFiles,
    readonly fd: number,
    /** The node opened: /dev/vport0p1, /dev/hvc0. */
    readonly path: string,
  ) {}

  /** open(path, O_RDWR | O_NONBLOCK), then O_ASYNC with this stream as the SIGIO owner. */
  static async open(files: GuestFiles, path: string): Promise<PortStream | Errno> {
    const fd = await files.open(path, O_RDWR | O_NONBLOCK);
    if (isErrno(fd)) return fd;
    const stream = new PortStream(files, fd, path);
    files.setOwner(fd, () => stream.sigio());
    const set = await files.setFlags(fd, O_NONBLOCK | O_ASYNC);
    if (isErrno(set)) {
      await files.close(fd);
      return set;
    }
    return stream;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** One read(2) that waits for data: a buffer's worth at most (into `into` when given). */
  async read(max = READ_SIZE, into?: Uint8Array): Promise<ReadResult> {
    for (;;) {
      if (this.closed) return errno('EBADF', `read ${this.path}`);
      this.sigiosAtRead = this.sigios;
      // Nothing queued: wait for data without a read that would say EAGAIN.
      if (this.files.readWouldWait(this.fd)) {
        const woke = await this.pollOrClose(POLLIN);
        if (isErrno(woke)) return woke;
        continue;
      }
      const r = await this.files.read(this.fd, max, into);
      if (!isErrno(r)) return r.length === 0 ? 'eof' : r;
      if (r.code !== 'EAGAIN') return r;
      const woke = await this.pollOrClose(POLLIN);
      if (isErrno(woke)) return woke;
    }
  }

  /**
   * Wait for data, then take what else is already queued without waiting,
   * up to `max` bytes: one chunk for the caller instead of one per 4 KiB
   * receive buffer (each still one read(2) of one buffer). Ends early at
   * 'eof' or an error only if nothing was read.
   *
   * With `into`, every read(2) copies straight into it, one after the other
   * (a program reading into its own buffer at a moving offset), and the
   * result is a view of `into`: no array is made and nothing is copied
   * twice. Without it the result is a fresh array the caller may keep.
   */
  async readSome(max = READ_SIZE, into?: Uint8Array): Promise<ReadResult> {
    if (into !== undefined) return this.readSomeInto(Math.min(max, into.length), into);
    const first = await this.read(Math.min(max, READ_SIZE));
    if (!(first instanceof Uint8Array) || first.length >= max) return first;
    const parts = [first];
    let total = first.length;
    while (total < max && !this.closed && !this.files.readWouldWait(this.fd)) {
      const more = await this.files.read(this.fd, max - total);
      if (isErrno(more) || more.length === 0) break; // EAGAIN, eof, unplug: report at the next call
      parts.push(more);
      total += more.length;
    }
    if (parts.length === 1) return first;
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  private async readSomeInto(max: number, into: Uint8Array): Promise<ReadResult> {
    // The first read waits for data, as read() does, but copies into `into`
    // at once when the engine lets it (no promise of its own per call).
    let total: number;
    for (;;) {
      if (this.closed) return errno('EBADF', `read ${this.path}`);
      this.sigiosAtRead = this.sigios;
      // Nothing queued: wait for data without a read that would say EAGAIN.
      if (this.files.readWouldWait(this.fd)) {
        const woke = await this.pollOrClose(POLLIN);
        if (isErrno(woke)) return woke;
        continue;
      }
      let n = this.files.readNowAt(this.fd, max, into, 0);
      if (n === null) {
        const r = await this.files.read(this.fd, max, into.subarray(0, max));
        n = isErrno(r) ? r : r.length;
      }
      if (!isErrno(n)) {
        if (n === 0) return 'eof';
        total = n;
        break;
      }
      if (n.code !== 'EAGAIN') return n;
      const woke = await this.pollOrClose(POLLIN);
      if (isErrno(woke)) return woke;
    }
    // Each follow-up read only while something is queued (readWouldWait), so
    // the last one is not a read(2) that finds nothing.
    while (total < max && !this.closed && !this.files.readWouldWait(this.fd)) {
      // Run now when the engine lets it: one task per read(2) all the same,
      // but no promise, and no view of `into`, each.
      let more = this.files.readNowAt(this.fd, max - total, into, total);
      if (more === null) {
        const r = await this.files.read(this.fd, max - total, into.subarray(total, max));
        more = isErrno(r) ? r : r.length;
      }
      if (isErrno(more) || more === 0) break; // EAGAIN, eof, unplug: report at the next call
      total += more;
    }
    return into.subarray(0, total);
  }

  /**
   * After 'eof': wait until reading is worth trying again, that is until the
   * host connects or data arrives (SIGIO, L7; data can arrive on a port whose
   * host never "opens", a udp chardev's). 'gone' when the port was
   * unplugged, 'closed' when this stream was closed.
   */
  async waitForHost(): Promise<HostWait> {
    if (this.closed) return 'closed';
    const mask = this.files.pollNow(this.fd);
    if (isErrno(mask)) return 'closed';
    if ((mask & POLLHUP) === 0) return 'retry';
    // HUP alone is an unplugged port (L6); a port whose host is away also reads IN (EOF).
    if ((mask & POLLIN) === 0) return 'gone';
    // A SIGIO since the read was issued (data that came while the host is
    // away does not change the mask): our code may run many engine tasks
    // after the read returned, so look at the count, not just the mask.
    if (this.sigios !== this.sigiosAtRead) return 'retry';
    await this.nextSigio();
    return this.closed ? 'closed' : 'retry';
  }

  /**
   * write(2) until everything went; waits while the host is away or the
   * queue is full. `progress` hears every part written, so a caller whose
   * write ends in an error (ENODEV) knows how much of `data` never went.
   */
  async write(data: Uint8Array, progress?: (n: number) => void): Promise<number | Errno> {
    let done = 0;
    while (done < data.length) {
      if (this.closed) return errno('EBADF', `write ${this.path}`);
      const rest = data.subarray(done);
      const n = this.files.writeNow(this.fd, rest) ?? (await this.files.write(this.fd, rest));
      if (!isErrno(n)) {
        done += n;
        progress?.(n);
        continue;
      }
      // EAGAIN: queue full, host away or guest memory short (L12); ENOMEM is as transient.
      if (n.code !== 'EAGAIN' && n.code !== 'ENOMEM') return n;
      const mask = this.files.pollNow(this.fd);
      if (isErrno(mask)) return mask;
      if (mask & POLLOUT) continue;
      if ((mask & POLLHUP) !== 0 && (mask & POLLIN) !== 0) {
        await this.nextSigio(); // the host is away: SIGIO comes when it connects
      } else if ((mask & POLLHUP) === 0) {
        const woke = await this.pollOrClose(POLLOUT); // the queue is full
        if (isErrno(woke)) return woke;
      }
      // HUP alone: unplugged; the next write says ENODEV.
    }
    return done;
  }

  /** close(2): the guest closes the port (PORT_OPEN 0, unread data discarded). Waits end first. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closed = true;
    for (const abandon of [...this.pollsOpen]) abandon();
    this.wakeSigioWaiters();
    this.files.setOwner(this.fd, null);
    this.closing = this.files.close(this.fd).then(() => undefined);
    return this.closing;
  }

  private sigio(): void {
    this.sigios++;
    this.wakeSigioWaiters();
  }

  private wakeSigioWaiters(): void {
    const due = this.sigioWaiters;
    this.sigioWaiters = [];
    for (const w of due) w();
  }

  private nextSigio(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.sigioWaiters.push(resolve));
  }

  /** poll(2) for `events`, abandoned (EBADF) when the stream is closed meanwhile. */
  private pollOrClose(events: number): Promise<number | Errno> {
    if (this.closed) return Promise.resolve(errno('EBADF', `poll ${this.path}`));
    return new Promise((resolve) => {
      const settle = (r: number | Errno): void => {
        if (!this.pollsOpen.delete(abandon)) return;
        resolve(r);
      };
      const abandon = (): void => settle(errno('EBADF', `poll ${this.path}`));
      this.pollsOpen.add(abandon);
      void this.files.poll(this.fd, events).then(settle);
    });
  }
}
