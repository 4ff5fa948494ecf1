/**
 * One encoding feeds a capture file and every live client (issue 16: "one
 * capture feeds the app, a file and Wireshark at once without copying bytes
 * three times"): the file written from the hub's bytes is byte-identical to
 * what the file's own PcapngWriter (or RingCaptureWriter, for -b/-a) wrote
 * for the same records, every unfiltered live client gets those same bytes,
 * and with a file and three clients attached each record is encoded once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { CaptureError } from '../../core/capture/error.js';
import { connectLive, LiveHub, startLiveServer } from '../../core/capture/live-server.js';
import { PcapngWriter, type PcapngWriterOptions } from '../../core/capture/pcapng-writer.js';
import {
  Capture,
  controlRecord,
  dataRecord,
  eventRecord,
  type CaptureInterface,
  type CaptureRecord,
  type CaptureSink,
} from '../../core/capture/record.js';
import { parseRingOptions, RingCaptureWriter } from '../../core/capture/ring-writer.js';
import { SharedCaptureFile } from '../../core/capture/shared-file.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { removeTempDirs, tempDir, waitUntil } from '../lab/helpers.js';

afterAll(removeTempDirs);

const port = (nr: number, name: string): CaptureInterface => ({
  device: 'vser0',
  deviceIndex: 0,
  port: nr,
  kind: 'virtserialport',
  name,
});

/** A mixed stream: data both ways, control messages, events, one block larger than a buffer. */
function records(n: number, big = -1): CaptureRecord[] {
  const out: CaptureRecord[] = [];
  for (let i = 0; i < n; i++) {
    const time = BigInt(1_000_000 + i);
    if (i % 50 === 7) {
      out.push(
        eventRecord({ time, device: 'vser0', port: 1, portName: 'p1', event: 'throttle-on' }),
      );
      continue;
    }
    if (i % 50 === 9) {
      out.push(
        controlRecord({
          time,
          device: 'vser0',
          direction: 'device-to-driver',
          bytes: Uint8Array.of(1, 0, 0, 0, 6, 0, 1, 0),
        }),
      );
      continue;
    }
    const bytes = Buffer.alloc(i === big ? 2 * 1024 * 1024 : 5 + ((i * 7919) % 1500), i & 0xff);
    bytes.writeUInt32LE(i, 0);
    out.push(
      dataRecord({
        time,
        device: 'vser0',
        port: 1 + (i % 2),
        portName: i % 2 ? 'p2' : 'p1',
        direction: i % 3 ? 'host-to-guest' : 'guest-to-host',
        bytes,
      }),
    );
  }
  return out;
}

/** Feed a capture: two ports, the records, a hot-plugged third port halfway. */
function feed(capture: Capture, recs: CaptureRecord[]): void {
  capture.setAll(true);
  capture.addInterface(port(1, 'p1'));
  capture.addInterface(port(2, 'p2'));
  recs.forEach((r, i) => {
    if (i === recs.length >> 1) capture.addInterface(port(3, 'hot'));
    capture.write(r);
  });
  capture.flush();
}

const OPTS: PcapngWriterOptions = { comment: 'vmchan live capture' };

