/**
 * The reverse tap: for a socket chardev QEMU connects out with
 * (`server=off`; the host application listens). vmchan cannot sit on the
 * application's socket, so, with the user's explicit consent, it re-points
 * QEMU's chardev at a tap socket of its own with QMP `chardev-change`; the
 * tap connects on to the application's socket for each connection QEMU
 * makes, and captures every byte. On close the chardev is changed back to
 * the application's address, and QEMU reconnects there directly.
 *
 * What the user sees: the application's connection from QEMU closes and a
 * new one (from vmchan) arrives at once; the guest sees the host side go
 * and come back (PORT_OPEN 0, then 1). A `reconnect=` the chardev had is
 * kept when it is changed back.
 */
import type { CaptureSink } from '../capture/record.js';
import { attachError, type AttachError, type AttachFailure } from './attach-error.js';
import type { SocketSpec } from './attach-model.js';
import type { QmpClient } from './qmp-client.js';
import { isQmpError } from './qmp-error.js';
import { chardevBackend, type ChardevBackend } from './qmp-types.js';
import { ChardevTap, type TapPort } from './tap.js';

export interface ReverseTapOptions {
  qmp: QmpClient;
  chardev: string;
  /** The application's listening socket QEMU connects to (the chardev's address, server=off). */
  target: SocketSpec;
  /** Where QEMU is re-pointed: the tap's own unix socket. */
  listen: string;
  /** The user said yes to QEMU's chardev being changed for the length of the tap. */
  consent: boolean;
  /** The chardev's reconnect period (seconds), kept when it is changed back. */
  reconnect?: number;
  port?: TapPort;
  sink?: CaptureSink;
}

/** A client chardev backend for `spec` (what QEMU had, or the tap's). */
function clientBackend(spec: SocketSpec, reconnect?: number): ChardevBackend {
  if (spec.transport === 'unix') return chardevBackend.unixClient(spec.path, reconnect);
  return {
    type: 'socket',
    data: {
      addr: { type: 'inet', data: { host: spec.host, port: String(spec.port) } },
      server: false,
      ...(reconnect === undefined ? {} : { reconnect }),
    },
  };
}

export class ReverseTap {
  private closed = false;

  private constructor(
    readonly tap: ChardevTap,
    private readonly options: ReverseTapOptions,
  ) {}

  static async start(options: ReverseTapOptions): Promise<ReverseTap | AttachFailure> {
    if (!options.consent) {
      return attachError(
        'InvalidArgument',
        `chardev ${options.chardev}: QEMU connects out to ${describe(options.target)}; tapping it means re-pointing QEMU's chardev at vmchan with chardev-change until detach (the guest sees the host leave and come back): ask again with consent`,
      );
    }
    if (options.target.server) {
      return attachError(
        'InvalidArgument',
        `chardev ${options.chardev}: QEMU listens on it; use the in-place tap instead`,
      );
    }
    const tap = await ChardevTap.start({
      chardev: options.chardev,
      target: options.target,
      listen: options.listen,
      reverse: true,
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.sink !== undefined ? { sink: options.sink } : {}),
    });
    if (tap instanceof ChardevTap) {
      const changed = await options.qmp.chardevChange(
        options.chardev,
        chardevBackend.unixClient(options.listen),
      );
      if (isQmpError(changed)) {
        await tap.close();
        return changed;
      }
      return new ReverseTap(tap, options);
    }
    return tap;
  }

  /** Change QEMU's chardev back to the application's address, then stop the tap. */
  async close(): Promise<string> {
    if (this.closed) return `chardev ${this.options.chardev}: already changed back`;
    this.closed = true;
    const o = this.options;
    const back = await o.qmp.chardevChange(o.chardev, clientBackend(o.target, o.reconnect));
    await this.tap.close();
    return isQmpError(back)
      ? `chardev ${o.chardev}: QEMU refused to change back to ${describe(o.target)}: ${back.message}`
      : `chardev ${o.chardev}: QEMU connects to ${describe(o.target)} again, directly`;
  }
}

function describe(s: SocketSpec): string {
  return s.transport === 'unix' ? s.path : `${s.host}:${s.port}`;
}

export type { AttachError };
