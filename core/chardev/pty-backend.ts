/**
 * pty: a new pseudo-terminal whose slave path is printed as QEMU prints it,
 * "char device redirected to /dev/pts/N (label ID)".
 *
 * The master is opened here (/dev/ptmx, non-blocking) and stays in this
 * process; a perl helper unlocks it, names the slave and sets the slave raw
 * (tty-helper.ts), then exits. As QEMU's char-pty.c, the host side is
 * connected only while some program has the slave open: reading the master
 * gives EIO while nobody does, and a read that finds data or nothing
 * (EAGAIN) means somebody does. Guest output while nobody has the slave
 * open is discarded (QEMU's pty write returns len when not connected).
 * QEMU 7.2 sends no CLOSED event when the slave is closed; vmchan does, so
 * the port's host side follows the terminal.
 */
import fs from 'node:fs';
import type { BackendOptions } from './backend-endpoint.js';
import {
  chardevError,
  describeSystemError,
  isChardevError,
  type ChardevError,
} from './chardev-error.js';
import { PolledChardev } from './polled-backend.js';
import { preparePty } from './tty-helper.js';

export class PtyChardev extends PolledChardev {
  readonly kind = 'pty' as const;
  /** The slave side, for the host program to open (/dev/pts/N). */
  readonly slavePath: string;

  private constructor(options: BackendOptions, fd: number, slavePath: string) {
    super(options, fd);
    this.slavePath = slavePath;
    this.poller.start();
  }

  static async open(options: BackendOptions): Promise<PtyChardev | ChardevError> {
    const c = fs.constants;
    let fd: number;
    try {
      fd = fs.openSync('/dev/ptmx', c.O_RDWR | c.O_NOCTTY | c.O_NONBLOCK);
    } catch (error) {
      return chardevError(
        'OpenFailed',
        `Failed to create PTY: ${describeSystemError(error)}`,
        options.id,
      );
    }
    const slave = await preparePty(fd, options.id);
    if (isChardevError(slave)) {
      fs.closeSync(fd);
      return slave;
    }
    options.onNotice?.(`char device redirected to ${slave} (label ${options.id})`);
    return new PtyChardev(options, fd, slave);
  }

  describe(): string {
    return `pty:${this.slavePath}`;
  }

  protected onQuiet(): void {
    if (!this.connected) this.peerConnected();
  }

  protected override onData(chunk: Uint8Array): void {
    if (!this.connected) this.peerConnected();
    this.hostBytes(chunk);
  }

  protected onHangup(): void {
    if (this.connected) this.peerDisconnected();
  }

  protected onEnd(): void {
    if (this.connected) this.peerDisconnected();
  }
}
