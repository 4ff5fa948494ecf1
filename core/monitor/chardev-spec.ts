/**
 * chardev-add's `backend` argument (QEMU 7.2's ChardevBackend in its
 * {type, data} wire form) turned into the topology's Chardev, with QEMU's
 * checks in QEMU's order (qapi visitor, qmp_chardev_validate_socket,
 * the backend's open) and its texts. What vmchan does not emulate is
 * refused in vmchan's own words rather than silently dropped.
 *
 * Defaults differ from the command line, as in QEMU: a QMP socket is a
 * server unless `server: false`, and does not wait unless `wait: true`.
 */
import { DEFAULT_RINGBUF_SIZE, type Chardev, type ChardevBackend } from '../machine/topology.js';
import { QemuError } from '../base/qemu-error.js';
import { visitMembers, type QapiMembers, type QapiType, type QapiValue } from './qapi.js';
import type { QDict } from './qobject.js';

const COMMON: QapiMembers = {
  logfile: { type: 'str', optional: true },
  logappend: { type: 'bool', optional: true },
};

/** SocketAddressLegacy: {type, data}. */
const ADDRESS_TYPE: QapiType = {
  union: {
    unix: {
      path: { type: 'str' },
      abstract: { type: 'bool', optional: true },
      tight: { type: 'bool', optional: true },
    },
    inet: {
      host: { type: 'str' },
      port: { type: 'str' },
      numeric: { type: 'bool', optional: true },
      to: { type: 'uint16', optional: true },
      ipv4: { type: 'bool', optional: true },
      ipv6: { type: 'bool', optional: true },
      'keep-alive': { type: 'bool', optional: true },
      mptcp: { type: 'bool', optional: true },
    },
    vsock: { cid: { type: 'str' }, port: { type: 'str' } },
    fd: { str: { type: 'str' } },
  },
};

const DEVICE: QapiMembers = { ...COMMON, device: { type: 'str' } };

/** ChardevBackend's branches in QEMU 7.2 (all configured in). */
export const CHARDEV_BACKEND_BRANCHES: Readonly<Record<string, QapiMembers>> = {
  file: {
    ...COMMON,
    in: { type: 'str', optional: true },
    out: { type: 'str' },
    append: { type: 'bool', optional: true },
  },
  serial: DEVICE,
  parallel: DEVICE,
  pipe: DEVICE,
  socket: {
    ...COMMON,
    addr: { type: ADDRESS_TYPE },
    'tls-creds': { type: 'str', optional: true },
    'tls-authz': { type: 'str', optional: true },
    server: { type: 'bool', optional: true },
    wait: { type: 'bool', optional: true },
    nodelay: { type: 'bool', optional: true },
    telnet: { type: 'bool', optional: true },
    tn3270: { type: 'bool', optional: true },
    websocket: { type: 'bool', optional: true },
    reconnect: { type: 'int', optional: true },
  },
  udp: { ...COMMON, remote: { type: ADDRESS_TYPE }, local: { type: ADDRESS_TYPE, optional: true } },
  pty: COMMON,
  null: COMMON,
  mux: { ...COMMON, chardev: { type: 'str' } },
  msmouse: COMMON,
  wctablet: COMMON,
  braille: COMMON,
  testdev: COMMON,
  stdio: { ...COMMON, signal: { type: 'bool', optional: true } },
  console: COMMON,
  spicevmc: { ...COMMON, type: { type: 'str' } },
  spiceport: { ...COMMON, fqdn: { type: 'str' } },
  'qemu-vdagent': {
    ...COMMON,
    mouse: { type: 'bool', optional: true },
    clipboard: { type: 'bool', optional: true },
  },
  dbus: { ...COMMON, name: { type: 'str' } },
  vc: {
    ...COMMON,
    width: { type: 'int', optional: true },
    height: { type: 'int', optional: true },
    cols: { type: 'int', optional: true },
    rows: { type: 'int', optional: true },
  },
  ringbuf: { ...COMMON, size: { type: 'int', optional: true } },
  memory: { ...COMMON, size: { type: 'int', optional: true } },
};

export const CHARDEV_ADD_ARGS: QapiMembers = {
  id: { type: 'str' },
  backend: { type: { union: CHARDEV_BACKEND_BRANCHES } },
};

type Data = { [key: string]: QapiValue };

function unsupported(what: string): QemuError {
  return new QemuError(`vmchan does not emulate ${what}`);
}

function address(
  addr: Data,
):
  | { type: 'unix'; path: string }
  | { type: 'tcp'; host: string; port: string }
  | { type: 'fd'; fd: string }
  | QemuError {
  const data = addr.data as Data;
  switch (addr.type) {
    case 'unix':
      if (data.abstract === true) return unsupported('abstract unix socket names');
      return { type: 'unix', path: data.path as string };
    case 'inet':
      return { type: 'tcp', host: data.host as string, port: data.port as string };
    case 'fd':
      return { type: 'fd', fd: data.str as string };
    default:
      return unsupported('vsock addresses');
  }
}

