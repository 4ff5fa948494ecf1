/**
 * -chardev: checking the keys as QemuOpts does while the command line is
 * read, then building a Chardev the way QEMU creates one after the command
 * line is read (qemu_chr_new_from_opts: the backend's parse function, then
 * its open function's checks). Messages are QEMU 7.2's.
 */
import { machineError, note, type MachineError, type MachineNote } from './machine-error.js';
import {
  boolMessage,
  parseBool,
  parseNumberOpt,
  parseSizeOpt,
  type OptPair,
} from './qemu-options.js';
import {
  CHARDEV_BACKEND_NAMES,
  CHARDEV_OPTS,
  COMMON_CHARDEV_KEYS,
  MODELLED_CHARDEV_KEYS,
} from './qemu-tables.js';
import {
  DEFAULT_RINGBUF_SIZE,
  type Chardev,
  type ChardevBackend,
  type SocketAddress,
} from './topology.js';

/**
 * opt_validate for the chardev option list: an unknown key is refused and
 * typed keys are parsed. Returns the first problem, with the key and the
 * element as written.
 */
export function checkChardevPairs(pairs: readonly OptPair[]): MachineError | undefined {
  for (const pair of pairs) {
    if (pair.key === 'id') continue;
    const type = CHARDEV_OPTS.get(pair.key);
    if (type === undefined) {
      return machineError('InvalidParameter', `Invalid parameter '${pair.key}'`, {
        key: pair.key,
        token: pair.raw,
      });
    }
    const where = { key: pair.key, token: pair.raw };
    if (type === 'bool' && parseBool(pair.value) === undefined) {
      return machineError('InvalidValue', boolMessage(pair.key), where);
    }
    if (type === 'number') {
      const n = parseNumberOpt(pair.key, pair.value);
      if (typeof n !== 'bigint') return machineError('InvalidValue', n.message, where);
    }
    if (type === 'size') {
      const n = parseSizeOpt(pair.key, pair.value);
      if (typeof n !== 'bigint') return machineError('InvalidValue', n.message, where);
    }
  }
  return undefined;
}

/** The pairs of one -chardev (or of a shorthand turned into one), QEMU's "last one wins" applied. */
export class ChardevOpts {
  private readonly values = new Map<string, string>();
  private readonly raws = new Map<string, string>();

  constructor(
    readonly id: string | undefined,
    pairs: readonly OptPair[],
  ) {
    for (const p of pairs) {
      if (p.key === 'id') continue;
      this.values.set(p.key, p.value);
      this.raws.set(p.key, p.raw);
    }
  }

  get(key: string): string | undefined {
    return this.values.get(key);
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.values.get(key);
    return v === undefined ? fallback : (parseBool(v) ?? fallback);
  }

  number(key: string): bigint | undefined {
    const v = this.values.get(key);
    if (v === undefined) return undefined;
    const n = parseNumberOpt(key, v);
    return typeof n === 'bigint' ? n : undefined;
  }

  size(key: string): bigint | undefined {
    const v = this.values.get(key);
    if (v === undefined) return undefined;
    const n = parseSizeOpt(key, v);
    return typeof n === 'bigint' ? n : undefined;
  }

  keys(): string[] {
    return [...this.values.keys()];
  }

  raw(key: string): string | undefined {
    return this.raws.get(key);
  }
}

/** What chardev creation needs to know about the rest of the command line. */
export interface ChardevContext {
  /** True once a stdio chardev exists (char-stdio.c allows one). */
  stdioInUse: boolean;
  /** -daemonize was given: stdio cannot be used. */
  daemonize: boolean;
}

export type ChardevBuild =
  { ok: true; chardev: Chardev; notes: MachineNote[] } | { ok: false; error: MachineError };

const ALIASES: Readonly<Record<string, string>> = { tty: 'serial', parport: 'parallel' };

function backendError(
  message: string,
  key?: string,
  opts?: ChardevOpts,
): { ok: false; error: MachineError } {
  const where = key === undefined ? {} : { key, token: opts?.raw(key) ?? key };
  return { ok: false, error: machineError('BackendOption', message, where) };
}

