/**
 * The directory of the vmchan package (the one holding its package.json and
 * docs/), found from this module's own place: it runs from the sources
 * (core/) and from the build (dist/core/), one or two levels down.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

let found: string | undefined;

export function packageRoot(): string {
  if (found !== undefined) return found;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'docs')))
      return (found = dir);
    dir = path.dirname(dir);
  }
  return (found = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'));
}
