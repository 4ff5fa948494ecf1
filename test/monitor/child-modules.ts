/**
 * Memory is measured in a child process (the test runner's own heap would
 * blur it): the modules the child needs are transpiled into a directory,
 * and the child prints one JSON line of figures.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const ROOT = path.join(import.meta.dirname, '..', '..');

/**
 * Transpile `files` (paths from the repository root) and every module they
 * import, relatively, to `dir`, keeping the tree: the child gets exactly
 * what the modules need, however their imports move.
 */
export function transpileTo(dir: string, files: readonly string[]): void {
  const todo = [...files];
  const done = new Set<string>();
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (done.has(f)) continue;
    done.add(f);
    const source = fs.readFileSync(path.join(ROOT, f), 'utf8');
    const out = ts.transpileModule(source, {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
      fileName: f,
    });
    const dest = path.join(dir, f.replace(/\.ts$/, '.js'));
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, out.outputText);
    // Follow what the emitted code still imports (type-only imports are gone).
    for (const m of out.outputText.matchAll(/from\s+['"](\.{1,2}\/[^'"]+)\.js['"]/g)) {
      todo.push(path.posix.normalize(path.posix.join(path.posix.dirname(f), `${m[1]}.ts`)));
    }
  }
  fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n');
}

/** Run `script` (an ES module in `dir`) under --expose-gc; its last stdout line, parsed. */
export async function runChild<T>(dir: string, script: string, args: string[] = []): Promise<T> {
  const file = path.join(dir, 'child.mjs');
  fs.writeFileSync(file, script);
  const child = spawn(process.execPath, ['--expose-gc', file, ...args], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`child exited with ${code}: ${stderr.trim()}`);
  const last = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as T;
}
