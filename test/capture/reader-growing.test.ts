/**
 * The reader following a capture that is still being written: the file
 * grows in awkward pieces (half a block header, a block cut inside its
 * payload, several blocks at once, a block larger than the read window cut
 * just before its trailing length, a hot-plugged port's interface block cut
 * in its options), and after every piece `refresh()` has indexed exactly the
 * packet blocks that are whole, never a partial one, never going backwards,
 * and ends with the same records as a reader of the finished file. A block
 * that is whole and damaged is still damage; a file whose size is published
 * before its bytes (reads come back short) is followed all the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import fsModule from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as path from 'node:path';
import { CaptureView } from '../../core/api/server/capture-view.js';
import { CaptureError } from '../../core/capture/error.js';
import {
  openCapture,
  openCaptureSync,
  type CaptureReader,
} from '../../core/capture/pcapng-reader.js';
import { BLOCK_EPB, BLOCK_IDB, PcapngWriter } from '../../core/capture/pcapng-writer.js';
import {
  controlRecord,
  dataRecord,
  encodeControl,
  eventRecord,
  ringRecord,
  type CaptureRecord,
} from '../../core/capture/record.js';
import { PORTS, T0, removeTempDirs, tempDir } from './helpers.js';

afterAll(removeTempDirs);

/** Read window of the readers under test: the smallest, so big blocks do not fit it. */
const WINDOW = 64 * 1024;
/** Records the growing file holds when it is opened. */
const FIRST = 10;

let dir: string;
let full: string;
let fullBytes: Buffer;
let blocks: Block[];
let records: CaptureRecord[];
let startBytes: number;

interface Block {
  offset: number;
  end: number;
  type: number;
}

/**
 * The records of the capture: data both ways, control messages, events with
 * text, a ring operation, two blocks larger than the read window, and a port
 * nobody announced (its interface block is written in the middle).
 */
function makeRecords(): CaptureRecord[] {
  const out: CaptureRecord[] = [];
  const test1 = PORTS.test1!;
  const hp1 = PORTS.hp1!;
  let t = T0;
  const time = () => (t += 1_234_567n);
  for (let i = 0; i < 80; i++) {
    if (i === 30 || i === 55) {
      const big = Uint8Array.from({ length: 100_000 + i }, (_, k) => (k * 7 + i) & 0xff);
      out.push(
        dataRecord({
          time: time(),
          device: 'vser0',
          port: 1,
          portName: 'test1',
          direction: 'host-to-guest',
          bytes: big,
        }),
      );
    } else if (i % 7 === 3) {
      out.push(
        controlRecord({
          time: time(),
          device: 'vser0',
          direction: 'device-to-driver',
          bytes: encodeControl({ id: 1, event: 6, value: i & 1 }),
        }),
      );
    } else if (i % 9 === 4) {
      out.push(
        eventRecord({
          time: time(),
          device: 'vser0',
          port: 1,
          portName: 'test1',
          event: i % 2 === 0 ? 'guest-open' : 'host-close',
        }),
      );
    } else if (i === 41) {
      out.push(
        ringRecord({
          time: time(),
          device: 'vser0',
          port: 1,
          portName: 'test1',
          queue: 3,
          op: 'pop',
          text: 'ring op 41',
        }),
      );
    } else {
      const hot = i >= 35 && i % 3 === 0;
      out.push(
        dataRecord({
          time: time(),
          device: 'vser0',
          port: hot ? hp1.port : test1.port,
          portName: hot ? hp1.name : test1.name,
          direction: i % 2 === 0 ? 'host-to-guest' : 'guest-to-host',
          bytes: Buffer.from(`record ${i} ${'x'.repeat(i % 13)}\n`),
        }),
      );
    }
  }
  return out;
}

/** A capture of `recs` written by the writer (whole, flushed, closed). */
function writeCapture(file: string, recs: readonly CaptureRecord[]): void {
  const w = PcapngWriter.create(file, { os: false });
  if (w instanceof CaptureError) throw new Error(w.toString());
  w.addInterface(PORTS.test1!);
  for (const r of recs) expect(w.write(r)).toBeUndefined();
  expect(w.close()).toBeUndefined();
}

function blockList(bytes: Buffer): Block[] {
  const out: Block[] = [];
  let o = 0;
  while (o < bytes.length) {
    const total = bytes.readUInt32LE(o + 4);
    out.push({ offset: o, end: o + total, type: bytes.readUInt32LE(o) });
    o += total;
  }
  return out;
}

