/**
 * Terminal sessions through the API: a host-side terminal through the
 * guest's echo program, a guest-side terminal against a real socket client
 * (PORT_OPEN both ways, EBUSY for a second open), the HMP console with
 * hot-plug, and the bounded output of a screen that falls behind.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Batch, TopologySnapshot } from '../../core/api/contract/contract.js';
import {
  TERMINAL_BATCH_BYTES,
  type TerminalSession,
} from '../../core/api/contract/terminal-contract.js';
import { Outbox } from '../../core/api/server/terminal-service.js';
import { startWorkload } from '../../core/workloads/index.js';
import { rig, socketClient, until, type Rig } from './helpers.js';

/** Everything session `id` printed so far, over all batches. */
function output(batches: Batch[], id: string): string {
  return batches
    .flatMap((b) => b.terminals ?? [])
    .filter((t) => t.session === id)
    .map((t) => Buffer.from(t.data, 'base64').toString('latin1'))
    .join('');
}

function ended(batches: Batch[], id: string): string | null {
  for (const t of batches.flatMap((b) => b.terminals ?? []))
    if (t.session === id && t.ended !== null) return t.ended;
  return null;
}

async function labWithPorts(r: Rig): Promise<TopologySnapshot> {
  await r.must({ cmd: 'createDevice', device: { id: 'vser0' } });
  for (const name of ['p1', 'p2']) {
    await r.must({
      cmd: 'hotplugPort',
      port: {
        driver: 'virtserialport',
        id: name,
        name: `org.test.${name}`,
        newChardev: { id: `c-${name}`, backend: { kind: 'unix' } },
      },
    });
  }
  return until(async () => {
    const t = await r.topology();
    return t.ports.every((p) => p.guestPath !== null) ? t : undefined;
  });
}

