/**
 * A backend whose host side is a StreamLink over Node streams (pipe's FIFOs,
 * stdio): the link's events drive the endpoint (bytes in, room again, end of
 * file, gone), and writes, backpressure and pausing go to the link.
 */
import type { Readable, Writable } from 'node:stream';
import { BackendEndpoint } from './backend-endpoint.js';
import { StreamLink } from './stream-link.js';

export abstract class StreamEndpoint extends BackendEndpoint {
  /** Set by connectStreams(), which every subclass calls from its constructor. */
  protected link!: StreamLink;

  /**
   * Wire the streams to this endpoint and start reading; the host side is
   * connected from now on. `owned`: destroy the streams on close.
   */
  protected connectStreams(input: Readable, output: Writable, owned: boolean): void {
    this.watchErrors(input, 'read error');
    this.watchErrors(output, 'write error');
    this.link = new StreamLink({
      input,
      output,
      owned,
      // Our own FIFO descriptors read into reused buffers (pooled-reads.ts);
      // process.stdin is shared with the rest of the process and keeps 'data'.
      pooledReads: owned,
      events: {
        data: (chunk, release) => this.hostBytes(chunk, release),
        drain: () => this.writable(),
        end: () => this.hostEnded(),
        // A failed output (EPIPE on a closed stdout) lost the writes the OS
        // never confirmed: counted toward the host (0 for any other end).
        gone: () => this.peerDisconnected(this.link.lostToOutputFailure),
      },
    });
    this.peerConnected();
    this.link.start();
  }

  override get queuedToHost(): number {
    return this.link.queued;
  }

  protected transmit(
    bytes: Uint8Array,
    handover: boolean,
    release?: (bytes: Uint8Array) => void,
  ): number {
    return this.link.write(bytes, handover, release);
  }

  protected override canTransmit(): boolean {
    return this.link.hasRoom();
  }

  protected override pauseSource(): void {
    this.link.pause();
  }

  protected override resumeSource(): void {
    this.link.resume();
  }

  protected async teardown(): Promise<void> {
    this.link.close();
  }
}
