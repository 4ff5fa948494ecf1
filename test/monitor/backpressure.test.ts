/**
 * Q3 (bounded output): a monitor whose client does not read its output
 * stops reading that client, as QEMU suspends a monitor, so the lab's
 * memory stays bounded whatever the client sends: 100,000 QMP requests
 * and 80 KB of HMP input (echoed byte by byte) from a client that never
 * reads. Once the client reads, every reply comes, none lost.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attachMonitor } from '../../core/monitor/index.js';
import { OUTPUT_HIGH_WATER } from '../../core/monitor/output.js';
import { MemoryEndpoint } from '../../core/serial/memory-endpoint.js';
import {
  recordedMachineArgs,
  removeTempDirs,
  startRig,
  tempDir,
  waitFor,
  type Rig,
} from './helpers.js';

/** The client's receive buffer: what a socket would hold before its reader must read. */
const CLIENT_BUFFER = 16 * 1024;

let rig: Rig;
beforeEach(async () => {
  const dir = tempDir('bp');
  rig = await startRig(recordedMachineArgs(dir), dir);
});
afterEach(async () => {
  await rig.close();
  removeTempDirs();
});

/** Event-loop turns (no timer): enough for the monitor to do all it would do now. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** Attach a monitor to an in-memory chardev whose client never reads; returns both. */
function quietClient(mode: 'control' | 'readline') {
  const endpoint = new MemoryEndpoint({ id: 'mon', capacity: CLIENT_BUFFER });
  const monitor = attachMonitor(rig.machine, endpoint, mode);
  if (!('close' in monitor) || monitor instanceof Error) throw new Error('monitor refused');
  endpoint.peer.connect();
  return { endpoint, monitor };
}

/** Wait until the monitor stopped taking input: the same count over many loop turns. */
async function stalled(endpoint: MemoryEndpoint): Promise<number> {
  await waitFor(() => endpoint.peer.available >= CLIENT_BUFFER, 'the client buffer to fill');
  let before = -1;
  while (before !== endpoint.stats.toGuest) {
    before = endpoint.stats.toGuest;
    await turns(50);
  }
  return before;
}

describe('Q3 a client that never reads cannot grow the monitor without bound', () => {
  it('QMP: 100,000 requests; the monitor stops reading, then answers every one', async () => {
    const { endpoint, monitor } = quietClient('control');
    const request = '{"execute": "qmp_capabilities"}\n';
    const count = 100_000;
    endpoint.peer.write(request.repeat(count));
    const taken = await stalled(endpoint);
    // It stopped with most of the input unread: replies wait in the client, not in the lab.
    expect(taken).toBeLessThan(request.length * count);
    const replyBytes = '{"return": {}}\r\n'.length;
    // at most the high-water mark of replies (plus one read chunk's) were produced unread
    expect(taken / request.length).toBeLessThan(
      (OUTPUT_HIGH_WATER + CLIENT_BUFFER) / replyBytes + 4096 / request.length + 16,
    );

    // The client reads: everything is answered, in order, none lost.
    const chunks: Buffer[] = [];
    let newlines = 0;
    endpoint.peer.onData((bytes) => {
      chunks.push(Buffer.from(bytes));
      for (const b of bytes) if (b === 0x0a) newlines++;
    });
    await waitFor(() => newlines >= count + 1, 'every reply', 60_000);
    const lines = Buffer.concat(chunks)
      .toString('latin1')
      .split('\r\n')
      .filter((l) => l !== '');
    expect(lines[0]).toContain('"QMP"');
    expect(lines[1]).toBe('{"return": {}}');
    expect(lines).toHaveLength(count + 1);
    monitor.close();
  }, 90_000);

  it('HMP: 80 KB typed without reading the echo; input stops, then all of it is echoed', async () => {
    const { endpoint, monitor } = quietClient('readline');
    const input = 'x'.repeat(80 * 1024);
    endpoint.peer.write(input);
    const taken = await stalled(endpoint);
    expect(taken).toBeLessThan(input.length);
    let echoed = 0;
    endpoint.peer.onData((bytes) => (echoed += bytes.length));
    await waitFor(() => endpoint.stats.toGuest === input.length, 'all the input taken', 60_000);
    expect(echoed).toBeGreaterThan(0);
    monitor.close();
  }, 90_000);
});
