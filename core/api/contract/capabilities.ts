/**
 * What a session (core/api/server/session.ts) may be able to do, and how a
 * snapshot says it: both faces need these words, the service to refuse a
 * command by the capability it lacks, the renderer to show or hide a control
 * with the session's reason as its tooltip (renderer/src/lib/attach.ts).
 */
/** What a session may be able to do; each one the app shows or hides as a whole. */
export const CAPABILITIES = [
  /** Add and remove virtio-serial devices. */
  'devices',
  /** Add and remove chardevs, plug and unplug ports. */
  'hotplug',
  /** Re-point a live port at another chardev; hang up its host application. */
  'rewire',
  /** Pause, run, step the engine one ring operation at a time. */
  'stepMode',
  /** Corrupt a ring on purpose (teaching). */
  'faults',
  /** Write bytes into a port as its host application. */
  'writeHost',
  /** Write bytes into a port as a guest program. */
  'writeGuest',
  /** The demo workloads. */
  'workloads',
  /** A terminal as the host application of a port. */
  'hostTerminal',
  /** A terminal as a guest program holding the port open. */
  'guestTerminal',
  /** The HMP console of the machine. */
  'monitor',
  /** Live capture into pcapng. */
  'capture',
  /** Export the machine as a QEMU command line or libvirt XML. */
  'exportConfig',
  /** The vring view: every descriptor, chain and the ring's history. */
  'vringHistory',
  /** Put a tap between a chardev and its host application. */
  'tap',
] as const;
export type Capability = (typeof CAPABILITIES)[number];

/** Whether a session can do one thing; when it cannot, why (shown as the control's tooltip). */
export type Can = { can: true } | { can: false; reason: string };
export type Capabilities = { readonly [K in Capability]: Can };
