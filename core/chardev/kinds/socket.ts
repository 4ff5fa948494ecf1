/**
 * socket: unix or tcp, server or client (H1, H3), as QEMU's char-socket.c
 * reads it from -chardev (qemu_chr_parse_socket), from chardev-add, and as
 * libvirt writes it (unix and tcp sources; mode='bind' listens, always
 * with wait=off).
 */
import { z } from 'zod';
import { QemuError } from '../../base/qemu-error.js';
import { defineKind, SpecProblem, type OptionReader } from '../kind.js';
import {
  addressFromWire,
  addressToWire,
  notEmulated,
  WIRE_ADDRESS,
  WIRE_COMMON,
  type PlainAddress,
} from './wire-address.js';

export const SocketAddressSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('unix'), path: z.string() }),
  /** `port` is a string as in QEMU and libvirt (`service`): a number or a service name. */
  z.object({ type: z.literal('tcp'), host: z.string(), port: z.string().min(1) }),
  /** A socket QEMU inherits (`fd=N`, or a name from -add-fd / the monitor). */
  z.object({ type: z.literal('fd'), fd: z.string() }),
]);
export type SocketAddress = z.infer<typeof SocketAddressSchema>;

const schema = z.object({
  kind: z.literal('socket'),
  address: SocketAddressSchema,
  /** Listen (server=on) or connect. */
  server: z.boolean(),
  /** Server only: hold QEMU's start until a client connects. Always false for a client. */
  wait: z.boolean(),
  /** TCP_NODELAY (nodelay=on, or the legacy delay=off / bare `nodelay`). */
  nodelay: z.boolean(),
  /** Client only: seconds between reconnect attempts, as given (0 means none). */
  reconnect: z.number().int().min(0).optional(),
  /** telnet=on: QEMU's negotiation on connect, IAC commands stripped from the input. */
  telnet: z.literal(true).optional(),
  /**
   * abstract=on (unix only, Linux): the path is a name in the abstract
   * namespace, no file (core/chardev/abstract-socket.ts).
   */
  abstract: z.literal(true).optional(),
  /**
   * With abstract=on: tight=off pads the address to the whole sun_path;
   * absent is QEMU's default tight=on (the name's own length).
   */
  tight: z.literal(false).optional(),
  /** websocket=on (server only): the HTTP upgrade handshake, then binary frames (websocket.ts). */
  websocket: z.literal(true).optional(),
});
export type SocketBackend = z.infer<typeof schema>;

/** Options QEMU's socket chardev implements and vmchan does not (H1): refused, never ignored. */
const REFUSED: Readonly<Record<string, string>> = {
  tn3270: 'the TN3270 protocol (tn3270)',
  'tls-creds': 'TLS on sockets (tls-creds)',
  'tls-authz': 'TLS client authorization (tls-authz)',
  to: 'port ranges (to)',
  ipv4: 'address family restrictions (ipv4)',
  ipv6: 'address family restrictions (ipv6)',
};

