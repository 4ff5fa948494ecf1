/**
 * What the tap tests on a real QEMU share (tap-real.test.ts: the CLI's
 * taps; inplace-tap-real.test.ts: the app's in-place and reverse taps): the
 * test guest booted with one virtserialport (`port1`, org.test.port.1, a
 * unix socket chardev QEMU listens on) plus what the file adds, a QMP
 * client of the test's own, and the case study's sha1 transfer (seeds/002)
 * in each direction through whatever path the host application is given,
 * then the capture read back: every byte of each direction, sha1 intact.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { CaptureError } from '../../core/capture/error.js';
import { followCapture, followRaw } from '../../core/capture/follow.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { QmpClient } from '../../core/qemu/qmp-client.js';
import { isQmpError } from '../../core/qemu/qmp-error.js';
import type { ChardevInfo } from '../../core/qemu/qmp-types.js';
import { isGuestError, type RunResult } from '../guest/guest-shell.js';
import { startGuest, type Guest, type StartGuestOptions } from '../guest/qemu.js';
import {
  chardevLookup,
  chardevWatch,
  connectUnix,
  guestShell,
  poller,
  requirePrerequisites,
  type Until,
} from './real-guest.js';

export const sha1 = (b: Uint8Array): string => createHash('sha1').update(b).digest('hex');

/** The tapped port of every tap test. */
export const PORT = { id: 'port1', chardev: 'c-port1', name: 'org.test.port.1' } as const;

export interface TapGuestOptions {
  /** Named in the failure when a prerequisite is missing ("the tap tests"). */
  what: string;
  /** Start of the run directory's name. */
  tmpPrefix: string;
  /** QEMU arguments beyond the guest's and port1's, given the run directory. */
  extraArgs?: (runDir: string) => string[];
  /** Before the guest boots (a host application QEMU connects to, say). */
  before?: (runDir: string) => Promise<void>;
  /** After the guest stopped. */
  after?: () => Promise<void>;
  /** More ports than port1. */
  ports?: StartGuestOptions['ports'];
}

/**
 * The booted guest of one describe block. Its fields are set by the
 * block's beforeAll (registered by `useTapGuest`).
 */
export class TapGuest {
  guest!: Guest;
  qmp!: QmpClient;
  runDir!: string;
  /** `sh(command)` in the guest; a GuestError fails the test. */
  readonly sh = guestShell(() => this.guest);
  readonly until: Until = poller(60_000, 50);
  /** QEMU's query-chardev entry of a chardev. */
  readonly chardev = chardevLookup(() => this.qmp);

  private readonly watch = chardevWatch(this.chardev, this.until);

  /** QEMU sees a host client on the chardev (or none), as query-chardev tells. */
  hostSeen(label: string, connected: boolean, what: string): Promise<ChardevInfo> {
    return this.watch.hostSeen(label, connected, what);
  }

  /** The guest has the port open (query-chardev's frontend-open). */
  guestOpened(label: string, what?: string): Promise<ChardevInfo> {
    return this.watch.guestOpened(label, what);
  }
}

/** Boot the guest in beforeAll, stop it (and what `after` names) in afterAll. */
export function useTapGuest(options: TapGuestOptions): TapGuest {
  const rig = new TapGuest();
  beforeAll(async () => {
    requirePrerequisites(options.what);
    rig.runDir = fs.mkdtempSync(path.join(os.tmpdir(), options.tmpPrefix));
    await options.before?.(rig.runDir);
    const g = await startGuest({
      runDir: rig.runDir,
      ports: [{ id: PORT.id, name: PORT.name }, ...(options.ports ?? [])],
      extraArgs: options.extraArgs?.(rig.runDir) ?? [],
      bootTimeoutMs: 150_000,
    });
    if (isGuestError(g)) throw new Error(g.toString());
    rig.guest = g;
    console.info(`guest: shell after ${g.bootMs} ms, ports linked after ${g.portsMs} ms`);
    const c = await QmpClient.connect(g.qmpPath, { greetingTimeoutMs: 30_000 });
    if (isQmpError(c)) throw new Error(c.toString());
    rig.qmp = c;
  }, 240_000);

  afterAll(async () => {
    await rig.qmp?.close();
    await rig.guest?.stop();
    await options.after?.();
    if (rig.runDir) fs.rmSync(rig.runDir, { recursive: true, force: true });
  }, 60_000);
  return rig;
}

export interface Transfer {
  /** The bytes sent (host to guest), or the sha1 of the guest's file (guest to host). */
  sha1: string;
  bytes: Buffer | null;
  ms: number;
}

