/**
 * A FIFO of byte chunks: host bytes a backend has received and the frontend
 * has not taken yet. Chunks are kept as they arrived (no copy on push); take()
 * copies only when one read spans chunks, as a socket read would gather them.
 */
const EMPTY = new Uint8Array(0);

export class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0;
  private offset = 0;
  private bytes = 0;

  get length(): number {
    return this.bytes;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  /** Remove and return up to `max` bytes (fewer when fewer are queued). */
  take(max: number): Uint8Array {
    const n = Math.min(max, this.bytes);
    if (n <= 0) return new Uint8Array(0);
    const first = this.chunks[this.head]!;
    const left = first.length - this.offset;
    if (left >= n) {
      // A whole chunk goes as it is; a part of one as a view made from its
      // buffer (Buffer#subarray costs several times as much, once per 4 KiB).
      const out =
        this.offset === 0 && n === first.length
          ? first
          : new Uint8Array(first.buffer, first.byteOffset + this.offset, n);
      this.consume(n);
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[this.head]!;
      const take = Math.min(chunk.length - this.offset, n - filled);
      out.set(chunk.subarray(this.offset, this.offset + take), filled);
      filled += take;
      this.consume(take);
    }
    return out;
  }

  /** Forget everything; returns how many bytes were dropped. */
  clear(): number {
    const n = this.bytes;
    this.chunks = [];
    this.head = 0;
    this.offset = 0;
    this.bytes = 0;
    return n;
  }

  private consume(n: number): void {
    this.offset += n;
    this.bytes -= n;
    if (this.offset < this.chunks[this.head]!.length) return;
    this.chunks[this.head] = EMPTY; // let the consumed chunk be collected
    this.head++;
    this.offset = 0;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head > 1024) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}