/** Packet blocks whole in the first `size` bytes: what the reader may have indexed. */
function wholePackets(size: number): number {
  return blocks.filter((b) => b.type === BLOCK_EPB && b.end <= size).length;
}

/** The block the first `size` bytes end inside, if they do not end on a boundary. */
function cutBlock(size: number): Block | undefined {
  return blocks.find((b) => b.offset < size && b.end > size);
}

function must<T>(v: T | CaptureError): T {
  if (v instanceof CaptureError) throw new Error(v.toString());
  return v;
}

/** A fresh growing file holding the first FIRST records, as the writer wrote them. */
function startGrowing(name: string): string {
  const file = path.join(dir, name);
  writeCapture(file, records.slice(0, FIRST));
  const bytes = fs.readFileSync(file);
  // the writer is deterministic: the rest of the full file is exactly what comes next
  expect(bytes.equals(fullBytes.subarray(0, bytes.length))).toBe(true);
  return file;
}

/** Append bytes [from, to) of the full capture to `file`. */
function appendUpTo(file: string, from: number, to: number): void {
  fs.appendFileSync(file, fullBytes.subarray(from, to));
}

/**
 * Where the growing file is cut, after `startBytes`: the awkward pieces
 * first, then pseudo-random ones (fixed seed) to the end.
 */
function cutPoints(seed: number): number[] {
  const after = blocks.filter((b) => b.offset >= startBytes);
  const packets = after.filter((b) => b.type === BLOCK_EPB);
  const idb = after.find((b) => b.type === BLOCK_IDB)!;
  const bigs = packets.filter((b) => b.end - b.offset > WINDOW);
  expect(bigs.length).toBe(2);
  const [b0, , , b3, b4, b5] = after;
  const cuts = [
    b0!.offset + 4, // half a block header
    b0!.end, // the rest of the block
    b3!.end, // several blocks at once
    b4!.offset + 28 + 3, // inside the payload
    b4!.end,
  ];
  for (let o = b5!.offset + 1; o <= b5!.end; o++) cuts.push(o); // a byte at a time
  // the hot-plugged port's interface block cut in its options, then with the next header
  cuts.push(idb.offset + 20, idb.end, idb.end + 12);
  for (const big of bigs) {
    cuts.push(big.offset + 8, big.offset + 70_000, big.end - 4, big.end - 1, big.end);
  }
  let s = seed;
  for (let o = startBytes; o < fullBytes.length;) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    o += 1 + (s % 400);
    cuts.push(o);
  }
  cuts.push(fullBytes.length);
  return [...new Set(cuts.map((c) => Math.min(c, fullBytes.length)))]
    .filter((c) => c > startBytes)
    .sort((a, b) => a - b);
}

/** The reader has indexed exactly the whole packet blocks of a `size`-byte file. */
function expectFollowing(r: CaptureReader, size: number): void {
  expect(r.count).toBe(wholePackets(size));
  const cut = cutBlock(size);
  expect(r.pendingOffset).toBe(cut?.offset);
  expect(r.warnings.filter((w) => w.kind !== 'TruncatedBlock')).toEqual([]);
  expect(r.warnings.map((w) => w.offset)).toEqual(cut ? [cut.offset] : []);
}

/** Every record of `r` equals the finished file's: payloads, times, fields. */
function expectSameRecords(r: CaptureReader): void {
  const ref = must(openCaptureSync(full));
  try {
    expect(r.count).toBe(ref.count);
    expect(r.count).toBe(records.length);
    expect(r.interfaces.map((i) => i.label)).toEqual(ref.interfaces.map((i) => i.label));
    for (let n = 0; n < ref.count; n++) {
      const got = must(r.record(n));
      expect(got).toEqual(must(ref.record(n)));
      expect(got.time).toBe(records[n]!.time);
      if (got.kind === 'data' || got.kind === 'control') {
        expect(Buffer.from(got.bytes).equals(Buffer.from(records[n]!.bytes))).toBe(true);
      }
      expect(r.relativeNs(n)).toBe(ref.relativeNs(n));
    }
  } finally {
    ref.close();
  }
}

