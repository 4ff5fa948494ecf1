/**
 * What the tests on a real QEMU running the test guest (test/guest) share:
 * the prerequisite rule (without qemu-system-x86_64 or busybox-static the
 * block is skipped with a warning, except under CI=true, where it runs and
 * its beforeAll fails with the install command), a shell in the guest, a
 * poller, query-chardev by label and waits on it, a unix socket client,
 * unwrapping a QMP value, booting the guest with its QMP client connected,
 * and hot-plugging a port.
 */
import net from 'node:net';
import { describe } from 'vitest';
import { QmpClient } from '../../core/qemu/qmp-client.js';
import { isQmpError, type QmpError } from '../../core/qemu/qmp-error.js';
import type { ChardevBackend, ChardevInfo } from '../../core/qemu/qmp-types.js';
import { isGuestError, type RunResult } from '../guest/guest-shell.js';
import {
  INSTALL_HINT,
  missingPrerequisites,
  startGuest,
  type Guest,
  type PortSpec,
} from '../guest/qemu.js';

const missing = missingPrerequisites();
const inCi = process.env['CI'] === 'true';
/** What is missing to boot the guest, with the install command; '' when all is there. */
const missingText =
  missing.length > 0 ? `missing ${missing.join(', ')}; install with: ${INSTALL_HINT}` : '';

/**
 * A describe block on a real QEMU: skipped (warning `skipped` + what is
 * missing) when a prerequisite is missing, except under CI=true, where it
 * runs so that requirePrerequisites() fails it.
 */
export function describeRealGuest(title: string, skipped: string, body: () => void): void {
  if (missingText && !inCi) console.warn(`${skipped} skipped: ${missingText}`);
  describe.skipIf(missingText !== '' && !inCi)(
    `${title}${missingText ? ` (${missingText})` : ''}`,
    body,
  );
}

/** What is missing to boot the guest, with the install command (for e2e's prerequisites()). */
export function missingGuest(): string[] {
  return missingText ? [missingText] : [];
}

/** The first step of the block's beforeAll: fails with the install command when something is missing. */
export function requirePrerequisites(what: string): void {
  if (missingText) throw new Error(`cannot run ${what}: ${missingText}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `sh(command)` on the guest's shell; a GuestError fails the test. `guest` is read at each call. */
export function guestShell(
  guest: () => Guest,
): (command: string, timeoutMs?: number) => Promise<RunResult> {
  return async (command, timeoutMs) => {
    const r = await guest().shell.run(command, timeoutMs === undefined ? {} : { timeoutMs });
    if (isGuestError(r)) throw new Error(r.toString());
    return r;
  };
}

export type Until = <T>(
  what: string,
  probe: () => T | Promise<T>,
  done: (v: T) => boolean,
  timeoutMs?: number,
) => Promise<T>;

/**
 * `until(what, probe, done)`: probe every `stepMs` until `done` takes the
 * value; after `defaultTimeoutMs` (or the call's own) fails naming the last value.
 */
export function poller(defaultTimeoutMs: number, stepMs: number): Until {
  return async (what, probe, done, timeoutMs = defaultTimeoutMs) => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (done(v)) return v;
      if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)}`);
      await sleep(stepMs);
    }
  };
}

/** `chardev(label)`: QEMU's query-chardev entry for `label`. `qmp` is read at each call. */
export function chardevLookup(qmp: () => QmpClient): (label: string) => Promise<ChardevInfo> {
  return async (label) => {
    const list = await qmp().queryChardev();
    if (isQmpError(list)) throw new Error(list.toString());
    const entry = list.find((c) => c.label === label);
    if (!entry) throw new Error(`no chardev ${label} in ${JSON.stringify(list)}`);
    return entry;
  };
}

/** Waits on QEMU's view of a chardev (query-chardev), however the test asks QEMU. */
export interface ChardevWatch {
  /** QEMU sees a host client on the chardev (or none). */
  hostSeen(label: string, connected: boolean, what: string): Promise<ChardevInfo>;
  /** The guest has the port open (query-chardev's frontend-open). */
  guestOpened(label: string, what?: string): Promise<ChardevInfo>;
}

/** A ChardevWatch on `lookup` (chardevLookup, or libvirt's qemu-monitor-command), polled by `until`. */
export function chardevWatch(
  lookup: (label: string) => Promise<ChardevInfo>,
  until: Until,
): ChardevWatch {
  return {
    hostSeen: (label, connected, what) =>
      until(
        what,
        () => lookup(label),
        (c) => c.filename.startsWith('disconnected:') !== connected,
      ),
    guestOpened: (label, what = 'the guest opened the port') =>
      until(
        what,
        () => lookup(label),
        (c) => c['frontend-open'],
      ),
  };
}

/** A host application on a chardev's unix socket. */
export function connectUnix(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: socketPath }, () => resolve(s));
    s.once('error', reject);
  });
}

/** A QMP value for a test: a QmpError fails the test with its message. */
export function ok<T>(value: T | QmpError): T {
  if (isQmpError(value)) throw new Error(value.toString());
  return value;
}

/**
 * Boot the test guest with `ports` and connect a QMP client to it. Nobody
 * else holds the socket, so a slow greeting on a loaded machine is only
 * slowness: 15 s instead of the client's default 3. A failure throws with
 * QEMU's stderr and the tail of the guest's serial console.
 */
export async function bootGuestWithQmp(
  ports: PortSpec[],
): Promise<{ guest: Guest; qmp: QmpClient }> {
  const guest = await startGuest({ ports });
  if (isGuestError(guest)) throw new Error(guest.toString());
  const qmp = await QmpClient.connect(guest.qmpPath, { greetingTimeoutMs: 15_000 });
  if (isQmpError(qmp)) {
    const transcript = guest.shell.transcript.slice(-1500);
    await guest.stop();
    throw new Error(
      `${qmp.toString()}\nqemu stderr: ${guest.stderr()}\nguest serial (tail): ${transcript}`,
    );
  }
  return { guest, qmp };
}

/**
 * Hot-plug virtserialport `id` (guest name `name`) on vser0.0 over a new
 * chardev `c-<id>`, by QMP chardev-add and device_add, as a management
 * tool does; the same on a real QEMU and on the lab's QMP server.
 */
export async function hotplugPort(
  q: QmpClient,
  id: string,
  name: string,
  backend: ChardevBackend,
): Promise<void> {
  ok(await q.chardevAdd(`c-${id}`, backend));
  const added = await q.deviceAdd({
    driver: 'virtserialport',
    bus: 'vser0.0',
    chardev: `c-${id}`,
    name,
    id,
  });
  if (added !== undefined) throw new Error(`device_add ${id}: ${added.toString()}`);
}