/** qemu_chr_parse_socket, then qmp_chardev_validate_socket's checks, in QEMU's order and words. */
function parse(opts: OptionReader): SocketBackend | SpecProblem {
  const path = opts.get('path');
  const host = opts.get('host');
  const port = opts.get('port');
  const fd = opts.get('fd');
  if ([path, fd, host].filter((v) => v !== undefined).length > 1) {
    return new SpecProblem("None or one of 'path', 'fd' or 'host' option required.");
  }
  if (host !== undefined && port === undefined)
    return new SpecProblem('chardev: socket: no port given');
  if (opts.has('delay') && opts.has('nodelay')) {
    return new SpecProblem("'delay' and 'nodelay' are mutually exclusive");
  }
  const nodelay = !opts.bool('delay', true) || opts.bool('nodelay', false);
  const server = opts.bool('server', false);
  const hasReconnect = opts.has('reconnect');
  const tlsCreds = opts.get('tls-creds');

  let address: SocketAddress;
  if (path !== undefined) address = { type: 'unix', path };
  else if (host !== undefined) address = { type: 'tcp', host, port: port ?? '' };
  else if (fd !== undefined) address = { type: 'fd', fd };
  else {
    // QEMU 7.0+ accepts a socket with no address only for its own internal
    // subclasses; from the command line it has nothing to listen on.
    return new SpecProblem('chardev: socket: no address given (path=, host= or fd=)');
  }

  if (address.type === 'fd' && hasReconnect) {
    return new SpecProblem(
      "'reconnect' option is incompatible with 'fd' address type",
      'reconnect',
    );
  }
  if (address.type === 'fd' && tlsCreds !== undefined && !server) {
    return new SpecProblem(
      "'tls_creds' option is incompatible with 'fd' address type as client",
      'tls-creds',
    );
  }
  if (address.type === 'unix' && tlsCreds !== undefined) {
    return new SpecProblem(
      "'tls_creds' option is incompatible with 'unix' address type",
      'tls-creds',
    );
  }
  if (opts.has('tls-authz') && tlsCreds === undefined) {
    return new SpecProblem("'tls_authz' option requires 'tls_creds' option", 'tls-authz');
  }
  if (server && hasReconnect) {
    return new SpecProblem(
      "'reconnect' option is incompatible with socket in server listen mode",
      'reconnect',
    );
  }
  if (!server && opts.bool('websocket', false)) {
    return new SpecProblem('Websocket client is not implemented', 'websocket');
  }
  if (!server && opts.has('wait')) {
    return new SpecProblem(
      "'wait' option is incompatible with socket in client connect mode",
      'wait',
    );
  }

  const backend: SocketBackend = {
    kind: 'socket',
    address,
    server,
    wait: server && opts.bool('wait', true),
    nodelay,
  };
  if (hasReconnect) {
    // QAPI keeps reconnect as int64; a "negative" value never reconnects.
    const r = BigInt.asIntN(64, opts.number('reconnect') ?? 0n);
    backend.reconnect = r > 0n ? Number(r) : 0;
  }
  if (opts.bool('telnet', false)) backend.telnet = true;
  if (opts.bool('websocket', false)) backend.websocket = true;
  // qemu_chr_parse_socket reads abstract and tight only for a path (unix);
  // QEMU's default is tight=on.
  if (opts.bool('abstract', false) && address.type === 'unix') {
    backend.abstract = true;
    if (!opts.bool('tight', true)) backend.tight = false;
  }
  return backend;
}

