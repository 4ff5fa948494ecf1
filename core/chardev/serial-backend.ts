/**
 * serial (and its alias tty): a host terminal device such as /dev/ttyS0 or
 * a pty slave, opened O_RDWR | O_NOCTTY | O_NONBLOCK and set raw at 115200
 * 8N1 as QEMU's char-serial.c does (tty_serial_init). Like QEMU's fd
 * chardevs it is connected from the start; end of file or a hang-up (EIO)
 * closes it ('closed') and reading stops, as char-fd.c removes its watch.
 * Not modelled: the serial ioctls a frontend can issue (speed changes,
 * modem lines, break); setting raw mode needs perl (tty-helper.ts) and a
 * device that is not a terminal is used as it is.
 */
import fs from 'node:fs';
import tty from 'node:tty';
import type { SerialBackend } from './kinds/serial.js';
import type { BackendOptions } from './backend-endpoint.js';
import { chardevError, describeSystemError, type ChardevError } from './chardev-error.js';
import { PolledChardev } from './polled-backend.js';
import { makeRaw } from './tty-helper.js';

export type SerialSpec = SerialBackend;

export class SerialChardev extends PolledChardev {
  readonly kind = 'serial' as const;
  readonly path: string;

  private constructor(options: BackendOptions, fd: number, path: string) {
    super(options, fd);
    this.path = path;
    this.peerConnected();
    this.poller.start();
  }

  static async open(
    spec: SerialSpec,
    options: BackendOptions,
  ): Promise<SerialChardev | ChardevError> {
    const c = fs.constants;
    let fd: number;
    try {
      fd = fs.openSync(spec.path, c.O_RDWR | c.O_NOCTTY | c.O_NONBLOCK);
    } catch (error) {
      return chardevError(
        'OpenFailed',
        `Could not open '${spec.path}': ${describeSystemError(error)}`,
        options.id,
      );
    }
    if (!fs.fstatSync(fd).isCharacterDevice()) {
      fs.closeSync(fd);
      return chardevError('WrongFileType', `'${spec.path}' is not a character device`, options.id);
    }
    if (tty.isatty(fd)) {
      const failed = await makeRaw(fd, options.id);
      if (failed !== null)
        options.onNotice?.(`chardev ${options.id}: ${failed.message}; the line is used as it is`);
    }
    return new SerialChardev(options, fd, spec.path);
  }

  describe(): string {
    return 'serial';
  }

  protected onQuiet(): void {}

  protected onHangup(): void {
    this.finish();
  }

  protected onEnd(): void {
    this.finish();
  }

  private finish(): void {
    this.poller.pause();
    if (this.connected) this.peerDisconnected();
  }
}
