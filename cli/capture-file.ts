/**
 * `-w FILE` without ever destroying the user's file (issue 13 item 9): the
 * capture is written to a new file beside FILE (created exclusively) and
 * renamed onto FILE only once the lab has started; when start-up fails the
 * new file goes and FILE is left exactly as it was. FILE must be a regular
 * file or not exist: a FIFO or a device is refused, never opened (opening a
 * FIFO would block the event loop).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isCaptureError } from '../core/capture/error.js';
import type { LiveHub } from '../core/capture/live-server.js';
import { SharedCaptureFile, type SharedFileHooks } from '../core/capture/shared-file.js';
import { nonRegularAt } from '../core/capture/regular-file.js';

export interface PendingCaptureFile {
  /** The file, fed from the hub's encoding (the same bytes live clients get). */
  readonly writer: SharedCaptureFile;
  /** The lab started: the capture takes FILE's name. Null, or why it could not. */
  commit(): string | null;
  /** Start-up failed: close and remove the new file; FILE is untouched. */
  discard(): void;
}

/** Prepare `target`; a string is the one-line refusal. */
export function prepareCaptureFile(
  target: string,
  hub: LiveHub,
  hooks: SharedFileHooks = {},
): PendingCaptureFile | string {
  const file = path.resolve(target);
  const what = nonRegularAt(file);
  if (what !== null) return `-w ${target}: it is ${what}; a capture is written to a regular file`;
  const temp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${randomBytes(4).toString('hex')}.partial`,
  );
  try {
    fs.closeSync(fs.openSync(temp, 'wx', 0o644));
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return `-w ${target}: cannot create a file in ${path.dirname(file)}: ${e.code ?? e.message}`;
  }
  const created = SharedCaptureFile.open(hub, temp, {}, hooks);
  if (isCaptureError(created)) {
    fs.rmSync(temp, { force: true });
    return `-w ${target}: ${created.message}`;
  }
  let settled = false;
  return {
    writer: created,
    commit: () => {
      if (settled) return null;
      settled = true;
      try {
        fs.renameSync(temp, file);
        return null;
      } catch (error) {
        const e = error as NodeJS.ErrnoException;
        return `-w ${target}: cannot rename the capture into place (${e.code ?? e.message}); it is in ${temp}`;
      }
    },
    discard: () => {
      if (settled) return;
      settled = true;
      created.close();
      fs.rmSync(temp, { force: true });
    },
  };
}
