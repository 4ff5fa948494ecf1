/**
 * The registry of running sessions (what `vmchan extcap` lists): a 0700
 * directory, entries removed on unregister, entries of dead processes
 * ignored and cleaned; and the live socket (0600) that streams a Capture
 * as pcapng to a client, refusing a bad filter with the filter's message.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { listSessions, registerSession, registryDir } from '../../core/capture/session-registry.js';
import { connectLive, startLiveServer } from '../../core/capture/live-server.js';
import { CaptureError } from '../../core/capture/error.js';
import { Capture, dataRecord } from '../../core/capture/record.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { removeTempDirs, tempDir, waitUntil } from '../lab/helpers.js';

afterAll(removeTempDirs);

describe('session registry', () => {
  it('lives under XDG_RUNTIME_DIR, else the temp dir per user', () => {
    expect(registryDir({ XDG_RUNTIME_DIR: '/run/user/7' })).toBe('/run/user/7/vmchan/sessions');
    expect(registryDir({ TMPDIR: '/t' })).toMatch(/^\/t\/vmchan-\d+\/sessions$/);
  });

  it('registers 0700, lists, and forgets on unregister', () => {
    const dir = path.join(tempDir('registry'), 'vmchan', 'sessions');
    const reg = registerSession('lab', 'a test lab', dir);
    if (reg instanceof CaptureError) throw new Error(reg.message);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(listSessions(dir).map((s) => s.id)).toEqual([reg.entry.id]);
    expect(reg.entry.id).toMatch(/^vmchan-lab-\d+/);
    reg.unregister();
    expect(listSessions(dir)).toEqual([]);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('ignores and removes the entry of a process that is gone (SIGKILL leaves one)', () => {
    const dir = path.join(tempDir('registry'), 'sessions');
    const reg = registerSession('attach', 'dead one', dir);
    if (reg instanceof CaptureError) throw new Error(reg.message);
    // a pid that existed and is gone: a child that already exited
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    const file = path.join(dir, `${reg.entry.id}.json`);
    const entry = { ...reg.entry, pid: Number(dead.stdout) };
    fs.writeFileSync(file, JSON.stringify(entry));
    expect(listSessions(dir)).toEqual([]);
    expect(fs.existsSync(file)).toBe(false);
  });
});

describe('live socket', () => {
  it('streams pcapng (0600 socket), with the client filter applied', async () => {
    const dir = tempDir('live');
    const sock = path.join(dir, 'l.sock');
    const capture = new Capture();
    capture.setAll(true);
    const server = await startLiveServer(capture, sock);
    if (server instanceof CaptureError) throw new Error(server.message);
    expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
    const live = await connectLive(sock, 'dir == g2h');
    if (live instanceof CaptureError) throw new Error(live.message);
    const chunks: Buffer[] = [live.rest];
    live.socket.on('data', (c: Buffer) => chunks.push(c));
    live.socket.resume();
    await waitUntil(() => server.clients === 1 && capture.active, 'the client sink');
    capture.addInterface({
      device: 'vser0',
      deviceIndex: 0,
      port: 1,
      kind: 'virtserialport',
      name: 't',
    });
    for (const direction of ['host-to-guest', 'guest-to-host'] as const)
      capture.write(
        dataRecord({
          time: 1n,
          device: 'vser0',
          port: 1,
          portName: 't',
          direction,
          bytes: Buffer.from(direction),
        }),
      );
    await waitUntil(() => Buffer.concat(chunks).includes('guest-to-host'), 'the g2h record');
    live.socket.destroy();
    await server.close();
    const file = path.join(dir, 'got.pcapng');
    fs.writeFileSync(file, Buffer.concat(chunks));
    const reader = openCaptureSync(file);
    if (reader instanceof CaptureError) throw new Error(reader.message);
    expect(reader.count).toBe(1);
    const r = reader.record(0);
    if (r instanceof CaptureError) throw new Error(r.message);
    expect(r.direction).toBe('guest-to-host');
    reader.close();
  });

  it('refuses a bad filter with the filter language message', async () => {
    const sock = path.join(tempDir('live'), 'l.sock');
    const server = await startLiveServer(new Capture(), sock);
    if (server instanceof CaptureError) throw new Error(server.message);
    const live = await connectLive(sock, 'len >');
    expect(live).toBeInstanceOf(CaptureError);
    expect((live as CaptureError).message).toMatch(/^filter error at column 6/);
    await server.close();
  });
});
