/**
 * Where a QMP monitor listens, parsed from what a person types.
 *
 * Accepted forms:
 *   /run/vm/qmp.sock, ./qmp.sock, qmp.sock   a unix socket path
 *   unix:/run/vm/qmp.sock                    the same, explicitly
 *   localhost:4444, 127.0.0.1:4444, [::1]:4444, tcp:host:4444
 * and, because people paste them, QEMU's own option values with their
 * server options: `unix:/tmp/q.sock,server=on,wait=off`, `tcp:127.0.0.1:4444,server`.
 * A bare word with a colon is a TCP address only when the part after the
 * last colon is a port number and the rest has no slash; anything else is
 * a path (paths may contain colons).
 */
import { qmpError, type QmpError } from './qmp-error.js';

export type QmpAddress =
  { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export function parseQmpAddress(input: string): QmpAddress | QmpError {
  const text = input.trim();
  if (text === '') return invalid(input, 'it is empty');

  if (text.startsWith('unix:')) {
    const path = stripQemuOptions(text.slice('unix:'.length));
    if (path === '') return invalid(input, 'unix: needs a socket path');
    return { kind: 'unix', path };
  }
  if (text.startsWith('tcp:')) {
    const tcp = parseHostPort(stripQemuOptions(text.slice('tcp:'.length)));
    return tcp ?? invalid(input, 'tcp: needs HOST:PORT with a port from 1 to 65535');
  }
  if (!text.includes('/')) {
    const tcp = parseHostPort(text);
    if (tcp) return tcp;
    if (/^\[.*\]:\d+$/.test(text) || /^[^:]*:\d+$/.test(text)) {
      return invalid(input, 'the port must be from 1 to 65535');
    }
  }
  return { kind: 'unix', path: text };
}

/** The address as the messages show it: the path, or HOST:PORT. */
export function formatQmpAddress(address: QmpAddress): string {
  if (address.kind === 'unix') return address.path;
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

function parseHostPort(text: string): QmpAddress | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]*):(\d+)$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  // QEMU reads an empty host as "all addresses"; to connect we need one.
  const host = m[1] === '' || m[1] === undefined ? 'localhost' : m[1];
  return { kind: 'tcp', host, port };
}

/**
 * Drop `,server=on,wait=off`-style options from a QEMU option value. In
 * QEMU's syntax `,,` is a literal comma, so only a single comma separates.
 */
function stripQemuOptions(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === ',') {
      if (value[i + 1] === ',') {
        out += ',';
        i++;
        continue;
      }
      break;
    }
    out += c;
  }
  return out;
}

function invalid(input: string, why: string): QmpError {
  return qmpError(
    'InvalidAddress',
    `cannot use '${input}' as a QMP address: ${why} (give a unix socket path or HOST:PORT)`,
  );
}
