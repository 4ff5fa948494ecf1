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
 * leaving the domain as it was (`virsh dumpxml` byte for byte, and the
 * agent socket's node).
 *
 * What virt-qemu-qmp-proxy forwards: every QMP event of the domain
 * (libvirt_qemu.qemuMonitorEventRegister with no event name), so
 * VSERPORT_CHANGE and DEVICE_DELETED come as on QEMU's own socket. vmchan
 * does not rely on it for an unplug: AttachedMachine.removePort also
 * watches the device's QOM path and takes its disappearance as the same
 * news (core/qemu/attach.ts).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { PortSnapshot, TapState, TopologySnapshot } from '../../core/api/contract/contract.js';
import { runAttach } from '../../cli/attach.js';
import { domainXml, listDomains } from '../../core/qemu/libvirt.js';
import { TapJournal } from '../../core/qemu/tap-journal.js';
import { rig, type Rig } from '../api/helpers.js';
import { isGuestError } from '../guest/guest-shell.js';
import { describeLibvirt, startLibvirtDomain, URI, type LibvirtDomain } from './libvirt-rig.js';
import { poller } from './real-guest.js';
import { readCapturedStream } from './tap-rig.js';

describeLibvirt('a libvirt domain', () => {
  let dom: LibvirtDomain | undefined;
  let name = '';
  let runDir = '';
  let r: Rig | undefined;
  const until = poller(120_000, 200);
  /** A command in the guest's shell (on its serial port). */
  const sh = async (command: string, timeoutMs = 120_000): Promise<string> => {
    const res = await dom!.shell.run(command, { timeoutMs });
    if (isGuestError(res)) throw new Error(res.toString());
    return res.output;
  };

  beforeAll(async () => {
    dom = await startLibvirtDomain('vmchan-libvirt-');
    ({ name, runDir } = dom);
  }, 300_000);

  afterAll(async () => {
    await r?.close();
    await dom?.close();
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
    expect(readCapturedStream(capPath, 'org.qemu.guest_agent.0').hostToGuest.toString()).toMatch(
      /"execute":\s*"guest-sync"/,
    );

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
    // the guest closed the agent port: `virsh dumpxml` gives back the XML of before the
    // attach, every element and attribute (VSERPORT_CHANGE comes at most once a second per port)
    const xmlAfter = await until(
      'virsh dumpxml as before the attach',
      async () => {
        const x = await domainXml({ domain: name, uri: URI });
        return typeof x === 'string' ? x : x.message;
      },
      (x) => x === xmlBefore,
      60_000,
    ).catch(async () => domainXml({ domain: name, uri: URI }));
    expect(xmlAfter).toBe(xmlBefore);
    expect(channels(xmlBefore)).toHaveLength(2);
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
});
