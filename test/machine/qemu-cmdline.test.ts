import { describe, expect, test } from 'vitest';
import {
  defaultDevice,
  parseQemuArgs,
  parseQemuCommandLine,
  printQemuArgs,
  type Chardev,
  type MachineNote,
  type Topology,
} from '../../core/machine/index.js';

/** Parse or fail the test with QEMU's message. */
function parse(args: string[] | string): { t: Topology; notes: MachineNote[] } {
  const r = typeof args === 'string' ? parseQemuCommandLine(args) : parseQemuArgs(args);
  if (!r.ok) throw new Error(r.error.toString());
  return { t: r.value, notes: r.notes };
}

function unixServer(id: string, path: string, extra: Partial<Chardev> = {}): Chardev {
  return {
    id,
    backend: {
      kind: 'socket',
      address: { type: 'unix', path },
      server: true,
      wait: false,
      nodelay: false,
    },
    mux: false,
    logappend: false,
    ...extra,
  };
}

const empty: Topology = { chardevs: [], devices: [], ports: [], monitors: [], ignored: [] };

describe('valid command lines (H1, H2)', () => {
  test("H2 seed 000: the Fedora page's legacy server,nowait example", () => {
    const { t, notes } = parse([
      '-chardev',
      'socket,path=/tmp/foo,server,nowait,id=foo',
      '-device',
      'virtio-serial',
      '-device',
      'virtserialport,chardev=foo,name=org.fedoraproject.port.0',
    ]);
    expect(t).toEqual({
      ...empty,
      chardevs: [unixServer('foo', '/tmp/foo')],
      devices: [defaultDevice('virtio-serial')],
      ports: [
        {
          driver: 'virtserialport',
          bus: 'virtio-serial-bus.0',
          chardev: 'foo',
          name: 'org.fedoraproject.port.0',
        },
      ],
    });
    // QEMU 6.0+ warns about the short forms, in its own words.
    expect(notes.filter((n) => n.kind === 'Deprecated').map((n) => n.message)).toEqual([
      "short-form boolean option 'server' deprecated; Please use server=on instead",
      "short-form boolean option 'nowait' deprecated; Please use wait=off instead",
    ]);
    expect(printQemuArgs(t).args).toEqual([
      '-chardev',
      'socket,id=foo,path=/tmp/foo,server=on,wait=off',
      '-device',
      'virtio-serial',
      '-device',
      'virtserialport,bus=virtio-serial-bus.0,name=org.fedoraproject.port.0,chardev=foo',
    ]);
  });

  test('H2 seed 000: the Fedora order (device first) and its console example with virtioconsole and trailing commas', () => {
    const { t } = parse([
      '-device',
      'virtio-serial',
      '-chardev',
      'socket,path=/tmp/foo,server,nowait,id=foo',
      '-chardev',
      'socket,path=/tmp/bar,server,nowait,id=bar',
      '-device',
      'virtioconsole,chardev=foo,',
      '-device',
      'virtioconsole,chardev=bar,',
    ]);
    expect(t.chardevs).toEqual([unixServer('foo', '/tmp/foo'), unixServer('bar', '/tmp/bar')]);
    expect(t.ports).toEqual([
      { driver: 'virtconsole', bus: 'virtio-serial-bus.0', chardev: 'foo' },
      { driver: 'virtconsole', bus: 'virtio-serial-bus.0', chardev: 'bar' },
    ]);
  });

  test('H2 seed 000: two devices with bus=ser0.0 / ser1.0 (chardevs added: the page never defines them)', () => {
    const { t } = parse([
      '-chardev',
      'pty,id=portchar0',
      '-chardev',
      'pty,id=conschar0',
      '-device',
      'virtio-serial,id=ser0,max_ports=2',
      '-device',
      'virtio-serial,id=ser1,max_ports=3',
      '-device',
      'virtserialport,bus=ser0.0,chardev=portchar0,id=port0,name=org.fedoraproject.port.0',
      '-device',
      'virtioconsole,bus=ser1.0,chardev=conschar0,id=cons0,name=org.fedoraproject.console.0',
    ]);
    expect(t.devices).toEqual([
      defaultDevice('virtio-serial', { id: 'ser0', maxPorts: 2 }),
      defaultDevice('virtio-serial', { id: 'ser1', maxPorts: 3 }),
    ]);
    expect(t.ports).toEqual([
      {
        driver: 'virtserialport',
        bus: 'ser0.0',
        id: 'port0',
        chardev: 'portchar0',
        name: 'org.fedoraproject.port.0',
      },
      {
        driver: 'virtconsole',
        bus: 'ser1.0',
        id: 'cons0',
        chardev: 'conschar0',
        name: 'org.fedoraproject.console.0',
      },
    ]);
  });

  test('H1 seed 002: the case-study command line, pasted with its prompt, (...) and continuations', () => {
    const text = `$ qemu-system-x86_64 (...) \\
-chardev socket,path=/tmp/virtserial/test0,server,nowait,id=test0 \\
-chardev socket,path=/tmp/virtserial/test1,server,nowait,id=test1 \\
-chardev socket,path=/tmp/virtserial/test2,server,nowait,id=test2 \\
-device virtio-serial \\
-device virtconsole,chardev=test0,name=console.0 \\
-device virtserialport,chardev=test1,name=test1 \\
-device virtserialport,chardev=test2,name=test2`;
    const { t } = parse(text);
    expect(t.chardevs.map((c) => c.id)).toEqual(['test0', 'test1', 'test2']);
    expect(t.chardevs[2]).toEqual(unixServer('test2', '/tmp/virtserial/test2'));
    expect(t.ports).toEqual([
      { driver: 'virtconsole', bus: 'virtio-serial-bus.0', chardev: 'test0', name: 'console.0' },
      { driver: 'virtserialport', bus: 'virtio-serial-bus.0', chardev: 'test1', name: 'test1' },
      { driver: 'virtserialport', bus: 'virtio-serial-bus.0', chardev: 'test2', name: 'test2' },
    ]);
    // D3: the parser assigns no numbers; the device gives 0 to the console and 1, 2 to the ports.
    expect(t.ports.every((p) => p.nr === undefined)).toBe(true);
    expect(t.ignored).toEqual([{ option: '', arg: '(...)' }]);
  });

  test('H1 the recorded QEMU 7.2 scenario setup (scenario.log): vser0 with max_ports=8', () => {
    const { t } = parse([
      '-chardev', 'socket,id=c0,path=/tmp/guest/con,server=on,wait=off',
      '-chardev', 'socket,id=c1,path=/tmp/guest/p1,server=on,wait=off',
      '-chardev', 'socket,id=qmp,path=/tmp/guest/qmp.sock,server=on,wait=off',
      '-mon', 'chardev=qmp,mode=control',
      '-device', 'virtio-serial-pci,id=vser0,max_ports=8',
      '-device', 'virtserialport,bus=vser0.0,chardev=c1,name=org.test.port.1,id=port1',
      '-device', 'virtconsole,bus=vser0.0,chardev=c0,name=org.test.console.0,id=con0',
    ]); // prettier-ignore
    expect(t.devices).toEqual([defaultDevice('virtio-serial-pci', { id: 'vser0', maxPorts: 8 })]);
    expect(t.monitors).toEqual([{ chardev: 'qmp', mode: 'control', pretty: false }]);
    expect(t.ports.map((p) => [p.id, p.bus])).toEqual([
      ['port1', 'vser0.0'],
      ['con0', 'vser0.0'],
    ]);
  });

  describe('H2 legacy -qmp / -monitor shorthands', () => {
    test('-qmp unix:PATH,server,nowait makes chardev compat_monitor0 and a QMP monitor (the name scenario2.log shows)', () => {
      const { t, notes } = parse(['-qmp', 'unix:/tmp/guest/qmp.sock,server,nowait']);
      expect(t.chardevs).toEqual([unixServer('compat_monitor0', '/tmp/guest/qmp.sock')]);
      expect(t.monitors).toEqual([
        { id: 'compat_monitor0', chardev: 'compat_monitor0', mode: 'control', pretty: false },
      ]);
      // The shorthand's own flags draw no warning (QEMU parses them with warn_on_flag off).
      expect(notes.some((n) => n.kind === 'Deprecated')).toBe(false);
    });

    test('-monitor stdio is an HMP monitor on a stdio chardev', () => {
      const { t } = parse(['-monitor', 'stdio']);
      expect(t.chardevs).toEqual([
        { id: 'compat_monitor0', backend: { kind: 'stdio' }, mux: false, logappend: false },
      ]);
      expect(t.monitors).toEqual([
        { id: 'compat_monitor0', chardev: 'compat_monitor0', mode: 'readline', pretty: false },
      ]);
    });

    test('-qmp tcp:HOST:PORT,server and tcp::PORT (empty host); -qmp-pretty sets pretty', () => {
      const { t } = parse([
        '-qmp',
        'tcp:localhost:4444,server,nowait',
        '-qmp-pretty',
        'tcp::4445,server',
      ]);
      expect(t.chardevs.map((c) => c.backend)).toEqual([
        {
          kind: 'socket',
          address: { type: 'tcp', host: 'localhost', port: '4444' },
          server: true,
          wait: false,
          nodelay: false,
        },
        {
          kind: 'socket',
          address: { type: 'tcp', host: '', port: '4445' },
          server: true,
          wait: true,
          nodelay: false,
        },
      ]);
      expect(t.monitors.map((m) => [m.id, m.mode, m.pretty])).toEqual([
        ['compat_monitor0', 'control', false],
        ['compat_monitor1', 'control', true],
      ]);
    });

    test('pty, null, pipe:PATH, file:PATH, tcp:, udp: and /dev/ shorthands', () => {
      const { t } = parse([
        '-monitor', 'pty',
        '-monitor', 'null',
        '-monitor', 'pipe:/tmp/mon',
        '-qmp', 'file:/tmp/qmp.log',
        '-monitor', 'tcp:127.0.0.1:5555,server,nowait',
        '-monitor', 'udp:10.0.0.1:7000@:7001',
        '-monitor', '/dev/ttyS1',
      ]); // prettier-ignore
      expect(t.chardevs.map((c) => [c.id, c.backend, c.ignoredKeys])).toEqual([
        ['compat_monitor0', { kind: 'pty' }, undefined],
        ['compat_monitor1', { kind: 'null' }, undefined],
        ['compat_monitor2', { kind: 'pipe', path: '/tmp/mon' }, undefined],
        ['compat_monitor3', { kind: 'file', path: '/tmp/qmp.log', append: false }, undefined],
        [
          'compat_monitor4',
          {
            kind: 'socket',
            address: { type: 'tcp', host: '127.0.0.1', port: '5555' },
            server: true,
            wait: false,
            nodelay: false,
          },
          undefined,
        ],
        [
          'compat_monitor5',
          { kind: 'udp', host: '10.0.0.1', port: '7000', localport: '7001' },
          undefined,
        ],
        ['compat_monitor6', { kind: 'serial', path: '/dev/ttyS1' }, undefined],
      ]);
    });

    test('mon:stdio muxes the monitor (mux=on, signal=off)', () => {
      const { t } = parse(['-monitor', 'mon:stdio']);
      expect(t.chardevs[0]).toEqual({
        id: 'compat_monitor0',
        backend: { kind: 'stdio' },
        mux: true,
        logappend: false,
        ignoredKeys: { signal: 'off' },
      });
    });

    test('chardev:NAME reuses a chardev and still counts towards compat_monitorN', () => {
      const { t } = parse(['-chardev', 'pty,id=hmp', '-monitor', 'chardev:hmp', '-qmp', 'stdio']);
      expect(t.chardevs.map((c) => c.id)).toEqual(['hmp', 'compat_monitor1']);
      expect(t.monitors).toEqual([
        { id: 'hmp', chardev: 'hmp', mode: 'readline', pretty: false },
        { id: 'compat_monitor1', chardev: 'compat_monitor1', mode: 'control', pretty: false },
      ]);
    });

    test('-monitor none is kept as an ignored option', () => {
      const { t } = parse(['-monitor', 'none']);
      expect(t).toEqual({ ...empty, ignored: [{ option: '-monitor', arg: 'none' }] });
    });

    test('-mon with the implied chardev key, mode and pretty', () => {
      const { t } = parse([
        '-chardev',
        'socket,id=m,path=/tmp/m,server=on,wait=off',
        '-mon',
        'm,mode=control,pretty=on,id=mon0',
      ]);
      expect(t.monitors).toEqual([{ id: 'mon0', chardev: 'm', mode: 'control', pretty: true }]);
    });
  });

  describe('H2 key=value syntax', () => {
    test(',, is a literal comma in paths and port names', () => {
      const { t } = parse([
        '-chardev', 'file,id=f,path=/tmp/a,,b,,,,c',
        '-device', 'virtio-serial',
        '-device', 'virtserialport,chardev=f,name=org.example,,port',
      ]); // prettier-ignore
      expect(t.chardevs[0]?.backend).toEqual({ kind: 'file', path: '/tmp/a,b,,c', append: false });
      expect(t.ports[0]?.name).toBe('org.example,port');
      expect(printQemuArgs(t).args[1]).toBe('file,id=f,path=/tmp/a,,b,,,,c');
    });

    test('booleans: on/off, yes/no, true/false, y/n', () => {
      const spellings = [
        ['on', 'off'],
        ['yes', 'no'],
        ['true', 'false'],
        ['y', 'n'],
      ];
      for (const [yes, no] of spellings) {
        const { t } = parse(['-chardev', `socket,id=s,path=/tmp/s,server=${yes},wait=${no}`]);
        expect(t.chardevs[0]?.backend).toMatchObject({ server: true, wait: false });
      }
    });

    test("QEMU's nodelay trap: bare `nodelay` is delay=off, which means TCP_NODELAY on", () => {
      const { t, notes } = parse(['-chardev', 'socket,id=s,host=localhost,port=4000,nodelay']);
      expect(t.chardevs[0]?.backend).toMatchObject({ nodelay: true, server: false, wait: false });
      expect(notes.find((n) => n.kind === 'Deprecated')?.message).toBe(
        "short-form boolean option 'nodelay' deprecated; Please use nodelay=on instead",
      );
    });

    test('backend= and driver= may be spelled out; --option is -option', () => {
      const { t } = parse([
        '--chardev',
        'backend=null,id=n',
        '--device',
        'driver=virtio-serial-pci',
      ]);
      expect(t.chardevs[0]?.backend).toEqual({ kind: 'null' });
      expect(t.devices[0]?.driver).toBe('virtio-serial-pci');
    });

    test('numbers in C notation: max_ports=0x10 is 16, nr=010 is 8 (octal)', () => {
      const { t } = parse([
        '-device', 'virtio-serial,max_ports=0x10',
        '-device', 'virtserialport,nr=010',
      ]); // prettier-ignore
      expect(t.devices[0]?.maxPorts).toBe(16);
      expect(t.ports[0]?.nr).toBe(8);
    });

    test('the first id= wins, the last value of any other key wins', () => {
      const { t } = parse(['-chardev', 'file,id=a,path=/one,id=b,path=/two']);
      expect(t.chardevs[0]?.id).toBe('a');
      expect(t.chardevs[0]?.backend).toEqual({ kind: 'file', path: '/two', append: false });
    });
  });

  describe('H1 every backend', () => {
    test('socket tcp client with reconnect and nodelay=on; unix socket with wait=on', () => {
      const { t } = parse([
        '-chardev', 'socket,id=a,host=10.0.0.2,port=5000,reconnect=5,nodelay=on',
        '-chardev', 'socket,id=b,path=/tmp/b,server=on',
      ]); // prettier-ignore
      expect(t.chardevs.map((c) => c.backend)).toEqual([
        {
          kind: 'socket',
          address: { type: 'tcp', host: '10.0.0.2', port: '5000' },
          server: false,
          wait: false,
          nodelay: true,
          reconnect: 5,
        },
        {
          kind: 'socket',
          address: { type: 'unix', path: '/tmp/b' },
          server: true,
          wait: true,
          nodelay: false,
        },
      ]);
    });

    test('socket on an inherited fd (how libvirt passes its monitor socket)', () => {
      const { t } = parse([
        '-chardev',
        'socket,id=charmonitor,fd=34,server=on,wait=off',
        '-mon',
        'chardev=charmonitor,id=monitor,mode=control',
      ]);
      expect(t.chardevs[0]?.backend).toMatchObject({
        address: { type: 'fd', fd: '34' },
        server: true,
      });
    });

    test('pipe, file append, pty, null, stdio, serial, udp', () => {
      const { t } = parse([
        '-chardev', 'pipe,id=p,path=/tmp/guesta-virtioserial1',
        '-chardev', 'file,id=f,path=/var/log/vm.log,append=on',
        '-chardev', 'pty,id=t',
        '-chardev', 'null,id=n',
        '-chardev', 'stdio,id=s,signal=off',
        '-chardev', 'serial,id=d,path=/dev/ttyS0',
        '-chardev', 'udp,id=u,port=6000,localaddr=0.0.0.0,localport=6001',
      ]); // prettier-ignore
      expect(t.chardevs.map((c) => c.backend)).toEqual([
        { kind: 'pipe', path: '/tmp/guesta-virtioserial1' },
        { kind: 'file', path: '/var/log/vm.log', append: true },
        { kind: 'pty' },
        { kind: 'null' },
        { kind: 'stdio' },
        { kind: 'serial', path: '/dev/ttyS0' },
        // QEMU fills in the remote host.
        { kind: 'udp', host: 'localhost', port: '6000', localaddr: '0.0.0.0', localport: '6001' },
      ]);
      expect(t.chardevs[4]?.ignoredKeys).toEqual({ signal: 'off' });
    });

    test('ringbuf: default 64 KiB, size with a suffix, memory is the same backend', () => {
      const { t } = parse([
        '-chardev',
        'ringbuf,id=r1',
        '-chardev',
        'ringbuf,id=r2,size=1M',
        '-chardev',
        'memory,id=r3,size=4096',
      ]);
      expect(t.chardevs.map((c) => c.backend)).toEqual([
        { kind: 'ringbuf', size: 65536 },
        { kind: 'ringbuf', size: 1048576 },
        { kind: 'ringbuf', size: 4096 },
      ]);
    });

    test('tty is the deprecated alias of serial', () => {
      const { t, notes } = parse(['-chardev', 'tty,id=pts2,path=/dev/pts/2']);
      expect(t.chardevs[0]?.backend).toEqual({ kind: 'serial', path: '/dev/pts/2' });
      expect(notes.find((n) => n.kind === 'Deprecated')?.message).toBe(
        "The alias 'tty' is deprecated, use 'serial' instead",
      );
    });

    test('mux, logfile and logappend on any backend', () => {
      const { t } = parse([
        '-chardev',
        'socket,id=m,host=::,port=4555,server=on,wait=off,mux=on,logfile=/tmp/m.log,logappend=on',
      ]);
      expect(t.chardevs[0]).toMatchObject({ mux: true, logfile: '/tmp/m.log', logappend: true });
    });

    // Issue 14 item 4: QEMU's socket chardev implements these (chardev/char-socket.c
    // qemu_chr_parse_socket reads telnet, tn3270, websocket, tls-creds, tls-authz; util/
    // qemu-sockets.c reads to, ipv4, ipv6; abstract and tight are H5); vmchan does not, so it refuses each by
    // name in QEMU's style instead of accepting and ignoring it. Written off, they do nothing
    // in QEMU either and are accepted.
    test.each([
      ['host=::,port=4555,server=on,tn3270=on', 'tn3270', 'the TN3270 protocol (tn3270)'],
      ['host=::,port=4555,server=on,tls-creds=t0', 'tls-creds', 'TLS on sockets (tls-creds)'],
      ['host=::,port=4555,to=4600', 'to', 'port ranges (to)'],
      ['host=::,port=4555,ipv4=on', 'ipv4', 'address family restrictions (ipv4)'],
    ])('socket,%s is refused: vmchan does not emulate %s', (opts, key, what) => {
      const r = parseQemuArgs(['-chardev', `socket,id=s,${opts}`]);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error.message).toBe(`vmchan does not emulate ${what}`);
      expect(r.error.key).toBe(key);
    });

    test('telnet=on and the telnet: shorthand are modelled (QEMU negotiation, IAC stripped)', () => {
      const { t } = parse(['-monitor', 'telnet:127.0.0.1:5555,server,nowait']);
      expect(t.chardevs[0]?.backend).toMatchObject({ kind: 'socket', server: true, telnet: true });
      expect(t.chardevs[0]?.ignoredKeys).toBeUndefined();
      const back = parseQemuArgs(printQemuArgs(t).args);
      expect(back.ok && back.value.chardevs[0]?.backend).toEqual(t.chardevs[0]?.backend);
    });

    test('websocket=on is modelled on a server (handshake, binary frames); a client is refused as QEMU does', () => {
      const { t } = parse([
        '-chardev',
        'socket,id=w,host=127.0.0.1,port=4555,server=on,wait=off,websocket=on',
      ]);
      expect(t.chardevs[0]?.backend).toMatchObject({
        kind: 'socket',
        server: true,
        websocket: true,
      });
      const back = parseQemuArgs(printQemuArgs(t).args);
      expect(back.ok && back.value.chardevs[0]?.backend).toEqual(t.chardevs[0]?.backend);
      // qemu_chr_parse_socket: "Websocket client is not implemented".
      const client = parseQemuArgs([
        '-chardev',
        'socket,id=w,host=127.0.0.1,port=4555,websocket=on',
      ]);
      expect(!client.ok && client.error.message).toBe('Websocket client is not implemented');
    });

    test('a refused option written off is accepted (it does nothing in QEMU either)', () => {
      const { t } = parse(['-chardev', 'socket,id=s,host=::,port=4555,server=on,tn3270=off']);
      expect(t.chardevs[0]?.ignoredKeys).toBeUndefined();
    });

    test('a backend vmchan does not emulate (vc) is kept with its keys', () => {
      const { t, notes } = parse(['-chardev', 'vc,id=v,cols=80,rows=24']);
      expect(t.chardevs[0]).toEqual({
        id: 'v',
        backend: { kind: 'other', driver: 'vc' },
        mux: false,
        logappend: false,
        ignoredKeys: { cols: '80', rows: '24' },
      });
      expect(notes.some((n) => n.message.includes('does not emulate'))).toBe(true);
    });
  });

  describe('D1 D3 devices and ports', () => {
    test('D1: max_ports up to 511 and the other device properties', () => {
      const { t } = parse([
        '-device',
        'virtio-serial-pci,id=v,max_ports=511,vectors=4,emergency-write=off,packed=on,event_idx=off,indirect_desc=off,ioeventfd=off,addr=0x5',
      ]);
      expect(t.devices[0]).toEqual({
        driver: 'virtio-serial-pci',
        id: 'v',
        maxPorts: 511,
        vectors: 4,
        emergencyWrite: false,
        packed: true,
        eventIdx: false,
        indirectDesc: false,
        ignoredKeys: { ioeventfd: 'off', addr: '0x5' },
      });
    });

    test('D3: nr is kept as given and left undefined otherwise (nr=4294967295 is QEMU\'s "unset")', () => {
      const { t } = parse([
        '-device',
        'virtio-serial',
        '-device',
        'virtserialport,nr=3',
        '-device',
        'virtserialport',
        '-device',
        'virtconsole,nr=4294967295',
      ]);
      expect(t.ports.map((p) => p.nr)).toEqual([3, undefined, undefined]);
    });

    test('D3: port-number rules (nr=0, duplicates, range) are left to the device', () => {
      const { t } = parse([
        '-device',
        'virtio-serial,max_ports=2',
        '-device',
        'virtserialport,nr=0',
        '-device',
        'virtserialport,nr=0',
        '-device',
        'virtserialport,nr=9',
      ]);
      expect(t.ports.map((p) => p.nr)).toEqual([0, 0, 9]);
    });

    test('a device without id has bus virtio-serial-bus.N, counting only devices without id', () => {
      const { t } = parse([
        '-device', 'virtio-serial',
        '-device', 'virtio-serial-pci,id=named',
        '-device', 'virtio-serial-device',
        '-device', 'virtserialport,bus=virtio-serial-bus.1',
        '-device', 'virtserialport,bus=named.0',
        '-device', 'virtserialport,bus=virtio-serial-bus.0',
      ]); // prettier-ignore
      expect(t.ports.map((p) => p.bus)).toEqual([
        'virtio-serial-bus.1',
        'named.0',
        'virtio-serial-bus.0',
      ]);
    });

    test('a port without bus= goes on the most recently created virtio-serial device (QEMU, not "the first")', () => {
      const { t, notes } = parse([
        '-device', 'virtio-serial,id=a',
        '-device', 'virtserialport,id=p1',
        '-device', 'virtio-serial,id=b',
        '-device', 'virtserialport,id=p2',
      ]); // prettier-ignore
      expect(t.ports.map((p) => [p.id, p.bus])).toEqual([
        ['p1', 'a.0'],
        ['p2', 'b.0'],
      ]);
      expect(notes.filter((n) => n.kind === 'Implied').map((n) => n.token)).toEqual(['a.0', 'b.0']);
    });

    test('a port without chardev is allowed (the Fedora HMP hot-plug example)', () => {
      const { t } = parse([
        '-device',
        'virtio-serial',
        '-device',
        'virtserialport,name=org.fedoraproject.port.0,id=port0',
        '-device',
        'virtserialport,chardev=',
      ]);
      expect(t.ports).toEqual([
        {
          driver: 'virtserialport',
          bus: 'virtio-serial-bus.0',
          id: 'port0',
          name: 'org.fedoraproject.port.0',
        },
        { driver: 'virtserialport', bus: 'virtio-serial-bus.0' },
      ]);
    });

    test('H1 mux=on: one chardev for a monitor and up to three ports (four frontends)', () => {
      const { t } = parse([
        '-chardev', 'stdio,mux=on,id=char0',
        '-mon', 'chardev=char0,mode=readline',
        '-device', 'virtio-serial',
        '-device', 'virtconsole,chardev=char0',
        '-device', 'virtserialport,chardev=char0',
        '-device', 'virtserialport,chardev=char0',
      ]); // prettier-ignore
      expect(t.ports).toHaveLength(3);
      expect(t.monitors).toHaveLength(1);
    });
  });

  test('a real full command line: -m, -kernel, -append with spaces, -drive, -nographic are kept as ignored', () => {
    const text = `qemu-system-x86_64 -enable-kvm -m 1024 -smp 2 -cpu host \\
  -kernel /tmp/linux-3.11/arch/x86/boot/bzImage \\
  -append "console=ttyS0 root=/dev/vda rw kgdboc=ttyS0,115200" \\
  -drive file=/var/lib/images/guest.qcow2,if=virtio,format=qcow2 \\
  -netdev user,id=n0 -device virtio-net-pci,netdev=n0 \\
  -nographic -serial mon:stdio \\
  -chardev socket,id=ga,path=/tmp/qga.sock,server=on,wait=off \\
  -device virtio-serial-pci,id=vser0 \\
  -device virtserialport,bus=vser0.0,chardev=ga,name=org.qemu.guest_agent.0`;
    const { t, notes } = parse(text);
    expect(t.ignored).toEqual([
      { option: '-enable-kvm' },
      { option: '-m', arg: '1024' },
      { option: '-smp', arg: '2' },
      { option: '-cpu', arg: 'host' },
      { option: '-kernel', arg: '/tmp/linux-3.11/arch/x86/boot/bzImage' },
      { option: '-append', arg: 'console=ttyS0 root=/dev/vda rw kgdboc=ttyS0,115200' },
      { option: '-drive', arg: 'file=/var/lib/images/guest.qcow2,if=virtio,format=qcow2' },
      { option: '-netdev', arg: 'user,id=n0' },
      { option: '-device', arg: 'virtio-net-pci,netdev=n0' },
      { option: '-nographic' },
      { option: '-serial', arg: 'mon:stdio' },
    ]);
    expect(t.ports).toEqual([
      { driver: 'virtserialport', bus: 'vser0.0', chardev: 'ga', name: 'org.qemu.guest_agent.0' },
    ]);
    expect(notes.filter((n) => n.kind === 'Ignored')).toHaveLength(11);
    // and it prints back with the ignored options first, quoted for a shell
    expect(printQemuArgs(t).shell).toContain(
      "-append 'console=ttyS0 root=/dev/vda rw kgdboc=ttyS0,115200'",
    );
  });
});
