/**
 * The demo lab, declared once: the virtio-serial case study of seed 002
 * ("Guest I/O via Virtio-Serial") with a guest agent port. `vmchan run`
 * with no arguments (cli/run.ts) and the app at first start (service.ts,
 * with the host programs of demo.ts) both start this topology with these
 * guest programs.
 *
 *   -chardev socket,path=$RUN/test0,server=on,wait=off,id=test0
 *   -chardev socket,path=$RUN/test1,server=on,wait=off,id=test1
 *   -chardev socket,path=$RUN/test2,server=on,wait=off,id=test2
 *   -chardev socket,path=$RUN/qga0,server=on,wait=off,id=qga0
 *   -device virtio-serial,id=vser0
 *   -device virtconsole,chardev=test0,name=console.0,id=console0
 *   -device virtserialport,chardev=test1,name=test1,id=test1
 *   -device virtserialport,chardev=test2,name=test2,id=test2
 *   -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0,id=qga0
 *
 * | port                   | guest program                                   |
 * |------------------------|-------------------------------------------------|
 * | console.0 (hvc0)       | `source` on hvc0: numbered text lines           |
 * | test1                  | `sha1`: seed 002's transfer service (RECV/SEND) |
 * | test2                  | (the service's data port)                       |
 * | org.qemu.guest_agent.0 | qemu-ga (core/qga), started beside the workloads |
 */
import * as path from 'node:path';
import { parseQemuArgs } from '../../machine/qemu-cmdline.js';
import type { Topology } from '../../machine/topology.js';
import type { WorkloadSpec } from '../../workloads/index.js';

export type Speed = 'paced' | 'full';

/** The demo's chardevs: unix socket servers named after their id in the runtime dir. */
export const DEMO_CHARDEVS = ['test0', 'test1', 'test2', 'qga0'] as const;

/** The demo's topology as QEMU arguments, its sockets in `runtimeDir`. */
export function demoQemuArgs(runtimeDir: string): string[] {
  const chardevs = DEMO_CHARDEVS.flatMap((id) => [
    '-chardev',
    `socket,path=${path.join(runtimeDir, id)},server=on,wait=off,id=${id}`,
  ]);
  const port = (driver: string, chardev: string, name: string, id: string): string[] => [
    '-device',
    `${driver},chardev=${chardev},name=${name},id=${id}`,
  ];
  return [
    ...chardevs,
    '-device',
    'virtio-serial,id=vser0',
    ...port('virtconsole', 'test0', 'console.0', 'console0'),
    ...port('virtserialport', 'test1', 'test1', 'test1'),
    ...port('virtserialport', 'test2', 'test2', 'test2'),
    ...port('virtserialport', 'qga0', 'org.qemu.guest_agent.0', 'qga0'),
  ];
}

/** The declaration no longer parses: a bug in this file, never the user's input. */
export class DemoDeclarationInvalid extends Error {
  override readonly name = 'DemoDeclarationInvalid';
}

/** The demo's topology, its sockets in `runtimeDir`. */
export function demoTopology(runtimeDir: string): Topology {
  const parsed = parseQemuArgs(demoQemuArgs(runtimeDir));
  if (!parsed.ok) throw new DemoDeclarationInvalid(`demo lab: ${parsed.error.toString()}`);
  return parsed.value;
}

/** The console's text lines per second when paced (full speed: as fast as the engine takes). */
const PACED_CONSOLE_RATE = 2048;
const FULL_RATE = 1 << 30;

/**
 * The demo's guest programs (the engine's built-in workloads; the guest
 * agent on org.qemu.guest_agent.0 is started beside them). `paced` keeps
 * the console at 2 KiB/s, `full` lets it go as fast as the engine takes it.
 */
export function demoGuestWorkloads(speed: Speed): WorkloadSpec[] {
  return [
    { port: 'hvc0', kind: 'source', rate: speed === 'full' ? FULL_RATE : PACED_CONSOLE_RATE },
    { port: 'test1', kind: 'sha1' },
  ];
}

/** The demo's guest program on `port` at `speed`. */
export function demoGuestWorkload(port: string, speed: Speed): WorkloadSpec {
  const spec = demoGuestWorkloads(speed).find((s) => s.port === port);
  if (spec === undefined) throw new DemoDeclarationInvalid(`demo lab: no guest program on ${port}`);
  return spec;
}
