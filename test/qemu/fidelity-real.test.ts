/**
 * Issue 14, items 1, 5, 6 and 7: the same scenario on a real QEMU 7.2 with
 * the Linux 6.1 test guest (test/guest) and on the lab built from the same
 * command line, comparing what the guest and the host see. Both sides are
 * driven over QMP with the same client, their host sides through the same
 * unix socket chardevs; the guest side is the real guest's shell on one,
 * the lab guest's files on the other.
 *
 * - D10 (item 1): Linux sends nothing for a port after PORT_REMOVE
 *   (virtio_console.c unplug_port clears port->portdev); the device keeps
 *   running (virtio-serial-bus.c handle_control_message only error_reports).
 * - Q5 (item 5): VSERPORT_CHANGE rate limit (monitor/monitor.c
 *   monitor_qapi_event_conf, 1 s per id, latest state when the timer fires).
 * - H4 (item 6): a unix host's hang-up loses what QEMU had not read
 *   (char-socket.c: read watch only while the port can read, G_IO_HUP
 *   watch always); a tcp host's close raises no POLLHUP and loses nothing.
 * - L11 (item 7): /dev/hvc0..7 exist; an index with no console is ENODEV
 *   (hvc_console.c hvc_install).
 *
 * One boot for the file. Without qemu-system-x86_64 or busybox-static the
 * block is skipped, except under CI=true, where it fails with the install command.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Machine } from '../../core/machine/machine.js';
import { attachMonitors, type AttachedMonitors } from '../../core/monitor/index.js';
import { QmpClient } from '../../core/qemu/qmp-client.js';
import { chardevBackend, type QmpEvent } from '../../core/qemu/qmp-types.js';
import { isErrno } from '../../core/serial/guest/errno.js';
import { O_RDWR } from '../../core/serial/guest/files.js';
import { isGuestError } from '../guest/guest-shell.js';
import type { Guest, PortSpec } from '../guest/qemu.js';
import { connectTcp, startMachine, tcpPortOf } from '../lab/helpers.js';
import {
  bootGuestWithQmp,
  chardevLookup,
  connectUnix,
  describeRealGuest,
  guestShell,
  hotplugPort,
  ok,
  poller,
  requirePrerequisites,
} from './real-guest.js';

const PORTS: PortSpec[] = [
  { id: 'con0', kind: 'console', name: 'org.test.console.0' },
  { id: 'port1', name: 'org.test.port.1' },
  { id: 'port5', name: 'org.test.port.5' },
  { id: 'port6', name: 'org.test.port.6' },
];

/** The lab's command line: what test/guest/qemu.ts gives QEMU, for the virtio-serial part. */
function labArgs(dir: string): string[] {
  const args = [
    '-chardev',
    `socket,id=qmp,path=${path.join(dir, 'qmp.sock')},server=on,wait=off`,
    '-mon',
    'chardev=qmp,mode=control',
    '-device',
    'virtio-serial-pci,id=vser0,max_ports=8',
  ];
  for (const p of PORTS) {
    args.push(
      '-chardev',
      `socket,id=c-${p.id},path=${path.join(dir, `${p.id}.sock`)},server=on,wait=off`,
    );
    const driver = p.kind === 'console' ? 'virtconsole' : 'virtserialport';
    args.push('-device', `${driver},bus=vser0.0,chardev=c-${p.id},name=${p.name},id=${p.id}`);
  }
  return args;
}

function writeAll(socket: net.Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => socket.write(bytes, () => resolve()));
}