/** qmp_chardev_validate_socket on chardev-add's data, then what vmchan emulates. */
function readWire(d: Readonly<Record<string, unknown>>): SocketBackend | QemuError {
  const addrData = d.addr as Readonly<Record<string, unknown>>;
  const has = (k: string): boolean => d[k] !== undefined;
  // QMP's default differs from the command line's: a server unless server=false.
  const server = d.server === undefined ? true : d.server === true;
  const addrType = addrData.type;
  if (addrType === 'fd') {
    if (has('reconnect')) {
      return new QemuError("'reconnect' option is incompatible with 'fd' address type");
    }
    if (has('tls-creds') && !server) {
      return new QemuError("'tls_creds' option is incompatible with 'fd' address type as client");
    }
  }
  if ((addrType === 'unix' || addrType === 'vsock') && has('tls-creds')) {
    return new QemuError(
      `'tls_creds' option is incompatible with '${String(addrType)}' address type`,
    );
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
  // An abstract unix name is the socket's own business (addressFromWire refuses it for udp).
  const addrFields = addrData.data as Readonly<Record<string, unknown>> | undefined;
  const abstract = addrType === 'unix' && addrFields?.abstract === true;
  const address = abstract
    ? { type: 'unix' as const, path: addrFields.path as string }
    : addressFromWire(addrData);
  if (address instanceof QemuError) return address;
  for (const key of ['tn3270', 'tls-creds', 'tls-authz']) {
    const v = d[key];
    if (v === true || typeof v === 'string') return notEmulated(REFUSED[key] ?? key);
  }
  const backend: SocketBackend = {
    kind: 'socket',
    address,
    server,
    wait: server && d.wait === true,
    nodelay: d.nodelay === true,
  };
  if (has('reconnect')) {
    const r = Number(d.reconnect);
    backend.reconnect = r > 0 ? r : 0;
  }
  if (d.telnet === true) backend.telnet = true;
  if (d.websocket === true) backend.websocket = true;
  if (abstract) {
    backend.abstract = true;
    if (addrFields.tight === false) backend.tight = false;
  }
  return backend;
}

const SERVER_FIELDS = [
  { name: 'server', label: 'server (listen: bind mode)', type: 'bool', default: true },
  {
    name: 'wait',
    label: 'wait for a client at start',
    type: 'bool',
    default: false,
    enabledBy: 'server',
  },
] as const;

export const socketKind = defineKind(schema, {
  qemu: {
    names: ['socket'],
    keys: [
      'path',
      'host',
      'port',
      'fd',
      'server',
      'wait',
      'delay',
      'nodelay',
      'reconnect',
      'telnet',
      'abstract',
      'tight',
      'websocket',
    ],
    refused: REFUSED,
    parse,
    name: () => 'socket',
    print(b) {
      const pairs: Array<[string, string]> = [];
      if (b.address.type === 'unix') pairs.push(['path', b.address.path]);
      else if (b.address.type === 'tcp')
        pairs.push(['host', b.address.host], ['port', b.address.port]);
      else pairs.push(['fd', b.address.fd]);
      if (b.server) pairs.push(['server', 'on'], ['wait', b.wait ? 'on' : 'off']);
      if (b.nodelay) pairs.push(['nodelay', 'on']);
      if (b.reconnect !== undefined) pairs.push(['reconnect', String(b.reconnect)]);
      if (b.telnet === true) pairs.push(['telnet', 'on']);
      if (b.abstract === true) pairs.push(['abstract', 'on']);
      if (b.abstract === true && b.tight === false) pairs.push(['tight', 'off']);
      if (b.websocket === true) pairs.push(['websocket', 'on']);
      return pairs;
    },
  },
  libvirt: {
    types: ['unix', 'tcp'],
    read(src, note) {
      const source = src.sources[0];
      const server = source?.mode === 'bind';
      let address: SocketAddress;
      if (src.type === 'unix') {
        let p = source?.path;
        if (p === undefined) {
          p = `${LIBVIRT_CHANNEL_DIR}/${src.defaultName}`;
          note(
            'Implied',
            `${src.what}: a unix source without a path gets one from libvirt; vmchan uses ${p}`,
          );
        }
        address = { type: 'unix', path: p };
      } else {
        const service = source?.service;
        if (service === undefined || service === '') {
          return new SpecProblem('Missing source service attribute for char device');
        }
        address = { type: 'tcp', host: source?.host ?? '', port: service };
      }
      const backend: SocketBackend = {
        kind: 'socket',
        address,
        server,
        wait: false,
        nodelay: false,
      };
      const reconnect = src.reconnect;
      if (!server && reconnect !== undefined && reconnect.enabled === 'yes') {
        const t = reconnect.timeout?.trim() ?? '';
        if (/^[0-9]+$/.test(t)) backend.reconnect = Number(t);
        else if (/^0x[0-9a-fA-F]+$/.test(t)) backend.reconnect = Number.parseInt(t.slice(2), 16);
      }
      const result: { backend: SocketBackend; ignoredKeys?: Record<string, string> } = { backend };
      if (src.type === 'tcp' && src.protocol === 'telnet') {
        backend.telnet = true;
      } else if (src.type === 'tcp' && src.protocol !== undefined && src.protocol !== 'raw') {
        note(
          'NotExpressed',
          `${src.what}: protocol '${src.protocol}' is not modelled; read as raw`,
        );
      }
      if (source?.tls !== undefined) {
        note('NotExpressed', `${src.what}: tls='${source.tls}' is not modelled`);
      }
      return result;
    },
    write(b, ignored, lost) {
      if (b.address.type === 'fd') {
        return { skip: `socket on an inherited file descriptor (fd=${b.address.fd})` };
      }
      const mode = b.server ? 'bind' : 'connect';
      let reconnect: Record<string, string> | undefined;
      if (b.reconnect !== undefined && b.reconnect > 0) {
        reconnect = { enabled: 'yes', timeout: String(b.reconnect) };
      } else if (b.reconnect === 0) {
        lost('reconnect=0 (the same as none) is not written');
      }
      if (b.server && b.wait)
        lost('wait=on is not expressed: libvirt starts every server socket with wait=off');
      if (b.nodelay) lost('nodelay=on has no libvirt attribute');
      if (b.websocket === true) lost('websocket=on has no libvirt form');
      if (b.address.type === 'unix') {
        if (b.telnet === true) lost('telnet=on on a unix socket has no libvirt form');
        if (b.abstract === true) return { skip: 'libvirt has no abstract unix socket source' };
        return { type: 'unix', sources: [{ attrs: { mode, path: b.address.path }, reconnect }] };
      }
      const protocol = b.telnet === true ? 'telnet' : 'raw';
      const attrs = {
        mode,
        host: b.address.host === '' ? undefined : b.address.host,
        service: b.address.port,
      };
      return { type: 'tcp', sources: [{ attrs, reconnect }], protocol };
    },
  },
  qmp: {
    branches: {
      socket: {
        ...WIRE_COMMON,
        addr: { type: WIRE_ADDRESS },
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
    },
    read: (_type, data) => readWire(data),
    write(b) {
      const addr = addressToWire(b.address as PlainAddress);
      if (b.abstract === true) {
        const fields = addr.data as Record<string, unknown>;
        fields.abstract = true;
        if (b.tight === false) fields.tight = false;
      }
      const data: Record<string, unknown> = { addr, server: b.server };
      if (b.server) data.wait = b.wait;
      if (b.nodelay) data.nodelay = true;
      if (b.reconnect !== undefined) data.reconnect = b.reconnect;
      if (b.telnet === true) data.telnet = true;
      if (b.websocket === true) data.websocket = true;
      return { type: 'socket', data };
    },
  },
  paths: (b, at) =>
    b.address.type === 'unix' && b.abstract !== true
      ? { ...b, address: { ...b.address, path: at(b.address.path) } }
      : b,
  open: async (b, options) => (await import('../socket-backend.js')).SocketChardev.open(b, options),
  app: [
    {
      value: 'unix',
      label: 'UNIX socket',
      fields: [
        {
          name: 'path',
          label: 'path',
          type: 'text',
          default: '',
          placeholder: '(runtime dir)/ID',
        },
        ...SERVER_FIELDS,
      ],
      build: (v, id, at) => ({
        kind: 'socket',
        address: { type: 'unix', path: at(String(v.path ?? ''), id) },
        server: v.server !== false,
        wait: v.server !== false && v.wait === true,
        nodelay: false,
      }),
    },
    {
      value: 'tcp',
      label: 'TCP socket',
      fields: [
        { name: 'host', label: 'host', type: 'text', default: '127.0.0.1', min: 1, max: 255 },
        {
          name: 'port',
          label: 'port',
          type: 'number',
          default: 0,
          min: 0,
          max: 65535,
          title: '0: any free port',
        },
        ...SERVER_FIELDS,
      ],
      build: (v, _id) => ({
        kind: 'socket',
        address: {
          type: 'tcp',
          host: String(v.host ?? '127.0.0.1'),
          port: String(v.port ?? 0),
        },
        server: v.server !== false,
        wait: v.server !== false && v.wait === true,
        nodelay: false,
      }),
    },
  ],
});

/** Where libvirt puts a unix channel that names no path (its guest agent default). */
export const LIBVIRT_CHANNEL_DIR = '/var/lib/libvirt/qemu/channel/target';