/**
 * test_host_file_send: a host application connects to `appPath`, the guest
 * reads `size` bytes from the port (`head -c N > file; sha1sum`), the
 * application writes them and leaves; the guest's sha1 is the sent bytes'.
 * Ends when QEMU no longer sees a host.
 */
export async function hostToGuest(rig: TapGuest, appPath: string, size: number): Promise<Transfer> {
  const bytes = randomBytes(size);
  const app = await connectUnix(appPath);
  await rig.hostSeen(PORT.chardev, true, 'QEMU sees the host application');
  const received = rig.guest.shell.run(
    `head -c ${size} /dev/virtio-ports/${PORT.name} > /tmp/host-file; sha1sum /tmp/host-file`,
    { timeoutMs: 180_000 },
  );
  await rig.guestOpened(PORT.chardev, 'the guest opened the port to read the host file');
  const t0 = Date.now();
  app.write(bytes);
  const got: RunResult | { toString(): string } = await received;
  if (isGuestError(got)) throw new Error(got.toString());
  const ms = Date.now() - t0;
  expect((got as RunResult).output.split(/\s+/)[0]).toBe(sha1(bytes));
  app.end();
  await rig.hostSeen(PORT.chardev, false, 'the host application gone for QEMU');
  return { sha1: sha1(bytes), bytes, ms };
}

/**
 * test_guest_file_send: the guest makes `size` random bytes, a host
 * application connects to `appPath`, the guest writes the file to the port,
 * the application gets all of it (sha1 intact) and leaves. Ends when QEMU
 * no longer sees a host.
 */
export async function guestToHost(rig: TapGuest, appPath: string, size: number): Promise<Transfer> {
  const sum = (
    await rig.sh(`head -c ${size} /dev/urandom > /tmp/guest-file; sha1sum /tmp/guest-file`, 60_000)
  ).output.split(/\s+/)[0]!;
  const app: net.Socket = await connectUnix(appPath);
  const chunks: Buffer[] = [];
  let got = 0;
  app.on('data', (b: Buffer) => {
    chunks.push(b);
    got += b.length;
  });
  await rig.hostSeen(PORT.chardev, true, 'QEMU sees the next host application');
  const t0 = Date.now();
  await rig.sh(`cat /tmp/guest-file > /dev/virtio-ports/${PORT.name}`, 180_000);
  await rig.until(
    'the host application has the guest file',
    () => got,
    (n) => n >= size,
    120_000,
  );
  const ms = Date.now() - t0;
  expect(got).toBe(size);
  expect(sha1(Buffer.concat(chunks))).toBe(sum);
  app.end();
  await rig.hostSeen(PORT.chardev, false, 'the host application gone for QEMU again');
  return { sha1: sum, bytes: null, ms };
}

/** A port's conversation in a capture file: each direction's bytes, and its host-* events in order. */
export interface CapturedStream {
  hostToGuest: Buffer;
  guestToHost: Buffer;
  /** The tap's host-open / host-close events, as recorded. */
  hostEvents: string[];
}

/** Reads `port`'s stream from the capture at `capPath` (core/capture/follow.ts); a CaptureError fails the test. */
export function readCapturedStream(capPath: string, port: string): CapturedStream {
  const reader = openCaptureSync(capPath);
  if (reader instanceof CaptureError) throw new Error(reader.toString());
  try {
    const stream = followCapture(reader, { port });
    if (stream instanceof CaptureError) throw new Error(stream.toString());
    const hostEvents: string[] = [];
    for (let n = 0; n < reader.count; n++) {
      const rec = reader.record(n);
      if (!(rec instanceof CaptureError) && rec.kind === 'event' && rec.event.startsWith('host-'))
        hostEvents.push(rec.event);
    }
    return {
      hostToGuest: Buffer.from(followRaw(stream, 'host-to-guest')),
      guestToHost: Buffer.from(followRaw(stream, 'guest-to-host')),
      hostEvents,
    };
  } finally {
    reader.close();
  }
}

/**
 * The capture holds both transfers of `port`, byte for byte: the stream
 * followed has `size` bytes each way with the senders' sha1. Returns the
 * capture's host-* event names in order (the tap's host-open / host-close).
 */
export function expectBothCaptured(
  capPath: string,
  port: string,
  size: number,
  h2g: Transfer,
  g2h: Transfer,
): string[] {
  const stream = readCapturedStream(capPath, port);
  expect([stream.hostToGuest.length, stream.guestToHost.length]).toEqual([size, size]);
  expect(sha1(stream.hostToGuest)).toBe(h2g.sha1);
  expect(sha1(stream.guestToHost)).toBe(g2h.sha1);
  return stream.hostEvents;
}