beforeAll(() => {
  dir = tempDir('growing');
  records = makeRecords();
  full = path.join(dir, 'full.pcapng');
  writeCapture(full, records);
  fullBytes = fs.readFileSync(full);
  blocks = blockList(fullBytes);
  const first = path.join(dir, 'first.pcapng');
  writeCapture(first, records.slice(0, FIRST));
  startBytes = fs.statSync(first).size;
});

describe('following a capture that grows in pieces', () => {
  for (const seed of [1, 7, 2024]) {
    it(`indexes whole blocks only, never goes back, ends with every record (seed ${seed})`, async () => {
      const file = startGrowing(`grow-${seed}.pcapng`);
      const r = must(await openCapture(file, { windowBytes: WINDOW }));
      try {
        expectFollowing(r, startBytes);
        expect(r.count).toBe(FIRST);
        let size = startBytes;
        for (const cut of cutPoints(seed)) {
          appendUpTo(file, size, cut);
          size = cut;
          const before = r.count;
          const added = r.refresh();
          if (added instanceof CaptureError) throw new Error(`at ${size}: ${added.toString()}`);
          expect(r.count).toBeGreaterThanOrEqual(before);
          expect(added).toBe(r.count - before);
          expectFollowing(r, size);
          expect(r.refresh()).toBe(0); // nothing new: nothing changes
          expectFollowing(r, size);
        }
        expect(r.warnings).toEqual([]);
        expectSameRecords(r);
      } finally {
        r.close();
      }
    });
  }

  it('follows with the default window, a record at a time, as the writer flushes', () => {
    const file = path.join(dir, 'live.pcapng');
    // flushed only when asked: a clock that stands still and a long interval
    const w = must(
      PcapngWriter.create(file, { os: false, flushIntervalMs: 60_000, clock: () => 0 }),
    );
    w.addInterface(PORTS.test1!);
    for (const rec of records.slice(0, FIRST)) w.write(rec);
    w.flush();
    const r = must(openCaptureSync(file));
    try {
      let last = r.count;
      for (const rec of records.slice(FIRST)) {
        w.write(rec);
        expect(r.refresh()).toBe(0); // still in the writer's buffer
        w.flush();
        expect(r.refresh()).toBe(1);
        expect(r.count).toBe(last + 1);
        last = r.count;
      }
      expect(w.close()).toBeUndefined();
      expect(fs.readFileSync(file).equals(fullBytes)).toBe(true);
      expect(r.warnings).toEqual([]);
      expectSameRecords(r);
    } finally {
      r.close();
    }
  });
});

describe('a cut block read once, and damage', () => {
  it('warns about the cut block when the file is opened, and forgets it once it is whole', () => {
    const file = startGrowing('killed.pcapng');
    const victim = blocks.find((b) => b.offset >= startBytes && b.type === BLOCK_EPB)!;
    appendUpTo(file, startBytes, victim.offset + 30);
    const r = must(openCaptureSync(file));
    try {
      expect(r.count).toBe(FIRST);
      expect(r.warnings.map(String)).toEqual([
        `${file}: truncated block at offset ${victim.offset}: the block says ${victim.end - victim.offset} bytes, the file has 30 left`,
      ]);
      expect(r.pendingOffset).toBe(victim.offset);
      appendUpTo(file, victim.offset + 30, victim.end);
      expect(r.refresh()).toBe(1);
      expect(r.warnings).toEqual([]);
      expect(r.pendingOffset).toBeUndefined();
    } finally {
      r.close();
    }
  });

  it('still stops at a block that is whole and has a bad trailing length', () => {
    const file = startGrowing('damaged.pcapng');
    const packets = blocks.filter((b) => b.offset >= startBytes && b.type === BLOCK_EPB);
    const victim = packets[2]!;
    const damaged = Buffer.from(fullBytes);
    const length = victim.end - victim.offset;
    damaged.writeUInt32LE(length + 4, victim.end - 4);
    const r = must(openCaptureSync(file, { windowBytes: WINDOW }));
    try {
      // everything up to the damaged block's last byte but one: it is only pending
      fs.appendFileSync(file, damaged.subarray(startBytes, victim.end - 1));
      expect(r.refresh()).toBe(2);
      expect(r.pendingOffset).toBe(victim.offset);
      expect(r.warnings.map((w) => w.kind)).toEqual(['TruncatedBlock']);
      // its last byte: now whole, and damaged
      fs.appendFileSync(file, damaged.subarray(victim.end - 1, victim.end));
      expect(r.refresh()).toBe(0);
      expect(r.count).toBe(FIRST + 2);
      expect(r.pendingOffset).toBeUndefined();
      expect(r.warnings.map(String)).toEqual([
        `${file}: block at offset ${victim.offset}: trailing length ${length + 4} does not match leading length ${length}`,
      ]);
      // damage ends the scan for good: what follows is not read
      fs.appendFileSync(file, damaged.subarray(victim.end));
      expect(r.refresh()).toBe(0);
      expect(r.count).toBe(FIRST + 2);
      expect(r.warnings.map((w) => w.kind)).toEqual(['MalformedBlock']);
    } finally {
      r.close();
    }
  });

  it('calls an impossible length damage at once: no rest of the block could mend it', () => {
    const file = startGrowing('impossible.pcapng');
    const r = must(openCaptureSync(file));
    try {
      const head = Buffer.alloc(12);
      head.writeUInt32LE(BLOCK_EPB, 0);
      head.writeUInt32LE(45, 4);
      fs.appendFileSync(file, head);
      expect(r.refresh()).toBe(0);
      expect(r.warnings.map(String)).toEqual([
        `${file}: block at offset ${startBytes} has an impossible length 45`,
      ]);
      expect(r.pendingOffset).toBeUndefined();
    } finally {
      r.close();
    }
  });
});

