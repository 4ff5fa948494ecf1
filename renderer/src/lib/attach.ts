/**
 * Attach mode in the window: what the app shows while it serves a real QEMU
 * (core/api/attach-session.ts) instead of the emulated lab.
 */
import type { AttachedInfo, TopologySnapshot } from '../../../core/api/contract.js';

/** Tooltips of the controls only the emulated lab has, while attached. */
export const LAB_ONLY_REASON = {
  step: 'Step mode needs the emulated lab: a real QEMU runs on its own. Detach to return to the lab.',
  inject:
    'Injecting bytes needs the emulated lab: on a real QEMU, connect your own program to the chardev socket.',
  guestTerminal:
    'Terminals on the guest side need the emulated lab: a real guest’s side belongs to the guest.',
  capture:
    'Capturing a real QEMU goes through a tap: vmchan attach --tap CHARDEV=LISTEN -w FILE (not in the app yet).',
  device: 'vmchan hot-plugs ports and chardevs into a real QEMU, not virtio-serial devices.',
} as const;

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
