import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  defaultDevice,
  parseQemuArgs,
  printQemuArgs,
  topologyFromLibvirtXml,
  topologyToLibvirtXml,
  type MachineNote,
  type Topology,
} from '../../core/machine/index.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

function read(xml: string): { t: Topology; notes: MachineNote[] } {
  const r = topologyFromLibvirtXml(xml);
  if (!r.ok) throw new Error(r.error.toString());
  return { t: r.value, notes: r.notes };
}

describe('seed 001: hand-written channels without closing tags, read leniently', () => {
  test('Guest A: two pipe channels on the controller libvirt adds', () => {
    const { t, notes } = read(fixture('seed-001-guest-a.xml'));
    expect(t).toEqual({
      chardevs: [
        {
          id: 'charchannel0',
          backend: { kind: 'pipe', path: '/tmp/guesta-virtioserial1' },
          mux: false,
          logappend: false,
        },
        {
          id: 'charchannel1',
          backend: { kind: 'pipe', path: '/tmp/guesta-virtioserial2' },
          mux: false,
          logappend: false,
        },
      ],
      devices: [defaultDevice('virtio-serial-pci', { id: 'virtio-serial0' })],
      ports: [
        {
          driver: 'virtserialport',
          id: 'channel0',
          bus: 'virtio-serial0.0',
          name: 'org.linux-kvm.port.1',
          chardev: 'charchannel0',
        },
        {
          driver: 'virtserialport',
          id: 'channel1',
          bus: 'virtio-serial0.0',
          name: 'org.linux-kvm.port.2',
          chardev: 'charchannel1',
        },
      ],
      monitors: [],
      ignored: [],
    });
    // Both missing </channel> tags are reported, with their lines.
    expect(notes.filter((n) => n.kind === 'Repaired').map((n) => n.message)).toEqual([
      'closed <channel> left open before <channel> (line 4)',
      'closed <channel> left open at the end of the input (line 7)',
    ]);
    expect(
      notes.some((n) => n.kind === 'Implied' && n.message.includes('controller 0 is added')),
    ).toBe(true);
  });

  test('Guest B and the pty example; the four pipes of both guests as one fragment', () => {
    expect(read(fixture('seed-001-guest-b.xml')).t.chardevs.map((c) => c.backend)).toEqual([
      { kind: 'pipe', path: '/tmp/guestb-virtioserial1' },
      { kind: 'pipe', path: '/tmp/guestb-virtioserial2' },
    ]);
    expect(read(fixture('seed-001-basic.xml')).t.chardevs[0]?.backend).toEqual({ kind: 'pty' });
    const both = read(fixture('seed-001-guest-a.xml') + fixture('seed-001-guest-b.xml')).t;
    expect(both.ports.map((p) => p.id)).toEqual(['channel0', 'channel1', 'channel2', 'channel3']);
    expect(both.chardevs.every((c) => c.backend.kind === 'pipe')).toBe(true);
  });

  test('the same channels written by the printer are well-formed and read back the same', () => {
    const { t } = read(fixture('seed-001-guest-a.xml'));
    const out = topologyToLibvirtXml(t);
    expect(out.notes).toEqual([]);
    expect(out.xml).toBe(`<devices>
  <controller type="virtio-serial" index="0"/>
  <channel type="pipe">
    <source path="/tmp/guesta-virtioserial1"/>
    <target type="virtio" name="org.linux-kvm.port.1"/>
  </channel>
  <channel type="pipe">
    <source path="/tmp/guesta-virtioserial2"/>
    <target type="virtio" name="org.linux-kvm.port.2"/>
  </channel>
</devices>
`);
    const again = read(out.xml);
    expect(again.t).toEqual(t);
    expect(again.notes.filter((n) => n.kind === 'Repaired')).toEqual([]);
  });
});