describe('a file whose size is published before its bytes', () => {
  /**
   * Run `body` while fstat reports `ahead` bytes more than the file holds,
   * as a file system that publishes the size before the data does: reads
   * then come back short. (The reader's `node:fs` bindings follow the module
   * object after syncBuiltinESMExports; everything here is synchronous.)
   */
  function withSizeAhead(ahead: number, body: () => void): void {
    const real = fsModule.fstatSync;
    fsModule.fstatSync = ((fd: number, options?: fs.StatSyncOptions) => {
      const st = real(fd, options) as fs.Stats;
      st.size += ahead;
      return st;
    }) as typeof fsModule.fstatSync;
    syncBuiltinESMExports();
    try {
      body();
    } finally {
      fsModule.fstatSync = real;
      syncBuiltinESMExports();
    }
  }

  it('treats what cannot be read yet as not yet written, never as damage', () => {
    const file = startGrowing('ahead.pcapng');
    const r = must(openCaptureSync(file, { windowBytes: WINDOW }));
    try {
      withSizeAhead(37, () => {
        const fd = fs.openSync(file, 'r');
        expect(fs.fstatSync(fd).size).toBe(startBytes + 37); // the fake is in place
        fs.closeSync(fd);
        let size = startBytes;
        for (const cut of cutPoints(5)) {
          appendUpTo(file, size, cut);
          size = cut;
          const before = r.count;
          const added = must(r.refresh());
          expect(added).toBe(r.count - before);
          expect(r.count).toBe(wholePackets(size));
          expect(r.warnings.filter((w) => w.kind !== 'TruncatedBlock')).toEqual([]);
          expect(r.pendingOffset).toBe(cutBlock(size)?.offset);
        }
      });
      expect(r.refresh()).toBe(0);
      expect(r.warnings).toEqual([]);
      expectSameRecords(r);
    } finally {
      r.close();
    }
  });
});

describe('the capture view on a growing file', () => {
  it('follows the file without reopening it: its count moves with the whole blocks', async () => {
    const file = startGrowing('view.pcapng');
    const view = await CaptureView.open(file);
    if (!(view instanceof CaptureView)) throw new Error(view.message);
    try {
      const reader = view.reader;
      expect(view.count).toBe(FIRST);
      const controls = () => {
        const m = view.select('kind == control');
        if (m === null || !(m instanceof Uint32Array)) throw new Error('no selection');
        return m.length;
      };
      expect(controls()).toBe(records.slice(0, FIRST).filter((x) => x.kind === 'control').length);
      let size = startBytes;
      for (const cut of cutPoints(11)) {
        appendUpTo(file, size, cut);
        size = cut;
        const before = view.count;
        const moved = view.refresh();
        expect(view.reader).toBe(reader);
        expect(view.count).toBe(wholePackets(size));
        expect(moved).toBe(view.count !== before);
      }
      expect(view.count).toBe(records.length);
      expect(controls()).toBe(records.filter((x) => x.kind === 'control').length);
    } finally {
      view.close();
    }
  });
});
