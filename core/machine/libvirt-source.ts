/**
 * The host side of a libvirt <channel>/<console> (its type, <source>,
 * <protocol>, <reconnect>, <log>) and a vmchan chardev, both ways, as
 * libvirt's QEMU driver maps them to -chardev: unix and tcp sources are
 * sockets (mode='bind' listens, libvirt always with wait=off), udp has a
 * bind and a connect source, dev is a host serial device, spicevmc and
 * spiceport are QEMU backends vmchan keeps without emulating.
 */
import { machineError, note, type MachineError, type MachineNote } from './machine-error.js';
import { child, childrenNamed, element, type XmlElement } from './xml-nodes.js';
import type { Chardev, ChardevBackend } from './topology.js';

/** Where libvirt puts a unix channel that names no path (its guest agent default). */
export const LIBVIRT_CHANNEL_DIR = '/var/lib/libvirt/qemu/channel/target';

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

/** The host side of a <channel>/<console>, as libvirt's QEMU driver turns it into -chardev. */
export function sourceToChardev(
  type: string,
  el: XmlElement,
  what: string,
  targetName: string | undefined,
  notes: MachineNote[],
  where: { element: string },
): Built<SourceResult> | { ok: 'skip'; reason: string } {
  const sources = childrenNamed(el, 'source');
  const source = sources[0];
  const path = source?.attrs.path;
  const needPath = (): Built<string> =>
    path === undefined
      ? {
          ok: false,
          error: machineError('XmlValue', `Missing source path attribute for char device`, where),
        }
      : { ok: true, value: path };
  switch (type) {
    case 'pty':
      return { ok: true, value: { backend: { kind: 'pty' } } };
    case 'null':
      return { ok: true, value: { backend: { kind: 'null' } } };
    case 'stdio':
      return { ok: true, value: { backend: { kind: 'stdio' } } };
    case 'vc':
      return { ok: true, value: { backend: { kind: 'other', driver: 'vc' } } };
    case 'pipe':
    case 'dev': {
      const p = needPath();
      if (!p.ok) return p;
      return {
        ok: true,
        value: { backend: { kind: type === 'dev' ? 'serial' : 'pipe', path: p.value } },
      };
    }
    case 'file': {
      const p = needPath();
      if (!p.ok) return p;
      return {
        ok: true,
        value: {
          backend: { kind: 'file', path: p.value, append: onOff(source?.attrs.append) ?? false },
        },
      };
    }
    case 'unix':
    case 'tcp': {
      const server = source?.attrs.mode === 'bind';
      const reconnect = child(source ?? el, 'reconnect');
      let address: Extract<ChardevBackend, { kind: 'socket' }>['address'];
      if (type === 'unix') {
        let p = path;
        if (p === undefined) {
          p = `${LIBVIRT_CHANNEL_DIR}/${targetName ?? what}`;
          notes.push(
            note(
              'Implied',
              `${what}: a unix source without a path gets one from libvirt; vmchan uses ${p}`,
              where,
            ),
          );
        }
        address = { type: 'unix', path: p };
      } else {
        const service = source?.attrs.service;
        if (service === undefined || service === '') {
          return {
            ok: false,
            error: machineError(
              'XmlValue',
              'Missing source service attribute for char device',
              where,
            ),
          };
        }
        address = { type: 'tcp', host: source?.attrs.host ?? '', port: service };
      }
      const backend: ChardevBackend = {
        kind: 'socket',
        address,
        server,
        wait: false,
        nodelay: false,
      };
      if (!server && reconnect !== undefined && reconnect.attrs.enabled === 'yes') {
        const t = parseUint(reconnect.attrs.timeout);
        if (typeof t === 'number') backend.reconnect = t;
      }
      const result: SourceResult = { backend };
      const protocol = child(el, 'protocol')?.attrs.type;
      if (type === 'tcp' && protocol === 'telnet') result.ignoredKeys = { telnet: 'on' };
      else if (type === 'tcp' && protocol !== undefined && protocol !== 'raw') {
        notes.push(
          note(
            'NotExpressed',
            `${what}: protocol '${protocol}' is not modelled; read as raw`,
            where,
          ),
        );
      }
      if (source?.attrs.tls !== undefined) {
        notes.push(
          note('NotExpressed', `${what}: tls='${source.attrs.tls}' is not modelled`, where),
        );
      }
      return { ok: true, value: result };
    }
    case 'udp': {
      const remote = sources.find((s) => s.attrs.mode !== 'bind');
      const local = sources.find((s) => s.attrs.mode === 'bind');
      const port = remote?.attrs.service;
      if (port === undefined || port === '') {
        return {
          ok: false,
          error: machineError('XmlValue', 'chardev: udp: remote port not specified', where),
        };
      }
      const host = remote?.attrs.host;
      const backend: ChardevBackend = {
        kind: 'udp',
        host: host === undefined || host === '' ? 'localhost' : host,
        port,
      };
      if (local?.attrs.host !== undefined && local.attrs.host !== '')
        backend.localaddr = local.attrs.host;
      if (local?.attrs.service !== undefined && local.attrs.service !== '')
        backend.localport = local.attrs.service;
      return { ok: true, value: { backend } };
    }
    case 'spicevmc':
      return {
        ok: true,
        value: { backend: { kind: 'other', driver: 'spicevmc' }, ignoredKeys: { name: 'vdagent' } },
      };
    case 'spiceport': {
      const channel = source?.attrs.channel;
      const value: SourceResult = { backend: { kind: 'other', driver: 'spiceport' } };
      if (channel !== undefined) value.ignoredKeys = { name: channel };
      return { ok: true, value };
    }
    default:
      return { ok: 'skip', reason: `source type '${type}' has no vmchan chardev` };
  }
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
  const b = c.backend;
  const ignored = { ...c.ignoredKeys };
  let out: Source | { skip: string };
  switch (b.kind) {
    case 'socket': {
      if (b.address.type === 'fd') {
        out = { skip: `socket on an inherited file descriptor (fd=${b.address.fd})` };
        break;
      }
      const mode = b.server ? 'bind' : 'connect';
      const reconnect: XmlElement[] = [];
      if (b.reconnect !== undefined && b.reconnect > 0) {
        reconnect.push(element('reconnect', { enabled: 'yes', timeout: String(b.reconnect) }));
      } else if (b.reconnect === 0) {
        lost('reconnect=0 (the same as none) is not written');
      }
      if (b.server && b.wait)
        lost('wait=on is not expressed: libvirt starts every server socket with wait=off');
      if (b.nodelay) lost('nodelay=on has no libvirt attribute');
      if (b.address.type === 'unix') {
        out = {
          type: 'unix',
          children: [element('source', { mode, path: b.address.path }, reconnect)],
        };
      } else {
        let protocol = 'raw';
        if (ignored.telnet === 'on') {
          protocol = 'telnet';
          delete ignored.telnet;
        }
        out = {
          type: 'tcp',
          children: [
            element(
              'source',
              {
                mode,
                host: b.address.host === '' ? undefined : b.address.host,
                service: b.address.port,
              },
              reconnect,
            ),
            element('protocol', { type: protocol }),
          ],
        };
      }
      break;
    }
    case 'pipe':
      out = { type: 'pipe', children: [element('source', { path: b.path })] };
      break;
    case 'file':
      out = {
        type: 'file',
        children: [element('source', { path: b.path, append: b.append ? 'on' : undefined })],
      };
      break;
    case 'serial':
      out = { type: 'dev', children: [element('source', { path: b.path })] };
      break;
    case 'pty':
    case 'null':
    case 'stdio':
      out = { type: b.kind, children: [] };
      break;
    case 'ringbuf':
      out = { skip: 'libvirt has no ringbuf source type' };
      break;
    case 'udp': {
      const children: XmlElement[] = [];
      if (b.localaddr !== undefined || b.localport !== undefined) {
        children.push(element('source', { mode: 'bind', host: b.localaddr, service: b.localport }));
      }
      children.push(element('source', { mode: 'connect', host: b.host, service: b.port }));
      out = { type: 'udp', children };
      break;
    }
    case 'other':
      if (b.driver === 'vc') {
        out = { type: 'vc', children: [] };
      } else if (b.driver === 'spicevmc' && ignored.name === 'vdagent') {
        delete ignored.name;
        out = { type: 'spicevmc', children: [] };
      } else if (b.driver === 'spiceport' && ignored.name !== undefined) {
        out = { type: 'spiceport', children: [element('source', { channel: ignored.name })] };
        delete ignored.name;
      } else {
        out = { skip: `backend '${b.driver}' has no libvirt source type vmchan writes` };
      }
      break;
  }
  if (!('skip' in out)) {
    for (const [k, v] of Object.entries(ignored)) lost(`${k}=${v} has no libvirt attribute`);
    if (c.mux) lost('mux=on is not expressed: libvirt gives every channel its own chardev');
    if (c.logfile !== undefined) {
      out.children.push(element('log', { file: c.logfile, append: c.logappend ? 'on' : 'off' }));
    } else if (c.logappend) {
      lost('logappend=on without a logfile is not written');
    }
  }
  return out;
}
