/**
 * Attach mode in the window: what the app shows while it serves a real QEMU
 * (core/api/server/attach-session.ts) instead of the emulated lab.
 */
import type { AttachedInfo, TopologySnapshot } from '../../../core/api/contract/contract.js';
import type { Capability } from '../../../core/api/contract/capabilities.js';

/**
 * Whether what is served can do `capability` (core/api/contract/capabilities.ts), with
 * the session's reason when it cannot; a snapshot without the list (an
 * older service) can do everything.
 */
export function can(
  t: TopologySnapshot | null | undefined,
  capability: Capability,
): { can: boolean; reason: string | null } {
  const c = t?.capabilities?.[capability];
  if (c === undefined || c.can) return { can: true, reason: null };
  return { can: false, reason: c.reason };
}

/** The attached QEMU, or null while the lab is served. */
export function attachedOf(t: TopologySnapshot | null | undefined): AttachedInfo | null {
  return t?.attached ?? null;
}

/** A field a real QEMU cannot tell is shown as this. */
export const UNKNOWN = '—';

/** `text` unless the snapshot names `field` as unknown. */
export function known(
  snap: { unknown?: string[] | undefined } | undefined,
  field: string,
  text: string,
): string {
  return snap?.unknown?.includes(field) ? UNKNOWN : text;
}

export function isUnknown(snap: { unknown?: string[] | undefined } | undefined, field: string) {
  return snap?.unknown?.includes(field) ?? false;
}
