/**
 * A real libvirtd running a transient domain of the test guest, for the
 * libvirt tests (libvirt-real.test.ts) and the app's end-to-end attach by
 * domain name (test/e2e/attach-domain.test.ts).
 *
 * No systemd on these machines: when `virsh -c qemu:///system version` does
 * not answer, the rig starts `virtlogd` and `libvirtd` itself (both as
 * root). Test files run in parallel, so the daemons are shared: each user
 * notes its pid in a directory, the pids of daemons a rig started go in a
 * file beside, and the last user to leave stops them by pid (SIGTERM, then
 * SIGKILL after 5 s); joining and leaving hold a lock file, one file at a
 * time. Daemons that were running before any test are never
 * touched.
 *
 * The domain: `<domain type='qemu'>` (TCG), the guest's kernel and initramfs
 * under <os>, a virtio-serial controller, a unix channel org.test.ch1, the
 * guest agent channel org.qemu.guest_agent.0 (libvirtd's), and the guest's
 * shell on a unix <serial> (GuestShell).
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'vitest';
import { GuestShell, isGuestError } from '../guest/guest-shell.js';
import { buildGuest } from '../guest/qemu.js';
import type { ChardevInfo } from '../../core/qemu/qmp-types.js';
import { chardevWatch, poller, type ChardevWatch } from './real-guest.js';

export const LIBVIRT_INSTALL =
  'apt-get install --no-install-recommends libvirt-daemon-system libvirt-clients libvirt-clients-qemu libvirt-daemon-driver-qemu python3-libvirt';
export const URI = 'qemu:///system';
const TOOLS = ['virsh', 'libvirtd', 'virtlogd', 'virt-qemu-qmp-proxy'];
const which = (t: string): boolean =>
  spawnSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).status === 0;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** What keeps the libvirt tests from running here, with the install command; '' when nothing. */
export function libvirtProblem(): string {
  const missing = TOOLS.filter((t) => !which(t));
  if (missing.length > 0) return `missing ${missing.join(', ')}; install with: ${LIBVIRT_INSTALL}`;
  if (!isRoot) return 'libvirtd is started as root by this test: run it as root';
  return '';
}

/** A describe block on a real libvirtd: skipped with the problem, except under CI=true (fails). */
export function describeLibvirt(title: string, body: () => void): void {
  const problem = libvirtProblem();
  const inCi = process.env['CI'] === 'true';
  if (problem && !inCi) console.warn(`libvirt tests skipped: ${problem}`);
  describe.skipIf(problem !== '' && !inCi)(`${title}${problem ? ` (${problem})` : ''}`, body);
}

export const virsh = (...args: string[]) =>
  spawnSync('virsh', ['-c', URI, ...args], { encoding: 'utf8', timeout: 30_000 });
const answers = (): boolean => virsh('version').status === 0;
const until = poller(120_000, 200);

// ---- the shared daemons ------------------------------------------------------------------------

const SHARED = path.join(os.tmpdir(), 'vmchan-libvirt-rig');
const DAEMONS = path.join(SHARED, 'daemons.json');
const userFile = (pid: number): string => path.join(SHARED, `user-${pid}`);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function startedPids(): number[] {
  try {
    const v = JSON.parse(fs.readFileSync(DAEMONS, 'utf8')) as unknown;
    return Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : [];
  } catch {
    return [];
  }
}

const LOCK = path.join(SHARED, 'lock');

/** The pid in the lock file; null when there is none. */
function lockOwner(): number | null {
  try {
    return Number(fs.readFileSync(LOCK, 'utf8'));
  } catch {
    return null;
  }
}

