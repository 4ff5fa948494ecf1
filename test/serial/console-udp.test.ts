/**
 * D5 D7 H1: console output on a chardev that is never 'opened'. QEMU's udp
 * chardev has be_opened = false, yet a virtconsole's output goes out over
 * it: hw/char/virtio-console.c flush_buf writes to the backend whatever its
 * open state and, for consoles, only drops what the backend refuses. A
 * virtserialport on the same kind of backend never sees the host connect,
 * so its transmit buffers are used with len 0 and counted as dropped (D7).
 */
import dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createChardev, isChardevError, type OpenChardev } from '../../core/chardev/index.js';
import { Lab } from '../../core/engine/lab.js';
import { Machine } from '../../core/machine/machine.js';
import { parseQemuArgs } from '../../core/machine/qemu-cmdline.js';
import type { Chardev } from '../../core/machine/topology.js';
import { ControlEvent } from '../../core/serial/control.js';
import { O_NONBLOCK } from '../../core/serial/guest/files.js';
import { txQueueOf } from '../../core/serial/layout.js';
import { isQemuError } from '../../core/base/qemu-error.js';
import { RawDriver, must, pattern, record, text } from './helpers.js';
import { until } from '../until.js';

const cleanup: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A real datagram socket on loopback collecting what arrives. */
async function receiver(): Promise<{ port: number; got: Buffer[] }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const got: Buffer[] = [];
  socket.on('message', (m) => got.push(m));
  cleanup.push(() => new Promise<void>((r) => socket.close(() => r())));
  return { port: socket.address().port, got };
}

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vms-udp-'));
  cleanup.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function udpSpec(id: string, port: number): Chardev {
  return {
    id,
    mux: false,
    logappend: false,
    backend: { kind: 'udp', host: '127.0.0.1', port: String(port), localaddr: '127.0.0.1' },
  } as Chardev;
}

describe('a virtconsole on udp (QEMU writes console output regardless of be_open)', () => {
  it("the guest's console output reaches a real dgram socket; the serial port on udp stays D7", async () => {
    const consoleSink = await receiver();
    const portSink = await receiver();
    const dir = tempDir();
    const parsed = parseQemuArgs([
      '-chardev',
      `udp,id=u0,host=127.0.0.1,port=${consoleSink.port},localaddr=127.0.0.1`,
      '-chardev',
      `udp,id=u1,host=127.0.0.1,port=${portSink.port},localaddr=127.0.0.1`,
      '-device',
      'virtio-serial-pci,id=vser0',
      '-device',
      'virtconsole,chardev=u0,id=con0',
      '-device',
      'virtserialport,chardev=u1,name=org.test.udp,id=p1',
    ]);
    if (!parsed.ok) throw new Error(parsed.error.toString());
    const m = await Machine.start(parsed.value, { runtimeDir: dir });
    if (isQemuError(m)) throw new Error(m.message);
    cleanup.push(() => m.close());
    const lab = m.lab;
    // Never opened, as QEMU's udp chardev.
    expect(m.chardev('u0')!.connected).toBe(false);

    const files = lab.guest.files;
    const hvc = must(await files.open('/dev/hvc0'));
    expect(await files.write(hvc, new TextEncoder().encode('hello over udp\n'))).toBe(15);
    await until(() => consoleSink.got.length > 0, 'the datagram');
    expect(Buffer.concat(consoleSink.got).toString()).toBe('hello over udp\n');
    const console = lab.device('vser0')!.port(0)!;
    expect(console.stats.toHost).toBe(15);
    expect(console.stats.dropped).toEqual({});

    // The serial port on udp: the host never connects, so the guest's write blocks (L5).
    const port = lab.device('vser0')!.port(1)!;
    expect(port.hostConnected).toBe(false);
    const fd = must(await files.open('/dev/virtio-ports/org.test.udp'));
    await files.setFlags(fd, O_NONBLOCK);
    expect(await files.write(fd, new TextEncoder().encode('no'))).toHaveProperty('code', 'EAGAIN');
    await lab.settle();
    expect(portSink.got).toEqual([]);
  });

  it('a console on a socket with no client: offered to the backend, which discards and counts it', async () => {
    const dir = tempDir();
    const parsed = parseQemuArgs([
      '-chardev',
      `socket,id=s0,path=${path.join(dir, 's0')},server=on,wait=off`,
      '-device',
      'virtio-serial-pci,id=vser0',
      '-device',
      'virtconsole,chardev=s0,id=con0',
    ]);
    if (!parsed.ok) throw new Error(parsed.error.toString());
    const m = await Machine.start(parsed.value, { runtimeDir: dir });
    if (isQemuError(m)) throw new Error(m.message);
    cleanup.push(() => m.close());
    const files = m.lab.guest.files;
    const hvc = must(await files.open('/dev/hvc0'));
    expect(await files.write(hvc, new TextEncoder().encode('nobody\n'))).toBe(7);
    await m.lab.settle();
    expect(m.backend('s0')!.counters.dropped['no-peer']).toBe(7);
    expect(m.backend('s0')!.counters.bytesOut).toBe(0);
  });
});

