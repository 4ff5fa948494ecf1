/**
 * Issue 13 item 12 for the guest agent: a host client
 * of org.qemu.guest_agent.0 that sends 100,000 requests and never reads the
 * answers must not grow the lab's memory. The agent writes each reply
 * before it reads the next request, and its write blocks while the port's
 * queue is full, which it stays while the chardev cannot hand bytes to the
 * socket: so the agent stops reading, the device stops taking host bytes,
 * and the requests wait in the client's own socket. Once the client reads,
 * every answer arrives, in order.
 */
import * as net from 'node:net';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackendEndpoint } from '../../core/chardev/backend-endpoint.js';
import { startGuestAgents, type GuestAgents } from '../../core/qga/index.js';
import {
  removeTempDirs,
  startRig,
  tempDir,
  unixServer,
  waitFor,
  type Rig,
} from '../monitor/helpers.js';

let rig: Rig;
let agents: GuestAgents;

beforeEach(async () => {
  const dir = tempDir('qgabp');
  rig = await startRig(
    [
      ...unixServer(dir, 'qga0'),
      '-device',
      'virtio-serial-pci,id=vser0',
      '-device',
      'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0,id=qga',
    ],
    dir,
  );
  agents = startGuestAgents(rig.machine.lab);
  await waitFor(() => agents.current?.state === 'running', 'the agent');
});

afterEach(async () => {
  agents.close();
  await rig.close();
  removeTempDirs();
});

/** Event-loop turns (no timer): enough for the engine and the sockets to do all they would do now. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

function counters(): BackendEndpoint['counters'] {
  const endpoint = rig.machine.lab.chardev('qga0');
  if (!(endpoint instanceof BackendEndpoint)) throw new Error('qga0 is not a socket chardev');
  return endpoint.counters;
}

/** Wait until the lab stopped taking the client's bytes: the same count over many loop turns. */
async function stalled(): Promise<number> {
  await waitFor(() => counters().bytesIn > 0, 'the agent to take requests');
  let before = -1;
  while (before !== counters().bytesIn) {
    before = counters().bytesIn;
    await rig.machine.lab.scheduler.idle();
    await turns(200);
  }
  return before;
}

describe('a qemu-ga client that never reads cannot grow the lab without bound', () => {
  it('100,000 guest-sync requests unread: the agent stops reading, then answers every one', async () => {
    const request = (i: number): string => `{"execute": "guest-sync", "arguments": {"id": ${i}}}\n`;
    const count = 100_000;
    const client = net.createConnection(path.join(rig.dir, 'qga0'));
    await new Promise<void>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    });
    client.pause(); // never read: replies stay in the kernel, then in the lab, unless it stops
    const input = Array.from({ length: count }, (_, i) => request(i)).join('');
    client.write(input);

    const taken = await stalled();
    // What the lab took waits in bounded places: requests in the port's
    // receive buffers (its ring) and the agent's 4 KiB read; replies in the
    // port's transmit buffers, the chardev's one pending write, and the
    // client's unread kernel socket buffer (bytesOut). Measured: about 650 KB
    // taken of 5.3 MB sent, about 170 KB of replies held in the lab.
    expect(taken).toBeLessThan(input.length / 4);
    expect(taken).toBeLessThan(4 * 1024 * 1024);
    // Replies held in the lab, at most: the answers to every request taken
    // less what the socket took (an upper bound: some requests taken are
    // not answered yet). Bounded by the port's ring, not by the input.
    const requestsTaken = input.slice(0, taken).split('\n').length - 1;
    let produced = 0;
    for (let i = 0; i < requestsTaken; i++) produced += `{"return": ${i}}\n`.length;
    const unsent = produced - counters().bytesOut;
    expect(unsent).toBeLessThan(256 * 1024);

    // The client reads: every answer comes, in order, none lost.
    const chunks: Buffer[] = [];
    let newlines = 0;
    client.on('data', (d: Buffer) => {
      chunks.push(d);
      for (const b of d) if (b === 0x0a) newlines++;
    });
    client.resume();
    await waitFor(() => newlines >= count, 'every reply', 120_000);
    const lines = Buffer.concat(chunks).toString('latin1').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(count);
    lines.forEach((line, i) => {
      if (line !== `{"return": ${i}}`) expect(line).toBe(`{"return": ${i}}`);
    });
    expect(counters().bytesIn).toBe(input.length);
    client.destroy();
  }, 180_000);
});