/** Take the rig's lock (a file holding the owner's pid); a dead owner's lock is taken over. */
function tryLock(): boolean {
  try {
    fs.writeFileSync(LOCK, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    const owner = lockOwner();
    if (owner === null) return false; // released meanwhile: the next try takes it
    if (Number.isInteger(owner) && owner > 0 && !alive(owner)) fs.rmSync(LOCK, { force: true });
    return false;
  }
}

/**
 * `fn` with the rig's lock held: test files start and stop the shared daemons
 * one at a time, so that no file stops them while another is joining, and
 * no two files start them together.
 */
async function locked<T>(fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(SHARED, { recursive: true, mode: 0o700 });
  await until(
    'the libvirt rig’s lock (another test file starts or stops libvirtd)',
    tryLock,
    (ok) => ok,
  );
  try {
    return await fn();
  } finally {
    fs.rmSync(LOCK, { force: true });
  }
}

/** Join the users of libvirtd; start virtlogd and libvirtd when nothing answers. */
const acquireDaemons = (): Promise<void> => locked(joinDaemons);
async function joinDaemons(): Promise<void> {
  fs.writeFileSync(userFile(process.pid), '');
  if (answers()) return;
  const pids: number[] = [];
  for (const daemon of ['virtlogd', 'libvirtd']) {
    const child = spawn(daemon, [], { stdio: 'ignore' });
    child.on('error', () => {});
    child.unref();
    if (child.pid !== undefined) pids.push(child.pid);
  }
  fs.writeFileSync(DAEMONS, JSON.stringify([...startedPids().filter(alive), ...pids]));
  await until('virsh -c qemu:///system version answers', answers, (ok) => ok, 60_000);
}

/** Leave; the last user stops the daemons a rig started. */
const releaseDaemons = (): Promise<void> => locked(leaveDaemons);
async function leaveDaemons(): Promise<void> {
  fs.rmSync(userFile(process.pid), { force: true });
  const others = fs
    .readdirSync(SHARED)
    .filter((f) => f.startsWith('user-'))
    .map((f) => Number(f.slice('user-'.length)))
    .filter((pid) => pid !== process.pid && alive(pid));
  if (others.length > 0) return;
  const pids = startedPids();
  fs.rmSync(DAEMONS, { force: true });
  for (const pid of pids.filter(alive)) {
    process.kill(pid, 'SIGTERM');
    // A daemon gets 5 s to stop on SIGTERM; one still running then is killed.
    const stopped = await until(
      `libvirt daemon ${pid} to stop on SIGTERM`,
      () => !alive(pid),
      (gone) => gone,
      5000,
    )
      .then(() => true)
      .catch(() => false);
    if (!stopped) process.kill(pid, 'SIGKILL');
  }
}

/** query-chardev's entry for `label`, through libvirtd (it owns the monitor). */
function monitorChardev(domain: string, label: string): Promise<ChardevInfo> {
  return new Promise((resolve, reject) =>
    execFile(
      'virsh',
      ['-c', URI, 'qemu-monitor-command', domain, '{"execute":"query-chardev"}'],
      { encoding: 'utf8', timeout: 30_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`virsh qemu-monitor-command: ${stderr.trim()}`));
        const list = (JSON.parse(stdout) as { return: ChardevInfo[] }).return;
        const entry = list.find((c) => c.label === label);
        if (entry) resolve(entry);
        else reject(new Error(`no chardev ${label} in ${stdout.trim()}`));
      },
    ),
  );
}

// ---- the domain --------------------------------------------------------------------------------

export interface LibvirtDomain {
  name: string;
  uri: string;
  runDir: string;
  /** The guest agent channel's socket (QEMU listens; libvirtd connects). */
  agentPath: string;
  /** org.test.ch1's socket. */
  ch1Path: string;
  /** The guest's shell on its serial port. */
  shell: GuestShell;
  /** QEMU's view of a chardev, asked through libvirtd (`virsh qemu-monitor-command`). */
  watch: ChardevWatch;
  /** Destroy the domain, leave the daemons (the last user stops them), remove the run directory. */
  close(): Promise<void>;
}

/** Start the daemons if needed and create the transient domain; its shell answers when this resolves. */
export async function startLibvirtDomain(tmpPrefix: string): Promise<LibvirtDomain> {
  const problem = libvirtProblem();
  if (problem) throw new Error(`cannot run the libvirt tests: ${problem}`);
  await acquireDaemons();
  const name = `vmchan-test-${process.pid}-${tmpPrefix.replace(/[^a-z0-9]/gi, '')}`;
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), tmpPrefix));
  const close = async (): Promise<void> => {
    virsh('destroy', name);
    await releaseDaemons();
    fs.rmSync(runDir, { recursive: true, force: true });
  };
  try {
    const image = buildGuest();
    if (isGuestError(image)) throw new Error(image.toString());
    // QEMU runs as root here (static DAC label): the guest files may stay where they are.
    const xml = `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type>
    <kernel>${image.kernel}</kernel><initrd>${image.initrd}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline></os>
  <on_reboot>destroy</on_reboot>
  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>
  <devices>
    <controller type='virtio-serial' index='0'/>
    <channel type='unix'><source mode='bind' path='${runDir}/ch1.sock'/>
      <target type='virtio' name='org.test.ch1'/></channel>
    <channel type='unix'><source mode='bind' path='${runDir}/agent.sock'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <serial type='unix'><source mode='bind' path='${runDir}/ttyS0.sock'/>
      <target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>`;
    const file = path.join(runDir, 'domain.xml');
    fs.writeFileSync(file, xml);
    const created = virsh('create', file);
    if (created.status !== 0) throw new Error(`virsh create: ${created.stderr.trim()}`);
    const shell = await GuestShell.connect(path.join(runDir, 'ttyS0.sock'), {
      readyTimeoutMs: 180_000,
    });
    if (isGuestError(shell)) throw new Error(shell.toString());
    return {
      name,
      uri: URI,
      runDir,
      agentPath: path.join(runDir, 'agent.sock'),
      ch1Path: path.join(runDir, 'ch1.sock'),
      shell,
      watch: chardevWatch((label) => monitorChardev(name, label), until),
      close: async () => {
        shell.close();
        await close();
      },
    };
  } catch (e) {
    await close();
    throw e;
  }
}
