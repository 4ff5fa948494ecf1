/**
 * QEMU 7.2's SocketAddressLegacy ({type, data}), the address form
 * chardev-add takes for socket and udp backends, both ways.
 */
import { QemuError } from '../../base/qemu-error.js';
import type { WireData, WireType } from '../kind.js';

export const WIRE_ADDRESS: WireType = {
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

/** Members every chardev-add backend takes (ChardevCommon). */
export const WIRE_COMMON = {
  logfile: { type: 'str', optional: true },
  logappend: { type: 'bool', optional: true },
} as const;

export type PlainAddress =
  | { type: 'unix'; path: string }
  | { type: 'tcp'; host: string; port: string }
  | { type: 'fd'; fd: string };

export function notEmulated(what: string): QemuError {
  return new QemuError(`vmchan does not emulate ${what}`);
}

/** A visited SocketAddressLegacy as a plain address, or vmchan's refusal. */
export function addressFromWire(addr: WireData): PlainAddress | QemuError {
  const data = addr.data as WireData;
  switch (addr.type) {
    case 'unix':
      if (data.abstract === true) return notEmulated('abstract unix socket names');
      return { type: 'unix', path: data.path as string };
    case 'inet':
      if (data.to !== undefined) return notEmulated('port ranges (to)');
      if (data.ipv4 === true || data.ipv6 === true)
        return notEmulated('address family restrictions (ipv4, ipv6)');
      return { type: 'tcp', host: data.host as string, port: data.port as string };
    case 'fd':
      return { type: 'fd', fd: data.str as string };
    default:
      return notEmulated('vsock addresses');
  }
}

export function addressToWire(a: PlainAddress): Record<string, unknown> {
  switch (a.type) {
    case 'unix':
      return { type: 'unix', data: { path: a.path } };
    case 'tcp':
      return { type: 'inet', data: { host: a.host, port: a.port } };
    case 'fd':
      return { type: 'fd', data: { str: a.fd } };
  }
}
