/**
 * Attach to a libvirt domain (core/qemu/libvirt.ts) with a real libvirtd:
 * the setup starts virtlogd and libvirtd itself when `virsh -c
 * qemu:///system version` does not answer (no systemd here; both run as
 * root), creates a transient `<domain type='qemu'>` (TCG) booting the test
 * guest's kernel and initramfs with `<channel type='unix'>` devices (one of
 * them the agent channel libvirtd connects to itself), and stops what it
 * started by pid. Checked: attach by domain name through
 * virt-qemu-qmp-proxy, the channels listed, the agent channel tapped in
 * place while libvirtd stays connected directly (shown as waiting for the
 * next connection), a channel hot-plugged, and detach leaving the domain
 * as it was (its XML's channels and the agent socket's node).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PortSnapshot, TapState, TopologySnapshot } from '../../core/api/contract/contract.js';
import { runAttach } from '../../cli/attach.js';
import { domainXml, listDomains } from '../../core/qemu/libvirt.js';
import { TapJournal } from '../../core/qemu/tap-journal.js';
import { rig, type Rig } from '../api/helpers.js';
import { buildGuest } from '../guest/qemu.js';
import { isGuestError } from '../guest/guest-shell.js';
import { poller } from './real-guest.js';

const INSTALL =
  'apt-get install --no-install-recommends libvirt-daemon-system libvirt-clients libvirt-clients-qemu libvirt-daemon-driver-qemu python3-libvirt';
const URI = 'qemu:///system';
const TOOLS = ['virsh', 'libvirtd', 'virtlogd', 'virt-qemu-qmp-proxy'];
const which = (t: string): boolean =>
  spawnSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).status === 0;
const missing = TOOLS.filter((t) => !which(t));
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const inCi = process.env['CI'] === 'true';
const problem =
  missing.length > 0
    ? `missing ${missing.join(', ')}; install with: ${INSTALL}`
    : !isRoot
      ? 'libvirtd is started as root by this test: run it as root'
      : '';
if (problem && !inCi) console.warn(`libvirt tests skipped: ${problem}`);

const virsh = (...args: string[]) =>
  spawnSync('virsh', ['-c', URI, ...args], { encoding: 'utf8', timeout: 20_000 });
const answers = (): boolean => virsh('version').status === 0;

describe.skipIf(problem !== '' && !inCi)(
  `a libvirt domain${problem ? ` (${problem})` : ''}`,
  () => {
    const started: ChildProcess[] = [];
    const name = `vmchan-test-${process.pid}`;
    let runDir: string;
    let r: Rig | undefined;
    const until = poller(60_000, 200);

    beforeAll(async () => {
      if (problem) throw new Error(`cannot run the libvirt tests: ${problem}`);
      if (!answers()) {
        for (const daemon of ['virtlogd', 'libvirtd']) {
          const child = spawn(daemon, [], { stdio: 'ignore' });
          child.on('error', () => {});
          started.push(child);
        }
        await until('virsh -c qemu:///system version answers', answers, (ok) => ok, 30_000);
      }
      const image = buildGuest();
      if (isGuestError(image)) throw new Error(image.toString());
      runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-libvirt-'));
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
    <memballoon model='none'/>
  </devices>
</domain>`;
      const file = path.join(runDir, 'domain.xml');
      fs.writeFileSync(file, xml);
      const created = virsh('create', file);
      if (created.status !== 0) throw new Error(`virsh create: ${created.stderr.trim()}`);
    }, 120_000);

    afterAll(async () => {
      await r?.close();
      virsh('destroy', name);
      for (const c of started) {
        const gone = new Promise((res) => c.once('exit', res));
        c.kill('SIGTERM');
        // A daemon gets 5 s to stop on SIGTERM; one still running then is killed.
        await Promise.race([gone, new Promise((res) => setTimeout(res, 5000))]);
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }
      if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
    }, 60_000);

    it('lists the domain, attaches by name, taps the agent channel in place, hot-plugs a channel; detach leaves the domain as it was', async () => {
      const domains = await listDomains(URI);
      expect(domains).toContain(name);
      const xmlBefore = await domainXml({ domain: name, uri: URI });
      if (typeof xmlBefore !== 'string') throw new Error(xmlBefore.message);
      const channels = (x: string): string[] =>
        [...x.matchAll(/<channel type='unix'>[\s\S]*?<\/channel>/g)].map((m) =>
          m[0].replace(/\s+/g, ' '),
        );
      const agentPath = path.join(runDir, 'agent.sock');
      await until(
        'libvirtd made the agent socket',
        () => fs.existsSync(agentPath),
        (v) => v,
      );
      const agentIno = fs.statSync(agentPath).ino;

      r = await rig({
        attach: { pollIntervalMs: 500, journal: new TapJournal(path.join(runDir, 'journal')) },
      });
      // the Attach dialog's list
      const listed = await r.must<{ uri: string; domains: string[] }>({
        cmd: 'listDomains',
        connect: URI,
      });
      expect(listed.domains).toContain(name);
      const t = await r.must<TopologySnapshot>({
        cmd: 'attach',
        address: `libvirt:${name}@${URI}`,
      });
      expect(t.attached?.qemu).toMatch(/^QEMU 7\./);
      const names = t.ports.map((p) => p.name);
      expect(names).toEqual(expect.arrayContaining(['org.test.ch1', 'org.qemu.guest_agent.0']));
      const agent = t.ports.find((p) => p.name === 'org.qemu.guest_agent.0') as PortSnapshot;
      expect(agent.chardev).not.toBeNull();

      // libvirtd holds the agent socket (QEMU listens, libvirtd is its client): tapped in place
      const tap = await r.must<TapState>({ cmd: 'tapChardev', id: agent.chardev! });
      expect(tap).toMatchObject({ mode: 'in-place', address: agentPath });
      const state = (await r.topology()).ports.find((p) => p.key === agent.key)!.tap!;
      // libvirtd connects to the agent channel once the guest's agent opens it; the test
      // guest runs none, so no client was there before the tap and none waits to reconnect
      expect(state.waiting).toBe(false);

      // hot-plug a channel into the domain, and take it out again
      const plugged = await r.must<PortSnapshot>({
        cmd: 'hotplugPort',
        port: {
          driver: 'virtserialport',
          id: 'vmchanhot',
          name: 'org.vmchan.hot',
          newChardev: { id: 'vmchanhotc', backend: { kind: 'unix', server: true } },
        },
      });
      expect(plugged.name).toBe('org.vmchan.hot');
      await r.must({ cmd: 'unplugPort', port: { device: plugged.device, nr: plugged.nr } });
      await r.must({ cmd: 'removeChardev', id: 'vmchanhotc' });

      await r.must({ cmd: 'detach' });
      expect(fs.statSync(agentPath).ino).toBe(agentIno);
      const xmlAfter = await domainXml({ domain: name, uri: URI });
      if (typeof xmlAfter !== 'string') throw new Error(xmlAfter.message);
      expect(channels(xmlAfter)).toEqual(channels(xmlBefore));
    }, 180_000);

    it('vmchan attach --domain NAME --connect URI lists the domain’s channels', async () => {
      let out = '';
      const io = { out: (t: string) => void (out += t), err: (t: string) => void (out += t) };
      await runAttach({ domain: name, connect: URI, poll: '0' }, io, Promise.resolve());
      expect(out).toContain('org.test.ch1');
      expect(out).toContain('org.qemu.guest_agent.0');
      await expect(runAttach({ poll: '0' }, io, Promise.resolve())).rejects.toThrow(
        /either --qmp ADDRESS or --domain NAME/,
      );
    }, 60_000);
  },
);
