/**
 * `--workload PORT=KIND[:ARG]`: which built-in guest program runs on which
 * port. Parsing only; the programs are in the other modules here.
 *
 *   echo            write back everything read
 *   sink            read and count
 *   source[:RATE]   write text lines at RATE bytes per second (default 4K);
 *                   RATE is a number with an optional K or M suffix
 *                   (binary: 1K = 1024), e.g. 512, 64K, 1.5M
 *   sha1            the file-exchange service of seed 002 (sha1.ts)
 *
 * PORT is any name of the port: its name, its qdev id, its node (vport0p1)
 * or its console tty (hvc0).
 */
import { VmchanError } from '../base/error.js';

export type WorkloadKind = 'echo' | 'sink' | 'source' | 'sha1';

export type WorkloadSpec =
  | { port: string; kind: 'echo' }
  | { port: string; kind: 'sink' }
  | { port: string; kind: 'source'; rate: number }
  | { port: string; kind: 'sha1' };

export const WORKLOAD_KINDS: readonly WorkloadKind[] = ['echo', 'sink', 'source', 'sha1'];

/** The source rate when none is given: a few lines a second, readable in a terminal. */
export const DEFAULT_SOURCE_RATE = 4 * 1024;
/** Faster than the engine moves bytes anyway; a bound so a typo is caught. */
export const MAX_SOURCE_RATE = 1024 * 1024 * 1024;

/** A workload spec or rate that does not parse, or a port it cannot run on. */
export class WorkloadError extends VmchanError<'InvalidWorkload'> {
  readonly domain = 'workload';
  readonly name = 'WorkloadError';
  constructor(message: string) {
    super('InvalidWorkload', message);
  }
}

export function isWorkloadError(value: unknown): value is WorkloadError {
  return value instanceof WorkloadError;
}

/** `64K` -> 65536; bytes per second. */
export function parseRate(text: string): number | WorkloadError {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)(?:i?B)?(?:\/s)?$/.exec(text.trim());
  if (m === null) {
    return new WorkloadError(`'${text}' is not a rate (bytes per second, e.g. 512, 64K, 1M)`);
  }
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase()] ?? 1;
  const rate = Math.floor(Number(m[1]) * unit);
  if (rate < 1) return new WorkloadError(`rate '${text}' is below 1 byte per second`);
  if (rate > MAX_SOURCE_RATE) return new WorkloadError(`rate '${text}' is above 1G per second`);
  return rate;
}

/** One `PORT=KIND[:ARG]`. */
export function parseWorkload(text: string): WorkloadSpec | WorkloadError {
  const eq = text.indexOf('=');
  const usage = `'${text}': expected PORT=KIND[:ARG], KIND one of echo, sink, source[:RATE], sha1`;
  if (eq <= 0) return new WorkloadError(usage);
  const port = text.slice(0, eq);
  const rest = text.slice(eq + 1);
  const colon = rest.indexOf(':');
  const kind = colon < 0 ? rest : rest.slice(0, colon);
  const arg = colon < 0 ? undefined : rest.slice(colon + 1);
  switch (kind) {
    case 'echo':
    case 'sink':
    case 'sha1':
      if (arg !== undefined) {
        return new WorkloadError(`'${text}': workload ${kind} takes no argument`);
      }
      return { port, kind };
    case 'source': {
      if (arg === undefined) return { port, kind, rate: DEFAULT_SOURCE_RATE };
      const rate = parseRate(arg);
      if (isWorkloadError(rate)) return new WorkloadError(`'${text}': ${rate.message}`);
      return { port, kind, rate };
    }
    default:
      return new WorkloadError(
        kind === ''
          ? usage
          : `'${text}': unknown workload '${kind}' (echo, sink, source[:RATE], sha1)`,
      );
  }
}

/** How a spec is written back: `test2=source:4096`. */
export function formatWorkload(spec: WorkloadSpec): string {
  return spec.kind === 'source' ? `${spec.port}=source:${spec.rate}` : `${spec.port}=${spec.kind}`;
}