describe('H1 an XML corpus with every source type', () => {
  const { t, notes } = read(fixture('domain-corpus.xml'));

  test('controllers: ports, vectors, packed, iommu, virtio-mmio', () => {
    expect(t.devices).toEqual([
      defaultDevice('virtio-serial-pci', {
        id: 'virtio-serial0',
        maxPorts: 16,
        vectors: 4,
        packed: true,
        ignoredKeys: { iommu_platform: 'on' },
      }),
      defaultDevice('virtio-serial-device', { id: 'virtio-serial1' }),
    ]);
  });

  test('channels: libvirt ids, buses from the address, nr from its port', () => {
    expect(t.ports.map((p) => [p.driver, p.id, p.bus, p.nr, p.name])).toEqual([
      ['virtserialport', 'channel0', 'virtio-serial0.0', 1, 'org.example.pty'],
      ['virtserialport', 'channel1', 'virtio-serial0.0', 2, 'org.qemu.guest_agent.0'],
      ['virtserialport', 'channel2', 'virtio-serial0.0', undefined, 'org.example.client'],
      ['virtserialport', 'channel3', 'virtio-serial0.0', undefined, 'org.example.pipe'],
      ['virtserialport', 'channel4', 'virtio-serial0.0', undefined, 'org.example.file'],
      ['virtserialport', 'channel5', 'virtio-serial0.0', undefined, 'org.example.telnet'],
      ['virtserialport', 'channel6', 'virtio-serial1.0', 3, 'org.example.tcp'],
      ['virtserialport', 'channel7', 'virtio-serial0.0', undefined, 'org.example.udp'],
      ['virtserialport', 'channel8', 'virtio-serial0.0', undefined, 'org.example.null'],
      ['virtserialport', 'channel9', 'virtio-serial0.0', undefined, 'org.example.stdio'],
      ['virtserialport', 'channel10', 'virtio-serial0.0', undefined, 'org.example.dev'],
      ['virtserialport', 'channel11', 'virtio-serial0.0', undefined, 'com.redhat.spice.0'],
      ['virtserialport', 'channel12', 'virtio-serial0.0', undefined, 'org.example.spiceport'],
      ['virtserialport', 'channel13', 'virtio-serial0.0', undefined, 'org.example.vc'],
      ['virtconsole', 'console1', 'virtio-serial0.0', undefined, undefined],
    ]);
    expect(t.ports.every((p) => p.chardev === `char${p.id}`)).toBe(true);
  });

  test('sources: pty, unix bind/connect, pipe, file, tcp, udp, null, stdio, dev, spice, vc, and <log>', () => {
    expect(t.chardevs.map((c) => [c.id, c.backend, c.ignoredKeys, c.logfile])).toEqual([
      ['charchannel0', { kind: 'pty' }, undefined, undefined],
      [
        'charchannel1',
        {
          kind: 'socket',
          address: {
            type: 'unix',
            path: '/var/lib/libvirt/qemu/channel/target/domain-1-corpus/org.qemu.guest_agent.0',
          },
          server: true,
          wait: false,
          nodelay: false,
        },
        undefined,
        undefined,
      ],
      [
        'charchannel2',
        {
          kind: 'socket',
          address: { type: 'unix', path: '/run/helper.sock' },
          server: false,
          wait: false,
          nodelay: false,
          reconnect: 10,
        },
        undefined,
        undefined,
      ],
      ['charchannel3', { kind: 'pipe', path: '/tmp/corpus-pipe' }, undefined, undefined],
      [
        'charchannel4',
        { kind: 'file', path: '/var/log/corpus/channel.log', append: true },
        undefined,
        undefined,
      ],
      [
        'charchannel5',
        {
          kind: 'socket',
          address: { type: 'tcp', host: '127.0.0.1', port: '4555' },
          server: true,
          wait: false,
          nodelay: false,
        },
        undefined,
        undefined,
      ],
      [
        'charchannel6',
        {
          kind: 'socket',
          address: { type: 'tcp', host: '10.0.0.9', port: '2445' },
          server: false,
          wait: false,
          nodelay: false,
        },
        undefined,
        '/var/log/corpus/tcp.log',
      ],
      [
        'charchannel7',
        { kind: 'udp', host: '10.0.0.9', port: '2447', localaddr: '0.0.0.0', localport: '2446' },
        undefined,
        undefined,
      ],
      ['charchannel8', { kind: 'null' }, undefined, undefined],
      ['charchannel9', { kind: 'stdio' }, undefined, undefined],
      ['charchannel10', { kind: 'serial', path: '/dev/ttyS1' }, undefined, undefined],
      ['charchannel11', { kind: 'other', driver: 'spicevmc' }, { name: 'vdagent' }, undefined],
      [
        'charchannel12',
        { kind: 'other', driver: 'spiceport' },
        { name: 'org.qemu.console.serial.0' },
        undefined,
      ],
      ['charchannel13', { kind: 'other', driver: 'vc' }, undefined, undefined],
      ['charconsole1', { kind: 'pty' }, undefined, undefined],
    ]);
  });

  test("a tcp channel with <protocol type='telnet'> is a telnet=on socket, both ways", () => {
    // Issue 14 item 4: never read a telnet channel as raw tcp (the guest would see the
    // client's IAC negotiation as data): libvirt's telnet is QEMU's telnet=on.
    const xml = fixture('domain-corpus.xml').replace(
      "<protocol type='raw'/>",
      "<protocol type='telnet'/>",
    );
    const r = read(xml);
    const c = r.t.chardevs.find((x) => x.id === 'charchannel5');
    expect(c?.backend).toMatchObject({ kind: 'socket', telnet: true });
    expect(read(topologyToLibvirtXml(r.t).xml).t).toEqual(r.t);
  });

  test('what has no virtio-serial meaning is reported, not dropped silently', () => {
    const lost = notes.filter((n) => n.kind === 'NotExpressed').map((n) => n.message);
    expect(lost).toEqual([
      'controller 0: its pci address (the slot it plugs into) is not modelled',
      "channel 14 has target type 'guestfwd', not virtio; it is left out",
      "channel 15: source type 'nmdm' has no vmchan chardev; it is left out",
      "console 0 has target type 'serial', a serial or platform console, not a virtio console; it is left out",
      'serial 0 is a UART/parallel port, not virtio-serial; it is left out',
    ]);
  });

  test('printing the corpus and reading it back gives the same topology', () => {
    const out = topologyToLibvirtXml(t);
    // console1 keeps its name as an alias: the printed XML has one console only.
    expect(out.notes).toEqual([]);
    expect(read(out.xml).t).toEqual(t);
  });

  test('and it runs as QEMU: the topology prints as a command line QEMU accepts', () => {
    const args = printQemuArgs(t).args;
    expect(args).toContain(
      'virtserialport,bus=virtio-serial1.0,id=channel6,nr=3,name=org.example.tcp,chardev=charchannel6',
    );
    const back = parseQemuArgs(args);
    if (!back.ok) throw new Error(back.error.toString());
    expect(back.value).toEqual(t);
  });
});

