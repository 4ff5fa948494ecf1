/**
 * The file operations of the two kinds of device node the driver makes:
 * `/dev/vportDpN` (port_fops in Linux's virtio_console.c) and `/dev/hvcK`
 * (the hvc tty a console port is hooked to).
 *
 * vport (L3-L8), as Linux:
 * - open: ENXIO for a console port or an unplugged one, EBUSY when already
 *   open (exclusive), then PORT_OPEN 1; the call returns after the device
 *   took the message (Linux spins until it is used).
 * - read: ENODEV after unplug; with nothing queued, 0 (EOF) at once if the
 *   host is not connected, EAGAIN with O_NONBLOCK, else wait; one buffer's
 *   worth at most.
 * - write: 0 for 0 bytes; waits while the host is away or the queue is full
 *   (EAGAIN with O_NONBLOCK); at most 32 KiB per call; ENODEV after unplug.
 * - poll: HUP only after unplug; IN when a read would not block (data, or the
 *   host gone: Linux's will_read_block), OUT when a write would not block,
 *   HUP while the host is disconnected.
 * - lseek: ESPIPE. close: PORT_OPEN 0, unread data discarded (counted).
 * hvc (a tty, simplified): any number of opens, reads wait for data (no EOF
 * on host disconnect; EOF after unplug, like a hung-up tty), writes go out in
 * page-sized pieces and return once the device has used each (Linux's
 * put_chars spins), OUT is always set, HUP after unplug.
 */
import type { PostTask } from '../../virtio/device.js';
import { ControlEvent } from '../control.js';
import { errno, type Errno } from './errno.js';
import { POLLHUP, POLLIN, POLLOUT, POLLRDNORM } from './files.js';
import type { CharDevice, FileOps } from './namespace.js';
import { NO_MEMORY, type GuestPort } from './port.js';

/** L5: one write puts at most this much in one buffer. */
export const MAX_WRITE = 32 * 1024;

export interface PortFileHost {
  readonly post: PostTask;
  readonly broken: boolean;
  /** Largest hvc output piece (PAGE_SIZE). */
  readonly rxBufferSize: number;
  /** Send a control message for `port`; resolves once the device used it (or it cannot be sent). */
  sendControl(port: GuestPort, event: number, value: number): Promise<void>;
  /** Run `retry` as a guest task once guest memory may have come back (L12). */
  waitForMemory(what: string, retry: () => void): void;
}

/** Park on the port's wait queue and run `retry` as a new guest task when woken. */
function waitThen(host: PortFileHost, port: GuestPort, what: string, retry: () => void): void {
  port.waitq.wait(() => host.post('guest', `${port.devName}: ${what} woken`, retry));
}

export class VportDevice implements CharDevice {
  constructor(
    private readonly host: PortFileHost,
    private readonly port: GuestPort,
  ) {}

  get label(): string {
    return this.port.devName;
  }

  async open(): Promise<FileOps | Errno> {
    const port = this.port;
    // "Port was unplugged before we could proceed" / consoles go through hvc.
    if (port.unplugged || port.isConsole) return errno('ENXIO');
    if (this.host.broken) return errno('EIO');
    if (port.guestConnected) return errno('EBUSY');
    port.guestConnected = true;
    port.reclaimConsumed();
    await this.host.sendControl(port, ControlEvent.PORT_OPEN, 1);
    return new VportFile(this.host, port);
  }
}

class VportFile implements FileOps {
  private signal: (() => void) | null = null;

  constructor(
    private readonly host: PortFileHost,
    private readonly port: GuestPort,
  ) {}

  read(count: number, nonblock: boolean, into?: Uint8Array): Promise<Uint8Array | Errno> {
    const { host, port } = this;
    const now = this.readNow(count, into);
    if (now !== null || nonblock) return Promise.resolve(now ?? errno('EAGAIN'));
    return new Promise((resolve) => {
      const waitForData = (): void => {
        // Woken with nothing to read only when broken, which readNow reports first.
        if (host.broken || !port.willReadBlock())
          resolve(this.readNow(count, into) ?? new Uint8Array(0));
        else waitThen(host, port, 'read', waitForData);
      };
      waitThen(host, port, 'read', waitForData);
    });
  }

