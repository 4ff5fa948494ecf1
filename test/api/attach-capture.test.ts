/**
 * Capture in the app while attached (core/api/server/attach-capture.ts): an
 * in-place tap on a unix chardev QEMU listens on (the fake QMP server for
 * QEMU's monitor, a real listening socket standing in for the chardev),
 * started from the app, with the host application connecting to the path
 * it always used: its bytes both ways land in the same pcapng as the lab's,
 * with VSERPORT_CHANGE and host connect/disconnect as event records; the
 * throughput samples carry the tap's bytes; the port shows its tap; detach
 * gives QEMU's path back.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PortSnapshot, TapState } from '../../core/api/contract/contract.js';
import { CaptureError } from '../../core/capture/error.js';
import { CaptureReader } from '../../core/capture/pcapng-reader.js';
import type { CaptureRecord } from '../../core/capture/record.js';
import { TapJournal } from '../../core/qemu/tap-journal.js';
import { poller } from '../qemu/real-guest.js';
import { startFakeQemu, type FakeQemu } from './attach-fake.js';
import { rig, type Rig } from './helpers.js';

const until = poller(5000, 10);

let r: Rig | undefined;
let fake: FakeQemu | undefined;
let chardevServer: net.Server | undefined;
let dir: string | undefined;
afterEach(async () => {
  await r?.close();
  await fake?.server.close();
  await new Promise<void>((res) => (chardevServer ? chardevServer.close(() => res()) : res()));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  r = fake = chardevServer = dir = undefined;
});

describe('capture of an attached QEMU through an in-place tap', () => {
  it('the host application keeps its path; every byte and QEMU’s events are in the pcapng; detach gives the path back', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-attach-cap-'));
    const sock = path.join(dir, 'p1.sock');
    // QEMU's side of chardev c1: one client at a time, what it reads kept
    let qemuGot = '';
    let qemuClient: net.Socket | undefined;
    chardevServer = net.createServer((s) => {
      qemuClient = s;
      s.on('data', (d: Buffer) => (qemuGot += d.toString()));
      s.on('error', () => {});
    });
    await new Promise<void>((res) => chardevServer!.listen(sock, res));
    const qemuIno = fs.statSync(sock).ino;

    fake = await startFakeQemu();
    fake.chardevs.get('c1')!.filename = `disconnected:unix:${sock},server=on`;
    r = await rig({
      attach: {
        pollIntervalMs: 0,
        greetingTimeoutMs: 500,
        journal: new TapJournal(path.join(dir, 'run')),
      },
    });
    await r.must({ cmd: 'attach', address: fake.server.address });
    const capture = path.join(dir, 'attached.pcapng');
    await r.must({ cmd: 'startCapture', path: capture });
    const tap = await r.must<TapState>({ cmd: 'tapChardev', id: 'c1' });
    expect(tap).toMatchObject({ chardev: 'c1', mode: 'in-place', address: sock, waiting: false });
    const port = (await r.topology()).ports.find((p) => p.nr === 1) as PortSnapshot;
    expect(port.tap).toMatchObject({ mode: 'in-place', address: sock });
    expect(port.capture?.on).toBe(true);

    // the application connects where it always did
    const app = net.connect({ path: sock });
    let appGot = '';
    app.on('data', (d: Buffer) => (appGot += d.toString()));
    await new Promise<void>((res) => app.once('connect', () => res()));
    app.write('ping from the host');
    await until(
      'QEMU reads through the tap',
      () => qemuGot,
      (v) => v === 'ping from the host',
    );
    qemuClient!.write('pong from the guest');
    await until(
      'the application reads',
      () => appGot,
      (v) => v === 'pong from the guest',
    );
    fake.server.sendEvent('VSERPORT_CHANGE', { open: true, id: 'port1' });
    await r.waitEvent((e) => e.kind === 'guest-open' && e.nr === 1);

    // throughput from the tap's bytes
    await until(
      'a sample with the tap’s totals',
      () =>
        r!.batches
          .flatMap((b) => b.samples)
          .flatMap((s) => s.ports)
          .filter((p) => p.key === 'vser0:1')
          .at(-1),
      (p) => p !== undefined && p.totalToGuest === 18 && p.totalToHost === 19,
    );
    app.destroy();
    await until(
      'five records (two data, host-open, guest-open, host-close)',
      async () => (await r!.topology()).capture.records,
      (n) => n >= 5,
    );
    await r.must({ cmd: 'stopCapture' });

    const reader = CaptureReader.openSync(capture);
    if (reader instanceof CaptureError) throw new Error(reader.message);
    const records: CaptureRecord[] = [];
    for (let i = 0; i < reader.count; i++) {
      const rec = reader.record(i);
      if (rec instanceof CaptureError) throw new Error(rec.message);
      records.push(rec);
    }
    reader.close();
    const data = records.filter((x) => x.kind === 'data');
    expect(data.map((x) => [x.direction, Buffer.from(x.bytes).toString()])).toEqual([
      ['host-to-guest', 'ping from the host'],
      ['guest-to-host', 'pong from the guest'],
    ]);
    expect(data.every((x) => x.device === 'vser0' && x.port === 1)).toBe(true);
    const events = records
      .filter((x) => x.kind === 'event')
      .map((x) => x.kind === 'event' && x.event);
    expect(events).toEqual(expect.arrayContaining(['host-open', 'guest-open', 'host-close']));

    // a host console on the tapped port: the app is the host application, through the tap
    const term = await r.must<{ id: string }>({
      cmd: 'openTerminal',
      port: { device: 'vser0', nr: 1 },
      side: 'host',
    });
    await r.must({ cmd: 'terminalInput', session: term.id, data: 'typed' });
    await until(
      'QEMU reads what was typed',
      () => qemuGot,
      (v) => v.endsWith('typed'),
    );
    await until(
      'QEMU has the console as its client',
      () => qemuClient?.destroyed === false,
      (v) => v,
    );
    qemuClient!.write('shown');
    await until(
      'the console shows what the guest sent',
      () =>
        r!.batches
          .flatMap((b) => b.terminals ?? [])
          .filter((t) => t.session === term.id)
          .map((t) => Buffer.from(t.data, 'base64').toString())
          .join(''),
      (v) => v === 'shown',
    );
    // without a tap there is no way in: the reason says what to do
    const untapped = await r.run({
      cmd: 'openTerminal',
      port: { device: 'vser0', nr: 2 },
      side: 'host',
    });
    expect(untapped.ok).toBe(false);
    if (!untapped.ok) expect(untapped.error.message).toMatch(/tap chardev c2 first/);

    // detach: QEMU's own socket is back at the path
    await r.must({ cmd: 'detach' });
    expect(fs.statSync(sock).ino).toBe(qemuIno);
    expect(new TapJournal(path.join(dir, 'run')).entries()).toEqual([]);
  });

  it('a tcp chardev gets a new listening port, and says so; the lab refuses taps with the reason', async () => {
    fake = await startFakeQemu();
    fake.chardevs.get('c2')!.filename = 'disconnected:tcp:127.0.0.1:1,server=on';
    r = await rig({ attach: { pollIntervalMs: 0, greetingTimeoutMs: 500 } });
    await r.must({ cmd: 'attach', address: fake.server.address });
    const tap = await r.must<TapState>({ cmd: 'tapChardev', id: 'c2', listen: '127.0.0.1:0' });
    expect(tap.mode).toBe('new-socket');
    expect(tap.address).toMatch(/^127\.0\.0\.1:\d+$/);
    const note = await r.waitEvent(
      (e) => e.kind === 'note' && /tcp port, which cannot be taken/.test(e.text),
    );
    expect(note.text).toContain(tap.address);
    await r.must({ cmd: 'untapChardev', id: 'c2' });
    await r.must({ cmd: 'detach' });
    const lab = await r.run({ cmd: 'tapChardev', id: 'c2' });
    expect(lab.ok).toBe(false);
    if (!lab.ok) expect(lab.error.message).toMatch(/capture sees every byte without a tap/);
  });
});
