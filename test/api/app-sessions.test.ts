/**
 * Issue 17: what the app itself holds on a port is never hidden. The
 * inspector's Send keeps its side of the port between writes (the host
 * client socket, the guest's descriptor): listTerminals and the topology
 * list it as a session (`origin: 'send'`), closeTerminal lets go of it, and
 * then a real client gets the socket. A device in NEEDS_RESET (G3) is reset
 * as its guest driver would (resetDevice) and its ports work again.
 * `repointPort` is the clear name of the re-point (`connectHost` stays).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ApiEvent } from '../../core/api/contract/contract.js';
import type { TerminalSession } from '../../core/api/contract/terminal-contract.js';
import { plugOnNewChardev, rig, socketClient, until, type Rig } from './helpers.js';

let r: Rig | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

async function sessions(lab: Rig): Promise<TerminalSession[]> {
  return (await lab.must<{ sessions: TerminalSession[] }>({ cmd: 'listTerminals' })).sessions;
}

async function lessonPort(lab: Rig) {
  const port = await plugOnNewChardev(lab, { name: 'lesson', chardev: 'l' });
  await until(async () => (await lab.topology()).ports[0]!.guestName ?? undefined);
  return { device: 'vser0', nr: port.nr };
}

describe('Send holds are sessions', () => {
  it('lists the host client Send keeps, closes it, and a real client connects afterwards', async () => {
    r = await rig();
    const ref = await lessonPort(r);
    expect(await r.must({ cmd: 'writeHost', port: ref, data: 'x' })).toEqual({ written: 1 });
    const id = `send:host:vser0:${ref.nr}`;
    expect(await sessions(r)).toEqual([
      expect.objectContaining({ id, kind: 'host', origin: 'send', open: true, port: ref }),
    ]);
    expect((await r.topology()).sessions).toEqual([expect.objectContaining({ id })]);
    await r.must({ cmd: 'closeTerminal', session: id });
    expect(await sessions(r)).toEqual([]);
    await until(async () => !(await r!.topology()).ports[0]!.hostConnected || undefined);
    // The socket is free: a client like socat is adopted, not reset.
    const client = await socketClient((await r.topology()).chardevs[0]!.path!);
    await until(async () => (await r!.topology()).ports[0]!.hostConnected || undefined);
    await r.must({ cmd: 'writeGuest', port: ref, data: 'hello\n' });
    await until(() => client.received().toString() === 'hello\n' || undefined);
    expect(client.closed()).toBe(false);
    client.close();
  });

  it('lists the guest descriptor Send keeps open, and closing it closes the port in the guest', async () => {
    r = await rig();
    const ref = await lessonPort(r);
    const client = await socketClient((await r.topology()).chardevs[0]!.path!);
    await until(async () => (await r!.topology()).ports[0]!.hostConnected || undefined);
    await r.must({ cmd: 'writeGuest', port: ref, data: 'x' });
    expect((await r.topology()).ports[0]!.guestOpen).toBe(true);
    const id = `send:guest:vser0:${ref.nr}`;
    expect(await sessions(r)).toEqual([
      expect.objectContaining({ id, kind: 'guest', origin: 'send', path: '/dev/vport0p1' }),
    ]);
    await r.must({ cmd: 'closeTerminal', session: id });
    await until(async () => !(await r!.topology()).ports[0]!.guestOpen || undefined);
    expect(await sessions(r)).toEqual([]);
    // Closing it twice: nothing is held any more.
    expect(await r.run({ cmd: 'closeTerminal', session: id })).toMatchObject({
      ok: false,
      error: { kind: 'NotFound' },
    });
    client.close();
  });
});

describe('reset after NEEDS_RESET (G3)', () => {
  it('resets the device as the guest driver would, and the port carries bytes again', async () => {
    r = await rig();
    const ref = await lessonPort(r);
    const client = await socketClient((await r.topology()).chardevs[0]!.path!);
    await until(async () => (await r!.topology()).ports[0]!.hostConnected || undefined);
    await r.must({ cmd: 'injectFault', device: 'vser0', queue: 2 * ref.nr + 3, fault: 'M2' });
    await r.waitEvent((e: ApiEvent) => e.kind === 'needs-reset');
    expect((await r.topology()).devices[0]).toMatchObject({ state: 'needs-reset' });
    expect(await r.must({ cmd: 'resetDevice', device: 'vser0' })).toEqual({
      device: 'vser0',
      state: 'running',
    });
    const t = await r.topology();
    expect(t.devices[0]).toMatchObject({ state: 'running', fault: null, guestIndex: 0 });
    await until(async () => (await r!.topology()).ports[0]!.guestName ?? undefined);
    expect((await r.topology()).ports[0]!.guestName).toBe('vport0p1');
    await r.must({ cmd: 'writeGuest', port: ref, data: 'after reset\n' });
    await until(() => client.received().toString() === 'after reset\n' || undefined);
    client.close();
  });

  it('answers at once while paused; the driver binds again on Run', async () => {
    r = await rig();
    const ref = await lessonPort(r);
    await r.must({ cmd: 'injectFault', device: 'vser0', queue: 2 * ref.nr + 3, fault: 'M2' });
    await r.waitEvent((e: ApiEvent) => e.kind === 'needs-reset');
    await r.must({ cmd: 'pause' });
    expect(await r.must({ cmd: 'resetDevice', device: 'vser0' })).toMatchObject({
      device: 'vser0',
    });
    await r.must({ cmd: 'run' });
    await until(async () => (await r!.topology()).devices[0]!.state === 'running' || undefined);
  });
});

describe('repointPort', () => {
  it('re-points a port at another chardev, as connectHost did', async () => {
    r = await rig();
    const ref = await lessonPort(r);
    await r.must({ cmd: 'createChardev', chardev: { id: 'other', backend: { kind: 'unix' } } });
    const p = await r.must<{ chardev: string }>({
      cmd: 'repointPort',
      port: ref,
      chardev: 'other',
    });
    expect(p.chardev).toBe('other');
  });
});
