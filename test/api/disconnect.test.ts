/**
 * disconnectHost on an outside client: a real node:net client on a lab
 * port's unix socket is hung up through core/chardev's hangUp(). The
 * client sees the close, the port's host side flips to not connected, the
 * timeline gets the engine's "host disconnected" (and the backend's note,
 * and a drop for host bytes the guest had not taken), and the socket still
 * listens: a second client connects.
 */
import { BackendEndpoint } from '../../core/chardev/backend-endpoint.js';
import type * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { PortSnapshot } from '../../core/api/contract/contract.js';
import { plugOnNewChardev, rig, socketClient, until, type Rig } from './helpers.js';

let r: Rig | null = null;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await r?.close();
  r = null;
});

/** A host application like socat, hung up at the end of the test; reads as text. */
async function client(path: string): Promise<{
  socket: net.Socket;
  received: () => string;
  closed: () => boolean;
}> {
  const c = await socketClient(path);
  sockets.push(c.socket);
  return { socket: c.socket, received: () => c.received().toString(), closed: c.closed };
}

describe('disconnectHost hangs up an outside client (core/chardev hangUp)', () => {
  it('the client sees the close, the port flips, events come, a second client connects', async () => {
    r = await rig();
    const lab = r;
    const port = await plugOnNewChardev(lab, { name: 'outside', chardev: 'out' });
    const ref = { device: 'vser0', nr: port.nr };
    const state = async (): Promise<PortSnapshot> =>
      (await lab.topology()).ports.find((p) => p.nr === port.nr)!;
    const where = (await lab.topology()).chardevs.find((c) => c.id === 'out')!.path!;
    expect(where.startsWith('/')).toBe(true);

    // Nobody there yet: refused with the reason.
    const none = await lab.run({ cmd: 'disconnectHost', port: ref });
    expect(none).toEqual({
      ok: false,
      error: { kind: 'Refused', message: "nobody is connected to chardev 'out'" },
    });

    const first = await client(where);
    await until(async () => (await state()).hostConnected || undefined);
    expect((await state()).hostApp).toBe('socket client');
    // The guest has not opened the port: these bytes wait in the backend (D6).
    first.socket.write('for nobody');
    // ...held in the backend, the positive sign that they arrived (10 bytes).
    await until(() => {
      const backend = lab.service.session.machine.backend('out');
      return (backend instanceof BackendEndpoint && backend.pendingToGuest === 10) || undefined;
    });

    const answer = await lab.run({ cmd: 'disconnectHost', port: ref });
    expect(answer.ok).toBe(true);
    await until(first.closed);
    await until(async () => !(await state()).hostConnected || undefined);
    expect((await state()).hostApp).toBe(null);
    const hostClose = await lab.waitEvent((e) => e.kind === 'host-close' && e.nr === port.nr);
    expect(hostClose.text).toBe('outside: host disconnected');
    const note = await lab.waitEvent(
      (e) => e.kind === 'note' && e.text.startsWith('chardev out: hung up the host peer'),
    );
    expect(note.text).toContain(where);
    const drop = await lab.waitEvent((e) => e.kind === 'drop' && e.nr === port.nr);
    expect(drop).toMatchObject({ bytes: 10, direction: 'host-to-guest' });
    expect(drop.text).toBe('outside: 10 bytes dropped by the backend (host-hung-up)');
    // the port's count is the lab's ledger: the backend's drop is the port's too (issue 13 item 14)
    expect((await state()).dropped).toBe(10);

    // The socket still listens: a second client is the host application now.
    const second = await client(where);
    await until(async () => (await state()).hostConnected || undefined);
    expect(second.closed()).toBe(false);
    await lab.waitEvent(
      (e) =>
        e.kind === 'host-open' &&
        e.nr === port.nr &&
        lab.events.indexOf(e) > lab.events.indexOf(hostClose),
    );
    // ... and carries bytes: the guest's side writes, the second client reads.
    expect(
      await lab.must({ cmd: 'writeGuest', port: ref, data: 'to the second client\n' }),
    ).toEqual({ written: 21 });
    await until(() => second.received() === 'to the second client\n' || undefined);
    expect(first.received()).toBe('');
  });

  it('refuses a backend that has no peer connection, with the reason', async () => {
    r = await rig();
    const port = await plugOnNewChardev(r, { name: 'ring', chardev: 'rb', backend: 'ringbuf' });
    const answer = await r.run({ cmd: 'disconnectHost', port: { device: 'vser0', nr: port.nr } });
    expect(answer.ok).toBe(false);
    if (!answer.ok) expect(answer.error.kind).toBe('Refused');
  });
});