describe('QEMU command line to libvirt XML and back', () => {
  test('a libvirt-shaped command line survives QEMU -> XML -> QEMU unchanged', () => {
    const args = [
      '-chardev', 'socket,id=charchannel0,path=/var/lib/libvirt/qemu/channel/target/org.qemu.guest_agent.0,server=on,wait=off',
      '-chardev', 'pty,id=charconsole0',
      '-device', 'virtio-serial-pci,id=virtio-serial0,max_ports=16,vectors=4',
      '-device', 'virtserialport,bus=virtio-serial0.0,id=channel0,nr=1,name=org.qemu.guest_agent.0,chardev=charchannel0',
      '-device', 'virtconsole,bus=virtio-serial0.0,id=console0,chardev=charconsole0',
    ]; // prettier-ignore
    const parsed = parseQemuArgs(args);
    if (!parsed.ok) throw new Error(parsed.error.toString());
    const xml = topologyToLibvirtXml(parsed.value);
    expect(xml.notes).toEqual([]);
    const back = read(xml.xml).t;
    expect(back).toEqual(parsed.value);
    expect(printQemuArgs(back).args).toEqual(args);
  });

  test('seed 002: what libvirt cannot say about the case study is listed, sentence by sentence', () => {
    const parsed = parseQemuArgs([
      '-m', '512',
      '-chardev', 'socket,path=/tmp/virtserial/test0,server,nowait,id=test0',
      '-chardev', 'ringbuf,id=rb',
      '-chardev', 'socket,id=mon,path=/tmp/mon,server=on,wait=on,nodelay=on',
      '-mon', 'chardev=mon,mode=control',
      '-device', 'virtio-serial',
      '-device', 'virtconsole,chardev=test0,name=console.0',
      '-device', 'virtserialport,chardev=rb,name=log',
    ]); // prettier-ignore
    if (!parsed.ok) throw new Error(parsed.error.toString());
    const out = topologyToLibvirtXml(parsed.value);
    expect(out.notes.map((n) => n.message)).toEqual([
      'device #0: it has no id; libvirt names it virtio-serial0, so its bus becomes virtio-serial0.0',
      "device #0: the driver alias 'virtio-serial' is written as a controller, which libvirt runs as virtio-serial-pci",
      'virtserialport log is left out: libvirt has no ringbuf source type',
      "virtconsole console.0 (chardev 'test0'): name 'console.0' is not expressed: libvirt consoles have none",
      "virtconsole console.0 (chardev 'test0'): it has no id; libvirt names it console0",
      "virtconsole console.0 (chardev 'test0'): libvirt names the chardev 'charconsole0'",
      "chardev 'rb' is left out: no port uses it",
      "chardev 'mon' is left out: it serves a monitor, and libvirt runs its own",
      "the QMP monitor on 'mon' is left out: libvirt owns the monitor",
      "'-m 512' is outside the virtio-serial devices and is left out",
    ]);
    expect(read(out.xml).t.ports).toEqual([
      { driver: 'virtconsole', id: 'console0', bus: 'virtio-serial0.0', chardev: 'charconsole0' },
    ]);
  });

  test('socket details libvirt cannot carry: wait=on, nodelay, an fd, mux, emergency-write', () => {
    const parsed = parseQemuArgs([
      '-chardev', 'socket,id=a,path=/tmp/a,server=on,nodelay=on',
      '-chardev', 'socket,id=b,fd=3,server=on,wait=off',
      '-chardev', 'pty,id=m,mux=on',
      '-device', 'virtio-serial-pci,id=virtio-serial0,emergency-write=off',
      '-device', 'virtserialport,id=channel0,chardev=a',
      '-device', 'virtserialport,id=channel1,chardev=b',
      '-device', 'virtserialport,id=channel2,chardev=m',
      '-device', 'virtserialport,id=channel3,chardev=m',
    ]); // prettier-ignore
    if (!parsed.ok) throw new Error(parsed.error.toString());
    const messages = topologyToLibvirtXml(parsed.value).notes.map((n) => n.message);
    expect(messages).toEqual([
      'device virtio-serial0: emergency-write=off has no libvirt attribute',
      "virtserialport channel0 (chardev 'a'): wait=on is not expressed: libvirt starts every server socket with wait=off",
      "virtserialport channel0 (chardev 'a'): nodelay=on has no libvirt attribute",
      "virtserialport channel0 (chardev 'a'): libvirt names the chardev 'charchannel0'",
      'virtserialport channel1 is left out: socket on an inherited file descriptor (fd=3)',
      "virtserialport channel2 (chardev 'm'): mux=on is not expressed: libvirt gives every channel its own chardev",
      "virtserialport channel2 (chardev 'm'): libvirt names the chardev 'charchannel2'",
      "virtserialport channel3 (chardev 'm'): mux=on is not expressed: libvirt gives every channel its own chardev",
      "virtserialport channel3 (chardev 'm'): libvirt names the chardev 'charchannel3'",
      "chardev 'm' is shared by 2 ports; each gets its own copy",
      "chardev 'b' is left out: no port uses it",
    ]);
  });
});

