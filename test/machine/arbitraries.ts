/**
 * fast-check generators of valid topologies: every one is something QEMU
 * 7.2 would accept (ids well formed and unique per namespace, chardevs
 * shared only through mux and at most four times, ports on existing buses,
 * ignoredKeys that QEMU accepts for that backend), so printing and parsing
 * it again must give it back. A second generator makes topologies libvirt
 * can say completely, for the XML round trip.
 */
import fc from 'fast-check';
import {
  busNames,
  type Chardev,
  type ChardevBackend,
  type IgnoredOption,
  type Monitor,
  type Port,
  type Topology,
  type VirtioSerialDevice,
} from '../../core/machine/index.js';

const idArb = fc.stringMatching(/^[A-Za-z][A-Za-z0-9\-._]{0,7}$/);
/** Values with the characters that need care: commas (doubled), '=', spaces, quotes. */
const textArb = fc.stringMatching(/^[A-Za-z0-9 ,=./:'"_-]{0,12}$/);
const nonEmptyTextArb = fc.stringMatching(/^[A-Za-z0-9,=./:_-]{1,12}$/);
const pathArb = fc.stringMatching(/^\/[A-Za-z0-9 ,=._-]{0,14}$/);
const portNumberArb = fc.integer({ min: 1, max: 65535 }).map(String);
const onOffArb = fc.constantFrom('on', 'off');

function optional<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(arb, { nil: undefined });
}

/** Drop undefined members so toEqual compares like with like after JSON. */
function clean<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function ignoredKeysArb(
  pool: Record<string, fc.Arbitrary<string>>,
): fc.Arbitrary<Record<string, string> | undefined> {
  const keys = Object.keys(pool);
  if (keys.length === 0) return fc.constant(undefined);
  return fc
    .subarray(keys)
    .chain((chosen) =>
      chosen.length === 0
        ? fc.constant(undefined)
        : fc
            .tuple(...chosen.map((k) => pool[k] as fc.Arbitrary<string>))
            .map((values) => Object.fromEntries(chosen.map((k, i) => [k, values[i] as string]))),
    );
}

type BackendWithKeys = { backend: ChardevBackend; ignoredKeys: Record<string, string> | undefined };

const socketArb: fc.Arbitrary<BackendWithKeys> = fc
  .record({
    address: fc.oneof(
      pathArb.map((path) => ({ type: 'unix' as const, path })),
      fc.record({
        type: fc.constant('tcp' as const),
        host: fc.constantFrom('', 'localhost', '127.0.0.1', '::1'),
        port: portNumberArb,
      }),
      fc.constantFrom('3', '34', 'qmpfd').map((fd) => ({ type: 'fd' as const, fd })),
    ),
    server: fc.boolean(),
    wait: fc.boolean(),
    nodelay: fc.boolean(),
    reconnect: optional(fc.nat(3600)),
    abstract: fc.constantFrom('no', 'tight', 'padded'),
  })
  .chain((s) => {
    const server = s.server;
    const backend = clean({
      kind: 'socket' as const,
      address: s.address,
      server,
      wait: server && s.wait,
      nodelay: s.nodelay,
      reconnect: server || s.address.type === 'fd' ? undefined : s.reconnect,
      // abstract=on (H5): tight by default, tight=off padded; unix addresses only.
      abstract: s.address.type === 'unix' && s.abstract !== 'no' ? (true as const) : undefined,
      tight: s.address.type === 'unix' && s.abstract === 'padded' ? (false as const) : undefined,
    });
    // Options vmchan does not emulate (tn3270, tls-creds, to, ipv4, ...) are refused, not kept
    // (issue 14 item 4).
    return ignoredKeysArb({}).map((ignoredKeys) => ({ backend, ignoredKeys }));
  });

function plain(
  backend: ChardevBackend,
  pool: Record<string, fc.Arbitrary<string>> = {},
): fc.Arbitrary<BackendWithKeys> {
  return ignoredKeysArb(pool).map((ignoredKeys) => ({ backend, ignoredKeys }));
}

const backendArb = (allowStdio: boolean): fc.Arbitrary<BackendWithKeys> =>
  fc.oneof(
    socketArb,
    pathArb.chain((path) => plain({ kind: 'pipe', path })),
    fc
      .tuple(pathArb, fc.boolean())
      .chain(([path, append]) => plain({ kind: 'file', path, append })),
    plain({ kind: 'pty' }, { path: pathArb }),
    plain({ kind: 'null' }),
    fc.integer({ min: 0, max: 30 }).chain((bits) => plain({ kind: 'ringbuf', size: 2 ** bits })),
    fc
      .record({
        host: fc.constantFrom('localhost', '10.0.0.1', 'example.org'),
        port: portNumberArb,
        localaddr: optional(fc.constantFrom('0.0.0.0', '127.0.0.1')),
        localport: optional(portNumberArb),
      })
      .chain((u) => plain(clean({ kind: 'udp' as const, ...u }))),
    ...(allowStdio ? [plain({ kind: 'stdio' }, { signal: onOffArb })] : []),
    pathArb.chain((path) => plain({ kind: 'serial', path })),
    fc
      .constantFrom(
        'vc',
        'spicevmc',
        'spiceport',
        'msmouse',
        'braille',
        'testdev',
        'qemu-vdagent',
        'wctablet',
      )
      .chain((driver) => plain({ kind: 'other', driver }, { name: nonEmptyTextArb })),
  );

const chardevArb = (id: string, allowStdio: boolean): fc.Arbitrary<Chardev> =>
  fc
    .record({
      b: backendArb(allowStdio),
      mux: fc.boolean(),
      logfile: optional(pathArb),
      logappend: fc.boolean(),
    })
    .map(({ b, mux, logfile, logappend }) =>
      clean({ id, backend: b.backend, mux, logfile, logappend, ignoredKeys: b.ignoredKeys }),
    );

const deviceArb = (id: string | undefined): fc.Arbitrary<VirtioSerialDevice> =>
  fc
    .constantFrom<VirtioSerialDevice['driver']>(
      'virtio-serial',
      'virtio-serial-pci',
      'virtio-serial-device',
    )
    .chain((driver) =>
      fc
        .record({
          maxPorts: fc.integer({ min: 1, max: 511 }),
          vectors:
            driver === 'virtio-serial-device' ? fc.constant(undefined) : optional(fc.nat(64)),
          emergencyWrite: fc.boolean(),
          packed: fc.boolean(),
          eventIdx: fc.boolean(),
          indirectDesc: fc.boolean(),
          ignoredKeys: ignoredKeysArb(
            driver === 'virtio-serial-device'
              ? { iommu_platform: onOffArb, notify_on_empty: onOffArb }
              : {
                  ioeventfd: onOffArb,
                  addr: fc.constantFrom('0x5', '0x1f'),
                  bus: fc.constantFrom('pci.0', 'pcie.0'),
                  'disable-legacy': fc.constantFrom('on', 'off', 'auto'),
                },
          ),
        })
        .map((d) => clean({ driver, id, ...d })),
    );

const IGNORED_POOL: IgnoredOption[] = [
  { option: '-m', arg: '512' },
  { option: '-enable-kvm' },
  { option: '-nographic' },
  { option: '-kernel', arg: '/boot/vmlinuz' },
  { option: '-append', arg: 'console=ttyS0 root=/dev/vda rw' },
  { option: '-drive', arg: 'file=disk.qcow2,if=virtio' },
  { option: '-netdev', arg: 'user,id=n0' },
  { option: '-device', arg: 'virtio-net-pci,netdev=n0' },
  { option: '-smp', arg: '2' },
  { option: '-monitor', arg: 'none' },
  { option: '', arg: 'disk.img' },
];

/** A valid topology, in the shape parseQemuArgs returns. */
export const topologyArb: fc.Arbitrary<Topology> = fc
  .record({
    chardevIds: fc.uniqueArray(idArb, { maxLength: 6 }),
    deviceIds: fc.uniqueArray(idArb, { maxLength: 9 }),
    deviceCount: fc.nat(3),
    stdioAt: fc.nat(6),
  })
  .chain(({ chardevIds, deviceIds, deviceCount, stdioAt }) => {
    const devices = fc.tuple(
      ...Array.from({ length: deviceCount }, (_, i) =>
        fc.boolean().chain((named) => deviceArb(named ? deviceIds[i] : undefined)),
      ),
    );
    const chardevs = fc.tuple(...chardevIds.map((id, i) => chardevArb(id, i === stdioAt)));
    return fc.tuple(devices, chardevs, fc.constant(deviceIds.slice(deviceCount)));
  })
  .chain(([devices, chardevs, portIds]) => {
    const buses = busNames(devices);
    const slots = chardevs.flatMap((c) => Array.from({ length: c.mux ? 4 : 1 }, () => c.id));
    const portArb = (id: string | undefined): fc.Arbitrary<Omit<Port, 'chardev'>> =>
      fc
        .record({
          driver: fc.constantFrom<Port['driver']>('virtserialport', 'virtconsole'),
          bus: fc.constantFrom(...(buses.length > 0 ? buses : ['unused'])),
          nr: optional(fc.oneof(fc.nat(40), fc.nat(0xfffffffe))),
          name: optional(textArb),
        })
        .map((p) => clean({ ...p, id }));
    const ports =
      buses.length === 0
        ? fc.constant([] as Omit<Port, 'chardev'>[])
        : fc
            .array(fc.boolean(), { maxLength: portIds.length + 2 })
            .chain((named) =>
              fc.tuple(...named.map((n, i) => portArb(n ? portIds[i] : undefined))),
            );
    const monitors = fc.array(
      fc.record({
        id: optional(idArb),
        mode: fc.constantFrom<Monitor['mode']>('control', 'readline'),
        pretty: fc.boolean(),
      }),
      { maxLength: 2 },
    );
    return fc.record({
      devices: fc.constant(devices),
      chardevs: fc.constant(chardevs),
      ports,
      monitors,
      slots: fc.shuffledSubarray(slots),
      ignored: fc.subarray(IGNORED_POOL),
    });
  })
  .map(({ devices, chardevs, ports, monitors, slots, ignored }) => {
    const queue = [...slots];
    const withChardev: Port[] = ports.map((p) => clean({ ...p, chardev: queue.shift() }) as Port);
    const monitorIds = new Set<string>();
    const mons: Monitor[] = [];
    for (const m of monitors) {
      const chardev = queue.shift();
      if (chardev === undefined) break;
      const id = m.id !== undefined && !monitorIds.has(m.id) ? m.id : undefined;
      if (id !== undefined) monitorIds.add(id);
      mons.push(clean({ id, chardev, mode: m.mode, pretty: m.mode === 'control' && m.pretty }));
    }
    return { chardevs, devices, ports: withChardev, monitors: mons, ignored };
  });

/** A topology libvirt can say completely: libvirt's naming, sources it has, one chardev per port. */
export const libvirtTopologyArb: fc.Arbitrary<Topology> = fc
  .record({ controllers: fc.integer({ min: 0, max: 3 }), channels: fc.nat(4), consoles: fc.nat(2) })
  .chain(({ controllers, channels, consoles }) => {
    const devices = fc.tuple(
      ...Array.from({ length: controllers }, (_, i) =>
        fc
          .record({
            driver: fc.constantFrom<VirtioSerialDevice['driver']>(
              'virtio-serial-pci',
              'virtio-serial-device',
            ),
            alias: fc.boolean(),
            maxPorts: fc.integer({ min: 1, max: 511 }),
            vectors: optional(fc.nat(64)),
            packed: fc.boolean(),
            pciKeys: ignoredKeysArb({
              iommu_platform: onOffArb,
              ats: onOffArb,
              'page-per-vq': onOffArb,
            }),
            mmioKeys: ignoredKeysArb({ iommu_platform: onOffArb }),
          })
          .map(
            ({ alias, pciKeys, mmioKeys, ...d }) =>
              clean({
                ...d,
                vectors: d.driver === 'virtio-serial-device' ? undefined : d.vectors,
                ignoredKeys: d.driver === 'virtio-serial-device' ? mmioKeys : pciKeys,
                id: alias ? `ua-ctl${i}` : `virtio-serial${i}`,
                emergencyWrite: true,
                eventIdx: true,
                indirectDesc: true,
              }) as VirtioSerialDevice,
          ),
      ),
    );
    type Shape = { devices: VirtioSerialDevice[]; ports: Port[]; chardevs: Chardev[] };
    return devices.chain((devs): fc.Arbitrary<Shape> => {
      if (devs.length === 0) return fc.constant({ devices: devs, ports: [], chardevs: [] });
      const ids = devs.map((d) => d.id as string);
      const backend: fc.Arbitrary<BackendWithKeys> = fc.oneof(
        fc
          .record({
            path: pathArb,
            server: fc.boolean(),
            reconnect: optional(fc.integer({ min: 1, max: 60 })),
          })
          .map((s) => ({
            backend: clean({
              kind: 'socket' as const,
              address: { type: 'unix' as const, path: s.path },
              server: s.server,
              wait: false,
              nodelay: false,
              reconnect: s.server ? undefined : s.reconnect,
            }),
            ignoredKeys: undefined,
          })),
        fc
          .record({
            host: fc.constantFrom('', '127.0.0.1'),
            port: portNumberArb,
            server: fc.boolean(),
          })
          .map((s) => ({
            backend: {
              kind: 'socket' as const,
              address: { type: 'tcp' as const, host: s.host, port: s.port },
              server: s.server,
              wait: false,
              nodelay: false,
            },
            ignoredKeys: undefined,
          })),
        pathArb.map((path) => ({
          backend: { kind: 'pipe' as const, path },
          ignoredKeys: undefined,
        })),
        fc.tuple(pathArb, fc.boolean()).map(([path, append]) => ({
          backend: { kind: 'file' as const, path, append },
          ignoredKeys: undefined,
        })),
        fc
          .constantFrom<'pty' | 'null' | 'stdio'>('pty', 'null', 'stdio')
          .map((kind) => ({ backend: { kind } as ChardevBackend, ignoredKeys: undefined })),
        pathArb.map((path) => ({
          backend: { kind: 'serial' as const, path },
          ignoredKeys: undefined,
        })),
        fc
          .record({
            host: fc.constantFrom('localhost', '10.0.0.2'),
            port: portNumberArb,
            localaddr: optional(fc.constant('0.0.0.0')),
            localport: optional(portNumberArb),
          })
          .map((u) => ({ backend: clean({ kind: 'udp' as const, ...u }), ignoredKeys: undefined })),
        fc.constant({ backend: { kind: 'other' as const, driver: 'vc' }, ignoredKeys: undefined }),
        fc.constant({
          backend: { kind: 'other' as const, driver: 'spicevmc' },
          ignoredKeys: { name: 'vdagent' },
        }),
        fc.constantFrom('org.qemu.console.serial.0', 'org.spice.port').map((name) => ({
          backend: { kind: 'other' as const, driver: 'spiceport' },
          ignoredKeys: { name },
        })),
      );
      const portArb = (
        kind: 'channel' | 'console',
        k: number,
      ): fc.Arbitrary<{ port: Port; chardev: Chardev }> =>
        fc
          .record({
            controller: fc.nat(ids.length - 1),
            alias: fc.boolean(),
            nr: optional(kind === 'channel' ? fc.integer({ min: 1, max: 30 }) : fc.nat(30)),
            name: kind === 'channel' ? optional(nonEmptyTextArb) : fc.constant(undefined),
            b: backend,
            logfile: optional(pathArb),
            logappend: fc.boolean(),
          })
          .map((r) => {
            const id = r.alias ? `ua-${kind}${k}` : `${kind}${k}`;
            const chardev = clean({
              id: `char${id}`,
              backend: r.b.backend,
              mux: false,
              logfile: r.logfile,
              logappend: r.logfile !== undefined && r.logappend,
              ignoredKeys: r.b.ignoredKeys,
            }) as Chardev;
            const port = clean({
              driver: kind === 'channel' ? 'virtserialport' : 'virtconsole',
              id,
              bus: `${ids[r.controller]}.0`,
              nr: r.nr,
              name: r.name,
              chardev: chardev.id,
            }) as Port;
            return { port, chardev };
          });
      return fc
        .tuple(
          fc.tuple(...Array.from({ length: channels }, (_, k) => portArb('channel', k))),
          fc.tuple(...Array.from({ length: consoles }, (_, k) => portArb('console', k))),
        )
        .map(([ch, co]) => {
          const all = [...ch, ...co];
          return {
            devices: devs,
            ports: all.map((e) => e.port),
            chardevs: all.map((e) => e.chardev),
          };
        });
    });
  })
  .map(({ devices, ports, chardevs }): Topology => {
    // QEMU takes one stdio chardev; later ones become pty so the QEMU side stays valid.
    let stdio = 0;
    const oneStdio = chardevs.map((c) =>
      c.backend.kind === 'stdio' && stdio++ > 0 ? { ...c, backend: { kind: 'pty' as const } } : c,
    );
    return { chardevs: oneStdio, devices, ports, monitors: [], ignored: [] };
  });
