/**
 * Printing a Topology as a QEMU command line in today's syntax (server=on,
 * wait=off, no short-form booleans, no shorthands), so that
 * parseQemuArgs(printQemuArgs(t).args) gives t back.
 *
 * Order: the ignored options first (as written, in their order), then
 * chardevs, monitors (-mon), virtio-serial devices and ports. Ports always
 * name their bus, so nothing depends on QEMU's choice of an implicit bus;
 * defaults are left out.
 */
import { joinOpts } from './qemu-options.js';
import { joinShellWords } from './shell-words.js';
import { kindOf } from '../chardev/kinds/index.js';
import {
  type Chardev,
  type Monitor,
  type Port,
  type Topology,
  type VirtioSerialDevice,
} from './topology.js';

export interface PrintedCommandLine {
  /** One string per argv element, without the program name. */
  args: string[];
  /** The same, quoted for a POSIX shell, with the program name in front. */
  shell: string;
}

type Pairs = Array<[string, string]>;

export function chardevArg(c: Chardev): string {
  const kind = kindOf(c.backend);
  const pairs: Pairs = [
    ['backend', kind.qemu.name(c.backend)],
    ['id', c.id],
    ...kind.qemu.print(c.backend),
  ];
  if (c.mux) pairs.push(['mux', 'on']);
  if (c.logfile !== undefined) pairs.push(['logfile', c.logfile]);
  if (c.logappend) pairs.push(['logappend', 'on']);
  for (const [k, v] of Object.entries(c.ignoredKeys ?? {})) pairs.push([k, v]);
  return joinOpts(pairs, 'backend');
}

export function deviceArg(d: VirtioSerialDevice): string {
  const pairs: Pairs = [['driver', d.driver]];
  if (d.id !== undefined) pairs.push(['id', d.id]);
  if (d.maxPorts !== 31) pairs.push(['max_ports', String(d.maxPorts)]);
  if (d.vectors !== undefined) pairs.push(['vectors', String(d.vectors)]);
  if (!d.emergencyWrite) pairs.push(['emergency-write', 'off']);
  if (d.packed) pairs.push(['packed', 'on']);
  if (!d.eventIdx) pairs.push(['event_idx', 'off']);
  if (!d.indirectDesc) pairs.push(['indirect_desc', 'off']);
  for (const [k, v] of Object.entries(d.ignoredKeys ?? {})) pairs.push([k, v]);
  return joinOpts(pairs, 'driver');
}

export function portArg(p: Port): string {
  const pairs: Pairs = [
    ['driver', p.driver],
    ['bus', p.bus],
  ];
  if (p.id !== undefined) pairs.push(['id', p.id]);
  if (p.nr !== undefined) pairs.push(['nr', String(p.nr)]);
  if (p.name !== undefined) pairs.push(['name', p.name]);
  if (p.chardev !== undefined) pairs.push(['chardev', p.chardev]);
  return joinOpts(pairs, 'driver');
}

export function monitorArg(m: Monitor): string {
  const pairs: Pairs = [
    ['chardev', m.chardev],
    ['mode', m.mode],
  ];
  if (m.pretty) pairs.push(['pretty', 'on']);
  if (m.id !== undefined) pairs.push(['id', m.id]);
  // Written as chardev=NAME: a bare first word `id` would be read as the id flag.
  return joinOpts(pairs);
}

export function printQemuArgs(t: Topology, program = 'qemu-system-x86_64'): PrintedCommandLine {
  const args: string[] = [];
  for (const o of t.ignored) {
    if (o.option !== '') args.push(o.option);
    if (o.arg !== undefined) args.push(o.arg);
  }
  for (const c of t.chardevs) args.push('-chardev', chardevArg(c));
  for (const m of t.monitors) args.push('-mon', monitorArg(m));
  for (const d of t.devices) args.push('-device', deviceArg(d));
  for (const p of t.ports) args.push('-device', portArg(p));
  return { args, shell: joinShellWords([program, ...args]) };
}