/** qmp_chardev_validate_socket, then what the topology can carry. */
function socketBackend(d: Data): ChardevBackend | QemuError {
  const addr = address(d.addr as Data);
  const has = (k: string): boolean => d[k] !== undefined;
  const server = d.server === undefined ? true : d.server === true;
  const addrType = (d.addr as Data).type;
  if (addrType === 'fd') {
    if (has('reconnect')) {
      return new QemuError("'reconnect' option is incompatible with 'fd' address type");
    }
    if (has('tls-creds') && !server) {
      return new QemuError("'tls_creds' option is incompatible with 'fd' address type as client");
    }
  }
  if ((addrType === 'unix' || addrType === 'vsock') && has('tls-creds')) {
    return new QemuError(`'tls_creds' option is incompatible with '${addrType}' address type`);
  }
  if (has('tls-authz') && !has('tls-creds')) {
    return new QemuError("'tls_authz' option requires 'tls_creds' option");
  }
  if (server) {
    if (has('reconnect')) {
      return new QemuError("'reconnect' option is incompatible with socket in server listen mode");
    }
  } else {
    if (d.websocket === true) return new QemuError('Websocket client is not implemented');
    if (has('wait')) {
      return new QemuError("'wait' option is incompatible with socket in client connect mode");
    }
  }
  if (addr instanceof QemuError) return addr;
  if (d.telnet === true || d.tn3270 === true || d.websocket === true) {
    return unsupported('telnet, tn3270 or websocket sockets');
  }
  if (has('tls-creds')) return unsupported('TLS on sockets');
  const backend: ChardevBackend = {
    kind: 'socket',
    address: addr,
    server,
    wait: server && d.wait === true,
    nodelay: d.nodelay === true,
  };
  if (has('reconnect')) {
    const r = Number(d.reconnect);
    backend.reconnect = r > 0 ? r : 0;
  }
  return backend;
}

function udpBackend(d: Data): ChardevBackend | QemuError {
  const remote = address(d.remote as Data);
  if (remote instanceof QemuError) return remote;
  if (remote.type !== 'tcp') return unsupported('udp chardevs on non-inet addresses');
  const backend: ChardevBackend = { kind: 'udp', host: remote.host, port: remote.port };
  if (d.local !== undefined) {
    const local = address(d.local as Data);
    if (local instanceof QemuError) return local;
    if (local.type !== 'tcp') return unsupported('udp chardevs on non-inet addresses');
    backend.localaddr = local.host;
    backend.localport = local.port;
  }
  return backend;
}

function backendOf(type: string, d: Data): ChardevBackend | QemuError {
  switch (type) {
    case 'socket':
      return socketBackend(d);
    case 'udp':
      return udpBackend(d);
    case 'file':
      if (d.in !== undefined) return unsupported("file chardevs with an 'in' file");
      return { kind: 'file', path: d.out as string, append: d.append === true };
    case 'pipe':
      return { kind: 'pipe', path: d.device as string };
    case 'serial':
      return { kind: 'serial', path: d.device as string };
    case 'pty':
      return { kind: 'pty' };
    case 'null':
      return { kind: 'null' };
    case 'stdio':
      return { kind: 'stdio' };
    case 'ringbuf':
    case 'memory': {
      // qemu_chr_open_ringbuf: 64 KiB unless given, and a power of two.
      const size = d.size === undefined ? DEFAULT_RINGBUF_SIZE : Number(d.size);
      if (!(size > 0 && Number.isSafeInteger(size) && (size & (size - 1)) === 0)) {
        return new QemuError('size of ringbuf chardev must be power of two');
      }
      return { kind: 'ringbuf', size };
    }
    case 'mux':
      return unsupported('mux chardevs added at run time');
    default:
      return { kind: 'other', driver: type };
  }
}

/** chardev-add {id, backend} to a Chardev, or QEMU's (or vmchan's) refusal. */
export function chardevFromQmp(args: QDict): Chardev | QemuError {
  const v = visitMembers(args, CHARDEV_ADD_ARGS);
  if (v instanceof QemuError) return v;
  const backend = v.backend as Data;
  const data = backend.data as Data;
  const made = backendOf(backend.type as string, data);
  if (made instanceof QemuError) return made;
  const chardev: Chardev = {
    id: v.id as string,
    backend: made,
    mux: false,
    logappend: data.logappend === true,
  };
  if (typeof data.logfile === 'string') chardev.logfile = data.logfile;
  return chardev;
}
