/**
 * A running libvirt domain's channels from its live XML
 * (core/machine/libvirt-channels.ts): the shape `virsh dumpxml` gives for
 * libvirt 9.0 (aliases, `state` on virtio targets, a guest agent channel,
 * a spicevmc channel, a virtio console on a pty), and a document that is
 * not a domain named as such.
 */
import { describe, expect, it } from 'vitest';
import { domainChannels } from '../../core/machine/libvirt-channels.js';
import { MachineError } from '../../core/machine/machine-error.js';

const LIVE = `<domain type='qemu' id='3'>
  <name>vm1</name>
  <devices>
    <controller type='virtio-serial' index='0'><alias name='virtio-serial0'/></controller>
    <serial type='pty'><source path='/dev/pts/4'/><target type='isa-serial' port='0'/><alias name='serial0'/></serial>
    <channel type='unix'>
      <source mode='bind' path='/run/vm1/ch1.sock'/>
      <target type='virtio' name='org.test.ch1' state='disconnected'/>
      <alias name='channel0'/>
      <address type='virtio-serial' controller='0' bus='0' port='1'/>
    </channel>
    <channel type='unix'>
      <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-3-vm1/org.qemu.guest_agent.0'/>
      <target type='virtio' name='org.qemu.guest_agent.0' state='connected'/>
      <alias name='channel1'/>
    </channel>
    <channel type='spicevmc'>
      <target type='virtio' name='com.redhat.spice.0' state='disconnected'/>
      <alias name='channel2'/>
    </channel>
    <channel type='unix'>
      <source mode='connect' path='/run/app.sock'/>
      <target type='virtio' name='org.app.0'/>
      <alias name='ua-app'/>
    </channel>
    <channel type='pty'><target type='guestfwd' address='10.0.2.1' port='4600'/></channel>
    <console type='pty' tty='/dev/pts/5'>
      <source path='/dev/pts/5'/>
      <target type='virtio' port='1'/>
      <alias name='console1'/>
    </console>
  </devices>
</domain>`;

describe('a domain’s channels from its live XML', () => {
  it('names each virtio channel’s target, chardev, source, libvirt’s view of the guest and role', () => {
    const channels = domainChannels(LIVE);
    if (!Array.isArray(channels)) throw new Error(channels.message);
    expect(
      channels.map((c) => [c.target, c.chardev, c.type, c.mode, c.path, c.state, c.role]),
    ).toEqual([
      [
        'org.test.ch1',
        'charchannel0',
        'unix',
        'bind',
        '/run/vm1/ch1.sock',
        'disconnected',
        'application',
      ],
      [
        'org.qemu.guest_agent.0',
        'charchannel1',
        'unix',
        'bind',
        '/var/lib/libvirt/qemu/channel/target/domain-3-vm1/org.qemu.guest_agent.0',
        'connected',
        'agent',
      ],
      ['com.redhat.spice.0', 'charchannel2', 'spicevmc', null, null, 'disconnected', 'spice'],
      ['org.app.0', 'charua-app', 'unix', 'connect', '/run/app.sock', null, 'application'],
      [null, 'charconsole1', 'pty', null, '/dev/pts/5', null, 'application'],
    ]);
    expect(channels[1]!.roleText).toMatch(/^libvirtd’s guest agent channel: libvirtd connects/);
    expect(channels[0]!.roleText).toBe('a host application’s: QEMU listens on /run/vm1/ch1.sock');
    expect(channels[3]!.roleText).toBe('a host application’s: QEMU connects to /run/app.sock');
  });

  it('refuses what is not a domain, in one line', () => {
    const r = domainChannels('<network><name>default</name></network>');
    expect(r).toBeInstanceOf(MachineError);
    expect((r as MachineError).message).toBe(
      'the XML is not a libvirt <domain> (virsh dumpxml NAME)',
    );
    expect(domainChannels('<domain><devices>')).toBeInstanceOf(MachineError);
  });
});
