/**
 * createChardev: a topology Chardev spec (core/machine/topology.ts) in, an
 * open backend out, or a ChardevError.
 *
 * The log file is opened first, as QEMU's qemu_char_open does, so a bad
 * logfile fails the chardev before any socket exists. mux=on wraps the
 * backend in a MuxChardev (up to four frontends). Relative paths are taken
 * from ctx.runtimeDir when given (else the working directory, as QEMU).
 */
import path from 'node:path';
import type { Chardev, ChardevBackend } from './spec.js';
import type { PostTask } from '../virtio/device.js';
import type { BackendEndpoint, BackendOptions } from './backend-endpoint.js';
import { chardevError, isChardevError, type ChardevError } from './chardev-error.js';
import type { DropReason } from './counters.js';
import { FileChardev } from './file-backend.js';
import { LogTee } from './log-tee.js';
import { MuxChardev } from './mux.js';
import { NullChardev } from './null-backend.js';
import { PipeChardev } from './pipe-backend.js';
import { PtyChardev } from './pty-backend.js';
import { RingbufChardev } from './ringbuf-backend.js';
import { SerialChardev } from './serial-backend.js';
import { SocketChardev } from './socket-backend.js';
import { StdioChardev, type StdioStreams } from './stdio-backend.js';
import { UdpChardev } from './udp-backend.js';

export interface ChardevContext {
  /** Where backend work runs: the engine's Scheduler.post. */
  post: PostTask;
  /** Base for relative paths (sockets, FIFOs, files, logs); default: the working directory. */
  runtimeDir?: string;
  /** One line for the person running the lab (pty slave path, waiting server, refused client). */
  onNotice?: (line: string) => void;
  /** Drops the engine shows as events (H4), with the chardev's id. */
  onDrop?: (chardev: string, reason: DropReason, bytes: number) => void;
  /** stdin/stdout for a stdio chardev; default: the process's own. */
  stdio?: StdioStreams;
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

function withPaths(backend: ChardevBackend, at: (p: string) => string): ChardevBackend {
  switch (backend.kind) {
    case 'socket':
      return backend.address.type === 'unix'
        ? { ...backend, address: { ...backend.address, path: at(backend.address.path) } }
        : backend;
    case 'pipe':
    case 'file':
    case 'serial':
      return { ...backend, path: at(backend.path) };
    default:
      return backend;
  }
}

async function openBackend(
  backend: ChardevBackend,
  options: BackendOptions,
  ctx: ChardevContext,
): Promise<BackendEndpoint | ChardevError> {
  switch (backend.kind) {
    case 'socket':
      return SocketChardev.open(backend, options);
    case 'pipe':
      return PipeChardev.open(backend, options);
    case 'file':
      return FileChardev.open(backend, options);
    case 'pty':
      return PtyChardev.open(options);
    case 'null':
      return new NullChardev(options);
    case 'ringbuf':
      return RingbufChardev.open(backend.size, options);
    case 'udp':
      return UdpChardev.open(backend, options);
    case 'stdio':
      return StdioChardev.open(options, ctx.stdio);
    case 'serial':
      return SerialChardev.open(backend, options);
    case 'other':
      return chardevError(
        'Unsupported',
        `'${backend.driver}' chardevs are not supported by vmchan`,
        options.id,
      );
  }
}

export async function createChardev(
  spec: Chardev,
  ctx: ChardevContext,
): Promise<OpenChardev | ChardevError> {
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
    ...(onDrop !== undefined
      ? { onDrop: (reason: DropReason, bytes: number) => onDrop(spec.id, reason, bytes) }
      : {}),
  };
  const backend = await openBackend(withPaths(spec.backend, at), options, ctx);
  if (isChardevError(backend)) {
    log?.close();
    return backend;
  }
  return spec.mux ? MuxChardev.over(backend, ctx.post, ctx.onNotice) : backend;
}
