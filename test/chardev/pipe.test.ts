import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createChardev,
  isChardevError,
  PipeChardev,
  type OpenChardev,
} from '../../core/chardev/index.js';
import {
  as,
  lab,
  mkfifo,
  pattern,
  sha1,
  spec,
  tempDir,
  TestFrontend,
  waitFor,
  writeAll,
} from './helpers.js';
import { until } from '../until.js';

const opened: OpenChardev[] = [];
const fds: number[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
  for (const fd of fds.splice(0)) fs.closeSync(fd);
});

const pipe = (p: string) => ({ kind: 'pipe', path: p }) as const;

/** The host program's end of a FIFO, opened without blocking. */
function hostOpen(p: string): number {
  const fd = fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  fds.push(fd);
  return fd;
}

function readAvailable(fd: number): Buffer {
  const out: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    try {
      const n = fs.readSync(fd, buf);
      if (n <= 0) break;
      out.push(Buffer.from(buf.subarray(0, n)));
    } catch {
      break; // EAGAIN: nothing more now
    }
  }
  return Buffer.concat(out);
}

describe('pipe chardev (H1)', () => {
  it('H1 path.in feeds the guest, guest output goes to path.out; always connected', async () => {
    const dir = tempDir();
    const base = path.join(dir, 'guest');
    mkfifo(`${base}.in`);
    mkfifo(`${base}.out`);
    const { open } = lab();
    const c = await open(spec('p1', pipe(base)));
    opened.push(c);
    expect(as(c, PipeChardev).paths).toEqual([`${base}.in`, `${base}.out`]);
    expect(c.connected).toBe(true);
    expect(c.describe()).toBe('pipe');
    const fe = new TestFrontend();
    c.attach(fe);
    await waitFor(() => fe.events.includes('opened'), 'opened at attach');

    const hostIn = hostOpen(`${base}.in`);
    const hostOut = hostOpen(`${base}.out`);
    fs.writeSync(hostIn, 'to the guest\n');
    await waitFor(() => fe.text() === 'to the guest\n', 'host -> guest');
    await writeAll(c, new TextEncoder().encode('to the host\n'));
    let got = '';
    await waitFor(
      () => (got += readAvailable(hostOut).toString()) === 'to the host\n',
      'guest -> host',
    );
  });

  it('H1 without path.in/path.out the single FIFO `path` is used both ways (and loops back, as QEMU)', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'one');
    mkfifo(p);
    const { open } = lab();
    const c = await open(spec('p1', pipe(p)));
    opened.push(c);
    expect(as(c, PipeChardev).paths).toEqual([p]);
    const fe = new TestFrontend();
    c.attach(fe);
    await writeAll(c, new TextEncoder().encode('echo'));
    await waitFor(() => fe.text() === 'echo', 'own output read back');
  });

  it("H1 a missing pipe gives QEMU's message; a regular file is refused", async () => {
    const dir = tempDir();
    const { ctx } = lab();
    const missing = await createChardev(spec('p1', pipe(path.join(dir, 'nope'))), ctx);
    expect(isChardevError(missing) && missing.message).toBe(
      `Could not open '${path.join(dir, 'nope')}': No such file or directory`,
    );
    fs.writeFileSync(path.join(dir, 'plain'), '');
    const plain = await createChardev(spec('p2', pipe(path.join(dir, 'plain'))), ctx);
    expect(isChardevError(plain) && plain.kind).toBe('WrongFileType');
  });

  it('D5 nobody reads path.out: writes stop at the FIFO and the stream mark, resume when read', async () => {
    const dir = tempDir();
    const base = path.join(dir, 'g');
    mkfifo(`${base}.in`);
    mkfifo(`${base}.out`);
    const { open } = lab();
    const c = await open(spec('p1', pipe(base)));
    opened.push(c);
    c.attach(new TestFrontend());
    const data = pattern(1024 * 1024, 5);
    const writing = writeAll(c, data, 8192);
    await until(
      () => c.counters.bytesOut > 0 && as(c, PipeChardev).queuedToHost > 0,
      'the FIFO full and bytes queued behind it',
    );
    const stuckAt = c.counters.bytesOut;
    expect(stuckAt).toBeLessThan(data.length);
    expect(as(c, PipeChardev).queuedToHost).toBeLessThanOrEqual(64 * 1024);
    const hostOut = hostOpen(`${base}.out`);
    const got: Buffer[] = [];
    let total = 0;
    await until(
      () => {
        const b = readAvailable(hostOut);
        got.push(b);
        total += b.length;
        return total >= data.length;
      },
      'the host reading all 1 MiB from path.out',
      30_000,
    );
    await writing;
    expect(sha1(Buffer.concat(got))).toBe(sha1(data));
  });
});

describe('seed 001: two labs cross-connected through FIFO pairs', () => {
  it('H1 bytes written by frontend A arrive at frontend B and back (hard-linked FIFOs, two engines)', async () => {
    const dir = tempDir();
    const a = path.join(dir, 'guesta-virtioserial1');
    const b = path.join(dir, 'guestb-virtioserial1');
    // mkfifo /tmp/guesta-virtioserial1.{in,out}; ln a.in b.out; ln a.out b.in
    mkfifo(`${a}.in`);
    mkfifo(`${a}.out`);
    fs.linkSync(`${a}.in`, `${b}.out`);
    fs.linkSync(`${a}.out`, `${b}.in`);

    const labA = lab();
    const labB = lab();
    const chA = await labA.open(spec('vs1', pipe(a)));
    const chB = await labB.open(spec('vs1', pipe(b)));
    opened.push(chA, chB);
    const feA = new TestFrontend();
    const feB = new TestFrontend();
    chA.attach(feA);
    chB.attach(feB);

    const aToB = pattern(512 * 1024, 11);
    const bToA = pattern(300 * 1024, 12);
    await Promise.all([writeAll(chA, aToB), writeAll(chB, bToA)]);
    await waitFor(
      () => feB.received === aToB.length && feA.received === bToA.length,
      'both directions',
      10000,
    );
    expect(feB.sha1()).toBe(sha1(aToB));
    expect(feA.sha1()).toBe(sha1(bToA));
    expect(labA.scheduler.stats.byKind.backend).toBeGreaterThan(0);
    expect(labB.scheduler.stats.byKind.backend).toBeGreaterThan(0);
  });
});
