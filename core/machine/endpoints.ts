/**
 * The host ends of a running machine, described for a person: for each
 * chardev, what kind it is, where a host program reaches it, which ports
 * (or monitors) it feeds, and a command that connects to it. `vmchan run`
 * prints these; the app can show the same.
 */
import {
  FileChardev,
  isMux,
  PipeChardev,
  PtyChardev,
  SocketChardev,
  UdpChardev,
  type OpenChardev,
} from '../chardev/index.js';
import type { Machine } from './machine.js';
import type { Chardev, Port } from './topology.js';

export interface HostEndpoint {
  /** Chardev id. */
  chardev: string;
  /** Backend kind, `+mux` when shared. */
  kind: string;
  /** Where: a socket path, `host:port`, a pty, FIFOs, a file... */
  where: string;
  /** The ports and monitors it feeds: `test1 (virtserialport, vser0.0 port 1)`. */
  feeds: string[];
  /** A shell command that talks to it, when there is an obvious one. */
  connect: string | null;
}

function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function portLabel(machine: Machine, p: Port): string {
  const place = machine.placeOf(p);
  const at = place !== undefined ? `${p.bus} port ${place.nr}` : p.bus;
  const who = p.name ?? p.id;
  return who !== undefined ? `${who} (${p.driver}, ${at})` : `${p.driver} at ${at}`;
}

/** Where and how for one backend. */
function locate(spec: Chardev, c: OpenChardev): { where: string; connect: string | null } {
  const base = isMux(c) ? c.base : c;
  const b = spec.backend;
  if (base instanceof SocketChardev && b.kind === 'socket') {
    const at = base.listeningOn;
    if (b.address.type === 'unix') {
      const p = b.address.path;
      return b.server
        ? { where: `${p} (unix, server)`, connect: `socat - UNIX-CONNECT:${quote(p)}` }
        : {
            where: `${p} (unix, client: vmchan connects)`,
            connect: `socat UNIX-LISTEN:${quote(p)} -`,
          };
    }
    if (b.address.type === 'tcp') {
      const host = at !== null && at.type === 'tcp' ? at.host : b.address.host || '127.0.0.1';
      const port = at !== null && at.type === 'tcp' ? at.port : b.address.port;
      return b.server
        ? { where: `${host}:${port} (tcp, server)`, connect: `socat - TCP:${host}:${port}` }
        : { where: `${host}:${port} (tcp, client: vmchan connects)`, connect: null };
    }
    return { where: base.describe(), connect: null };
  }
  if (base instanceof PtyChardev) {
    return { where: base.slavePath, connect: `socat -,rawer ${base.slavePath}` };
  }
  if (base instanceof PipeChardev) {
    const [a, o] = base.paths;
    if (o === undefined) return { where: `${a} (one FIFO both ways)`, connect: null };
    return {
      where: `${a} (host -> guest), ${o} (guest -> host)`,
      connect: `cat ${quote(o)} & cat > ${quote(a ?? '')}`,
    };
  }
  if (base instanceof FileChardev) {
    return { where: `${base.path} (guest output)`, connect: `tail -f ${quote(base.path)}` };
  }
  if (base instanceof UdpChardev) {
    return {
      where: `udp ${base.local.address}:${base.local.port} -> ${base.remote.address}:${base.remote.port}`,
      connect: `socat - UDP:${base.local.address}:${base.local.port},sourceport=${base.remote.port}`,
    };
  }
  switch (b.kind) {
    case 'ringbuf':
      return {
        where: `ringbuf, ${b.size} bytes (QMP ringbuf-read / ringbuf-write)`,
        connect: null,
      };
    case 'null':
      return { where: 'null (discards everything, never connected)', connect: null };
    case 'stdio':
      return { where: "vmchan's own stdin and stdout", connect: null };
    case 'serial':
      return { where: b.path, connect: null };
    default:
      return { where: base.describe(), connect: null };
  }
}

/** Every chardev of the machine, in creation order. */
export function hostEndpoints(machine: Machine): HostEndpoint[] {
  const topology = machine.topology();
  return topology.chardevs.flatMap((spec) => {
    const c = machine.backend(spec.id);
    if (c === undefined) return [];
    const feeds = machine.portsOf(spec.id).map((p) => portLabel(machine, p));
    for (const m of topology.monitors) {
      if (m.chardev === spec.id)
        feeds.push(
          `monitor ${m.id ?? ''} (${m.mode === 'control' ? 'QMP' : 'HMP'})`.replace('  ', ' '),
        );
    }
    const { where, connect } = locate(spec, c);
    return [
      {
        chardev: spec.id,
        kind:
          spec.backend.kind === 'other'
            ? spec.backend.driver
            : spec.backend.kind + (spec.mux ? '+mux' : ''),
        where,
        feeds,
        connect,
      },
    ];
  });
}
