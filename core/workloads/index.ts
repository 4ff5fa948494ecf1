/**
 * Built-in guest workloads (`--workload PORT=KIND[:ARG]`): guest programs
 * on a lab's ports. See spec.ts for the kinds, sha1.ts for the sha1
 * service's protocol.
 *
 *   const w = startWorkload(lab, parseWorkload('test1=echo'), { report });
 *   ...
 *   console.log(w.describe()); await w.stop();
 */
import type { Lab } from '../engine/lab.js';
import { findGuestPort, guestPorts } from './port-names.js';
import { EchoProgram } from './echo.js';
import type { ProgramContext, Workload } from './program.js';
import { Sha1Service } from './sha1.js';
import { SinkProgram } from './sink.js';
import { SourceProgram } from './source.js';
import { WorkloadError, type WorkloadSpec } from './spec.js';

export * from './spec.js';
export { PortStream } from './port-stream.js';
export type { ReadResult, HostWait } from './port-stream.js';
export { PatternStream, LineStream, patternSha1, sourceLine, LINE_BYTES } from './pattern.js';
export { formatBytes } from './program.js';
export { guestPorts, findGuestPort } from './port-names.js';
export type { GuestPortEntry } from './port-names.js';
export type { Workload, WorkloadStats, WorkloadState } from './program.js';
export { SHA1_HELP } from './sha1.js';

export interface StartOptions {
  /** A line for the person running the lab (a transfer's result, a port that went away). */
  report?: (line: string) => void;
}

/** Start one workload on a booted lab; an unknown port is an error value. */
export function startWorkload(
  lab: Lab,
  spec: WorkloadSpec,
  options: StartOptions = {},
): Workload | WorkloadError {
  const entry = findGuestPort(lab, spec.port);
  if (entry === undefined) {
    const known = guestPorts(lab).map((e) => e.fileName);
    return new WorkloadError(
      `--workload ${spec.port}=${spec.kind}: no port '${spec.port}' in the guest` +
        (known.length > 0 ? ` (ports: ${known.join(', ')})` : ' (it has no ports)'),
    );
  }
  const ctx: ProgramContext = { files: lab.guest.files, report: options.report ?? (() => {}) };
  switch (spec.kind) {
    case 'echo':
      return new EchoProgram(spec, entry, ctx);
    case 'sink':
      return new SinkProgram(spec, entry, ctx);
    case 'source':
      return new SourceProgram(spec, entry, ctx);
    case 'sha1':
      return new Sha1Service(spec, entry, { ...ctx, resolve: (ref) => findGuestPort(lab, ref) });
  }
}

/**
 * Start several; all or none (a bad one stops those already started). Two
 * workloads on one port are refused: the port is exclusive (L3).
 */
export async function startWorkloads(
  lab: Lab,
  specs: readonly WorkloadSpec[],
  options: StartOptions = {},
): Promise<Workload[] | WorkloadError> {
  const started: Workload[] = [];
  const seen = new Map<string, string>();
  for (const spec of specs) {
    const entry = findGuestPort(lab, spec.port);
    const key = entry?.guestPath ?? spec.port;
    const other = seen.get(key);
    if (other !== undefined) {
      await Promise.all(started.map((w) => w.stop()));
      return new WorkloadError(
        `--workload ${spec.port}=${spec.kind}: port already has a workload (${other})`,
      );
    }
    const w = startWorkload(lab, spec, options);
    if (w instanceof WorkloadError) {
      await Promise.all(started.map((x) => x.stop()));
      return w;
    }
    seen.set(key, `${spec.port}=${spec.kind}`);
    started.push(w);
  }
  return started;
}
