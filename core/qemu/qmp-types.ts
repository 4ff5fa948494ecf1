/**
 * The QMP wire shapes vmchan reads, as schemas: every message from QEMU is
 * checked here before the rest of the engine sees it, so a QEMU that
 * answers differently gives a named ProtocolError, not a crash further on.
 *
 * Shapes follow QEMU 7.2's qapi/*.json and the transcripts recorded from a
 * real QEMU 7.2 (test/fixtures/qemu-7.2-samples). Objects are loose: a newer
 * QEMU may add members, and the UI can still show them.
 */
import { z } from 'zod';
import type { JsonValue } from './json-stream.js';

/** QMP's uint64: a number while it is exact, a bigint above 2^53 (see json-stream.ts). */
export const u64 = z.union([z.number(), z.bigint()]);
export type U64 = z.infer<typeof u64>;

const jsonObject = z.record(z.string(), z.custom<JsonValue>());

// ---- protocol framing (docs/interop/qmp-spec) --------------------------------

export const greetingSchema = z.object({
  QMP: z.looseObject({
    version: z.looseObject({
      qemu: z.looseObject({ major: z.number(), minor: z.number(), micro: z.number() }),
      package: z.string(),
    }),
    capabilities: z.array(z.string()),
  }),
});

export interface QmpGreeting {
  version: { major: number; minor: number; micro: number };
  /** Distribution package string, e.g. "Debian 1:7.2+dfsg-7+deb12u18+b3". */
  package: string;
  /** Capabilities the server offers (QEMU 7.2: ["oob"]). */
  capabilities: string[];
}

export const errorReplySchema = z.looseObject({
  error: z.looseObject({ class: z.string(), desc: z.string() }),
  id: z.custom<JsonValue>().optional(),
});

export const eventSchema = z.looseObject({
  event: z.string(),
  data: jsonObject.optional(),
  timestamp: z.looseObject({ seconds: z.number(), microseconds: z.number() }),
});

/** An asynchronous event, with QEMU's timestamp and when we received it. */
export interface QmpEvent<D = Record<string, JsonValue>> {
  event: string;
  data: D;
  /** QEMU's wall-clock time of the event. */
  timestamp: { seconds: number; microseconds: number };
  /** The same as milliseconds since the epoch (fractional). */
  time: number;
  /** Date.now() when the event reached us. */
  receivedAt: number;
}

// ---- events vmchan understands (Q3) ------------------------------------------

export const vserportChangeSchema = z.looseObject({ id: z.string(), open: z.boolean() });
export const deviceDeletedSchema = z.looseObject({
  device: z.string().optional(),
  path: z.string(),
});
export const shutdownSchema = z.looseObject({ guest: z.boolean(), reason: z.string() });

export interface QmpEventMap {
  /** The guest opened or closed a virtio-serial port (rate-limited by QEMU to 1/s per port). */
  VSERPORT_CHANGE: z.infer<typeof vserportChangeSchema>;
  /** device_del finished: the guest released the device. */
  DEVICE_DELETED: z.infer<typeof deviceDeletedSchema>;
  /** QEMU is shutting down (after quit: reason "host-qmp-quit"). */
  SHUTDOWN: z.infer<typeof shutdownSchema>;
}

export const knownEventSchemas: { [K in keyof QmpEventMap]: z.ZodType<QmpEventMap[K]> } = {
  VSERPORT_CHANGE: vserportChangeSchema,
  DEVICE_DELETED: deviceDeletedSchema,
  SHUTDOWN: shutdownSchema,
};

// ---- command results ---------------------------------------------------------

/** query-chardev: one entry per chardev. */
export const chardevInfoSchema = z.looseObject({
  label: z.string(),
  /** e.g. "unix:/tmp/p1,server=on", or "disconnected:unix:..." while no peer is connected. */
  filename: z.string(),
  /** Whether the frontend (the port) has the chardev open: for a virtio port, guest-connected. */
  'frontend-open': z.boolean(),
});
export type ChardevInfo = z.infer<typeof chardevInfoSchema>;

