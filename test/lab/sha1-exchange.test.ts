/**
 * Seed 002's case study, end to end on real unix sockets: the host's
 * test_host_file_send and test_guest_file_send against the sha1 workload
 * (64 MiB each way), and the same bytes through the guest-dir socket.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import type { Machine } from '../../core/machine/machine.js';
import { GuestDir, isGuestDirError } from '../../core/guestdir/index.js';
import {
  PatternStream,
  patternSha1,
  startWorkloads,
  isWorkloadError,
  parseWorkload,
  type Workload,
  type WorkloadSpec,
} from '../../core/workloads/index.js';
import {
  caseStudyArgs,
  Collector,
  connectUnix,
  hashIncoming,
  removeTempDirs,
  startMachine,
  tempDir,
  writeStream,
} from './helpers.js';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;

let machine: Machine | null = null;
let workloads: Workload[] = [];
let guestDir: GuestDir | null = null;

afterEach(async () => {
  await Promise.all(workloads.map((w) => w.stop()));
  workloads = [];
  await guestDir?.close();
  guestDir = null;
  await machine?.close();
  machine = null;
});
afterAll(removeTempDirs);

function spec(text: string): WorkloadSpec {
  const s = parseWorkload(text);
  if (isWorkloadError(s)) throw new Error(s.message);
  return s;
}

describe('seed 002: sha1 file exchange on test1/test2', () => {
  it('H1 H3 D5 D6: 64 MiB each way through unix sockets, sha1 equal on both ends', async () => {
    const dir = tempDir('sha1');
    machine = await startMachine(caseStudyArgs(dir), dir);
    const started = await startWorkloads(machine.lab, [spec('test1=sha1')]);
    if (isWorkloadError(started)) throw new Error(started.message);
    workloads = started;

    const command = new Collector(await connectUnix(path.join(dir, 'test1')));
    const data = await connectUnix(path.join(dir, 'test2'));
    command.socket.write('PING\n');
    expect(await command.line()).toBe('PONG');

    // test_host_file_send: the host sends a file and its sha1; the guest checks it.
    const expected = patternSha1(SIZE, 7);
    command.socket.write(`RECV test2 ${SIZE} ${expected}\n`);
    expect(await command.line()).toBe(`READY RECV test2 ${SIZE}`);
    const p = new PatternStream(7);
    const sent = await writeStream(data, SIZE, (n) => p.next(n));
    expect(sent).toBe(expected);
    expect(await command.line(60_000)).toBe(`DONE RECV ${SIZE} ${expected} PASS`);

    // test_guest_file_send: the guest sends a file, then its sha1.
    const received = hashIncoming(data, SIZE);
    command.socket.write(`SEND test2 ${SIZE} 3\n`);
    expect(await command.line()).toBe(`READY SEND test2 ${SIZE}`);
    const hostSha1 = await received;
    const done = await command.line(60_000);
    expect(done).toBe(`DONE SEND ${SIZE} ${hostSha1}`);
    expect(hostSha1).toBe(patternSha1(SIZE, 3));

    expect(workloads[0]!.stats().detail).toMatch(/^2 transfers/);
    command.socket.destroy();
    data.destroy();
  }, 60_000);

  it('L3 L4 L5: 64 MiB each way at once between the host socket and the guest-dir socket', async () => {
    const dir = tempDir('gdir');
    machine = await startMachine(caseStudyArgs(dir), dir);
    const opened = await GuestDir.open(machine.lab, path.join(dir, 'guest'));
    if (isGuestDirError(opened)) throw new Error(opened.message);
    guestDir = opened;
    expect(
      guestDir
        .sockets()
        .map((s) => path.basename(s.path))
        .sort(),
    ).toEqual(['console.0', 'test1', 'test2']);

    const guest = await connectUnix(path.join(dir, 'guest', 'test2'));
    const host = await connectUnix(path.join(dir, 'test2'));
    const toGuest = hashIncoming(guest, SIZE);
    const toHost = hashIncoming(host, SIZE);
    const a = new PatternStream(11);
    const b = new PatternStream(12);
    const [sentToGuest, sentToHost] = await Promise.all([
      writeStream(host, SIZE, (n) => a.next(n)),
      writeStream(guest, SIZE, (n) => b.next(n)),
    ]);
    expect(await toGuest).toBe(sentToGuest);
    expect(await toHost).toBe(sentToHost);
    guest.destroy();
    host.destroy();
  }, 60_000);
});
