/**
 * `vmchan extcap install|uninstall [--user|--system]`: a launcher in
 * Wireshark's extcap folder and the dissector in its Lua plugins folder,
 * both where `tshark -G folders` says they are.
 *
 * The launcher is a small sh script that runs this checkout's CLI with this
 * node. It records, in comment lines, the dissector it installed and the
 * folders it had to create, so `uninstall` removes exactly those and leaves
 * the folders as they were before.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './errors.js';

export type InstallScope = 'user' | 'system';

export const LAUNCHER_NAME = 'vmchan-extcap';
export const PLUGIN_NAME = 'vmchan.lua';
const MARK = '# vmchan extcap launcher';
const CREATED = '# vmchan-created: ';
const PLUGIN = '# vmchan-plugin: ';

/** `tshark -G folders` as a map: `Personal configuration` -> path. */
export function wiresharkFolders(): Map<string, string> {
  let text: string;
  try {
    text = execFileSync('tshark', ['-G', 'folders'], {
      encoding: 'utf8',
      timeout: 20_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new Error('tshark not found: install Wireshark first (apt-get install tshark)', {
        cause: err,
      });
    throw new Error(`tshark -G folders failed: ${(err as Error).message.split('\n')[0]}`, {
      cause: err,
    });
  }
  const folders = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([^:]+):\s*\t(.*)$/.exec(line);
    if (m && !folders.has(m[1]!.trim())) folders.set(m[1]!.trim(), m[2]!.trim());
  }
  return folders;
}

export interface InstallTarget {
  extcapDir: string;
  pluginDir: string;
}

/**
 * Where the two files go. Wireshark 4.0 names only its global extcap folder
 * in `-G folders` but also runs extcaps from `<personal configuration>/extcap`;
 * later releases print `Personal Extcap path` themselves.
 */
export function installTarget(scope: InstallScope, folders = wiresharkFolders()): InstallTarget {
  const need = (key: string): string => {
    const v = folders.get(key);
    if (v === undefined || v === '')
      throw new Error(`tshark -G folders does not name the "${key}" folder`);
    return v;
  };
  if (scope === 'user') {
    const personal = folders.get('Personal Extcap path');
    return {
      extcapDir: personal ?? path.join(need('Personal configuration'), 'extcap'),
      pluginDir: need('Personal Lua Plugins'),
    };
  }
  return {
    extcapDir: folders.get('Global Extcap path') ?? need('Extcap path'),
    pluginDir: need('Global Lua Plugins'),
  };
}

/** The checkout this CLI runs from (the folder with vmchan's package.json). */
export function checkoutRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && fs.existsSync(path.join(dir, 'assets', 'wireshark', PLUGIN_NAME)))
      return dir;
    const up = path.dirname(dir);
    if (up === dir)
      throw new Error('cannot find the vmchan checkout (assets/wireshark/vmchan.lua)');
    dir = up;
  }
}

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** mkdir -p that returns the folders it created, outermost first. */
function makeDirs(dir: string): string[] {
  const missing: string[] = [];
  let d = path.resolve(dir);
  while (!fs.existsSync(d)) {
    missing.unshift(d);
    const up = path.dirname(d);
    if (up === d) break;
    d = up;
  }
  for (const m of missing) fs.mkdirSync(m, { mode: 0o755 });
  return missing;
}

export function installExtcap(scope: InstallScope): string[] {
  const target = installTarget(scope);
  const root = checkoutRoot();
  const launcher = path.join(target.extcapDir, LAUNCHER_NAME);
  const plugin = path.join(target.pluginDir, PLUGIN_NAME);
  // A second install keeps the first one's record of created folders.
  const previous = fs.existsSync(launcher) ? readLauncher(launcher) : undefined;
  try {
    const created = [
      ...(previous?.created ?? []),
      ...makeDirs(target.extcapDir),
      ...makeDirs(target.pluginDir),
    ];
    fs.copyFileSync(path.join(root, 'assets', 'wireshark', PLUGIN_NAME), plugin);
    fs.chmodSync(plugin, 0o644);
    const script = [
      '#!/bin/sh',
      `${MARK}: written by \`vmchan extcap install\`; \`vmchan extcap uninstall\` removes it.`,
      `${CREATED}${JSON.stringify(created)}`,
      `${PLUGIN}${JSON.stringify(plugin)}`,
      `exec ${shq(process.execPath)} ${shq(path.join(root, 'bin', 'vmchan.js'))} extcap "$@"`,
      '',
    ].join('\n');
    fs.writeFileSync(launcher, script, { mode: 0o755 });
    fs.chmodSync(launcher, 0o755);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new Error(`cannot install into Wireshark: ${(err as Error).message}`, { cause: err });
  }
  return [`installed ${launcher}`, `installed ${plugin}`];
}

interface LauncherRecord {
  created: string[];
  plugin: string | undefined;
}

function readLauncher(file: string): LauncherRecord | undefined {
  const text = fs.readFileSync(file, 'utf8');
  if (!text.includes(MARK)) return undefined;
  const record: LauncherRecord = { created: [], plugin: undefined };
  for (const line of text.split('\n')) {
    try {
      if (line.startsWith(CREATED)) {
        const v: unknown = JSON.parse(line.slice(CREATED.length));
        if (Array.isArray(v)) record.created = v.filter((x): x is string => typeof x === 'string');
      } else if (line.startsWith(PLUGIN)) {
        const v: unknown = JSON.parse(line.slice(PLUGIN.length));
        if (typeof v === 'string') record.plugin = v;
      }
    } catch {
      // a hand-edited line: keep what could be read
    }
  }
  return record;
}

export function uninstallExtcap(scope: InstallScope): string[] {
  const target = installTarget(scope);
  const launcher = path.join(target.extcapDir, LAUNCHER_NAME);
  if (!fs.existsSync(launcher)) return [`nothing to uninstall: no ${launcher}`];
  const record = readLauncher(launcher);
  if (record === undefined)
    throw new Error(`${launcher} was not written by vmchan extcap install; left alone`);
  const lines: string[] = [];
  const plugin = record.plugin ?? path.join(target.pluginDir, PLUGIN_NAME);
  fs.rmSync(launcher, { force: true });
  lines.push(`removed ${launcher}`);
  if (fs.existsSync(plugin)) {
    fs.rmSync(plugin, { force: true });
    lines.push(`removed ${plugin}`);
  }
  // The folders install made, innermost first, each only if now empty.
  for (const dir of [...record.created].sort((a, b) => b.length - a.length)) {
    try {
      fs.rmdirSync(dir);
      lines.push(`removed ${dir}/`);
    } catch {
      // not empty (someone else's files now live there) or already gone: keep it
    }
  }
  return lines;
}