describe('terminal sessions', () => {
  let r: Rig | null = null;
  afterEach(async () => {
    await r?.close();
    r = null;
  });

  it('types into the host side and sees the guest echo program answer', async () => {
    r = await rig();
    const t = await labWithPorts(r);
    const echo = startWorkload(r.service.session.lab, { port: 'org.test.p1', kind: 'echo' });
    expect('stats' in echo).toBe(true);
    const port = { device: 'vser0', nr: t.ports[0]!.nr };
    const s = await r.must<TerminalSession>({ cmd: 'openTerminal', port, side: 'host' });
    expect(s).toMatchObject({ kind: 'host', title: 'org.test.p1 · host', open: true });
    expect(s.path).toMatch(/^unix:.*c-p1$/);
    await until(async () => (await r!.topology()).ports[0]!.hostConnected);
    // A second host application: QEMU's server socket takes one client at a time.
    const again = await r.run({ cmd: 'openTerminal', port, side: 'host' });
    expect(again).toMatchObject({ ok: false, error: { kind: 'Refused' } });
    expect(await r.must({ cmd: 'terminalInput', session: s.id, data: 'hello vmchan\n' })).toEqual({
      queued: expect.any(Number),
    });
    await until(() => output(r!.batches, s.id).includes('hello vmchan\n'));
    await r.must({ cmd: 'closeTerminal', session: s.id });
    await until(async () => !(await r!.topology()).ports[0]!.hostConnected);
    if ('stats' in echo) await echo.stop();
  });

  it('a guest-side terminal opens the port, talks to a socket client, and EBUSY on a second open', async () => {
    r = await rig();
    const t = await labWithPorts(r);
    const p2 = t.ports[1]!;
    const port = { device: 'vser0', nr: p2.nr };
    const path = t.chardevs.find((c) => c.id === 'c-p2')!.path!;
    const client = await socketClient(path);
    expect(p2.guestOpen).toBe(false);
    const s = await r.must<TerminalSession>({ cmd: 'openTerminal', port, side: 'guest' });
    expect(s).toMatchObject({ kind: 'guest', path: '/dev/virtio-ports/org.test.p2' });
    await until(async () => (await r!.topology()).ports[1]!.guestOpen);
    client.socket.write('from the host\n');
    await until(() => output(r!.batches, s.id).includes('from the host\n'));
    await r.must({ cmd: 'terminalInput', session: s.id, data: 'typed in the guest\n' });
    await until(() => client.received().toString().includes('typed in the guest\n'));
    // Linux: one opener at a time on a virtio serial port.
    const second = await r.run({ cmd: 'openTerminal', port, side: 'guest' });
    expect(second).toEqual({
      ok: false,
      error: {
        kind: 'Refused',
        message: 'open /dev/virtio-ports/org.test.p2: Device or resource busy (EBUSY)',
      },
    });
    expect(
      (await r.must<{ sessions: TerminalSession[] }>({ cmd: 'listTerminals' })).sessions,
    ).toEqual([s]);
    await r.must({ cmd: 'closeTerminal', session: s.id });
    await until(async () => !(await r!.topology()).ports[1]!.guestOpen);
    client.close();
  });

  it('ends a guest-side terminal when its port is unplugged', async () => {
    r = await rig();
    const t = await labWithPorts(r);
    const port = { device: 'vser0', nr: t.ports[0]!.nr };
    const s = await r.must<TerminalSession>({ cmd: 'openTerminal', port, side: 'guest' });
    await r.must({ cmd: 'unplugPort', port });
    const why = await until(() => ended(r!.batches, s.id) ?? undefined);
    expect(why).toMatch(/unplugged|No such device/);
    expect(await r.run({ cmd: 'terminalInput', session: s.id, data: 'x' })).toMatchObject({
      ok: false,
    });
  });

  it('runs HMP for the app: info chardev, device_add shows in the topology, quit ends only the console', async () => {
    r = await rig();
    await labWithPorts(r);
    const m = await r.must<TerminalSession>({ cmd: 'openMonitor' });
    expect(m).toMatchObject({ kind: 'monitor', port: null, title: 'HMP monitor' });
    await until(() => output(r!.batches, m.id).includes('(qemu) ')).catch(() => {
      throw new Error(JSON.stringify(output(r!.batches, m.id)));
    });
    expect(output(r.batches, m.id)).toMatch(/^QEMU [\d.]+ monitor - type 'help'/);
    await r.must({ cmd: 'terminalInput', session: m.id, data: 'info chardev\r' });
    await until(() => /c-p1: filename=(disconnected:)?unix:/.test(output(r!.batches, m.id))).catch(
      () => {
        throw new Error(JSON.stringify(output(r!.batches, m.id)));
      },
    );
    await r.must({
      cmd: 'terminalInput',
      session: m.id,
      data: 'device_add virtserialport,bus=vser0.0,id=hp1,name=org.test.hp1\r',
    });
    const hp = await until(async () =>
      (await r!.topology()).ports.find((p) => p.name === 'org.test.hp1'),
    );
    expect(hp.id).toBe('hp1');
    await r.must({ cmd: 'terminalInput', session: m.id, data: 'device_del nope\r' });
    await until(() => output(r!.batches, m.id).includes("Error: Device 'nope' not found"));
    await r.must({ cmd: 'terminalInput', session: m.id, data: 'quit\r' });
    expect(await until(() => ended(r!.batches, m.id) ?? undefined)).toMatch(/quit/);
    // The lab is still there.
    expect((await r.topology()).ports.some((p) => p.name === 'org.test.hp1')).toBe(true);
  });

  it('refuses what cannot be: unknown sessions, ports, a paused engine', async () => {
    r = await rig();
    const t = await labWithPorts(r);
    expect(await r.run({ cmd: 'terminalInput', session: 't99', data: 'x' })).toMatchObject({
      ok: false,
      error: { kind: 'NotFound' },
    });
    expect(
      await r.run({ cmd: 'openTerminal', port: { device: 'vser0', nr: 9 }, side: 'guest' }),
    ).toMatchObject({ ok: false, error: { kind: 'NotFound' } });
    expect(
      await r.run({
        cmd: 'openTerminal',
        port: { device: 'vser0', nr: 1 },
        side: 'sideways',
      } as never),
    ).toMatchObject({ ok: false, error: { kind: 'InvalidRequest' } });
    await r.must({ cmd: 'pause' });
    const paused = await r.run({
      cmd: 'openTerminal',
      port: { device: 'vser0', nr: t.ports[0]!.nr },
      side: 'guest',
    });
    expect(paused).toMatchObject({
      ok: false,
      error: { message: expect.stringMatching(/paused/) },
    });
    await r.must({ cmd: 'run' });
  });
});

describe('Outbox: a screen that falls behind', () => {
  it('keeps the newest bytes per session and counts the rest', () => {
    let kicks = 0;
    const o = new Outbox(() => kicks++);
    const chunk = new Uint8Array(10_000).fill(0x61);
    for (let i = 0; i < 20; i++) o.push('t1', chunk);
    o.push('t2', new TextEncoder().encode('small'));
    o.end('t2', 'gone');
    const out = o.take()!;
    expect(out).toHaveLength(2);
    const t1 = out.find((x) => x.session === 't1')!;
    expect(Buffer.from(t1.data, 'base64').length).toBe(TERMINAL_BATCH_BYTES);
    expect(t1.dropped).toBe(200_000 - TERMINAL_BATCH_BYTES);
    expect(out.find((x) => x.session === 't2')).toEqual({
      session: 't2',
      data: Buffer.from('small').toString('base64'),
      dropped: 0,
      ended: 'gone',
    });
    expect(o.take()).toBeUndefined();
    // One huge write: only its tail stays.
    const big = new Uint8Array(TERMINAL_BATCH_BYTES * 3);
    big[big.length - 1] = 0x7a;
    o.push('t1', big);
    const only = o.take()![0]!;
    expect(only.dropped).toBe(TERMINAL_BATCH_BYTES * 2);
    expect(Buffer.from(only.data, 'base64').at(-1)).toBe(0x7a);
  });
});
