/**
 * Issue 16, "Live": one capture feeds the app, a file and Wireshark at once
 * without copying bytes three times. The app (demo lab, its session
 * published as `vmchan extcap` lists it) records to its capture file while
 * a live reader (the socket `vmchan extcap --capture` reads) is attached:
 * every record is encoded once (PcapngWriter.write, the one encode
 * function, is counted), and the file and the live stream carry the very
 * same blocks for the records they share. With a port switched off in the
 * app, the file keeps the others' blocks, cut out of the same encoding
 * that gives the live reader every port.
 */
import * as fs from 'node:fs';
import type * as net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CaptureState, PortSnapshot } from '../../core/api/contract/contract.js';
import { CaptureError } from '../../core/capture/error.js';
import { connectLive } from '../../core/capture/live-server.js';
import { PcapngWriter } from '../../core/capture/pcapng-writer.js';
import type { CaptureRecord } from '../../core/capture/record.js';
import { removeTempDirs, tempDir } from '../lab/helpers.js';
import { readBack } from './capture-fixture.js';
import { rig, until, type Rig } from './helpers.js';

const SHB = 0x0a0d0d0a;
const IDB = 1;
const EPB = 6;

let r: Rig | undefined;
let savedRuntime: string | undefined;
beforeAll(() => {
  // The session registry (what extcap lists) goes to a directory of this test's own.
  savedRuntime = process.env['XDG_RUNTIME_DIR'];
  process.env['XDG_RUNTIME_DIR'] = tempDir('one-encoding');
});
afterEach(async () => {
  vi.restoreAllMocks();
  await r?.close();
  r = undefined;
});
afterAll(() => {
  if (savedRuntime === undefined) delete process.env['XDG_RUNTIME_DIR'];
  else process.env['XDG_RUNTIME_DIR'] = savedRuntime;
  removeTempDirs();
});

/** A pcapng byte stream cut into its blocks. */
function blocks(bytes: Buffer): { type: number; bytes: Buffer }[] {
  const out: { type: number; bytes: Buffer }[] = [];
  for (let o = 0; o + 12 <= bytes.length;) {
    const type = bytes.readUInt32LE(o);
    const length = bytes.readUInt32LE(o + 4);
    if (length < 12 || o + length > bytes.length) throw new Error(`a cut block at ${o}`);
    out.push({ type, bytes: bytes.subarray(o, o + length) });
    o += length;
  }
  return out;
}

const packets = (b: { type: number; bytes: Buffer }[]): Buffer[] =>
  b.filter((x) => x.type === EPB).map((x) => x.bytes);

interface LiveReader {
  socket: net.Socket;
  bytes(): Buffer;
  ended: Promise<void>;
}

/** The app's session as `vmchan extcap` reads it: its registry entry's live socket, every port. */
async function liveReader(): Promise<LiveReader> {
  const [entry] = await until(async () => {
    const s = await r!.service.publishedSessions();
    return s.length > 0 ? s : undefined;
  });
  const live = await connectLive(entry!.socket, undefined);
  if (live instanceof CaptureError) throw new Error(live.message);
  const chunks: Buffer[] = [live.rest];
  live.socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((done) => live.socket.once('close', () => done()));
  live.socket.resume();
  return { socket: live.socket, bytes: () => Buffer.concat(chunks), ended };
}

async function portOf(name: string): Promise<PortSnapshot> {
  const p = (await r!.topology()).ports.find((x) => x.name === name);
  if (p === undefined) throw new Error(`no port ${name}`);
  return p;
}

/**
 * Nothing more is captured from now on (the lab's every-port capture
 * switched off, so no record can be encoded after this), the app's capture
 * stopped, then the app closed: its live readers see their stream end.
 */
