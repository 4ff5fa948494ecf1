/**
 * Attach to a libvirt domain. libvirtd owns the domain's QMP monitor
 * socket (QEMU serves one client), so vmchan goes through libvirt.
 *
 * Why virt-qemu-qmp-proxy (Debian's libvirt-clients-qemu) and not
 * `virsh qemu-monitor-command` pass-through: the proxy serves a real QMP
 * socket for the domain (greeting, capabilities negotiation, command ids,
 * and QEMU's asynchronous events such as VSERPORT_CHANGE and
 * DEVICE_DELETED, which libvirt forwards through its monitor-event API),
 * so the whole attach mode (QmpClient, AttachedMachine, taps, vring
 * polling) runs unchanged on it. `virsh qemu-monitor-command` is one
 * process per command (tens of ms each, too slow for the vring poller) and
 * carries no events; a second `virsh qemu-monitor-event --loop` would be
 * needed and its output re-framed by hand. Both go through libvirt's
 * "tainted" monitor pass-through; neither changes the domain.
 *
 * Address form: `libvirt:NAME` or `libvirt:NAME@URI` (default URI
 * qemu:///system).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { attachError, type AttachError } from './attach-error.js';

export const DEFAULT_URI = 'qemu:///system';

export interface LibvirtTarget {
  domain: string;
  uri: string;
}

/** `libvirt:NAME[@URI]` as a target; null when the address is not one. */
export function parseLibvirtAddress(address: string): LibvirtTarget | null {
  if (!address.startsWith('libvirt:')) return null;
  const body = address.slice('libvirt:'.length);
  const at = body.indexOf('@');
  const domain = at < 0 ? body : body.slice(0, at);
  const uri = at < 0 ? DEFAULT_URI : body.slice(at + 1);
  return domain === '' ? null : { domain, uri: uri === '' ? DEFAULT_URI : uri };
}

/**
 * The proxy is a Python script run by `/usr/bin/env python3`: Debian's
 * python3 has the libvirt module (python3-libvirt), a python3 earlier on
 * PATH (pyenv) may not, so the system's directories go first.
 */
function proxyEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `/usr/bin:/bin:${process.env['PATH'] ?? ''}` };
}

function run(file: string, args: string[], timeoutMs = 10_000): Promise<string | AttachError> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, env: proxyEnv() }, (err, stdout, stderr) => {
      if (err) {
        const line =
          `${stderr}`
            .trim()
            .split('\n')
            .find((l) => l.trim() !== '') ?? (err as Error).message;
        resolve(
          attachError(
            (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'Unsupported' : 'ConnectFailed',
            (err as NodeJS.ErrnoException).code === 'ENOENT'
              ? `${file} is not installed (apt-get install --no-install-recommends libvirt-clients libvirt-clients-qemu)`
              : `${file} ${args.join(' ')}: ${line.replace(/^error:\s*/, '')}`,
          ),
        );
        return;
      }
      resolve(stdout);
    });
  });
}

/** The running domains of `uri` (the Attach dialog's list). */
export async function listDomains(uri: string = DEFAULT_URI): Promise<string[] | AttachError> {
  const out = await run('virsh', ['-c', uri, 'list', '--name', '--state-running']);
  if (typeof out !== 'string') return out;
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** The domain's XML as libvirt has it now (its channels, their sockets). */
export function domainXml(t: LibvirtTarget): Promise<string | AttachError> {
  return run('virsh', ['-c', t.uri, 'dumpxml', t.domain]);
}

/** virt-qemu-qmp-proxy for one domain, serving QMP on `socketPath`. */
export class QmpProxy {
  private constructor(
    private readonly child: ChildProcess,
    readonly socketPath: string,
  ) {}

  static async start(
    t: LibvirtTarget,
    socketPath: string,
    timeoutMs = 10_000,
  ): Promise<QmpProxy | AttachError> {
    const child = spawn('virt-qemu-qmp-proxy', ['--connect', t.uri, t.domain, socketPath], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: proxyEnv(),
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    let exited: string | null = null;
    child.once('error', (e) => (exited = e.message));
    child.once('exit', (code, signal) => (exited ??= `exited (${signal ?? code})`));
    const end = Date.now() + timeoutMs;
    while (!fs.existsSync(socketPath)) {
      if (exited !== null || Date.now() > end) {
        child.kill('SIGTERM');
        const why =
          stderr
            .trim()
            .split('\n')
            .filter((l) => l.trim() !== '')
            .at(-1) ??
          exited ??
          `no socket within ${timeoutMs} ms`;
        return attachError(
          /ENOENT/.test(why) ? 'Unsupported' : 'ConnectFailed',
          /ENOENT/.test(why)
            ? 'virt-qemu-qmp-proxy is not installed (apt-get install --no-install-recommends libvirt-clients-qemu python3-libvirt)'
            : `libvirt domain ${t.domain} at ${t.uri}: ${why}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return new QmpProxy(child, socketPath);
  }

  /** Stop the proxy (the domain keeps running); its socket goes with it. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
      this.child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000).unref())]);
    }
    fs.rmSync(this.socketPath, { force: true });
  }
}
