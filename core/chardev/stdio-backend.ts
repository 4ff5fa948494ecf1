/**
 * stdio: the process's own stdin and stdout (for the command line).
 *
 * As QEMU's char-stdio.c: one chardev at a time may own stdio ("cannot use
 * stdio by multiple character devices"); connected from the start; end of
 * file on stdin closes it. A terminal on stdin is put in raw mode and
 * restored on close (and at process exit, should close never come). QEMU
 * keeps ISIG (ctrl-c still stops QEMU unless signal=off); Node's raw mode
 * clears it, so ctrl-c reaches the guest as a byte. The streams are never
 * destroyed: they belong to the process.
 */
import type { Readable, Writable } from 'node:stream';
import type { BackendOptions } from './backend-endpoint.js';
import { chardevError, type ChardevError } from './chardev-error.js';
import { StreamEndpoint } from './stream-endpoint.js';

/** The streams a stdio chardev uses; tests give their own. */
export interface StdioStreams {
  input: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  output: Writable;
}

let stdioOwner: string | null = null;

export class StdioChardev extends StreamEndpoint {
  readonly kind = 'stdio' as const;
  private readonly streams: StdioStreams;
  private rawSet = false;
  private readonly restoreAtExit = (): void => this.restoreTerminal();

  private constructor(options: BackendOptions, streams: StdioStreams) {
    super(options);
    this.streams = streams;
    const input = streams.input;
    if (input.isTTY === true && typeof input.setRawMode === 'function') {
      input.setRawMode(true);
      this.rawSet = true;
      process.once('exit', this.restoreAtExit);
    }
    this.connectStreams(input, streams.output, false);
  }

  static open(options: BackendOptions, streams?: StdioStreams): StdioChardev | ChardevError {
    if (stdioOwner !== null) {
      return chardevError(
        'StdioInUse',
        'cannot use stdio by multiple character devices',
        options.id,
      );
    }
    stdioOwner = options.id;
    return new StdioChardev(options, streams ?? { input: process.stdin, output: process.stdout });
  }

  describe(): string {
    return 'stdio';
  }

  protected override peerFinished(): void {
    this.link.close();
  }

  protected override async teardown(): Promise<void> {
    this.link.close();
    this.restoreTerminal();
    process.off('exit', this.restoreAtExit);
    if (stdioOwner === this.id) stdioOwner = null;
  }

  private restoreTerminal(): void {
    if (!this.rawSet) return;
    this.rawSet = false;
    this.streams.input.setRawMode?.(false);
  }
}