async function finish(
  reader: LiveReader,
): Promise<{ file: Buffer; stream: Buffer; records: CaptureRecord[] }> {
  r!.service.session.liveCapture().setAll(false);
  const stopped = await r!.must<CaptureState>({ cmd: 'stopCapture' });
  const file = fs.readFileSync(stopped.last!);
  const records = readBack(stopped.last!);
  await r!.close(); // the capture directory goes with it
  r = undefined;
  await reader.ended;
  return { file, stream: reader.bytes(), records };
}

describe("the app's capture file and Wireshark share one encoding", () => {
  it('each record is encoded once; the live stream carries the file’s own blocks', async () => {
    r = await rig({ lab: 'demo', publishSessions: true });
    const encode = vi.spyOn(PcapngWriter.prototype, 'write');
    await r.must<CaptureState>({ cmd: 'startCapture' });
    const reader = await liveReader();
    // Both read at once for a while: records the file and the live reader share.
    await until(async () => packets(blocks(reader.bytes())).length >= 30 || undefined, 20_000);
    const state = (await r.topology()).capture;
    const { file, stream } = await finish(reader);

    const fileBlocks = blocks(file);
    const streamBlocks = blocks(stream);
    const filePackets = packets(fileBlocks);
    const streamPackets = packets(streamBlocks);
    expect(state.records).toBeGreaterThan(0);
    expect(streamPackets.length).toBeGreaterThanOrEqual(30);
    // The reader joined after the file started and nothing was captured after
    // the file stopped: every record it got is in the file, and no record was
    // encoded twice (once for the file, once again for Wireshark).
    expect(encode.mock.calls.length).toBe(filePackets.length);
    expect(streamPackets.length).toBeLessThan(filePackets.length);
    const tail = filePackets.slice(filePackets.length - streamPackets.length);
    for (let i = 0; i < streamPackets.length; i++)
      expect(streamPackets[i]!.equals(tail[i]!), `packet ${i} of the stream`).toBe(true);
    // Same section header and interfaces, block for block.
    const head = (b: typeof fileBlocks): Buffer[] =>
      b.filter((x) => x.type === SHB || x.type === IDB).map((x) => x.bytes);
    expect(head(streamBlocks)).toEqual(head(fileBlocks));
  }, 60_000);

  it('a port switched off in the app is cut from the file, not from Wireshark, still one encoding', async () => {
    r = await rig({ lab: 'demo', publishSessions: true });
    const test1 = await portOf('test1');
    const encode = vi.spyOn(PcapngWriter.prototype, 'write');
    const reader = await liveReader();
    await r.must({
      cmd: 'setPortCapture',
      port: { device: test1.device, nr: test1.nr },
      on: false,
    });
    await r.must<CaptureState>({ cmd: 'startCapture' });
    const moved = (p: PortSnapshot): number => p.toGuest + p.toHost;
    const before = moved(await portOf('test1'));
    await until(async () => {
      const c = (await r!.topology()).capture;
      return (c.records >= 20 && moved(await portOf('test1')) > before) || undefined;
    }, 20_000);
    const { file, stream, records } = await finish(reader);

    const filePackets = packets(blocks(file));
    const streamPackets = packets(blocks(stream));
    // The live reader was there first and to the end: it got every record encoded, once each.
    expect(encode.mock.calls.length).toBe(streamPackets.length);
    expect(filePackets.length).toBeGreaterThan(0);
    expect(filePackets.length).toBeLessThan(streamPackets.length);
    // The file's blocks are the stream's own, in order (a subsequence of it).
    let at = 0;
    for (const p of filePackets) {
      while (at < streamPackets.length && !streamPackets[at]!.equals(p)) at++;
      expect(at, 'a file block that is not in the live stream').toBeLessThan(streamPackets.length);
      at++;
    }
    // ...and none of them is test1's data, while the stream has test1's.
    expect(records.filter((x) => x.kind === 'data' && x.portName === 'test1')).toEqual([]);
    expect(records.some((x) => x.kind === 'data' && x.portName === 'test2')).toBe(true);
  }, 60_000);
});