describe("SharedCaptureFile: the file takes the hub's bytes", () => {
  it('a plain file: byte-identical to its own PcapngWriter for the same records, and to what three live clients got; each record encoded once', async () => {
    const dir = tempDir('shared-file');
    const recs = records(2000, 1200);

    // The old way: the file's own writer.
    const oldPath = path.join(dir, 'old.pcapng');
    const old = PcapngWriter.create(oldPath, OPTS);
    if (old instanceof CaptureError) throw new Error(old.message);
    const before = new Capture();
    before.attach(old);
    feed(before, recs);
    old.close();

    // The new way: one hub, the file and three live clients on its bytes.
    const capture = new Capture();
    const hub = new LiveHub({ writer: OPTS });
    capture.attach(hub);
    const sock = path.join(dir, 'l.sock');
    const server = await startLiveServer(capture, sock, { hub });
    if (server instanceof CaptureError) throw new Error(server.message);
    const clients: { socket: net.Socket; bytes: () => Buffer }[] = [];
    for (let i = 0; i < 3; i++) {
      const live = await connectLive(sock, undefined);
      if (live instanceof CaptureError) throw new Error(live.message);
      const chunks = [live.rest];
      live.socket.on('data', (c: Buffer) => chunks.push(c));
      live.socket.resume();
      clients.push({ socket: live.socket, bytes: () => Buffer.concat(chunks) });
    }
    await waitUntil(() => hub.size === 3, 'three live clients joined the hub');
    const newPath = path.join(dir, 'new.pcapng');
    const file = SharedCaptureFile.open(hub, newPath);
    if (file instanceof CaptureError) throw new Error(file.message);
    feed(capture, recs);
    expect(file.close()).toBeUndefined();

    const want = fs.readFileSync(oldPath);
    expect(fs.readFileSync(newPath).equals(want)).toBe(true);
    // one encoder for the file and the three clients: one encode per record
    expect(hub.encoded).toBe(recs.length);
    expect(file.records).toBe(recs.length);
    await waitUntil(
      () => clients.every((c) => c.bytes().length >= want.length),
      `each live client to receive the file's ${want.length} bytes`,
    );
    for (const c of clients) expect(c.bytes().equals(want)).toBe(true);
    for (const c of clients) c.socket.destroy();
    await server.close();
    hub.close();
  });

  /**
   * The same records through RingCaptureWriter and through a SharedCaptureFile, one fake clock.
   * With `offPort`, that port is switched off for the old writer, and the
   * shared file refuses its records (`keeps`, as the app's switches) while a
   * second file on the same hub takes every record, so the refused blocks are
   * encoded and cut out of the chunks the shared file is handed.
   */
  function both(
    words: string[],
    stops: string[],
    recs: CaptureRecord[],
    tick = 0,
    offPort?: number,
  ) {
    const ring = parseRingOptions(words, stops);
    if (typeof ring === 'string') throw new Error(ring);
    const out = [];
    for (const way of ['old', 'new'] as const) {
      const dir = tempDir(`shared-ring-${way}`);
      let now = Date.UTC(2026, 11, 7, 12, 0, 0);
      const clock = (): number => (now += tick);
      const stopped: string[] = [];
      const hooks = { onStop: (r: string) => stopped.push(r), clock };
      const capture = new Capture();
      let close: () => void;
      let files: () => readonly string[];
      let everything: SharedCaptureFile | undefined;
      if (way === 'old') {
        if (offPort !== undefined) capture.setPort('vser0', offPort, false);
        const w = RingCaptureWriter.create(path.join(dir, 'c.pcapng'), ring, { os: false }, hooks);
        if (w instanceof CaptureError) throw new Error(w.message);
        capture.attach(w as CaptureSink);
        close = () => void w.close();
        files = () => w.files;
      } else {
        const hub = new LiveHub({ writer: { os: false } });
        capture.attach(hub);
        const keeps =
          offPort === undefined ? {} : { keeps: (r: CaptureRecord) => r.port !== offPort };
        const f = SharedCaptureFile.open(hub, path.join(dir, 'c.pcapng'), ring, {
          ...hooks,
          ...keeps,
        });
        if (f instanceof CaptureError) throw new Error(f.message);
        if (offPort !== undefined) {
          const all = SharedCaptureFile.open(hub, path.join(dir, 'all.pcapng'));
          if (all instanceof CaptureError) throw new Error(all.message);
          everything = all;
        }
        close = () => {
          f.close();
          everything?.close();
          hub.close();
        };
        files = () => f.files;
      }
      feed(capture, recs);
      close();
      out.push({
        names: files().map((f) => path.basename(f)),
        bytes: files().map((f) => fs.readFileSync(f)),
        stopped,
        everything: everything?.records,
      });
    }
    return { old: out[0]!, now: out[1]! };
  }

  it('-b filesize:20 -b files:3: the same files, the same names, byte for byte', () => {
    const { old, now } = both(['filesize:20', 'files:3'], [], records(300));
    expect(old.names.length).toBe(3);
    expect(now.names).toEqual(old.names);
    now.bytes.forEach((b, i) => expect(b.equals(old.bytes[i]!), old.names[i]).toBe(true));
    for (const b of now.bytes) expect(b.length).toBeLessThanOrEqual(20_000);
  });

  it("a file that keeps some records (the app's switches) beside one that keeps all: the same ring files as a writer fed only those, byte for byte", () => {
    const recs = records(400, 251);
    const { old, now } = both(['filesize:20', 'files:4'], [], recs, 0, 2);
    expect(old.names.length).toBe(4);
    expect(now.names).toEqual(old.names);
    now.bytes.forEach((b, i) => expect(b.equals(old.bytes[i]!), old.names[i]).toBe(true));
    // The big record (a block of its own, handed out within its write) is on port 2: refused.
    for (const b of now.bytes) expect(b.length).toBeLessThanOrEqual(20_000);
    expect(now.everything).toBe(recs.length);
  });

  it('-b duration:S rotates at the same records (fake clock)', () => {
    const { old, now } = both(['duration:1'], [], records(200), 37);
    expect(old.names.length).toBeGreaterThan(3);
    expect(now.names).toEqual(old.names);
    now.bytes.forEach((b, i) => expect(b.equals(old.bytes[i]!), old.names[i]).toBe(true));
  });

  it('-a packets, -a filesize and -a duration stop at the same record with the same reason', () => {
    for (const [stops, tick] of [
      [['packets:77'], 0],
      [['filesize:30'], 0],
      [['duration:2'], 29],
    ] as const) {
      const { old, now } = both([], [...stops], records(300), tick);
      expect(now.stopped, stops[0]).toEqual(old.stopped);
      expect(now.stopped.length, stops[0]).toBe(1);
      expect(now.bytes[0]!.equals(old.bytes[0]!), stops[0]).toBe(true);
    }
  });

  it('a file opened mid-stream starts with the kept header and interfaces, then holds only the records from there', () => {
    const dir = tempDir('shared-late');
    const hub = new LiveHub();
    const capture = new Capture();
    capture.attach(hub);
    const recs = records(400);
    const early = SharedCaptureFile.open(hub, path.join(dir, 'early.pcapng'));
    if (early instanceof CaptureError) throw new Error(early.message);
    capture.setAll(true);
    capture.addInterface(port(1, 'p1'));
    capture.addInterface(port(2, 'p2'));
    for (const r of recs.slice(0, 250)) capture.write(r);
    const latePath = path.join(dir, 'late.pcapng');
    const late = SharedCaptureFile.open(hub, latePath);
    if (late instanceof CaptureError) throw new Error(late.message);
    for (const r of recs.slice(250)) capture.write(r);
    late.close();
    early.close();
    expect(hub.encoded).toBe(400);
    const read = openCaptureSync(latePath);
    if (read instanceof CaptureError) throw new Error(read.message);
    expect(read.count).toBe(150);
    const first = read.record(0);
    if (first instanceof CaptureError) throw new Error(first.message);
    expect(first.time).toBe(recs[250]!.time);
    read.close();
  });
});