/** chardev-add: pty backends report the slave path they made. */
export const chardevReturnSchema = z.looseObject({ pty: z.string().optional() });
export type ChardevReturn = z.infer<typeof chardevReturnSchema>;

/** qom-list. */
export const objectPropertyInfoSchema = z.looseObject({
  name: z.string(),
  type: z.string(),
  description: z.string().optional(),
  'default-value': z.custom<JsonValue>().optional(),
});
export type ObjectPropertyInfo = z.infer<typeof objectPropertyInfoSchema>;

/** query-commands. */
export const commandInfoSchema = z.looseObject({ name: z.string() });
export type CommandInfo = z.infer<typeof commandInfoSchema>;

/** x-query-virtio. */
export const virtioInfoSchema = z.looseObject({ path: z.string(), name: z.string() });
export type VirtioInfo = z.infer<typeof virtioInfoSchema>;

const deviceFeaturesSchema = z.looseObject({
  transports: z.array(z.string()),
  'dev-features': z.array(z.string()).optional(),
  'unknown-dev-features': u64.optional(),
});
export type VirtioDeviceFeatures = z.infer<typeof deviceFeaturesSchema>;

/** x-query-virtio-status. */
export const virtioStatusSchema = z.looseObject({
  name: z.string(),
  'device-id': z.number(),
  'vhost-started': z.boolean(),
  'device-endian': z.string(),
  'guest-features': deviceFeaturesSchema,
  'host-features': deviceFeaturesSchema,
  'backend-features': deviceFeaturesSchema,
  'num-vqs': z.number(),
  status: z.looseObject({ statuses: z.array(z.string()) }),
  isr: z.number(),
  'queue-sel': z.number(),
  'vm-running': z.boolean(),
  broken: z.boolean(),
  disabled: z.boolean(),
  'use-started': z.boolean(),
  started: z.boolean(),
  'start-on-kick': z.boolean(),
  'disable-legacy-check': z.boolean(),
  'bus-name': z.string(),
  'use-guest-notifier-mask': z.boolean(),
  'vhost-dev': jsonObject.optional(),
});
export type VirtioStatus = z.infer<typeof virtioStatusSchema>;

/** x-query-virtio-queue-status. */
export const virtQueueStatusSchema = z.looseObject({
  name: z.string(),
  'queue-index': z.number(),
  inuse: z.number(),
  'vring-num': z.number(),
  'vring-num-default': z.number(),
  'vring-align': z.number(),
  'vring-desc': u64,
  'vring-avail': u64,
  'vring-used': u64,
  'last-avail-idx': z.number().optional(),
  'shadow-avail-idx': z.number().optional(),
  'used-idx': z.number(),
  'signalled-used': z.number(),
  'signalled-used-valid': z.boolean(),
});
export type VirtQueueStatus = z.infer<typeof virtQueueStatusSchema>;

/** x-query-virtio-queue-element. */
export const virtioQueueElementSchema = z.looseObject({
  name: z.string(),
  index: z.number(),
  descs: z.array(z.looseObject({ addr: u64, len: z.number(), flags: z.array(z.string()) })),
  avail: z.looseObject({ flags: z.number(), idx: z.number(), ring: z.number() }),
  used: z.looseObject({ flags: z.number(), idx: z.number() }),
});
export type VirtioQueueElement = z.infer<typeof virtioQueueElementSchema>;

export const emptyReturnSchema = z.looseObject({});

// ---- command arguments -------------------------------------------------------

/** QEMU 7.2's SocketAddressLegacy (the form chardev-add takes). */
export type SocketAddressLegacy =
  | { type: 'unix'; data: { path: string; abstract?: boolean; tight?: boolean } }
  | {
      type: 'inet';
      data: {
        host: string;
        /** A string in QAPI: a port number or a service name. */
        port: string;
        numeric?: boolean;
        to?: number;
        ipv4?: boolean;
        ipv6?: boolean;
      };
    }
  | { type: 'vsock'; data: { cid: string; port: string } }
  | { type: 'fd'; data: { str: string } };

