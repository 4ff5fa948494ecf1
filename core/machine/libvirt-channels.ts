/**
 * The channels of a running libvirt domain as its live XML (`virsh dumpxml`)
 * tells them, for attach mode (`vmchan attach --domain`, the app's
 * libvirt:NAME): what QMP's query-chardev cannot say. Each <channel> (and
 * virtio <console>) gives its target name, libvirt's alias (the QEMU port id;
 * the chardev is `char` + alias, as libvirt's QEMU driver names it), the
 * source path and mode, libvirt's view of the guest side (`<target
 * state='connected'/>`), and the role libvirt gives it: the guest agent
 * channel is libvirtd's own (it connects when the guest opens the port),
 * spicevmc belongs to QEMU's SPICE server, the rest are a host application's.
 *
 * Parsed with the import's element tree (xml-nodes.ts, fast-xml-parser).
 */
import { machineError, type MachineError } from './machine-error.js';
import { child, childrenNamed, parseXmlFragment, type XmlElement } from './xml-nodes.js';

/** The guest agent channel's target name, which libvirtd connects to itself. */
export const AGENT_CHANNEL = 'org.qemu.guest_agent.0';

export type ChannelRole = 'agent' | 'spice' | 'libguestfs' | 'application';

export interface DomainChannel {
  /** `channel` or `console`. */
  element: 'channel' | 'console';
  /** The target name the guest sees (/dev/virtio-ports/NAME); null for a console. */
  target: string | null;
  /** libvirt's alias: QEMU's port id (null in inactive XML). */
  alias: string | null;
  /** The chardev QEMU knows it by (`char` + alias). */
  chardev: string | null;
  /** The source type: unix, pty, spicevmc, tcp, file... */
  type: string;
  /** The socket or file path (unix, file, pty), null when there is none. */
  path: string | null;
  /** unix/tcp: `bind` (QEMU listens) or `connect` (QEMU connects). */
  mode: string | null;
  /** libvirt's view of the guest side (live XML, virtio channels): connected or disconnected. */
  state: string | null;
  role: ChannelRole;
  /** The role in one line, for people. */
  roleText: string;
}

/** The virtio channels and consoles of a domain's XML, in document order. */
export function domainChannels(xml: string): DomainChannel[] | MachineError {
  const parsed = parseXmlFragment(xml);
  if (!parsed.ok) return parsed.error;
  const domain = child(parsed.root, 'domain');
  if (domain === undefined)
    return machineError('XmlValue', 'the XML is not a libvirt <domain> (virsh dumpxml NAME)');
  const devices = child(domain, 'devices');
  if (devices === undefined) return [];
  const out: DomainChannel[] = [];
  for (const el of devices.children) {
    if (el.name !== 'channel' && el.name !== 'console') continue;
    const target = child(el, 'target');
    if (target?.attrs.type !== 'virtio') continue;
    out.push(readChannel(el, el.name, target));
  }
  return out;
}

function readChannel(
  el: XmlElement,
  element: 'channel' | 'console',
  target: XmlElement,
): DomainChannel {
  const type = el.attrs.type ?? 'pty';
  // libvirt writes one <source> per channel; a pty's path is on the element itself in old XML
  const source = childrenNamed(el, 'source')[0];
  const alias = child(el, 'alias')?.attrs.name ?? null;
  const name = element === 'channel' ? (target.attrs.name ?? null) : null;
  const path = source?.attrs.path ?? el.attrs.tty ?? null;
  const mode = source?.attrs.mode ?? null;
  const role = roleOf(type, name);
  return {
    element,
    target: name,
    alias,
    chardev: alias === null ? null : `char${alias}`,
    type,
    path,
    mode,
    state: target.attrs.state ?? null,
    role,
    roleText: roleText(role, type, path, mode),
  };
}

function roleOf(type: string, target: string | null): ChannelRole {
  if (type === 'spicevmc') return 'spice';
  if (target === AGENT_CHANNEL && type === 'unix') return 'agent';
  if (target === 'org.libguestfs.channel.0') return 'libguestfs';
  return 'application';
}

function roleText(
  role: ChannelRole,
  type: string,
  path: string | null,
  mode: string | null,
): string {
  switch (role) {
    case 'agent':
      return 'libvirtd’s guest agent channel: libvirtd connects to it when the guest opens the port (virsh qemu-agent-command, domtime, shutdown --mode agent)';
    case 'spice':
      return 'SPICE’s channel (spicevmc): QEMU hands it to its SPICE server, no socket to tap';
    case 'libguestfs':
      return 'the libguestfs appliance’s channel: libguestfs connects to it';
    case 'application':
      if (type === 'unix' && mode === 'bind')
        return `a host application’s: QEMU listens on ${path ?? '(no path)'}`;
      if (type === 'unix' && mode === 'connect')
        return `a host application’s: QEMU connects to ${path ?? '(no path)'}`;
      return `a host application’s (${type}${path !== null ? ` ${path}` : ''})`;
  }
}
