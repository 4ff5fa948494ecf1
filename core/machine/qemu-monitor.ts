/**
 * Monitors: -mon [chardev=]name[,mode=readline|control][,pretty=on|off],
 * and the shorthands -monitor DEV, -qmp DEV, -qmp-pretty DEV, which
 * monitor_parse (softmmu/vl.c) turns into a chardev named compat_monitorN
 * (N counts every -monitor/-qmp, including those given as `chardev:NAME`)
 * plus a -mon whose id is that same name.
 */
import { machineError, type MachineError } from './machine-error.js';
import { parseCompatChardev } from './qemu-compat.js';
import { boolMessage, parseBool, type OptPair } from './qemu-options.js';
import { claimChardev, type DeviceContext } from './qemu-device.js';
import type { Monitor } from './topology.js';

/** The -mon option list (monitor/monitor.c qemu_mon_opts). */
const MON_KEYS: ReadonlyMap<string, 'string' | 'bool'> = new Map([
  ['mode', 'string'],
  ['chardev', 'string'],
  ['pretty', 'bool'],
]);

export function checkMonPairs(pairs: readonly OptPair[]): MachineError | undefined {
  for (const pair of pairs) {
    if (pair.key === 'id') continue;
    const type = MON_KEYS.get(pair.key);
    const where = { key: pair.key, token: pair.raw };
    if (type === undefined)
      return machineError('InvalidParameter', `Invalid parameter '${pair.key}'`, where);
    if (type === 'bool' && parseBool(pair.value) === undefined) {
      return machineError('InvalidValue', boolMessage(pair.key), where);
    }
  }
  return undefined;
}

export interface MonOpts {
  id: string | undefined;
  values: Map<string, OptPair>;
}

export function monOpts(id: string | undefined, pairs: readonly OptPair[]): MonOpts {
  const values = new Map<string, OptPair>();
  for (const p of pairs) if (p.key !== 'id') values.set(p.key, p);
  return { id, values };
}

function pair(key: string, value: string): OptPair {
  return { key, value, form: 'pair', raw: `${key}=${value}` };
}

export type ShorthandMonitor =
  | { ok: true; label: string; chardevPairs: OptPair[] | undefined; mon: MonOpts }
  | { ok: false; message: string; kind: 'CompatSyntax' };

/** monitor_parse: `chardev:NAME` reuses a chardev, anything else is chardev shorthand. */
export function parseMonitorShorthand(
  spec: string,
  mode: 'control' | 'readline',
  pretty: boolean,
  index: number,
): ShorthandMonitor {
  let label: string;
  let chardevPairs: OptPair[] | undefined;
  if (spec.startsWith('chardev:')) {
    label = spec.slice('chardev:'.length);
  } else {
    label = `compat_monitor${index}`;
    const compat = parseCompatChardev(spec, true);
    if (!compat.ok) return { ok: false, message: compat.message, kind: 'CompatSyntax' };
    chardevPairs = compat.pairs;
  }
  const pairs = [pair('mode', mode), pair('chardev', label)];
  if (mode === 'control') pairs.push(pair('pretty', pretty ? 'on' : 'off'));
  return { ok: true, label, chardevPairs, mon: monOpts(label, pairs) };
}

export type MonitorBuild = { ok: true; monitor: Monitor } | { ok: false; error: MachineError };

/** monitor_init_opts then monitor_init, in the order the QAPI visitor reads the members. */
export function buildMonitor(opts: MonOpts, ctx: DeviceContext): MonitorBuild {
  const modePair = opts.values.get('mode');
  if (modePair !== undefined && modePair.value !== 'readline' && modePair.value !== 'control') {
    return {
      ok: false,
      error: machineError(
        'InvalidValue',
        `Parameter 'mode' does not accept value '${modePair.value}'`,
        {
          key: 'mode',
          token: modePair.raw,
        },
      ),
    };
  }
  const pretty = parseBool(opts.values.get('pretty')?.value ?? 'off') ?? false;
  const chardevPair = opts.values.get('chardev');
  if (chardevPair === undefined) {
    return { ok: false, error: machineError('MissingParameter', "Parameter 'chardev' is missing") };
  }
  const chardev = chardevPair.value;
  const where = { key: 'chardev', token: chardevPair.raw };
  if (!ctx.chardevs.has(chardev)) {
    return {
      ok: false,
      error: machineError('ChardevNotFound', `chardev "${chardev}" not found`, where),
    };
  }
  // On the command line HMP is allowed, so readline is the default.
  const mode = modePair?.value === 'control' ? 'control' : 'readline';
  if (mode === 'readline' && pretty) {
    return {
      ok: false,
      error: machineError('InvalidValue', "'pretty' is not compatible with HMP monitors", {
        key: 'pretty',
        token: opts.values.get('pretty')?.raw ?? 'pretty',
      }),
    };
  }
  if (claimChardev(ctx, chardev) === 'in-use') {
    return {
      ok: false,
      error: machineError('ChardevInUse', `Device '${chardev}' is in use`, where),
    };
  }
  const monitor: Monitor = { chardev, mode, pretty };
  if (opts.id !== undefined) monitor.id = opts.id;
  return { ok: true, monitor };
}