/** Members every backend takes (qapi ChardevCommon). */
export interface ChardevCommon {
  logfile?: string;
  logappend?: boolean;
}

/** chardev-add's backend, QEMU 7.2 wire form: {type, data}. */
export type ChardevBackend =
  | {
      type: 'socket';
      data: ChardevCommon & {
        addr: SocketAddressLegacy;
        server?: boolean;
        wait?: boolean;
        nodelay?: boolean;
        telnet?: boolean;
        tn3270?: boolean;
        websocket?: boolean;
        reconnect?: number;
        'tls-creds'?: string;
        'tls-authz'?: string;
      };
    }
  | { type: 'ringbuf' | 'memory'; data: ChardevCommon & { size?: number } }
  | { type: 'file'; data: ChardevCommon & { out: string; in?: string; append?: boolean } }
  | { type: 'pipe' | 'serial' | 'parallel'; data: ChardevCommon & { device: string } }
  | {
      type: 'udp';
      data: ChardevCommon & { remote: SocketAddressLegacy; local?: SocketAddressLegacy };
    }
  | { type: 'pty' | 'null'; data: ChardevCommon };

/** Shorthands for the backends tests and the attach mode use most. */
export const chardevBackend = {
  /** A unix socket QEMU listens on (server=on); wait=off unless asked. */
  unixServer(path: string, options: { wait?: boolean } = {}): ChardevBackend {
    return {
      type: 'socket',
      data: { addr: { type: 'unix', data: { path } }, server: true, wait: options.wait ?? false },
    };
  },
  /** A unix socket QEMU connects to, retrying every `reconnect` seconds. */
  unixClient(path: string, reconnect?: number): ChardevBackend {
    return {
      type: 'socket',
      data: {
        addr: { type: 'unix', data: { path } },
        server: false,
        ...(reconnect === undefined ? {} : { reconnect }),
      },
    };
  },
  tcpServer(host: string, port: number, options: { wait?: boolean } = {}): ChardevBackend {
    return {
      type: 'socket',
      data: {
        addr: { type: 'inet', data: { host, port: String(port) } },
        server: true,
        wait: options.wait ?? false,
      },
    };
  },
  /** A ring buffer of `size` bytes (a power of two; QEMU's default is 64 KiB). */
  ringbuf(size?: number): ChardevBackend {
    return { type: 'ringbuf', data: size === undefined ? {} : { size } };
  },
  null(): ChardevBackend {
    return { type: 'null', data: {} };
  },
  pty(): ChardevBackend {
    return { type: 'pty', data: {} };
  },
  file(out: string, append?: boolean): ChardevBackend {
    return { type: 'file', data: append === undefined ? { out } : { out, append } };
  },
};

/** device_add arguments: the driver, an id, a bus and any device properties. */
export interface DeviceAddArgs {
  driver: string;
  id?: string;
  bus?: string;
  [property: string]: string | number | boolean | undefined;
}

/** What query-chardev's filename says about a socket chardev's peer. */
export interface ChardevFilename {
  /**
   * For socket chardevs: whether a peer is connected (QEMU prefixes the
   * filename with "disconnected:" while none is). Undefined for backends
   * that have no peer (ringbuf, file, pty, null...).
   */
  connected: boolean | undefined;
  /** The filename without the "disconnected:" prefix, e.g. "unix:/tmp/p1,server=on". */
  spec: string;
  /** The backend word before the first colon: unix, tcp, telnet, ringbuf, pty, ... */
  kind: string;
}

const SOCKET_KINDS = new Set(['unix', 'tcp', 'telnet', 'tn3270', 'websocket', 'vsock', 'fd']);

export function parseChardevFilename(filename: string): ChardevFilename {
  const disconnected = filename.startsWith('disconnected:');
  const spec = disconnected ? filename.slice('disconnected:'.length) : filename;
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const connected = disconnected ? false : SOCKET_KINDS.has(kind) ? true : undefined;
  return { connected, spec, kind };
}