/** qemu_chr_new_from_opts: parse and open, or QEMU's refusal. */
export function buildChardev(opts: ChardevOpts, ctx: ChardevContext): ChardevBuild {
  const notes: MachineNote[] = [];
  if (opts.id === undefined) {
    return { ok: false, error: machineError('MissingId', 'chardev: no id specified') };
  }
  const id = opts.id;
  const name = opts.get('backend');
  if (name === undefined) {
    return { ok: false, error: machineError('MissingBackend', `chardev: "${id}" missing backend`) };
  }
  if (!CHARDEV_BACKEND_NAMES.has(name)) {
    return {
      ok: false,
      error: machineError('UnknownBackend', `'${name}' is not a valid char driver name`, {
        key: 'backend',
        token: name,
      }),
    };
  }
  const alias = ALIASES[name];
  if (alias !== undefined) {
    notes.push(
      note('Deprecated', `The alias '${name}' is deprecated, use '${alias}' instead`, {
        token: name,
      }),
    );
  }
  const driver = alias ?? name;

  const built = buildBackend(driver, opts, ctx);
  if (!built.ok) return built;
  const backend = built.backend;
  if (backend.kind === 'other') {
    notes.push(
      note('Ignored', `chardev '${id}' uses backend '${driver}', which vmchan does not emulate`, {
        token: driver,
      }),
    );
  }

  const chardev: Chardev = {
    id,
    backend,
    mux: opts.bool('mux', false),
    logappend: opts.bool('logappend', false),
  };
  const logfile = opts.get('logfile');
  if (logfile !== undefined) chardev.logfile = logfile;

  const modelled = new Set([
    ...COMMON_CHARDEV_KEYS,
    ...(MODELLED_CHARDEV_KEYS[backend.kind] ?? []),
  ]);
  const ignored: Record<string, string> = {};
  for (const key of opts.keys()) {
    if (modelled.has(key)) continue;
    ignored[key] = opts.get(key) ?? '';
    notes.push(
      note('Ignored', `chardev '${id}': '${key}' is kept as written but not modelled`, {
        key,
        token: opts.raw(key) ?? key,
      }),
    );
  }
  if (Object.keys(ignored).length > 0) chardev.ignoredKeys = ignored;
  return { ok: true, chardev, notes };
}

type BackendBuild = { ok: true; backend: ChardevBackend } | { ok: false; error: MachineError };

function buildBackend(driver: string, opts: ChardevOpts, ctx: ChardevContext): BackendBuild {
  const path = opts.get('path');
  switch (driver) {
    case 'socket':
      return buildSocket(opts);
    case 'pipe':
      if (path === undefined) return backendError('chardev: pipe: no device path given');
      return { ok: true, backend: { kind: 'pipe', path } };
    case 'file':
      if (path === undefined) return backendError('chardev: file: no filename given');
      return { ok: true, backend: { kind: 'file', path, append: opts.bool('append', false) } };
    case 'serial':
      if (path === undefined) return backendError('chardev: serial/tty: no device path given');
      return { ok: true, backend: { kind: 'serial', path } };
    case 'pty':
      return { ok: true, backend: { kind: 'pty' } };
    case 'null':
      return { ok: true, backend: { kind: 'null' } };
    case 'stdio':
      if (ctx.daemonize) return backendError('cannot use stdio with -daemonize');
      if (ctx.stdioInUse) return backendError('cannot use stdio by multiple character devices');
      return { ok: true, backend: { kind: 'stdio' } };
    case 'ringbuf':
    case 'memory':
      return buildRingbuf(opts);
    case 'udp':
      return buildUdp(opts);
    default:
      return { ok: true, backend: { kind: 'other', driver } };
  }
}

/** The largest power of two QEMU's int holds. */
const MAX_RINGBUF_SIZE = 1n << 30n;

