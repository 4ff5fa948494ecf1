/**
 * What a command reaches outside the lab: files it writes or reads and
 * addresses it listens on beyond loopback. A face lets such a command run
 * only when the person at the window agreed to exactly that reach (web
 * mode: a confirmation in the window; Electron: a native dialog), so a
 * token alone never lets a page write any file the user can write or open
 * the lab to the network (issue 13, item 1).
 *
 * Pure: shared by the server (which checks) and the client (which asks).
 */
import { parseQemuCommandLine } from '../../machine/qemu-cmdline.js';
import { topologyFromLibvirtXml } from '../../machine/libvirt-xml.js';
import { backendFromForm } from '../../chardev/kinds/app-spec.js';
import type { Chardev } from '../../machine/topology.js';
import { CommandSchema, type ChardevBackendSpec } from './contract.js';

export type ReachKind = 'write' | 'read' | 'listen';

export interface Reach {
  readonly kind: ReachKind;
  /** A file path, or HOST for `listen`. */
  readonly target: string;
}

/** The key a confirmation carries: `write:/tmp/x.pcapng`. */
export function reachKey(r: Reach): string {
  return `${r.kind}:${r.target}`;
}

/** One line for a confirmation dialog. */
export function describeReach(reach: readonly Reach[]): string {
  const words: Record<ReachKind, string> = {
    write: 'write the file',
    read: 'read the file',
    listen: 'listen for connections on',
  };
  return reach.map((r) => `${words[r.kind]} ${r.target}`).join('; ');
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost', '[::1]']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host.toLowerCase()) || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * The reach of a chardev the app's form describes: the backend exactly as it
 * would be made (the kind's record fills the form's defaults, core/chardev/
 * kinds/app-spec.ts), then the same rule as an import. A path that is empty
 * or relative lands in the lab's own runtime directory: no reach.
 */
function specReach(spec: ChardevBackendSpec | undefined): Reach[] {
  if (spec === undefined) return [];
  const inLab = (p: string): string => (p === '' || !p.startsWith('/') ? '' : p);
  const backend = backendFromForm('reach', spec, inLab);
  if (typeof backend === 'string') return []; // refused later, with its own message
  return chardevReach({ id: 'reach', backend, mux: false, logappend: false });
}

/** The reach of the chardevs of an imported configuration. */
function chardevReach(c: Chardev): Reach[] {
  const out: Reach[] = [];
  const b = c.backend;
  switch (b.kind) {
    case 'file':
      out.push({ kind: 'write', target: b.path });
      break;
    case 'pipe':
    case 'serial':
      out.push({ kind: 'write', target: b.path });
      break;
    case 'socket':
      if (b.address.type === 'unix') out.push({ kind: 'write', target: b.address.path });
      else if (b.address.type === 'tcp' && b.server && !isLoopbackHost(b.address.host || '0.0.0.0'))
        out.push({ kind: 'listen', target: b.address.host || '0.0.0.0' });
      break;
    case 'udp':
      if (b.localaddr !== undefined && b.localaddr !== '' && !isLoopbackHost(b.localaddr))
        out.push({ kind: 'listen', target: b.localaddr });
      break;
    default:
      break;
  }
  if (c.logfile !== undefined) out.push({ kind: 'write', target: c.logfile });
  return out.filter((r) => r.target !== '');
}

function importReach(format: 'qemu' | 'libvirt', text: string): Reach[] {
  const parsed = format === 'qemu' ? parseQemuCommandLine(text) : topologyFromLibvirtXml(text);
  if (!parsed.ok) return [];
  return parsed.value.chardevs.flatMap(chardevReach);
}

/** Everything `command` reaches outside the lab; [] for a command that does not parse. */
export function reachOf(command: unknown): Reach[] {
  const r = CommandSchema.safeParse(command);
  if (!r.success) return [];
  const c = r.data;
  let out: Reach[];
  switch (c.cmd) {
    case 'startCapture':
      out = c.path === undefined || c.path === '' ? [] : [{ kind: 'write', target: c.path }];
      break;
    case 'saveCapture':
      out = [{ kind: 'write', target: c.path }];
      break;
    case 'openCapture':
      out = [{ kind: 'read', target: c.path }];
      break;
    case 'createChardev':
      out = specReach(c.chardev.backend);
      break;
    case 'hotplugPort':
      out = specReach(c.port.newChardev?.backend);
      break;
    case 'connectHost':
      out = specReach(c.newChardev?.backend);
      break;
    case 'importConfig':
      out = importReach(c.format, c.text);
      break;
    default:
      out = [];
  }
  const byKey = new Map(out.map((x) => [reachKey(x), x]));
  return [...byKey.values()];
}

/** The reach `command` has that `confirmed` (keys) does not cover. */
export function unconfirmedReach(command: unknown, confirmed: readonly string[]): Reach[] {
  const ok = new Set(confirmed);
  return reachOf(command).filter((r) => !ok.has(reachKey(r)));
}
