/**
 * Where a lab's sockets live: one fresh private directory per run, under
 * $XDG_RUNTIME_DIR (per-user, 0700 on a systemd machine) or else the temp
 * dir. Used by `vmchan run` and by the app's service alike.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A fresh 0700 directory `vmchan-XXXXXX` under `base`, else $XDG_RUNTIME_DIR, else the temp dir. */
export function makeRuntimeDir(base?: string): string {
  const xdg = process.env['XDG_RUNTIME_DIR'];
  const bases = base !== undefined ? [base] : [xdg, os.tmpdir()];
  let last: unknown = null;
  for (const root of bases) {
    if (root === undefined || root === '') continue;
    try {
      return fs.mkdtempSync(path.join(root, 'vmchan-'));
    } catch (error) {
      last = error;
    }
  }
  throw new Error(`cannot create a runtime directory: ${(last as Error | null)?.message ?? ''}`);
}
