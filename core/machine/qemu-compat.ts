/**
 * The legacy chardev shorthand of -monitor, -qmp and -serial (H2):
 * `unix:PATH,server,nowait`, `tcp:HOST:PORT,server`, `stdio`, `pty`,
 * `null`, `pipe:PATH`, `file:PATH`, `udp:HOST:PORT@LHOST:LPORT`, `mon:...`,
 * `/dev/ttyS0`. A port of qemu_chr_parse_compat (chardev/char.c): it turns
 * the shorthand into the key/value pairs a -chardev would have had.
 */
import { splitOpts, type OptPair } from './qemu-options.js';

export type CompatResult = { ok: true; pairs: OptPair[] } | { ok: false; message: string };

function set(key: string, value: string): OptPair {
  return { key, value, form: 'pair', raw: `${key}=${value}` };
}

/** sscanf("%N[^stop]") at the start of `s`: at least one character, at most `max`. */
function scanUntil(s: string, stops: string, max: number): string | undefined {
  let i = 0;
  while (i < s.length && i < max && !stops.includes(s[i] as string)) i++;
  return i === 0 ? undefined : s.slice(0, i);
}

/**
 * "%64[^:]:%32[^<stops>]%n", falling back to ":%32[^<stops>]" for an empty
 * host. Returns host, port and what follows, or undefined when neither form
 * matches (QEMU then reports only "parse error").
 */
function scanHostPort(
  s: string,
  stops: string,
): { host: string; port: string; rest: string } | undefined {
  const host = scanUntil(s, ':', 64);
  if (host !== undefined && s[host.length] === ':') {
    const port = scanUntil(s.slice(host.length + 1), stops, 32);
    if (port !== undefined) {
      return { host, port, rest: s.slice(host.length + 1 + port.length) };
    }
  }
  if (s.startsWith(':')) {
    const port = scanUntil(s.slice(1), stops, 32);
    if (port !== undefined) return { host: '', port, rest: s.slice(1 + port.length) };
  }
  return undefined;
}

const BARE_BACKENDS = ['null', 'pty', 'msmouse', 'wctablet', 'braille', 'testdev', 'stdio'];

export function parseCompatChardev(filename: string, permitMuxMon: boolean): CompatResult {
  const pairs: OptPair[] = [];
  let spec = filename;
  const fail: CompatResult = { ok: false, message: `parse error: ${filename}` };

  if (spec.startsWith('mon:')) {
    if (!permitMuxMon) return { ok: false, message: "mon: isn't supported in this context" };
    spec = spec.slice(4);
    pairs.push(set('mux', 'on'));
    // QEMU: a monitor muxed on stdio passes Ctrl-C to the guest instead of exiting.
    if (spec === 'stdio') pairs.push(set('signal', 'off'));
  }

  if (BARE_BACKENDS.includes(spec)) return { ok: true, pairs: [set('backend', spec), ...pairs] };

  if (spec.startsWith('vc')) {
    const p = spec.slice(2);
    const out = [set('backend', 'vc'), ...pairs];
    if (p.startsWith(':')) {
      const px = /^:([0-9]{1,7})x([0-9]{1,7})/.exec(p);
      const ch = /^:([0-9]{1,7})Cx([0-9]{1,7})C/.exec(p);
      if (px !== null) out.push(set('width', px[1] ?? ''), set('height', px[2] ?? ''));
      else if (ch !== null) out.push(set('cols', ch[1] ?? ''), set('rows', ch[2] ?? ''));
      else return fail;
    }
    return { ok: true, pairs: out };
  }
  if (spec === 'con:') return { ok: true, pairs: [set('backend', 'console'), ...pairs] };
  if (spec.startsWith('COM')) {
    return { ok: true, pairs: [set('backend', 'serial'), set('path', spec), ...pairs] };
  }
  for (const [prefix, backend] of [
    ['file:', 'file'],
    ['pipe:', 'pipe'],
    ['pty:', 'pty'],
  ] as const) {
    if (spec.startsWith(prefix)) {
      return {
        ok: true,
        pairs: [set('backend', backend), set('path', spec.slice(prefix.length)), ...pairs],
      };
    }
  }

  const socketPrefix = ['tcp:', 'telnet:', 'tn3270:', 'websocket:'].find((p) => spec.startsWith(p));
  if (socketPrefix !== undefined) {
    const hp = scanHostPort(spec.slice(socketPrefix.length), ',');
    if (hp === undefined) return fail;
    const out = [set('backend', 'socket'), ...pairs, set('host', hp.host), set('port', hp.port)];
    if (hp.rest.startsWith(',')) out.push(...splitOpts(hp.rest.slice(1)));
    if (socketPrefix !== 'tcp:') out.push(set(socketPrefix.slice(0, -1), 'on'));
    return { ok: true, pairs: out };
  }

  if (spec.startsWith('udp:')) {
    const remote = scanHostPort(spec.slice(4), '@,');
    if (remote === undefined) return fail;
    const out = [
      set('backend', 'udp'),
      ...pairs,
      set('host', remote.host),
      set('port', remote.port),
    ];
    if (remote.rest.startsWith('@')) {
      const local = scanHostPort(remote.rest.slice(1), ',');
      if (local === undefined) return fail;
      out.push(set('localaddr', local.host), set('localport', local.port));
    }
    // QEMU ignores whatever follows the address of a udp: shorthand.
    return { ok: true, pairs: out };
  }

  if (spec.startsWith('unix:')) {
    return {
      ok: true,
      pairs: [set('backend', 'socket'), ...pairs, ...splitOpts(spec.slice(5), 'path')],
    };
  }
  if (spec.startsWith('/dev/parport') || spec.startsWith('/dev/ppi')) {
    return { ok: true, pairs: [set('backend', 'parallel'), set('path', spec), ...pairs] };
  }
  if (spec.startsWith('/dev/')) {
    return { ok: true, pairs: [set('backend', 'serial'), set('path', spec), ...pairs] };
  }
  return { ok: false, message: `'${spec}' is not a valid char driver` };
}
