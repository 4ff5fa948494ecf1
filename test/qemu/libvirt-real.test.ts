/**
 * Attach to a libvirt domain (core/qemu/libvirt.ts) with a real libvirtd:
 * the setup starts virtlogd and libvirtd itself when `virsh -c
 * qemu:///system version` does not answer (no systemd here; both run as
 * root), creates a transient `<domain type='qemu'>` (TCG) booting the test
 * guest's kernel and initramfs with `<channel type='unix'>` devices (one of
 * them the agent channel libvirtd connects to itself), and stops what it
 * started by pid. Checked: attach by domain name through
 * virt-qemu-qmp-proxy, the channels listed with what the domain's XML says
 * of them (target, source, libvirt's role: the agent channel is
 * libvirtd's), the agent channel tapped in place; the guest (its shell on
 * a unix <serial>) opens the agent port, libvirtd reconnects on
 * VSERPORT_CHANGE and its connection arrives through vmchan's tap (the
 * capture holds libvirt's guest-sync); a channel hot-plugged and unplugged,
 * QEMU's DEVICE_DELETED arriving through the proxy as a QMP event; detach
 * leaving the domain as it was (its XML's channels and the agent socket's
 * node).
 *
 * What virt-qemu-qmp-proxy forwards: every QMP event of the domain
 * (libvirt_qemu.qemuMonitorEventRegister with no event name), so
 * VSERPORT_CHANGE and DEVICE_DELETED come as on QEMU's own socket. vmchan
 * does not rely on it for an unplug: AttachedMachine.removePort also
 * watches the device's QOM path and takes its disappearance as the same
 * news (core/qemu/attach.ts).
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PortSnapshot, TapState, TopologySnapshot } from '../../core/api/contract.js';
import { runAttach } from '../../cli/attach.js';
import { domainXml, listDomains } from '../../core/qemu/libvirt.js';
import { TapJournal } from '../../core/qemu/tap-journal.js';
import { rig, type Rig } from '../api/helpers.js';
import { buildGuest } from '../guest/qemu.js';
import { isGuestError } from '../guest/guest-shell.js';
import { CaptureError } from '../../core/capture/error.js';
import { followCapture, followRaw } from '../../core/capture/follow.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { GuestShell } from '../guest/guest-shell.js';
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
    /** The guest's shell on its serial port (a unix socket libvirt has QEMU listen on). */
    let shell: GuestShell | undefined;
    const until = poller(120_000, 200);
    const sh = async (command: string, timeoutMs = 120_000): Promise<string> => {
      const res = await shell!.run(command, { timeoutMs });
      if (isGuestError(res)) throw new Error(res.toString());
      return res.output;
    };

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
    <serial type='unix'><source mode='bind' path='${runDir}/ttyS0.sock'/>
      <target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>`;
      const file = path.join(runDir, 'domain.xml');
      fs.writeFileSync(file, xml);
      const created = virsh('create', file);
      if (created.status !== 0) throw new Error(`virsh create: ${created.stderr.trim()}`);
      const s = await GuestShell.connect(path.join(runDir, 'ttyS0.sock'), {
        readyTimeoutMs: 180_000,
      });
      if (isGuestError(s)) throw new Error(s.toString());
      shell = s;
    }, 300_000);

    afterAll(async () => {
      await r?.close();
      shell?.close();
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

      // what QMP cannot say, from the domain's XML: target, source, libvirt's role
      const lv = t.attached?.libvirt;
      expect(lv).toMatchObject({ domain: name, uri: URI });
      const agentChannel = lv!.channels.find((c) => c.target === 'org.qemu.guest_agent.0');
      expect(agentChannel).toMatchObject({
        chardev: agent.chardev,
        type: 'unix',
        mode: 'bind',
        path: agentPath,
        role: 'agent',
      });
      expect(lv!.channels.find((c) => c.target === 'org.test.ch1')).toMatchObject({
        path: path.join(runDir, 'ch1.sock'),
        role: 'application',
      });
      expect(t.attached!.notes.join('\n')).toContain(
        `libvirt channel org.qemu.guest_agent.0 (${agent.chardev}, unix ${agentPath}): libvirtd’s guest agent channel`,
      );

      // libvirtd holds the agent socket (QEMU listens, libvirtd is its client): tapped in place
      const capPath = path.join(runDir, 'agent.pcapng');
      await r.must({ cmd: 'startCapture', path: capPath });
      const tap = await r.must<TapState>({ cmd: 'tapChardev', id: agent.chardev! });
      expect(tap).toMatchObject({ mode: 'in-place', address: agentPath });
      const tapOf = async (): Promise<TapState> =>
        (await r!.topology()).ports.find((p) => p.key === agent.key)!.tap!;
      // libvirtd connects to the agent channel once the guest opens it; the test guest
      // runs no agent, so no client was there before the tap and none waits to reconnect
      expect((await tapOf()).waiting).toBe(false);
      expect((await tapOf()).connected).toBe(false);

      // the guest opens the agent port: VSERPORT_CHANGE, and libvirtd reconnects, through vmchan
      await until(
        'the guest has its agent port',
        () => sh('ls /dev/virtio-ports/'),
        (out) => out.includes('org.qemu.guest_agent.0'),
      );
      await sh('exec 3<>/dev/virtio-ports/org.qemu.guest_agent.0');
      await until(
        'libvirtd reconnected to the agent channel through the tap',
        () => tapOf(),
        (s) => s.connected,
      );
      // libvirt's first words to an agent: guest-sync (no agent answers: the command times out)
      const agentCommand = await new Promise<string>((resolve) =>
        execFile(
          'virsh',
          ['-c', URI, 'qemu-agent-command', name, '{"execute":"guest-ping"}', '--timeout', '5'],
          { timeout: 60_000 },
          (err, stdout, stderr) => resolve(err ? stderr.trim() : stdout.trim()),
        ),
      );
      console.info(`virsh qemu-agent-command with no agent in the guest: ${agentCommand}`);
      // the guest reads what libvirtd sent, through vmchan and QEMU
      expect(await sh('head -c 30 <&3')).toContain('"guest-sync"');
      await sh('exec 3>&-');
      await r.must({ cmd: 'stopCapture' });
      const reader = openCaptureSync(capPath);
      if (reader instanceof CaptureError) throw new Error(reader.toString());
      try {
        const stream = followCapture(reader, { port: 'org.qemu.guest_agent.0' });
        if (stream instanceof CaptureError) throw new Error(stream.toString());
        expect(Buffer.from(followRaw(stream, 'host-to-guest')).toString()).toMatch(
          /"execute":\s*"guest-sync"/,
        );
      } finally {
        reader.close();
      }

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
      // QEMU's DEVICE_DELETED came through virt-qemu-qmp-proxy as a QMP event
      const deleted = await r.waitEvent(
        (e) => e.kind === 'device-deleted' && /vmchanhot/.test(e.text),
        60_000,
      );
      expect(deleted.source).toBe('event');
      await r.must({ cmd: 'removeChardev', id: 'vmchanhotc' });

      await r.must({ cmd: 'detach' });
      expect(fs.statSync(agentPath).ino).toBe(agentIno);
      // the guest closed the agent port: libvirt's view goes back to what it was
      // (VSERPORT_CHANGE comes at most once a second per port)
      await until(
        'the domain’s channels as before the attach',
        async () => {
          const x = await domainXml({ domain: name, uri: URI });
          return typeof x === 'string' ? channels(x) : [x.message];
        },
        (c) => JSON.stringify(c) === JSON.stringify(channels(xmlBefore)),
      );
    }, 600_000);

    it('vmchan attach --domain NAME --connect URI lists the domain’s channels', async () => {
      let out = '';
      const io = { out: (t: string) => void (out += t), err: (t: string) => void (out += t) };
      await runAttach({ domain: name, connect: URI, poll: '0' }, io, Promise.resolve());
      expect(out).toContain('org.test.ch1');
      expect(out).toContain('org.qemu.guest_agent.0');
      // the channels as the domain's XML tells them, with libvirt's role
      expect(out).toContain(`libvirt domain ${name}: 2 virtio channels in its XML`);
      const agentLine = out
        .slice(out.indexOf(`libvirt domain ${name}:`))
        .split('\n')
        .find((l) => l.startsWith('org.qemu.guest_agent.0 '));
      expect(agentLine).toContain(`unix/bind ${path.join(runDir, 'agent.sock')}`);
      expect(agentLine).toContain('libvirtd’s guest agent channel');
      await expect(runAttach({ poll: '0' }, io, Promise.resolve())).rejects.toThrow(
        /either --qmp ADDRESS or --domain NAME/,
      );
    }, 120_000);
  },
);
