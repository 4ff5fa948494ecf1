/**
 * Monitors on a running machine: a QMP server (qmp-server.ts) for every
 * `-qmp` / `-mon mode=control`, an HMP server (hmp.ts) for every
 * `-monitor` / `-mon mode=readline`, each the frontend of its chardev.
 *
 *   const monitors = attachMonitors(machine);   // from topology().monitors
 *   for (const e of monitors.errors) ...;        // a chardev missing or in use
 *   monitors.close();
 *
 *   const one = attachMonitor(machine, endpoint, 'control', { pretty: true });
 *
 * The monitors of one attachMonitors call share a hub: `quit` on any of
 * them sends SHUTDOWN to all its QMP sessions, then calls `onQuit` (default:
 * machine.close()).
 */
import type { RunningMachine } from '../machine/running.js';
import type { Monitor } from '../machine/topology.js';
import type { ChardevEndpoint } from '../serial/endpoint.js';
import { QemuError } from '../base/qemu-error.js';
import { HmpServer } from './hmp.js';
import { MonitorHub, type HubOptions } from './hub.js';
import { QmpServer } from './qmp-server.js';

export interface AttachedMonitors {
  close(): void;
  /** Monitors that could not start: their chardev does not exist or is held already. */
  readonly errors: readonly QemuError[];
}

export interface AttachOptions extends HubOptions {
  /** QMP only: indented replies (-mon ...,pretty=on). */
  pretty?: boolean;
}

/**
 * The endpoint a monitor takes. On a mux chardev (mon:stdio, mux=on) the
 * monitor takes the first free frontend, as QEMU's monitors (created before
 * any device) get the first ones.
 */
function monitorEndpoint(endpoint: ChardevEndpoint): ChardevEndpoint {
  const frontends = (endpoint as { frontends?: readonly ChardevEndpoint[] }).frontends;
  return frontends?.find((f) => !f.attached) ?? endpoint;
}

function start(
  machine: RunningMachine,
  hub: MonitorHub,
  endpoint: ChardevEndpoint,
  mode: Monitor['mode'],
  pretty: boolean,
): { close(): void } | QemuError {
  const server =
    mode === 'control'
      ? new QmpServer(machine, endpoint, hub, { pretty })
      : new HmpServer(machine, endpoint, hub);
  const refused = server.start();
  if (refused !== null) return refused;
  return server;
}

/** One monitor on one chardev endpoint. */
export function attachMonitor(
  machine: RunningMachine,
  endpoint: ChardevEndpoint,
  mode: Monitor['mode'],
  options: AttachOptions = {},
): { close(): void } | QemuError {
  const hub = new MonitorHub(machine, options);
  const monitor = start(machine, hub, endpoint, mode, options.pretty === true);
  if (monitor instanceof QemuError) {
    hub.close();
    return monitor;
  }
  return {
    close: () => {
      monitor.close();
      hub.close();
    },
  };
}

/** Every monitor the machine's topology lists. */
export function attachMonitors(
  machine: RunningMachine,
  options: HubOptions = {},
): AttachedMonitors {
  const hub = new MonitorHub(machine, options);
  const monitors: { close(): void }[] = [];
  const errors: QemuError[] = [];
  for (const m of machine.topology().monitors) {
    const endpoint = machine.chardev(m.chardev);
    if (endpoint === undefined) {
      errors.push(new QemuError(`chardev "${m.chardev}" not found`));
      continue;
    }
    const made = start(machine, hub, monitorEndpoint(endpoint), m.mode, m.pretty);
    if (made instanceof QemuError) errors.push(made);
    else monitors.push(made);
  }
  return {
    errors,
    close: () => {
      for (const m of monitors) m.close();
      hub.close();
    },
  };
}

export { HmpServer } from './hmp.js';
export { MonitorHub } from './hub.js';
export { QmpServer, timestamp } from './qmp-server.js';
export { JsonMessageParser, type JsonMessage } from './json-lexer.js';
export { QDict, toQemuJson, type QObject } from './qobject.js';
