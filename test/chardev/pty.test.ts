import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PtyChardev, SerialChardev, type OpenChardev } from '../../core/chardev/index.js';
import {
  as,
  lab,
  skipWithoutSocat,
  socat,
  spec,
  tempDir,
  TestFrontend,
  waitFor,
  writeAll,
  type Socat,
} from './helpers.js';
import { until } from '../until.js';

const opened: OpenChardev[] = [];
const peers: Socat[] = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.stop()));
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

describe('pty and serial chardevs with socat (H1)', () => {
  if (skipWithoutSocat()) return;

  it('H1 pty prints its slave like QEMU, is connected only while the slave is open, raw both ways', async () => {
    const { open, notices } = lab();
    const c = as(await open(spec('ser0', { kind: 'pty' })), PtyChardev);
    opened.push(c);
    expect(c.slavePath).toMatch(/^\/dev\/pts\/\d+$/);
    expect(notices).toContain(`char device redirected to ${c.slavePath} (label ser0)`);
    expect(c.describe()).toBe(`pty:${c.slavePath}`);
    const fe = new TestFrontend();
    // A read of the master while nobody has the slave open fails with EIO
    // (a hang-up); wait for one, then the chardev must still say unconnected.
    const hangups = vi.spyOn(c as unknown as { onHangup(): void }, 'onHangup');
    c.attach(fe);
    await until(() => hangups.mock.calls.length > 0, 'a read of the master with no slave (EIO)');
    expect(c.connected).toBe(false); // nobody has the slave open yet
    expect(c.write(new TextEncoder().encode('nobody'))).toBe(6);
    expect(c.counters.dropped['no-peer']).toBe(6);

    const peer = socat(['-', `${c.slavePath},rawer`]);
    peers.push(peer);
    await waitFor(() => fe.events.includes('opened'), 'opened when the slave is opened');
    peer.write('line one\n');
    await waitFor(() => fe.text() === 'line one\n', 'host -> guest, no \\r added');
    await writeAll(c, new TextEncoder().encode('reply\n'));
    await waitFor(() => peer.output().toString() === 'reply\n', 'guest -> host, raw');

    await peer.stop();
    await waitFor(() => fe.events.at(-1) === 'closed', 'closed when the slave is closed');
  });

  it('H1 serial opens a terminal device (a pty made by socat) and carries bytes both ways', async () => {
    const dir = tempDir();
    const link = path.join(dir, 'ttyS9');
    const peer = socat(['-', `pty,rawer,link=${link}`]);
    peers.push(peer);
    await waitFor(() => fs.existsSync(link), 'socat pty');
    const { open, notices } = lab();
    const c = as(await open(spec('s0', { kind: 'serial', path: link })), SerialChardev);
    expect(notices).toEqual([]);
    // Raw, 115200 8N1 as QEMU's tty_serial_init sets a host serial line.
    const stty = spawnSync('stty', ['-F', link, '-a'], { encoding: 'utf8' }).stdout;
    expect(stty).toContain('speed 115200 baud');
    for (const flag of ['-icanon', '-echo', '-isig', '-opost', '-icrnl', 'cs8'])
      expect(stty).toContain(flag);
    opened.push(c);
    expect(c.connected).toBe(true);
    expect(c.describe()).toBe('serial');
    const fe = new TestFrontend();
    c.attach(fe);
    peer.write('from the line\n');
    await waitFor(() => fe.text() === 'from the line\n', 'host -> guest');
    await writeAll(c, new TextEncoder().encode('to the line\n'));
    await waitFor(() => peer.output().toString() === 'to the line\n', 'guest -> host');
    await peer.stop();
    await waitFor(() => fe.events.at(-1) === 'closed', 'closed when the line hangs up');
  });
});
