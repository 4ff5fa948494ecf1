/**
 * Guest agents in the simulated guest: whenever a port named
 * org.qemu.guest_agent.0 shows up in the guest (at boot or hot-plugged; its
 * udev link /dev/virtio-ports/org.qemu.guest_agent.0 appearing is the
 * trigger, as qemu-guest-agent.service is bound to that device), an agent
 * starts on it; when the link goes, the agent stops.
 *
 *   const agents = startGuestAgents(lab);
 *   ...
 *   agents.close();
 */
import type { Lab } from '../engine/lab.js';
import { AGENT_PORT_PATH, GuestAgent } from './agent.js';

export interface GuestAgents {
  close(): void;
  /** The agent running now, if any (for tests and the UI). */
  readonly current: GuestAgent | null;
}

export function startGuestAgents(lab: Lab): GuestAgents {
  let agent: GuestAgent | null = null;
  let closed = false;
  const launch = (): void => {
    if (closed || (agent !== null && agent.state !== 'stopped')) return;
    if (!lab.guest.namespace.exists(AGENT_PORT_PATH)) return;
    agent = new GuestAgent(lab.guest.files);
  };
  const unsubscribe = lab.events.on('guest-node', (e) => {
    if (e.path !== AGENT_PORT_PATH) return;
    if (e.action === 'add') launch();
    else agent?.stop();
  });
  launch();
  return {
    get current() {
      return agent;
    },
    close: () => {
      closed = true;
      unsubscribe();
      agent?.stop();
    },
  };
}

export { AGENT_PORT_NAME, AGENT_PORT_PATH, GuestAgent } from './agent.js';
