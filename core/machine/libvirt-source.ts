/**
 * The host side of a libvirt <channel>/<console> (its type, <source>,
 * <protocol>, <reconnect>, <log>) and a vmchan chardev, both ways, as
 * libvirt's QEMU driver maps them to -chardev: unix and tcp sources are
 * sockets (mode='bind' listens, libvirt always with wait=off), udp has a
 * bind and a connect source, dev is a host serial device, spicevmc and
 * spiceport are QEMU backends vmchan keeps without emulating.
 */
import { isSpecProblem, type LibvirtSourceIn } from '../chardev/kind.js';
import { kindForLibvirtType, kindOf } from '../chardev/kinds/index.js';
import { machineError, note, type MachineError, type MachineNote } from './machine-error.js';
import { child, childrenNamed, element, type XmlElement } from './xml-nodes.js';
import type { Chardev, ChardevBackend } from './topology.js';

export { LIBVIRT_CHANNEL_DIR } from '../chardev/kinds/socket.js';

export function parseUint(value: string | undefined): number | undefined | 'bad' {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^[0-9]+$/.test(v)) return Number(v);
  if (/^0x[0-9a-fA-F]+$/.test(v)) return Number.parseInt(v.slice(2), 16);
  return 'bad';
}

export function onOff(value: string | undefined): boolean | undefined {
  if (value === 'on' || value === 'yes') return true;
  if (value === 'off' || value === 'no') return false;
  return undefined;
}

type Built<T> = { ok: true; value: T } | { ok: false; error: MachineError };

export interface SourceResult {
  backend: ChardevBackend;
  ignoredKeys?: Record<string, string>;
}

/**
 * The host side of a <channel>/<console>, as libvirt's QEMU driver turns it
 * into -chardev: the kind registered for the source type reads it
 * (core/chardev/kinds/), this file only turns XML into plain data and back.
 */
export function sourceToChardev(
  type: string,
  el: XmlElement,
  what: string,
  targetName: string | undefined,
  notes: MachineNote[],
  where: { element: string },
): Built<SourceResult> | { ok: 'skip'; reason: string } {
  const kind = kindForLibvirtType(type);
  if (kind === undefined)
    return { ok: 'skip', reason: `source type '${type}' has no vmchan chardev` };
  const sources = childrenNamed(el, 'source');
  const reconnect = child(sources[0] ?? el, 'reconnect')?.attrs;
  const src: LibvirtSourceIn = {
    type,
    sources: sources.map((s) => s.attrs),
    defaultName: targetName ?? what,
    what,
  };
  if (reconnect !== undefined) src.reconnect = reconnect;
  const protocol = child(el, 'protocol')?.attrs.type;
  if (protocol !== undefined) src.protocol = protocol;
  const read = kind.libvirt.read(src, (k, message) => notes.push(note(k, message, where)));
  if (isSpecProblem(read))
    return { ok: false, error: machineError('XmlValue', read.message, where) };
  if ('skip' in read) return { ok: 'skip', reason: read.skip };
  const value: SourceResult = { backend: read.backend };
  if (read.ignoredKeys !== undefined) value.ignoredKeys = read.ignoredKeys;
  return { ok: true, value };
}

export interface Source {
  type: string;
  children: XmlElement[];
}

/** The libvirt source of a chardev, or why there is none. */
export function chardevToSource(
  c: Chardev,
  lost: (message: string) => void,
): Source | { skip: string } {
  const ignored = { ...c.ignoredKeys };
  const written = kindOf(c.backend).libvirt.write(c.backend, ignored, lost);
  if ('skip' in written) return written;
  const children = written.sources.map((s) =>
    element(
      'source',
      s.attrs,
      s.reconnect === undefined ? [] : [element('reconnect', s.reconnect)],
    ),
  );
  if (written.protocol !== undefined)
    children.push(element('protocol', { type: written.protocol }));
  const out: Source = { type: written.type, children };
  for (const [k, v] of Object.entries(ignored)) lost(`${k}=${v} has no libvirt attribute`);
  if (c.mux) lost('mux=on is not expressed: libvirt gives every channel its own chardev');
  if (c.logfile !== undefined) {
    out.children.push(element('log', { file: c.logfile, append: c.logappend ? 'on' : 'off' }));
  } else if (c.logappend) {
    lost('logappend=on without a logfile is not written');
  }
  return out;
}
