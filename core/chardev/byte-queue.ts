/**
 * A FIFO of byte chunks: host bytes a backend has received and the frontend
 * has not taken yet. Chunks are kept as they arrived (no copy on push); take()
 * copies only when one read spans chunks, as a socket read would gather them.
 *
 * A chunk may be borrowed: pushed with a `release` that gives its buffer
 * back to the socket that reads into it again (pooled-reads.ts). Its
 * release runs once all of it has been taken and the caller said it is done
 * with what it took (releaseTaken), or when the queue is cleared; until then
 * `lastTakeBorrowed` tells the caller that what take() returned is a view of
 * such a buffer, valid only until releaseTaken().
 */
const EMPTY = new Uint8Array(0);

type Release = () => void;

export class ByteQueue {
  private chunks: Uint8Array[] = [];
  /** releases[i] belongs to chunks[i] (null: the chunk is the queue's own). */
  private releases: (Release | null)[] = [];
  private head = 0;
  private offset = 0;
  private bytes = 0;
  /** Releases of chunks taken in full, run at releaseTaken(). */
  private taken: Release[] = [];
  private borrowedTake = false;

  get length(): number {
    return this.bytes;
  }

  /** Was the last take() a view of a borrowed chunk (valid until releaseTaken)? */
  get lastTakeBorrowed(): boolean {
    return this.borrowedTake;
  }

  push(chunk: Uint8Array, release?: Release): void {
    if (chunk.length === 0) {
      release?.();
      return;
    }
    this.chunks.push(chunk);
    this.releases.push(release ?? null);
    this.bytes += chunk.length;
  }

  /** Remove and return up to `max` bytes (fewer when fewer are queued). */
  take(max: number): Uint8Array {
    const n = Math.min(max, this.bytes);
    this.borrowedTake = false;
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
      this.borrowedTake = this.releases[this.head] !== null;
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

  /** The caller is done with what take() returned: borrowed chunks taken in full go back. */
  releaseTaken(): void {
    if (this.taken.length === 0) return;
    const due = this.taken;
    this.taken = [];
    for (const release of due) release();
  }

  /** Forget everything (borrowed chunks go back); returns how many bytes were dropped. */
  clear(): number {
    const n = this.bytes;
    for (let i = this.head; i < this.releases.length; i++) this.releases[i]?.();
    this.chunks = [];
    this.releases = [];
    this.head = 0;
    this.offset = 0;
    this.bytes = 0;
    this.borrowedTake = false;
    this.releaseTaken();
    return n;
  }

  private consume(n: number): void {
    this.offset += n;
    this.bytes -= n;
    if (this.offset < this.chunks[this.head]!.length) return;
    const release = this.releases[this.head];
    if (release !== null && release !== undefined) this.taken.push(release);
    this.chunks[this.head] = EMPTY; // let the consumed chunk be collected
    this.releases[this.head] = null;
    this.head++;
    this.offset = 0;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.releases = [];
      this.head = 0;
    } else if (this.head > 1024) {
      this.chunks = this.chunks.slice(this.head);
      this.releases = this.releases.slice(this.head);
      this.head = 0;
    }
  }
}
