/**
 * udp: datagrams to a remote host:port from localaddr:localport (H1). The
 * remote port must be a number from 1 to 65535 on every face (command
 * line, chardev-add, libvirt, the app): port 0 names no destination, and
 * an unchecked one used to end the whole process from inside Node's dgram
 * module (issue 13 item 5).
 */
import { z } from 'zod';
import { QemuError } from '../../base/qemu-error.js';
import { defineKind, SpecProblem } from '../kind.js';
import { addressFromWire, notEmulated, WIRE_ADDRESS, WIRE_COMMON } from './wire-address.js';

import { udpPortProblem } from '../udp-port.js';
export { udpPortProblem } from '../udp-port.js';

const schema = z.object({
  kind: z.literal('udp'),
  /** Remote host; QEMU fills in "localhost" when none is given. */
  host: z.string(),
  port: z.string().min(1),
  localaddr: z.string().optional(),
  localport: z.string().optional(),
});
export type UdpBackend = z.infer<typeof schema>;

function checked(b: UdpBackend): UdpBackend | SpecProblem {
  const remote = udpPortProblem(b.port, 'remote');
  if (remote !== null) return new SpecProblem(remote, 'port');
  const local = b.localport === undefined ? null : udpPortProblem(b.localport, 'local');
  if (local !== null) return new SpecProblem(local, 'localport');
  return b;
}

function make(
  host: string | undefined,
  port: string,
  localaddr: string | undefined,
  localport: string | undefined,
): UdpBackend {
  const b: UdpBackend = {
    kind: 'udp',
    host: host === undefined || host === '' ? 'localhost' : host,
    port,
  };
  if (localaddr !== undefined && localaddr !== '') b.localaddr = localaddr;
  if (localport !== undefined && localport !== '') b.localport = localport;
  return b;
}

export const udpKind = defineKind(schema, {
  qemu: {
    names: ['udp'],
    keys: ['host', 'port', 'localaddr', 'localport'],
    refused: {
      ipv4: 'address family restrictions (ipv4)',
      ipv6: 'address family restrictions (ipv6)',
    },
    parse(opts) {
      const port = opts.get('port');
      if (port === undefined || port === '')
        return new SpecProblem('chardev: udp: remote port not specified');
      return checked(make(opts.get('host'), port, opts.get('localaddr'), opts.get('localport')));
    },
    name: () => 'udp',
    print(b) {
      const pairs: Array<[string, string]> = [
        ['host', b.host],
        ['port', b.port],
      ];
      if (b.localaddr !== undefined) pairs.push(['localaddr', b.localaddr]);
      if (b.localport !== undefined) pairs.push(['localport', b.localport]);
      return pairs;
    },
  },
  libvirt: {
    types: ['udp'],
    read(src) {
      const remote = src.sources.find((s) => s.mode !== 'bind');
      const local = src.sources.find((s) => s.mode === 'bind');
      const port = remote?.service;
      if (port === undefined || port === '')
        return new SpecProblem('chardev: udp: remote port not specified');
      const b = checked(make(remote?.host, port, local?.host, local?.service));
      return b instanceof SpecProblem ? b : { backend: b };
    },
    write(b) {
      const sources = [];
      if (b.localaddr !== undefined || b.localport !== undefined) {
        sources.push({ attrs: { mode: 'bind', host: b.localaddr, service: b.localport } });
      }
      sources.push({ attrs: { mode: 'connect', host: b.host, service: b.port } });
      return { type: 'udp', sources };
    },
  },
  qmp: {
    branches: {
      udp: {
        ...WIRE_COMMON,
        remote: { type: WIRE_ADDRESS },
        local: { type: WIRE_ADDRESS, optional: true },
      },
    },
    read(_type, d) {
      const remote = addressFromWire(d.remote as Record<string, unknown>);
      if (remote instanceof QemuError) return remote;
      if (remote.type !== 'tcp') return notEmulated('udp chardevs on non-inet addresses');
      let localaddr: string | undefined;
      let localport: string | undefined;
      if (d.local !== undefined) {
        const local = addressFromWire(d.local as Record<string, unknown>);
        if (local instanceof QemuError) return local;
        if (local.type !== 'tcp') return notEmulated('udp chardevs on non-inet addresses');
        localaddr = local.host;
        localport = local.port;
      }
      const b = make(remote.host, remote.port, localaddr, localport);
      // chardev-add keeps the host as given (QEMU's QAPI has no default for it).
      b.host = remote.host;
      const ok = checked(b);
      return ok instanceof SpecProblem ? new QemuError(ok.message) : ok;
    },
    write(b) {
      const data: Record<string, unknown> = {
        remote: { type: 'inet', data: { host: b.host, port: b.port } },
      };
      if (b.localaddr !== undefined || b.localport !== undefined) {
        data.local = {
          type: 'inet',
          data: { host: b.localaddr ?? '', port: b.localport ?? '0' },
        };
      }
      return { type: 'udp', data };
    },
  },
  open: async (b, options) => (await import('../udp-backend.js')).UdpChardev.open(b, options),
});
