/**
 * What the app itself does on the host side of a chardev: its terminal is
 * a host application like socat, a client of the chardev's socket, so
 * "write to the host side" sends through the same socket any program uses
 * (and QEMU's one-client-at-a-time rule applies to it too). The backends
 * themselves are core/chardev's, opened by core/machine's Machine.
 */
import * as net from 'node:net';
import * as path from 'node:path';
import { isMux, SocketChardev, type OpenChardev } from '../../chardev/index.js';
import type { Chardev } from '../../machine/topology.js';
import { backendFromForm } from '../../chardev/kinds/app-spec.js';
import { formChoices } from '../../chardev/kinds/index.js';
import type { ChardevFormChoice, ChardevSpec } from '../contract/contract.js';

/**
 * An API chardev spec in QEMU's terms, by the kind's record
 * (core/chardev/kinds/app-spec.ts); relative or empty paths go into
 * `runtimeDir`. A string names what is wrong.
 */
export function chardevFromSpec(spec: ChardevSpec, runtimeDir: string): Chardev | string {
  const at = (p: string, fallback: string): string =>
    p === '' ? path.join(runtimeDir, fallback) : path.isAbsolute(p) ? p : path.join(runtimeDir, p);
  const backend = backendFromForm(spec.id, spec.backend, at);
  if (typeof backend === 'string') return backend;
  return { id: spec.id, backend, mux: false, logappend: false };
}

/** The app's chardev form: every registered kind's choices, as plain data for the contract. */
export function chardevFormChoices(): ChardevFormChoice[] {
  return formChoices().map(({ choice }) => ({
    value: choice.value,
    label: choice.label,
    fields: choice.fields.map((f) => ({ ...f })),
  }));
}

/** The socket backend behind an open chardev (the base of a mux), if it is one. */
export function socketOf(backend: OpenChardev | undefined): SocketChardev | null {
  const base = backend === undefined ? undefined : isMux(backend) ? backend.base : backend;
  return base instanceof SocketChardev ? base : null;
}

/** The asynchronous failures of an open chardev (a mux's are its backend's). */
export function failuresOf(
  backend: OpenChardev | undefined,
): { count: number; last: string | null } | undefined {
  if (backend === undefined) return undefined;
  return (isMux(backend) ? backend.base : backend).failures;
}

/** Where a host application connects to a server socket chardev: a unix path or host:port. */
export function listenAddress(backend: OpenChardev | undefined): string | null {
  const a = socketOf(backend)?.listeningOn ?? null;
  if (a === null) return null;
  return a.type === 'unix' ? a.path : `${a.host}:${a.port}`;
}

/** The app's terminals on the host side, one client socket per chardev. */
export class HostTerminals {
  private readonly sockets = new Map<string, net.Socket>();

  has(chardev: string): boolean {
    return this.sockets.has(chardev);
  }

  /**
   * Send `bytes` as the chardev's host application: the terminal connects
   * first when nobody is there. Answers the count, or why not.
   */
  async write(
    chardev: string,
    backend: OpenChardev | undefined,
    bytes: Uint8Array,
  ): Promise<number | string> {
    let s = this.sockets.get(chardev);
    if (s === undefined) {
      if (backend?.connected) {
        return `chardev '${chardev}' has a host application already (QEMU takes one client at a time)`;
      }
      const a = socketOf(backend)?.listeningOn ?? null;
      if (a === null) {
        return `the app writes to a host side through a server socket chardev; '${chardev}' is not one`;
      }
      const made = await this.connect(chardev, a);
      if (typeof made === 'string') return made;
      s = made;
      // The backend adopts the client on its next turn: let it, then check it was not refused.
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (this.sockets.get(chardev) !== s)
        return `chardev '${chardev}' refused the app's connection`;
    }
    s.write(bytes);
    return bytes.length;
  }

  /** Hang up the terminal on `chardev`; false when it is not the host application. */
  drop(chardev: string): boolean {
    const s = this.sockets.get(chardev);
    if (s === undefined) return false;
    this.sockets.delete(chardev);
    s.destroy();
    return true;
  }

  closeAll(): void {
    for (const s of this.sockets.values()) s.destroy();
    this.sockets.clear();
  }

  private async connect(
    chardev: string,
    a: { type: 'unix'; path: string } | { type: 'tcp'; host: string; port: string },
  ): Promise<net.Socket | string> {
    const s =
      a.type === 'unix'
        ? net.createConnection({ path: a.path })
        : net.createConnection({ host: a.host, port: Number(a.port) });
    const ok = await new Promise<boolean>((resolve) => {
      s.once('connect', () => resolve(true));
      s.once('error', () => resolve(false));
    });
    if (!ok) return `cannot connect to ${a.type === 'unix' ? a.path : `${a.host}:${a.port}`}`;
    s.on('error', () => {});
    s.on('close', () => {
      if (this.sockets.get(chardev) === s) this.sockets.delete(chardev);
    });
    s.resume(); // what the guest sends back is shown by the capture, not kept here
    this.sockets.set(chardev, s);
    return s;
  }
}
