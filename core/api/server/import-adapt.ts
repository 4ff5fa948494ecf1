/**
 * An imported configuration made runnable in the lab: what vmchan cannot
 * model is left out or changed, each with one note naming it, and the rest
 * imports. Today: a chardev of a backend vmchan has no model of (spicevmc,
 * spiceport: SPICE's) is skipped with the ports on it; a unix channel that
 * libvirt gives an automatic path (no <source>, so under
 * /var/lib/libvirt/qemu/channel/target) listens in the lab's directory
 * instead, as libvirt's would listen in its own.
 */
import * as path from 'node:path';
import { LIBVIRT_CHANNEL_DIR } from '../../machine/libvirt-source.js';
import type { Topology } from '../../machine/topology.js';

export interface ImportNote {
  kind: 'skipped' | 'changed';
  message: string;
}

export function adaptImport(
  t: Topology,
  channelDir: string,
): { topology: Topology; notes: ImportNote[] } {
  const notes: ImportNote[] = [];
  const dropped = new Set<string>();
  const chardevs = t.chardevs.flatMap((c) => {
    const b = c.backend;
    if (b.kind === 'other') {
      dropped.add(c.id);
      const users = t.ports.filter((p) => p.chardev === c.id).map((p) => p.name ?? p.id ?? '?');
      notes.push({
        kind: 'skipped',
        message: `skipped chardev '${c.id}' (${b.driver})${users.length > 0 ? ` and its port ${users.join(', ')}` : ''}: vmchan has no model of ${b.driver} (a SPICE channel); the rest is imported`,
      });
      return [];
    }
    if (
      b.kind === 'socket' &&
      b.address.type === 'unix' &&
      path.dirname(b.address.path) === LIBVIRT_CHANNEL_DIR
    ) {
      const to = path.join(channelDir, path.basename(b.address.path));
      notes.push({
        kind: 'changed',
        message: `changed chardev '${c.id}': a unix channel without <source> gets an automatic path from libvirt (${b.address.path}); here it listens at ${to}`,
      });
      return [
        {
          ...c,
          backend: {
            ...b,
            address: { type: 'unix' as const, path: to },
            server: true,
            wait: false,
          },
        },
      ];
    }
    return [c];
  });
  const ports = t.ports.filter((p) => p.chardev === undefined || !dropped.has(p.chardev));
  return { topology: { ...t, chardevs, ports }, notes };
}