  /** The read without its wait: null where port_fops_read would sleep (EAGAIN with O_NONBLOCK). */
  private readNow(count: number, into?: Uint8Array): Uint8Array | Errno | null {
    const { host, port } = this;
    if (host.broken) return errno('EIO');
    // "Port got hot-unplugged while we were waiting above."
    if (!port.guestConnected) return errno('ENODEV');
    if (!port.hasData()) {
      // "If nothing's connected on the host just return 0 in case of list_empty."
      if (!port.hostConnected) return new Uint8Array(0);
      return null;
    }
    return port.fillReadbuf(count, into);
  }

  /** The read without its wait into `into` at `at`: the byte count (0: end of file) instead of a view. */
  readNowAt(count: number, into: Uint8Array, at: number): number | Errno | null {
    const { host, port } = this;
    if (host.broken) return errno('EIO');
    if (!port.guestConnected) return errno('ENODEV');
    if (!port.hasData()) return port.hostConnected ? null : 0;
    return port.fillReadbufAt(count, into, at);
  }

  write(data: Uint8Array, nonblock: boolean): Promise<number | Errno> {
    const { host, port } = this;
    const first = this.tryWrite(data);
    if (typeof first !== 'string') return Promise.resolve(first);
    // Queue full, host away, or L12 memory short (Linux waits for reclaim): O_NONBLOCK does not wait.
    if (nonblock) return Promise.resolve(errno('EAGAIN'));
    return new Promise((resolve) => {
      const go = (): void => {
        const sent = this.send(data);
        if (sent !== NO_MEMORY) resolve(sent);
        else host.waitForMemory(`${port.devName}: write`, go);
      };
      const waitWritable = (): void => {
        if (host.broken || !port.willWriteBlock()) go();
        else waitThen(host, port, 'write', waitWritable);
      };
      if (first === NO_MEMORY) host.waitForMemory(`${port.devName}: write`, go);
      else waitThen(host, port, 'write', waitWritable);
    });
  }

  /** The write without its wait: null where port_fops_write would sleep (EAGAIN with O_NONBLOCK). */
  writeNow(data: Uint8Array): number | Errno | null {
    const r = this.tryWrite(data);
    return typeof r === 'string' ? null : r;
  }

  /** One attempt: what went, or why it would wait ('blocked': will_write_block; NO_MEMORY: L12). */
  private tryWrite(data: Uint8Array): number | Errno | 'blocked' | typeof NO_MEMORY {
    if (data.length === 0) return 0;
    if (!this.host.broken && this.port.willWriteBlock()) return 'blocked';
    return this.send(data);
  }

  private send(data: Uint8Array): number | Errno | typeof NO_MEMORY {
    if (this.host.broken) return errno('EIO');
    if (!this.port.guestConnected) return errno('ENODEV');
    return this.port.send(data.subarray(0, Math.min(MAX_WRITE, data.length)));
  }

  poll(): number {
    const port = this.port;
    if (!port.guestConnected) return POLLHUP; // unplugged
    let mask = 0;
    if (!port.willReadBlock()) mask |= POLLIN | POLLRDNORM;
    if (!port.willWriteBlock()) mask |= POLLOUT;
    if (!port.hostConnected) mask |= POLLHUP;
    return mask;
  }

  pollRead(): number {
    const port = this.port;
    if (!port.guestConnected) return POLLHUP;
    const mask = port.willReadBlock() ? 0 : POLLIN | POLLRDNORM;
    return port.hostConnected ? mask : mask | POLLHUP;
  }

  pollWait(wake: () => void): () => void {
    return this.port.waitq.wait(wake);
  }

