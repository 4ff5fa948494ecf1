/**
 * Issue 14 item 2 (H3), on the real test guest under QEMU 7.2 and on the
 * lab, the same scenario, compared, over a unix and over a tcp server
 * socket chardev: a second host client is not closed while the first is
 * connected; it waits (QEMU stops accepting while a client is connected:
 * chardev/char-socket.c tcp_chr_new_client removes the listener's accept
 * handler and tcp_chr_disconnect restores it, so the kernel's listen
 * backlog holds the second connection and its bytes), and it is served,
 * with what it already sent, when the first leaves. The guest echoes the
 * port (cat on the port opened read-write), so what the guest read comes
 * back to whichever client is served.
 */
import path from 'node:path';
import type net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { QmpClient } from '../../core/qemu/qmp-client.js';
import { chardevBackend } from '../../core/qemu/qmp-types.js';
import { isWorkloadError, parseWorkload, startWorkloads } from '../../core/workloads/index.js';
import type { Guest } from '../guest/qemu.js';
import {
  Collector,
  connectTcp,
  removeTempDirs,
  startMachine,
  tcpPortOf,
  tempDir,
} from '../lab/helpers.js';
import {
  bootGuestWithQmp,
  chardevLookup,
  connectUnix,
  describeRealGuest,
  guestShell,
  hotplugPort,
  poller,
  requirePrerequisites,
} from './real-guest.js';

type Transport = 'unix' | 'tcp';

/**
 * The scenario on one server socket; returns what each client saw, in
 * order. `firstConnected` runs once the first client is in: the real
 * guest starts its echo there (see below).
 */
async function scenario(
  connect: () => Promise<net.Socket>,
  firstConnected: () => Promise<void> = async () => {},
): Promise<string[]> {
  const seen: string[] = [];
  const first = new Collector(await connect());
  await firstConnected();
  first.socket.write('first\n');
  seen.push(`first got ${await first.line(LINE_MS)}`);
  const second = new Collector(await connect());
  second.socket.write('second\n');
  // A round trip on the first client after the second wrote: proves the
  // second's bytes did not reach the guest and the second is still there.
  first.socket.write('again\n');
  seen.push(`first got ${await first.line(LINE_MS)}`);
  seen.push(`second ended: ${second.ended}, got ${second.length} bytes`);
  first.socket.destroy();
  seen.push(`second got ${await second.line(LINE_MS)}`);
  second.socket.destroy();
  return seen;
}

/** A line through the TCG guest on a loaded machine: generous. */
const LINE_MS = 60_000;

const expected = [
  'first got first',
  'first got again',
  'second ended: false, got 0 bytes',
  'second got second',
];

/** The lab's command line: one port on a server socket of `transport` (tcp: a port the kernel picks). */
function labArgs(dir: string, transport: Transport): string[] {
  const address =
    transport === 'unix' ? `path=${path.join(dir, 'test1')}` : 'host=127.0.0.1,port=0';
  return [
    '-chardev',
    `socket,id=test1,${address},server=on,wait=off`,
    '-device',
    'virtio-serial',
    '-device',
    'virtserialport,chardev=test1,name=test1',
  ];
}

describeRealGuest(
  'H3 a second client waits in the backlog (real QEMU vs the lab)',
  'H3 backlog',
  () => {
    let guest: Guest;
    let qmp: QmpClient;
    const sh = guestShell(() => guest);
    const until = poller(30_000, 100);
    const chardev = chardevLookup(() => qmp);

    const portName = (t: Transport) => (t === 'unix' ? 'org.test.backlog' : 'org.test.backlog.tcp');
    const label = (t: Transport) => (t === 'unix' ? 'c-port1' : 'c-porttcp');
    const stopFile = (t: Transport) => `/tmp/stop-echo-${t}`;

    /**
     * The guest's echo, started once the first client is in: Linux's read
     * on a port with no host returns end-of-file at once (virtio_console.c
     * port_fops_read: no data and !host_connected returns 0), so a lone
     * `cat` started before any host would end there, and one running when
     * the first client leaves ends too. The loop opens the port again until
     * the test's stop file exists; it waits for QEMU to report the guest's
     * open (frontend-open) and the host (connected).
     */
    async function startEcho(t: Transport): Promise<void> {
      await until(
        `QEMU to report the first client on ${label(t)}`,
        () => chardev(label(t)),
        (c) => !c.filename.startsWith('disconnected:'),
      );
      const node = `/dev/virtio-ports/${portName(t)}`;
      await sh(
        `while [ ! -e ${stopFile(t)} ]; do cat <>${node} >&0 2>/dev/null; done >/dev/null 2>&1 &`,
      );
      await until(
        `the guest's echo to open ${label(t)}`,
        () => chardev(label(t)),
        (c) => c['frontend-open'],
      );
    }

    beforeAll(async () => {
      requirePrerequisites('the H3 backlog comparison');
      ({ guest, qmp } = await bootGuestWithQmp([{ id: 'port1', name: 'org.test.backlog' }]));
      // The tcp form on the same guest: a hot-plugged port on a tcp server.
      await hotplugPort(
        qmp,
        'porttcp',
        'org.test.backlog.tcp',
        chardevBackend.tcpServer('127.0.0.1', 0),
      );
      await until(
        'the tcp port linked in the guest',
        () => sh('ls /dev/virtio-ports/'),
        (r) => r.output.includes('org.test.backlog.tcp'),
      );
    }, 180_000);

    afterAll(async () => {
      await qmp?.close();
      await guest?.stop();
      removeTempDirs();
    });

    for (const transport of ['unix', 'tcp'] as const) {
      it(`H3 over ${transport}: QEMU and the lab serve the waiting client with what it sent when the first leaves`, async () => {
        const qemuConnect =
          transport === 'unix'
            ? () => connectUnix(guest.portSocket('port1'))
            : async () => connectTcp(tcpPortOf((await chardev('c-porttcp')).filename));
        let onQemu: string[];
        try {
          onQemu = await scenario(qemuConnect, () => startEcho(transport));
        } finally {
          // The loop would spin on end-of-file once no host is left.
          await sh(`touch ${stopFile(transport)}`);
        }
        expect(onQemu).toEqual(expected);

        const dir = tempDir('backlog');
        const m = await startMachine(labArgs(dir, transport), dir);
        try {
          const spec = parseWorkload('test1=echo');
          if (isWorkloadError(spec)) throw new Error(spec.message);
          const w = await startWorkloads(m.lab, [spec]);
          if (isWorkloadError(w)) throw new Error(w.message);
          const labConnect =
            transport === 'unix'
              ? () => connectUnix(path.join(dir, 'test1'))
              : () => connectTcp(tcpPortOf(m.backend('test1')?.describe() ?? 'no chardev test1'));
          const onLab = await scenario(labConnect);
          await Promise.all(w.map((x) => x.stop()));
          expect(onLab).toEqual(onQemu);
        } finally {
          await m.close();
        }
      }, 120_000);
    }
  },
);
