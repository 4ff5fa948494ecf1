/**
 * Reaching a guest's agent from the host: the agent channel's chardev is a
 * socket QEMU listens on (`-chardev socket,...,server=on`), and vmchan is its
 * one client while it speaks to qemu-ga. QEMU serves one client per
 * chardev, so a chardev someone else holds (libvirtd) is refused with the
 * reason instead of a connection that would wait unserved.
 *
 * Plain data in (what query-chardev tells about the chardev), so attach
 * mode's session and the CLI share the rule.
 */
import * as net from 'node:net';
import { QgaClient, QgaError, type QgaClientOptions } from './client.js';

export type AgentAddress =
  { transport: 'unix'; path: string } | { transport: 'tcp'; host: string; port: number };

/** The chardev of the agent's port as attach mode sees it. */
export interface AgentChardevView {
  id: string;
  filename: string;
  socket:
    | { transport: 'unix'; path: string; server: boolean }
    | { transport: 'tcp'; host: string; port: number; server: boolean }
    | null;
  /** A host peer is connected now (null: unknown). */
  connected: boolean | null;
}

/** Where vmchan connects to the agent chardev, or why it cannot. */
export function agentAddress(c: AgentChardevView): AgentAddress | string {
  if (c.socket === null || !c.socket.server)
    return `the agent channel (chardev ${c.id}, ${c.filename}) is not a socket QEMU listens on: vmchan cannot be its client`;
  if (c.connected === true)
    return `the agent channel (chardev ${c.id}) is held by another client (libvirtd?): qemu-ga answers one client at a time; tap it in place and open the console while that client is away`;
  return c.socket.transport === 'unix'
    ? { transport: 'unix', path: c.socket.path }
    : { transport: 'tcp', host: c.socket.host, port: c.socket.port };
}

export function addressText(a: AgentAddress): string {
  return a.transport === 'unix' ? a.path : `${a.host}:${a.port}`;
}

/** Connect to the agent channel at `a` and sync with the agent; the client, or why not. */
export async function connectAgent(
  a: AgentAddress,
  options: QgaClientOptions & { connectTimeoutMs?: number } = {},
): Promise<QgaClient | QgaError> {
  const socket =
    a.transport === 'unix'
      ? net.createConnection({ path: a.path })
      : net.createConnection({ host: a.host, port: a.port });
  const ms = options.connectTimeoutMs ?? 3000;
  const connected = await new Promise<string | null>((resolve) => {
    const timer = setTimeout(() => resolve(`no connection within ${ms} ms`), ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(null);
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      resolve(e.message);
    });
  });
  if (connected !== null) {
    socket.destroy();
    return new QgaError(
      'Closed',
      `cannot connect to the agent channel at ${addressText(a)}: ${connected}`,
    );
  }
  const client = await QgaClient.over(socket, options);
  return client;
}