describeRealGuest(
  'fidelity: real QEMU + Linux and the lab side by side',
  'fidelity real-guest tests',
  () => {
    let guest: Guest;
    let qemu: QmpClient;
    let machine: Machine;
    let monitors: AttachedMonitors;
    let lab: QmpClient;
    let labDir: string;

    const sh = guestShell(() => guest);
    const until = poller(15_000, 100);
    const qemuChardev = chardevLookup(() => qemu);
    const labChardev = chardevLookup(() => lab);

    /** The lab guest's side: open a port node, read to end-of-file, close. */
    const files = () => machine.lab.guest.files;
    async function labOpen(node: string): Promise<number> {
      const fd = await files().open(node, O_RDWR);
      if (isErrno(fd)) throw new Error(fd.toString());
      return fd;
    }
    async function labReadAll(fd: number): Promise<number> {
      let n = 0;
      for (;;) {
        const r = await files().read(fd, 65536);
        if (isErrno(r)) throw new Error(r.toString());
        if (r.length === 0) return n;
        n += r.length;
      }
    }

    type ChardevOf = (label: string) => Promise<{ filename: string }>;

    /** A host client of chardev `label` sends 7 bytes once `chardev` shows it connected, and closes. */
    async function hostSends7(
      connect: () => Promise<net.Socket>,
      chardev: ChardevOf,
      label: string,
    ): Promise<void> {
      const host = await connect();
      await until(
        `host connected to ${label}`,
        () => chardev(label),
        (c) => !c.filename.startsWith('disconnected:'),
      );
      await writeAll(host, Buffer.from('1234567'));
      host.destroy();
    }

    /** The sizes of the lab's hangup-unread drops from now until `off()`. */
    function hangupDrops(): { drops: number[]; off: () => void } {
      const drops: number[] = [];
      const off = machine.lab.events.on('drop', (e) => {
        if (e.reason === 'hangup-unread') drops.push(e.bytes);
      });
      return { drops, off };
    }

    beforeAll(async () => {
      requirePrerequisites('the fidelity real-guest tests');
      ({ guest, qmp: qemu } = await bootGuestWithQmp(PORTS));

      labDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmf-'));
      machine = await startMachine(labArgs(labDir), labDir);
      monitors = attachMonitors(machine);
      if (monitors.errors.length > 0) throw new Error(monitors.errors.join('; '));
      lab = ok(await QmpClient.connect(path.join(labDir, 'qmp.sock')));
    }, 180_000);

    afterAll(async () => {
      await qemu?.close();
      await guest?.stop();
      await lab?.close();
      monitors?.close();
      await machine?.close();
      if (labDir) fs.rmSync(labDir, { recursive: true, force: true });
    }, 30_000);

    it('D10 L10 a port unplugged while the guest holds it open: the close sends nothing, the device keeps running', async () => {
      const plug = (q: QmpClient, dir: string): Promise<void> =>
        hotplugPort(q, 'hp', 'org.test.hp', chardevBackend.unixServer(path.join(dir, 'hp.sock')));
      const unplug = async (q: QmpClient): Promise<void> => {
        const deleted = q.waitForEvent('DEVICE_DELETED', {
          timeoutMs: 15_000,
          match: (e) => e.data.device === 'hp',
        });
        expect(await q.deviceDel('hp')).toBeUndefined();
        ok(await deleted);
      };

      // QEMU + Linux.
      await plug(qemu, guest.runDir);
      await until(
        'hot-plugged link',
        () => sh('ls /dev/virtio-ports/'),
        (r) => r.output.includes('org.test.hp'),
      );
      await sh('exec 4<>/dev/virtio-ports/org.test.hp');
      await unplug(qemu);
      await until(
        'link gone',
        () => sh('ls /dev/virtio-ports/'),
        (r) => !r.output.includes('org.test.hp'),
      );
      const realClose = await sh('exec 4>&-; echo closed $?');
      // The device still serves the guest: host bytes through port1.
      const realHost = await connectUnix(guest.portSocket('port1'));
      try {
        await until(
          'host on port1',
          () => qemuChardev('c-port1'),
          (c) => !c.filename.startsWith('disconnected:'),
        );
        const reading = guest.shell.run('head -n1 /dev/virtio-ports/org.test.port.1', {
          timeoutMs: 15_000,
        });
        await until(
          'guest opened port1',
          () => qemuChardev('c-port1'),
          (c) => c['frontend-open'],
        );
        realHost.write('alive\n');
        const r = await reading;
        if (isGuestError(r)) throw new Error(r.toString());
        expect(r.output).toBe('alive\n');
      } finally {
        realHost.destroy();
      }
      // Linux sent no PORT_OPEN 0 for the gone port, so QEMU had nothing to complain about.
      expect(guest.stderr()).not.toContain('Unexpected port id');

      // The lab.
      const ignored: unknown[] = [];
      const off = machine.lab.events.on('control-ignored', (e) => ignored.push(e));
      await plug(lab, labDir);
      await until(
        'lab link',
        async () => machine.lab.guest.namespace.exists('/dev/virtio-ports/org.test.hp'),
        Boolean,
      );
      const fd = await labOpen('/dev/virtio-ports/org.test.hp');
      await unplug(lab);
      await until(
        'lab link gone',
        async () => machine.lab.guest.namespace.exists('/dev/virtio-ports/org.test.hp'),
        (e) => !e,
      );
      const labClose = await files().close(fd);
      const labHost = await connectUnix(path.join(labDir, 'port1.sock'));
      try {
        await until(
          'lab host on port1',
          () => labChardev('c-port1'),
          (c) => !c.filename.startsWith('disconnected:'),
        );
        const p1 = await labOpen('/dev/virtio-ports/org.test.port.1');
        labHost.write('alive\n');
        const got = await files().read(p1, 100);
        expect(isErrno(got) ? got.toString() : Buffer.from(got).toString()).toBe('alive\n');
        await files().close(p1);
      } finally {
        labHost.destroy();
        off();
      }
      off();
      expect(ignored).toEqual([]);
      expect(machine.lab.device('vser0')!.fault).toBe(null);

      // Side by side: the close succeeded on both.
      expect(realClose.output.trim()).toBe('closed 0');
      expect(labClose).toBe(0);
    }, 120_000);

    it('Q5 three quick open/close cycles give the same VSERPORT_CHANGE sequence on both', async () => {
      const collect = (q: QmpClient): QmpEvent[] => {
        const seen: QmpEvent[] = [];
        q.on('VSERPORT_CHANGE', (e) => {
          if ((e.data as { id?: string }).id === 'port5') seen.push(e as QmpEvent);
        });
        return seen;
      };
      const realSeen = collect(qemu);
      const labSeen = collect(lab);
      const cycles =
        'for i in 1 2 3; do exec 5<>/dev/virtio-ports/org.test.port.5; exec 5>&-; done';
      await sh(cycles);
      for (let i = 0; i < 3; i++)
        await files().close(await labOpen('/dev/virtio-ports/org.test.port.5'));

      // The burst ends with the final close, sent when the 1 s timer fires.
      await until(
        'real: the final close',
        async () => realSeen.length,
        (n) => n >= 2,
      );
      await until(
        'lab: the final close',
        async () => labSeen.length,
        (n) => n >= 2,
      );
      // A sentinel open: the next event must be this one, proving nothing came between.
      await sh('exec 5<>/dev/virtio-ports/org.test.port.5');
      const labFd = await labOpen('/dev/virtio-ports/org.test.port.5');
      await until(
        'real: the sentinel',
        async () => realSeen.length,
        (n) => n >= 3,
      );
      await until(
        'lab: the sentinel',
        async () => labSeen.length,
        (n) => n >= 3,
      );
      await sh('exec 5>&-');
      await files().close(labFd);

      const states = (seen: QmpEvent[]): unknown[] => seen.slice(0, 3).map((e) => e.data);
      const expected = [
        { id: 'port5', open: true },
        { id: 'port5', open: false },
        { id: 'port5', open: true },
      ];
      expect(states(realSeen)).toEqual(expected);
      expect(states(labSeen)).toEqual(expected);
      // The held close was sent a second later but keeps the time it happened
      // (qmp_event_build_dict stamps it before the rate limit), on both.
      for (const seen of [realSeen, labSeen]) {
        const gap = seen[1]!.time - seen[0]!.time;
        expect(gap).toBeGreaterThanOrEqual(0);
        expect(gap).toBeLessThan(1_000);
      }
    }, 60_000);

    it('H4 7 bytes to a closed port, then the host hangs up: both guests read end-of-file', async () => {
      const send7 = async (sock: string, chardev: ChardevOf): Promise<void> => {
        await hostSends7(() => connectUnix(sock), chardev, 'c-port6');
        await until(
          'host gone',
          () => chardev('c-port6'),
          (c) => c.filename.startsWith('disconnected:'),
        );
      };
      await send7(guest.portSocket('port6'), qemuChardev);
      const real = await sh('head -c 100 /dev/virtio-ports/org.test.port.6 | wc -c');

      const { drops, off } = hangupDrops();
      await send7(path.join(labDir, 'port6.sock'), labChardev);
      const fd = await labOpen('/dev/virtio-ports/org.test.port.6');
      const labGot = await labReadAll(fd);
      await files().close(fd);
      off();

      expect(real.output.trim()).toBe('0');
      expect(labGot).toBe(0);
      expect(drops).toEqual([7]);
    }, 60_000);

    it('H4 over tcp the host closing is no hang-up: 7 bytes to a closed port survive it on both, then end-of-file', async () => {
      // A tcp peer's FIN raises POLLIN|POLLRDHUP, not POLLHUP (net/ipv4/tcp.c
      // tcp_poll), so QEMU's G_IO_HUP watch (char-socket.c tcp_chr_connect)
      // stays quiet and the bytes wait in the socket for the guest; the unix
      // case above loses them (af_unix sets both shutdown bits on the peer).
      const labLink = '/dev/virtio-ports/org.test.tcp7';
      await hotplugPort(qemu, 'tcp7', 'org.test.tcp7', chardevBackend.tcpServer('127.0.0.1', 0));
      await hotplugPort(lab, 'tcp7', 'org.test.tcp7', chardevBackend.tcpServer('127.0.0.1', 0));
      await until(
        'the tcp port linked in the real guest',
        () => sh('ls /dev/virtio-ports/'),
        (r) => r.output.includes('org.test.tcp7'),
      );
      await until(
        'the tcp port linked in the lab guest',
        async () => machine.lab.guest.namespace.exists(labLink),
        Boolean,
      );
      const send7 = (chardev: ChardevOf): Promise<void> =>
        hostSends7(
          async () => connectTcp(tcpPortOf((await chardev('c-tcp7')).filename)),
          chardev,
          'c-tcp7',
        );
      const { drops, off } = hangupDrops();
      try {
        await send7(qemuChardev);
        const real = await sh('head -c 100 /dev/virtio-ports/org.test.tcp7 | wc -c');
        await send7(labChardev);
        const fd = await labOpen(labLink);
        const labGot = await labReadAll(fd);
        await files().close(fd);

        expect(real.output.trim()).toBe('7');
        expect(labGot).toBe(7);
        expect(drops).toEqual([]);
      } finally {
        off();
      }
    }, 60_000);

    it('H4 540,000 bytes to an open port the guest does not read, then hang-up: both guests get only their buffers worth', async () => {
      // The issue measured 736,000 bytes; here the unix socket holds only
      // about 100 KiB beyond the guest's 512 KiB of receive buffers (measured:
      // 626,688 accepted in all, less on a busy machine), and this host waits
      // for its write to complete, so it sends what surely fits: more than
      // the guest's buffers hold, well under what the path accepts.
      const total = 540_000;
      const sendAndHangUp = async (
        sock: string,
        chardev: (l: string) => Promise<{ filename: string }>,
      ): Promise<void> => {
        const host = await connectUnix(sock);
        await until(
          'host connected',
          () => chardev('c-port6'),
          (c) => !c.filename.startsWith('disconnected:'),
        );
        let written = false;
        void writeAll(host, Buffer.alloc(total, 0x61)).then(() => (written = true));
        await until('the host write handed to the kernel', async () => written, Boolean, 60_000);
        host.destroy();
        await until(
          'host gone',
          () => chardev('c-port6'),
          (c) => c.filename.startsWith('disconnected:'),
          30_000,
        );
      };
      // QEMU reads the host only once it knows the guest opened the port
      // (VSERPORT_CHANGE): writing before that would fill the socket and wait.
      let qemuSawOpen = false;
      qemu.on('VSERPORT_CHANGE', (e) => {
        const d = e.data as { id?: string; open?: boolean };
        if (d.id === 'port6' && d.open === true) qemuSawOpen = true;
      });
      await sh('exec 6<>/dev/virtio-ports/org.test.port.6');
      await until('QEMU to see the guest open port6', async () => qemuSawOpen, Boolean, 30_000);
      await sendAndHangUp(guest.portSocket('port6'), qemuChardev);
      const real = await sh('wc -c <&6; exec 6>&-', 30_000);
      const realGot = Number(real.output.trim());

      const fd = await labOpen('/dev/virtio-ports/org.test.port.6');
      await sendAndHangUp(path.join(labDir, 'port6.sock'), labChardev);
      const labGot = await labReadAll(fd);
      await files().close(fd);

      console.info(`H4: QEMU's guest read ${realGot} of ${total}; the lab's ${labGot}`);
      for (const got of [realGot, labGot]) {
        expect(got).toBeLessThan(total);
        expect(got).toBeGreaterThan(120 * 4096);
        expect(got).toBeLessThanOrEqual(128 * 4096);
      }
    }, 240_000);

    it('L11 /dev/hvc0 to /dev/hvc7 exist on both; hvc1 has no console and opens ENODEV', async () => {
      const real = await sh('ls /dev | grep "^hvc" | sort');
      const realOpen = await sh('cat /dev/hvc1 2>&1; true');
      const list = machine.lab.guest.namespace.list('/dev');
      const labNodes = (Array.isArray(list) ? list : []).filter((n) => n.startsWith('hvc')).sort();
      const labOpen1 = await files().open('/dev/hvc1');

      const eight = ['hvc0', 'hvc1', 'hvc2', 'hvc3', 'hvc4', 'hvc5', 'hvc6', 'hvc7'];
      expect(real.output.split('\n').filter(Boolean)).toEqual(eight);
      expect(labNodes).toEqual(eight);
      expect(realOpen.output).toContain('No such device');
      expect(isErrno(labOpen1) && labOpen1.code).toBe('ENODEV');
      expect(isErrno(labOpen1) && labOpen1.message).toContain('No such device');
    });
  },
);
