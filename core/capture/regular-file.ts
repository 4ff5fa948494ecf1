/**
 * Captures are regular files. A FIFO, a device, a socket or a directory at a
 * path the user names is refused before it is opened for writing: opening a
 * FIFO with no reader (or for reading, with no writer) blocks, and a
 * synchronous open would block the whole event loop (issue 13 item 7).
 */
import * as fs from 'node:fs';

/** "a FIFO (named pipe)", ... for what is not a regular file; null for a regular file. */
export function describeNonRegular(st: fs.Stats): string | null {
  if (st.isFile()) return null;
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** What is at `path` when it exists and is not a regular file; null otherwise (absent: fine). */
export function nonRegularAt(path: string): string | null {
  try {
    return describeNonRegular(fs.statSync(path));
  } catch {
    return null;
  }
}

/** What an open descriptor is when it is not a regular file; null otherwise. */
export function nonRegularFd(fd: number): string | null {
  try {
    return describeNonRegular(fs.fstatSync(fd));
  } catch {
    return null;
  }
}