describe('XML that libvirt (or QEMU) would refuse', () => {
  const refused = (xml: string): string => {
    const r = topologyFromLibvirtXml(xml);
    if (r.ok) throw new Error('accepted');
    return `${r.error.kind}: ${r.error.message}`;
  };

  test('broken syntax', () => {
    expect(refused(`<channel type='pty><target type='virtio'/></channel>`)).toMatch(/^XmlSyntax: /);
  });

  test('D1 ports above 511, ports=0, not a number', () => {
    expect(refused(`<controller type='virtio-serial' index='0' ports='600'/>`)).toBe(
      'DeviceLimit: maximum ports supported: 511',
    );
    expect(refused(`<controller type='virtio-serial' index='0' ports='0'/>`)).toBe(
      'DeviceLimit: Maximum number of serial ports not specified',
    );
    expect(refused(`<controller type='virtio-serial' index='0' ports='many'/>`)).toBe(
      'XmlValue: Invalid ports: many',
    );
  });

  test('two controllers with one index; an address on bus 1', () => {
    expect(
      refused(
        `<controller type='virtio-serial' index='0'/><controller type='virtio-serial' index='0'/>`,
      ),
    ).toBe("XmlValue: Multiple 'virtio-serial' controllers with index '0'");
    expect(
      refused(
        `<channel type='pty'><target type='virtio' name='x'/><address type='virtio-serial' controller='0' bus='1' port='2'/></channel>`,
      ),
    ).toBe("BusNotFound: Bus 'virtio-serial0.1' not found");
  });

  test('a tcp source without service, a udp source without remote port, a pipe without path', () => {
    expect(
      refused(
        `<channel type='tcp'><source mode='bind' host='h'/><target type='virtio' name='x'/></channel>`,
      ),
    ).toBe('XmlValue: Missing source service attribute for char device');
    expect(
      refused(
        `<channel type='udp'><source mode='bind' service='1'/><target type='virtio' name='x'/></channel>`,
      ),
    ).toBe('XmlValue: chardev: udp: remote port not specified');
    expect(refused(`<channel type='pipe'><target type='virtio' name='x'/></channel>`)).toBe(
      'XmlValue: Missing source path attribute for char device',
    );
  });

  test('errors name the element', () => {
    const r = topologyFromLibvirtXml(
      `<channel type='pty'><target type='virtio'/></channel><channel type='pipe'><target type='virtio'/></channel>`,
    );
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.error.toString()).toBe(
        '<channel> #2: Missing source path attribute for char device',
      );
  });
});

