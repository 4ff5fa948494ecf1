/**
 * Writing to stdout with backpressure, and without an EPIPE stack trace when
 * the reader goes away (`vmchan read big.pcapng | head`).
 */
let closed = false;
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') closed = true;
});

/** Write and wait for the stream to drain if it is full; false once stdout is closed. */
export function writeOut(chunk: string | Uint8Array): Promise<boolean> {
  if (closed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const ok = process.stdout.write(chunk, (err) => {
      if (err) closed = true;
    });
    if (ok) resolve(!closed);
    else process.stdout.once('drain', () => resolve(!closed));
  });
}
