/**
 * The lines a child process prints, one call each as they complete: the
 * bench's client processes (lab-client.ts) report each transfer as a line,
 * and the parent reads its CPU clock at every one.
 */
import type { Readable } from 'node:stream';

export function eachLine(stream: Readable, each: (line: string) => void): void {
  let pending = '';
  stream.on('data', (c: Buffer) => {
    pending += c.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      each(line);
    }
  });
}
