/**
 * Capture write throughput: the pcapng writer against a plain fs write of
 * the same payload bytes, in the same run.
 *
 *   - baseline "plain": the payloads copied into a buffer of the writer's size and
 *     written with fs.writeSync, no framing (what the bytes alone cost);
 *   - value "pcapng": one DataRecord built per buffer and written through
 *     PcapngWriter (block framing, epb_flags, timestamps, flush checks).
 * The ratio is the writer's own cost. Each figure is the median of five
 * rounds of 64 MiB written to a fresh file in the temp directory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CaptureError } from '../core/capture/error.js';
import { DEFAULT_BUFFER_BYTES, PcapngWriter } from '../core/capture/pcapng-writer.js';
import { dataRecord } from '../core/capture/record.js';
import type { Report } from './harness.js';

const ROUND_BYTES = 64 * 1024 * 1024;
const ROUNDS = 5;
const BUFFER = DEFAULT_BUFFER_BYTES;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Seconds to write `count` payloads of `size` bytes as plain bytes. */
function plainRound(file: string, size: number, count: number): number {
  const payload = Buffer.alloc(size, 0x61);
  const buf = Buffer.allocUnsafe(BUFFER);
  fs.rmSync(file, { force: true }); // truncating a big file is not what we measure
  const start = performance.now();
  const fd = fs.openSync(file, 'w');
  let used = 0;
  for (let i = 0; i < count; i++) {
    if (used + size > BUFFER) {
      fs.writeSync(fd, buf, 0, used);
      used = 0;
    }
    if (size > BUFFER) fs.writeSync(fd, payload);
    else {
      payload.copy(buf, used);
      used += size;
    }
  }
  if (used) fs.writeSync(fd, buf, 0, used);
  fs.closeSync(fd);
  return (performance.now() - start) / 1000;
}

/** Seconds to write `count` records of `size` bytes through the pcapng writer. */
function pcapngRound(file: string, size: number, count: number): number {
  const payload = Buffer.alloc(size, 0x61);
  fs.rmSync(file, { force: true });
  const start = performance.now();
  const w = PcapngWriter.create(file, { bufferBytes: BUFFER });
  if (w instanceof CaptureError) throw new Error(w.toString());
  w.addInterface({
    device: 'vser0',
    deviceIndex: 0,
    port: 1,
    kind: 'virtserialport',
    name: 'bench',
  });
  let t = 1_700_000_000_000_000_000n;
  for (let i = 0; i < count; i++) {
    const err = w.write(
      dataRecord({
        time: (t += 1000n),
        device: 'vser0',
        port: 1,
        direction: i & 1 ? 'guest-to-host' : 'host-to-guest',
        bytes: payload,
      }),
    );
    if (err) throw new Error(err.toString());
  }
  const err = w.close();
  if (err) throw new Error(err.toString());
  return (performance.now() - start) / 1000;
}

function measure(dir: string, size: number): { pcapng: number; plain: number } {
  const count = Math.floor(ROUND_BYTES / size);
  const file = path.join(dir, 'bench.pcapng');
  const plain: number[] = [];
  const pcapng: number[] = [];
  // warm up both paths so the JIT has compiled them before timing
  plainRound(file, size, Math.min(count, 2000));
  pcapngRound(file, size, Math.min(count, 2000));
  for (let r = 0; r < ROUNDS; r++) {
    plain.push(plainRound(file, size, count));
    pcapng.push(pcapngRound(file, size, count));
  }
  fs.rmSync(file, { force: true });
  const bytes = count * size;
  return { pcapng: bytes / median(pcapng) / 1e6, plain: bytes / median(plain) / 1e6 };
}

export async function benchCapture(report: Report): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-bench-capture-'));
  try {
    const big = measure(dir, 4096);
    report('capture: pcapng write, 4 KiB records (payload MB/s)', big.pcapng, big.plain, 'MB/s');
    const small = measure(dir, 64);
    report('capture: pcapng write, 64 B records (payload MB/s)', small.pcapng, small.plain, 'MB/s');
    report(
      'capture: pcapng write, 64 B records (records/s)',
      (small.pcapng * 1e6) / 64,
      (small.plain * 1e6) / 64,
      'rec/s',
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  await Promise.resolve();
}