describe('D7 on udp, at the rings (as QEMU: no host connected, used len 0, counted)', () => {
  it('serial port buffers come back with len 0; console buffers go out as datagrams', async () => {
    const consoleSink = await receiver();
    const portSink = await receiver();
    const dir = tempDir();
    const lab = Lab.create({ devices: [] });
    if (isQemuError(lab)) throw new Error(lab.message);
    const opened: OpenChardev[] = [];
    for (const [id, port] of [
      ['u0', consoleSink.port],
      ['u1', portSink.port],
    ] as const) {
      const c = await createChardev(udpSpec(id, port), {
        post: lab.scheduler.post,
        runtimeDir: dir,
      });
      if (isChardevError(c)) throw new Error(c.message);
      opened.push(c);
      expect(lab.installChardev(c)).toBe(null);
    }
    cleanup.push(async () => {
      for (const c of opened) await c.close();
    });
    const device = lab.addDevice({ id: 'vser0' });
    if (isQemuError(device)) throw new Error(device.message);
    must(lab.deviceAdd({ driver: 'virtconsole', bus: 'vser0.0', chardev: 'u0' }));
    must(lab.deviceAdd({ driver: 'virtserialport', bus: 'vser0.0', name: 'p', chardev: 'u1' }));
    const raw = RawDriver.attach(device, lab);
    const drops = record(lab.events, 'drop');
    raw.postControlRx(8);
    raw.deviceReady();
    raw.sendEvent(0, ControlEvent.PORT_OPEN, 1);
    raw.sendEvent(1, ControlEvent.PORT_OPEN, 1);
    await raw.settle();

    const toPort = raw.add(txQueueOf(1), [pattern(100), pattern(23)], []);
    await raw.settle();
    expect(raw.used(txQueueOf(1))).toEqual([{ token: toPort, len: 0, bytes: new Uint8Array(0) }]);
    expect(drops).toEqual([
      {
        device: 'vser0',
        nr: 1,
        side: 'device',
        bytes: 123,
        reason: 'host-disconnected',
        direction: 'to-host',
      },
    ]);

    const toConsole = raw.add(txQueueOf(0), [new TextEncoder().encode('console line\n')], []);
    await raw.settle();
    expect(raw.used(txQueueOf(0)).map((u) => u.token)).toEqual([toConsole]);
    await until(() => consoleSink.got.length > 0, 'the console datagram');
    expect(text(Buffer.concat(consoleSink.got))).toBe('console line\n');
    expect(drops).toHaveLength(1);
    // The port's element was handled before the console's, whose datagram has arrived.
    expect(portSink.got).toEqual([]);
  });
});
