/**
 * Where the app keeps its captures: the user's data directory
 * ($XDG_DATA_HOME/vmchan/captures, else ~/.local/share/vmchan/captures),
 * not the lab's runtime directory (removed when the lab stops), so a
 * capture outlives the app's exit or crash. Created 0700.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export function captureDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_DATA_HOME'];
  const base = xdg ? xdg : path.join(env['HOME'] || os.homedir(), '.local', 'share');
  return path.join(base, 'vmchan', 'captures');
}

/** The directory, made 0700 when missing; a one-line reason when it cannot be. */
export function ensureCaptureDataDir(dir = captureDataDir()): string | { problem: string } {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  } catch (err) {
    return { problem: `cannot create ${dir}: ${(err as Error).message}` };
  }
}

/** The default warning size of the app's capture (1 GiB). */
export const DEFAULT_CAPTURE_WARN_BYTES = 1024 * 1024 * 1024;