describe('lenient and friendly reading', () => {
  test('a unix channel without a path gets the directory libvirt uses', () => {
    const { t, notes } = read(
      `<channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>`,
    );
    expect(t.chardevs[0]?.backend).toMatchObject({
      address: {
        type: 'unix',
        path: '/var/lib/libvirt/qemu/channel/target/org.qemu.guest_agent.0',
      },
      server: true,
    });
    expect(notes.some((n) => n.kind === 'Implied')).toBe(true);
  });

  test("port='0' on a channel means unassigned to libvirt; on a console it is port 0", () => {
    const { t } = read(`<devices>
      <channel type='pty'><target type='virtio' name='a'/><address type='virtio-serial' controller='0' bus='0' port='0'/></channel>
      <console type='pty'><target type='virtio'/><address type='virtio-serial' controller='0' bus='0' port='0'/></console>
    </devices>`);
    expect(t.ports.map((p) => p.nr)).toEqual([undefined, 0]);
  });

  test('a stray closing tag is dropped with a note', () => {
    const { t, notes } = read(
      `<channel type='null'><target type='virtio' name='x'/></channel></console>`,
    );
    expect(t.ports).toHaveLength(1);
    expect(notes.map((n) => n.message)).toContain(
      'dropped </console>, which closes nothing (line 1)',
    );
  });
});
