/**
 * Issue 14 in the app: what the timeline shows.
 *
 * - D10 (item 1): "add a port, Send as guest, then Unplug" used to put the
 *   device in NEEDS_RESET ("(M11) unexpected port id"). The guest terminal's
 *   close races the unplug, so the device gets PORT_OPEN 0 for a port it no
 *   longer has; QEMU 7.2 (virtio-serial-bus.c handle_control_message)
 *   prints "virtio-serial-bus: Unexpected port id %u for device %s" and
 *   carries on, and so does the lab: an error line in QEMU's words, the
 *   device still running.
 * - H4 (item 6): a unix host that hangs up with bytes QEMU had not read
 *   (the port closed) shows "QEMU discarded N unread bytes when the host
 *   hung up" (char-socket.c tcp_chr_hup).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PortSnapshot } from '../../core/api/contract/contract.js';
import { plugOnNewChardev, rig, socketClient, until, type Rig } from './helpers.js';

let r: Rig | null = null;
afterEach(async () => {
  await r?.close();
  r = null;
});

describe('issue 14 in the timeline', () => {
  it('D10 Send as guest, then Unplug: QEMU error line, the device keeps running', async () => {
    r = await rig();
    const port = await plugOnNewChardev(r, { name: 'p.send', chardev: 'c-send' });
    const ref = { device: 'vser0', nr: port.nr };
    await until(async () => (await r!.topology()).ports.find((p) => p.nr === port.nr)?.guestName);
    await r.run({ cmd: 'writeGuest', port: ref, data: 'hello' });
    await r.must({ cmd: 'unplugPort', port: ref });
    const line = await r.waitEvent((e) => e.kind === 'error' && e.rule === 'M11');
    expect(line.text).toBe(
      `vser0: virtio-serial-bus: Unexpected port id ${port.nr} for device vser0.0 (ignored, as QEMU does)`,
    );
    const t = await r.topology();
    expect(t.devices.map((d) => [d.name, d.state])).toEqual([['vser0', 'running']]);
    expect(r.events.some((e) => e.kind === 'needs-reset')).toBe(false);
    // The device still serves: a new port works.
    const again = await r.must<PortSnapshot>({
      cmd: 'hotplugPort',
      port: {
        driver: 'virtserialport',
        name: 'p.again',
        newChardev: { id: 'c-again', backend: { kind: 'unix' } },
      },
    });
    await until(async () => (await r!.topology()).ports.find((p) => p.nr === again.nr)?.guestName);
  });

  it('H4 a host hanging up with unread bytes: "QEMU discarded N unread bytes when the host hung up"', async () => {
    r = await rig();
    await plugOnNewChardev(r, { name: 'p.hup', chardev: 'c-hup' });
    const chardev = (await r.topology()).chardevs.find((c) => c.id === 'c-hup')!;
    const host = await socketClient(chardev.path!);
    await until(
      async () => (await r!.topology()).ports.find((p) => p.name === 'p.hup')?.hostConnected,
    );
    host.socket.write('1234567');
    host.close();
    const line = await r.waitEvent((e) => e.kind === 'drop' && e.text.includes('QEMU discarded'));
    expect(line.text).toMatch(/: QEMU discarded 7 unread bytes when the host hung up$/);
    expect(line.bytes).toBe(7);
    expect(line.direction).toBe('host-to-guest');
  });
});
