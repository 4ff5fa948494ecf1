/**
 * One capture feeds a file and several Wireshark readers (live socket
 * clients) at once, each record encoded once (LiveHub): every unfiltered
 * client gets the file's exact bytes, a filtered client gets the matching
 * records' blocks out of the same bytes, a client that joins late starts
 * with the header and interfaces, and a client that stops reading is
 * disconnected at its queue bound with a counted, named reason while the
 * others go on.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { connectLive, startLiveServer, type LiveServer } from '../../core/capture/live-server.js';
import { CaptureError } from '../../core/capture/error.js';
import { Capture, dataRecord, type CaptureInterface } from '../../core/capture/record.js';
import { PcapngWriter } from '../../core/capture/pcapng-writer.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { removeTempDirs, tempDir, waitUntil } from '../lab/helpers.js';

afterAll(removeTempDirs);

const PORT: CaptureInterface = {
  device: 'vser0',
  deviceIndex: 0,
  port: 1,
  kind: 'virtserialport',
  name: 'org.qemu.guest_agent.0',
};

function record(i: number, size = 4 + ((i * 7919) % 3000)) {
  const bytes = Buffer.alloc(size, i & 0xff);
  bytes.writeUInt32LE(i, 0);
  return dataRecord({
    time: BigInt(1_000_000 + i),
    device: 'vser0',
    port: 1,
    portName: PORT.name,
    direction: i % 3 === 0 ? 'guest-to-host' : 'host-to-guest',
    bytes,
  });
}

interface Reader {
  socket: net.Socket;
  bytes(): Buffer;
}

async function reader(sock: string, filter?: string): Promise<Reader> {
  const live = await connectLive(sock, filter);
  if (live instanceof CaptureError) throw new Error(live.message);
  const chunks: Buffer[] = [live.rest];
  live.socket.on('data', (c: Buffer) => chunks.push(c));
  live.socket.resume();
  return { socket: live.socket, bytes: () => Buffer.concat(chunks) };
}

function recordsIn(dir: string, name: string, bytes: Buffer) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  const r = openCaptureSync(file);
  if (r instanceof CaptureError) throw new Error(`${name}: ${r.message}`);
  const out = [];
  for (let i = 0; i < r.count; i++) {
    const rec = r.record(i);
    if (rec instanceof CaptureError) throw new Error(rec.message);
    out.push({ dir: rec.direction, n: Buffer.from(rec.bytes).readUInt32LE(0) });
  }
  r.close();
  return out;
}

async function server(capture: Capture, sock: string, queueBytes?: number) {
  const notices: string[] = [];
  const s = await startLiveServer(capture, sock, {
    onNotice: (l) => notices.push(l),
    ...(queueBytes !== undefined ? { queueBytes } : {}),
  });
  if (s instanceof CaptureError) throw new Error(s.message);
  return { s: s as LiveServer, notices };
}

describe('live capture: one encoding for every reader', () => {
  it('three live clients and a file: identical bytes, each record encoded once for all clients', async () => {
    const dir = tempDir('live-hub');
    const sock = path.join(dir, 'l.sock');
    const capture = new Capture();
    capture.setAll(true);
    const { s } = await server(capture, sock);
    const a = await reader(sock);
    const b = await reader(sock);
    const g2h = await reader(sock, 'dir == g2h');
    await waitUntil(() => s.clients === 3 && capture.active, 'three live clients');
    const filePath = path.join(dir, 'file.pcapng');
    const file = PcapngWriter.create(filePath);
    if (file instanceof CaptureError) throw new Error(file.message);
    capture.attach(file);
    capture.addInterface(PORT);
    const N = 3000;
    for (let i = 0; i < N; i++) {
      capture.write(record(i, i === 1500 ? 2 * 1024 * 1024 : undefined)); // one block larger than a buffer
      if (i % 100 === 99) await new Promise((r) => setImmediate(r)); // engine batches
    }
    capture.flush();
    file.close();
    const want = fs.readFileSync(filePath);
    await waitUntil(
      () => a.bytes().length >= want.length && b.bytes().length >= want.length,
      `both unfiltered clients to receive the file's ${want.length} bytes`,
    );
    expect(a.bytes().equals(want)).toBe(true);
    expect(b.bytes().equals(want)).toBe(true);
    // once each, not once per client
    expect(s.hub.encoded).toBe(N);

    const all = recordsIn(dir, 'a.pcapng', a.bytes());
    const wanted = all.filter((r) => r.dir === 'guest-to-host');
    await waitUntil(() => {
      try {
        return recordsIn(dir, 'g.pcapng', g2h.bytes()).length === wanted.length;
      } catch {
        return false;
      }
    }, `the filtered client to receive ${wanted.length} g2h records`);
    expect(recordsIn(dir, 'g.pcapng', g2h.bytes())).toEqual(wanted);
    for (const r of [a, b, g2h]) r.socket.destroy();
    await s.close();
  });

  it('a client that joins late gets the header and interfaces, then the records from there', async () => {
    const dir = tempDir('live-hub');
    const sock = path.join(dir, 'l.sock');
    const capture = new Capture();
    capture.setAll(true);
    const { s } = await server(capture, sock);
    const early = await reader(sock);
    await waitUntil(() => s.clients === 1, 'the first client');
    capture.addInterface(PORT);
    for (let i = 0; i < 50; i++) capture.write(record(i));
    await waitUntil(() => recordsIn(dir, 'e.pcapng', early.bytes()).length === 50, '50 records');
    const late = await reader(sock);
    await waitUntil(() => s.clients === 2, 'the late client');
    for (let i = 50; i < 80; i++) capture.write(record(i));
    await waitUntil(() => {
      try {
        return recordsIn(dir, 'l.pcapng', late.bytes()).length === 30;
      } catch {
        return false;
      }
    }, 'the late client to read 30 records');
    expect(recordsIn(dir, 'l.pcapng', late.bytes()).map((r) => r.n)).toEqual(
      Array.from({ length: 30 }, (_, i) => 50 + i),
    );
    for (const r of [early, late]) r.socket.destroy();
    await s.close();
  });

  it('a stalled client is dropped at its queue bound with its reason; the others get everything', async () => {
    const dir = tempDir('live-hub');
    const sock = path.join(dir, 'l.sock');
    const capture = new Capture();
    capture.setAll(true);
    const QUEUE = 256 * 1024;
    const { s, notices } = await server(capture, sock, QUEUE);
    const good = await reader(sock);
    const stalled = await connectLive(sock, undefined);
    if (stalled instanceof CaptureError) throw new Error(stalled.message);
    stalled.socket.pause(); // never reads again
    await waitUntil(() => s.clients === 2, 'two clients');
    capture.addInterface(PORT);
    let written = 0;
    // Write (never waiting on the stalled client) until its queue passes the bound; 512 MiB at most.
    while (s.dropped === 0 && written < 8192) {
      for (let k = 0; k < 16; k++) capture.write(record(written++, 4096));
      await new Promise((r) => setImmediate(r));
      // let the good reader drain, as Wireshark does
      if (written % 256 === 0) await new Promise((r) => setImmediate(r)); // let the sockets drain
    }
    expect(s.dropped).toBe(1);
    expect(notices).toContain(
      `live capture client disconnected: live capture reader fell more than ${QUEUE} bytes behind`,
    );
    await waitUntil(() => s.clients === 1, 'the stalled client to be gone');
    for (let i = 0; i < 10; i++) capture.write(record(written++, 100));
    await waitUntil(
      () => {
        try {
          return recordsIn(dir, 'good.pcapng', good.bytes()).length === written;
        } catch {
          return false;
        }
      },
      `the good client to read all ${written} records`,
      30_000,
    );
    good.socket.destroy();
    await s.close();
  }, 60_000);
});
