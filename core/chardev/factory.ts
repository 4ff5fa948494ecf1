/**
 * createChardev: a Chardev spec (spec.ts) in, an open backend out, or a
 * ChardevError. The kind's record (kinds/) opens the backend.
 *
 * The log file is opened first, as QEMU's qemu_char_open does, so a bad
 * logfile fails the chardev before any socket exists. mux=on wraps the
 * backend in a MuxChardev (up to four frontends). Relative paths are taken
 * from ctx.runtimeDir when given (else the working directory, as QEMU).
 */
import type { FdSets } from './fdsets.js';
import path from 'node:path';
import type { PostTask } from '../virtio/device.js';
import type { BackendEndpoint, BackendOptions } from './backend-endpoint.js';
import { chardevError, isChardevError, type ChardevError } from './chardev-error.js';
import { kindOf } from './kinds/index.js';
import type { DropReason } from './counters.js';
import type { DropDirection } from '../serial/events.js';
import { LogTee } from './log-tee.js';
import { MuxChardev } from './mux.js';
import type { Chardev } from './spec.js';
import type { StdioStreams } from './stdio-backend.js';

export interface ChardevContext {
  /** Where backend work runs: the engine's Scheduler.post. */
  post: PostTask;
  /** Base for relative paths (sockets, FIFOs, files, logs); default: the working directory. */
  runtimeDir?: string;
  /** One line for the person running the lab (pty slave path, waiting server, refused client). */
  onNotice?: (line: string) => void;
  /** Every drop a backend counts, with the chardev's id and the bytes' way: for the lab's ledger. */
  onDrop?: (chardev: string, reason: DropReason, bytes: number, direction: DropDirection) => void;
  /** stdin/stdout for a stdio chardev; default: the process's own. */
  stdio?: StdioStreams;
  /** The fd sets (-add-fd) a `/dev/fdset/N` path opens; none: every set is unknown. */
  fdSets?: FdSets;
  /** chardev-add on a monitor: `fd=NAME` takes a getfd name (BackendOptions.monitorFd). */
  monitorFd?: (name: string) => number | null;
}

/** What createChardev gives back: one backend, or a mux over one. */
export type OpenChardev = BackendEndpoint | MuxChardev;

export function isMux(chardev: OpenChardev): chardev is MuxChardev {
  return chardev instanceof MuxChardev;
}

function resolver(ctx: ChardevContext): (p: string) => string {
  const base = ctx.runtimeDir;
  return (p) => (base === undefined || path.isAbsolute(p) ? p : path.join(base, p));
}

/**
 * An option the kind refuses ("vmchan does not emulate X") that reached the
 * spec as an ignored key (a topology file, a libvirt <protocol type='telnet'>):
 * refused here too, so no face can smuggle it past the parser.
 */
function refusedKey(spec: Chardev): ChardevError | null {
  const refused = kindOf(spec.backend).qemu.refused ?? {};
  for (const [key, value] of Object.entries(spec.ignoredKeys ?? {})) {
    const what = refused[key];
    if (what !== undefined && value !== 'off' && value !== 'no' && value !== 'false') {
      return chardevError('Unsupported', `vmchan does not emulate ${what}`, spec.id);
    }
  }
  return null;
}

export async function createChardev(
  spec: Chardev,
  ctx: ChardevContext,
): Promise<OpenChardev | ChardevError> {
  const refused = refusedKey(spec);
  if (refused !== null) return refused;
  const at = resolver(ctx);
  let log: LogTee | null = null;
  if (spec.logfile !== undefined) {
    const opened = LogTee.open(at(spec.logfile), spec.logappend, spec.id);
    if (isChardevError(opened)) return opened;
    log = opened;
  }
  const onDrop = ctx.onDrop;
  const options: BackendOptions = {
    id: spec.id,
    post: ctx.post,
    log,
    onNotice: ctx.onNotice,
    ...(ctx.fdSets !== undefined ? { fdSets: ctx.fdSets } : {}),
    ...(ctx.monitorFd !== undefined ? { monitorFd: ctx.monitorFd } : {}),
    ...(onDrop !== undefined
      ? {
          onDrop: (reason: DropReason, bytes: number, direction: DropDirection) =>
            onDrop(spec.id, reason, bytes, direction),
        }
      : {}),
  };
  const kind = kindOf(spec.backend);
  const resolved = kind.paths === undefined ? spec.backend : kind.paths(spec.backend, at);
  const backend = await kind.open(resolved, options, { stdio: ctx.stdio });
  if (isChardevError(backend)) {
    log?.close();
    return backend;
  }
  return spec.mux ? MuxChardev.over(backend, ctx.post, ctx.onNotice) : backend;
}