function buildRingbuf(opts: ChardevOpts): BackendBuild {
  // ringbuf_chr_parse keeps the size in an int: 0 (absent, or a multiple of
  // 4 GiB) means the default, anything that wraps negative fails the
  // power-of-two check.
  const raw = opts.size('size') ?? 0n;
  // QEMU would wrap a size past its int (64G becomes 0, the default 64K) without a
  // word; vmchan refuses it instead of silently giving another size (issue 13).
  if (raw > MAX_RINGBUF_SIZE) {
    return backendError(
      `size of ringbuf chardev must be at most 1G (${opts.get('size') ?? String(raw)} does not fit QEMU's int)`,
      'size',
      opts,
    );
  }
  const asInt = Number(BigInt.asIntN(32, raw));
  const size = asInt === 0 ? DEFAULT_RINGBUF_SIZE : asInt;
  if (size < 0 || (size & (size - 1)) !== 0) {
    return backendError('size of ringbuf chardev must be power of two', 'size', opts);
  }
  return { ok: true, backend: { kind: 'ringbuf', size } };
}

function buildUdp(opts: ChardevOpts): BackendBuild {
  const port = opts.get('port');
  if (port === undefined || port === '')
    return backendError('chardev: udp: remote port not specified');
  const host = opts.get('host');
  const backend: ChardevBackend = {
    kind: 'udp',
    host: host === undefined || host === '' ? 'localhost' : host,
    port,
  };
  const localaddr = opts.get('localaddr');
  const localport = opts.get('localport');
  if (localaddr !== undefined && localaddr !== '') backend.localaddr = localaddr;
  if (localport !== undefined && localport !== '') backend.localport = localport;
  return { ok: true, backend };
}

/** qemu_chr_parse_socket, then qmp_chardev_validate_socket's checks. */
function buildSocket(opts: ChardevOpts): BackendBuild {
  const path = opts.get('path');
  const host = opts.get('host');
  const port = opts.get('port');
  const fd = opts.get('fd');
  if ([path, fd, host].filter((v) => v !== undefined).length > 1) {
    return backendError("None or one of 'path', 'fd' or 'host' option required.");
  }
  if (host !== undefined && port === undefined)
    return backendError('chardev: socket: no port given');
  if (opts.has('delay') && opts.has('nodelay')) {
    return backendError("'delay' and 'nodelay' are mutually exclusive");
  }
  const nodelay = !opts.bool('delay', true) || opts.bool('nodelay', false);
  const server = opts.bool('server', false);
  const hasReconnect = opts.has('reconnect');
  const tlsCreds = opts.get('tls-creds');

  let address: SocketAddress;
  if (path !== undefined) address = { type: 'unix', path };
  else if (host !== undefined) address = { type: 'tcp', host, port: port ?? '' };
  else if (fd !== undefined) address = { type: 'fd', fd };
  else {
    // QEMU 7.0+ accepts a socket with no address only for its own internal
    // subclasses; from the command line it has nothing to listen on.
    return backendError('chardev: socket: no address given (path=, host= or fd=)');
  }

  if (address.type === 'fd' && hasReconnect) {
    return backendError(
      "'reconnect' option is incompatible with 'fd' address type",
      'reconnect',
      opts,
    );
  }
  if (address.type === 'fd' && tlsCreds !== undefined && !server) {
    return backendError(
      "'tls_creds' option is incompatible with 'fd' address type as client",
      'tls-creds',
      opts,
    );
  }
  if (address.type === 'unix' && tlsCreds !== undefined) {
    return backendError(
      "'tls_creds' option is incompatible with 'unix' address type",
      'tls-creds',
      opts,
    );
  }
  if (opts.has('tls-authz') && tlsCreds === undefined) {
    return backendError("'tls_authz' option requires 'tls_creds' option", 'tls-authz', opts);
  }
  if (server && hasReconnect) {
    return backendError(
      "'reconnect' option is incompatible with socket in server listen mode",
      'reconnect',
      opts,
    );
  }
  if (!server && opts.bool('websocket', false)) {
    return backendError('Websocket client is not implemented', 'websocket', opts);
  }
  if (!server && opts.has('wait')) {
    return backendError(
      "'wait' option is incompatible with socket in client connect mode",
      'wait',
      opts,
    );
  }

  const backend: ChardevBackend = {
    kind: 'socket',
    address,
    server,
    wait: server && opts.bool('wait', true),
    nodelay,
  };
  if (hasReconnect) {
    // QAPI keeps reconnect as int64; a "negative" value never reconnects.
    const r = BigInt.asIntN(64, opts.number('reconnect') ?? 0n);
    backend.reconnect = r > 0n ? Number(r) : 0;
  }
  return { ok: true, backend };
}
