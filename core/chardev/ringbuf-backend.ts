/**
 * ringbuf: the guest's output kept in memory, the oldest bytes overwritten
 * when full, read back with QMP ringbuf-read.
 *
 * As QEMU's char-ringbuf.c: size a power of two (default 64 KiB), open from
 * the start, never backpressure (write takes everything). ringbuf-write
 * does NOT reach the guest: QEMU's qmp_ringbuf_write appends to the same
 * ring that ringbuf-read drains, so ringbufWrite() does that too. Nothing
 * ever flows host -> guest on a ringbuf in QEMU, and none does here.
 */
import { BackendEndpoint, type BackendOptions } from './backend-endpoint.js';
import { chardevError, type ChardevError } from './chardev-error.js';

export class RingbufChardev extends BackendEndpoint {
  readonly kind = 'ringbuf' as const;
  readonly size: number;
  private readonly ring: Uint8Array;
  /** Free-running producer and consumer counts, as QEMU's prod/cons. */
  private prod = 0;
  private cons = 0;

  private constructor(options: BackendOptions, size: number) {
    super(options);
    this.size = size;
    this.ring = new Uint8Array(size);
    this.peerConnected();
  }

  static open(size: number, options: BackendOptions): RingbufChardev | ChardevError {
    if (!Number.isInteger(size) || size < 1 || (size & (size - 1)) !== 0) {
      return chardevError(
        'InvalidSpec',
        'size of ringbuf chardev must be power of two',
        options.id,
      );
    }
    return new RingbufChardev(options, size);
  }

  describe(): string {
    return 'ringbuf';
  }

  /** Bytes waiting to be read. */
  get count(): number {
    return this.prod - this.cons;
  }

  /** QMP ringbuf-write: append to the ring (not to the guest), overwriting the oldest. */
  ringbufWrite(bytes: Uint8Array): number {
    this.store(bytes);
    return bytes.length;
  }

  /** QMP ringbuf-read: take up to `size` of the oldest bytes. */
  ringbufRead(size: number): Uint8Array {
    const n = Math.max(0, Math.min(size, this.count));
    const out = new Uint8Array(n);
    const mask = this.size - 1;
    for (let i = 0; i < n; i++) out[i] = this.ring[(this.cons + i) & mask]!;
    this.cons += n;
    return out;
  }

  protected transmit(bytes: Uint8Array): number {
    this.store(bytes);
    return bytes.length;
  }

  protected async teardown(): Promise<void> {}

  private store(bytes: Uint8Array): void {
    const mask = this.size - 1;
    // Only the last `size` bytes can survive; write those in at most two runs.
    const keep = bytes.length > this.size ? bytes.subarray(bytes.length - this.size) : bytes;
    const start = this.prod + (bytes.length - keep.length);
    const at = start & mask;
    const first = Math.min(keep.length, this.size - at);
    this.ring.set(keep.subarray(0, first), at);
    if (first < keep.length) this.ring.set(keep.subarray(first), 0);
    this.prod += bytes.length;
    if (this.prod - this.cons > this.size) {
      this.countDrop('overwritten', this.prod - this.cons - this.size, 'to-host');
      this.cons = this.prod - this.size;
    }
  }
}