  lseek(): number | Errno {
    return errno('ESPIPE'); // nonseekable_open
  }

  fasync(on: boolean, signal: () => void): void {
    if (this.signal !== null) this.port.asyncOwners.delete(this.signal);
    this.signal = on ? signal : null;
    if (on) this.port.asyncOwners.add(signal);
  }

  async release(): Promise<void> {
    const port = this.port;
    if (this.signal !== null) port.asyncOwners.delete(this.signal);
    // After unplug there is no device to tell (Linux: port->portdev is NULL).
    if (!port.unplugged) await this.host.sendControl(port, ControlEvent.PORT_OPEN, 0);
    if (port.unplugged) return;
    port.guestConnected = false;
    port.discardData('closed-unread');
    port.reclaimConsumed();
  }
}

export class HvcDevice implements CharDevice {
  constructor(
    private readonly host: PortFileHost,
    private readonly port: GuestPort,
  ) {}

  get label(): string {
    return `hvc${this.port.console?.hvc ?? '?'}`;
  }

  async open(): Promise<FileOps | Errno> {
    if (this.port.unplugged) return errno('ENODEV');
    return new HvcFile(this.host, this.port);
  }
}

class HvcFile implements FileOps {
  private signal: (() => void) | null = null;

  constructor(
    private readonly host: PortFileHost,
    private readonly port: GuestPort,
  ) {}

  read(count: number, nonblock: boolean, into?: Uint8Array): Promise<Uint8Array | Errno> {
    const { host, port } = this;
    return new Promise((resolve) => {
      const attempt = (): void => {
        if (port.unplugged) return resolve(new Uint8Array(0)); // hung-up tty
        if (host.broken) return resolve(errno('EIO'));
        if (port.hasData()) return resolve(port.fillReadbuf(count, into));
        if (nonblock) return resolve(errno('EAGAIN'));
        waitThen(host, port, 'hvc read', attempt);
      };
      attempt();
    });
  }

  write(data: Uint8Array): Promise<number | Errno> {
    const { host, port } = this;
    if (port.unplugged) return Promise.resolve(errno('EIO'));
    if (data.length === 0) return Promise.resolve(0);
    const piece = host.rxBufferSize;
    return new Promise((resolve) => {
      let done = 0;
      const next = (): void => {
        if (done >= data.length) return resolve(done);
        if (port.unplugged || host.broken) return resolve(done > 0 ? done : errno('EIO'));
        const chunk = data.subarray(done, Math.min(data.length, done + piece));
        let used = false;
        const sent = port.send(chunk, () => {
          used = true;
        });
        if (sent === NO_MEMORY) return host.waitForMemory(`${port.devName}: hvc write`, next);
        if (typeof sent !== 'number') return resolve(done > 0 ? done : sent);
        if (sent === 0) return resolve(done > 0 ? done : errno('EIO'));
        // put_chars spins until the device has used the buffer.
        const spin = (): void => {
          port.reclaimConsumed();
          if (used || port.unplugged || host.broken) {
            done += sent;
            next();
          } else {
            waitThen(host, port, 'hvc write', spin);
          }
        };
        spin();
      };
      next();
    });
  }

  poll(): number {
    const port = this.port;
    if (port.unplugged) return POLLHUP;
    return (port.hasData() ? POLLIN | POLLRDNORM : 0) | POLLOUT;
  }

  pollWait(wake: () => void): () => void {
    return this.port.waitq.wait(wake);
  }

  lseek(): number | Errno {
    return errno('ESPIPE');
  }

  fasync(on: boolean, signal: () => void): void {
    if (this.signal !== null) this.port.asyncOwners.delete(this.signal);
    this.signal = on ? signal : null;
    if (on) this.port.asyncOwners.add(signal);
  }

  async release(): Promise<void> {
    if (this.signal !== null) this.port.asyncOwners.delete(this.signal);
  }
}
