/**
 * Issue 14 item 4: telnet=on as QEMU 7.2 does it (chardev/char-socket.c):
 * every new connection first gets IAC WILL ECHO, IAC WILL SGA, IAC WILL
 * BINARY, IAC DO BINARY (tcp_chr_telnet_init), and the client's commands
 * are stripped from what the guest reads (tcp_chr_process_IAC_bytes): IAC
 * IAC is one 0xff, IAC BREAK two bytes, any other command three bytes. The
 * first 12 bytes are also compared with a real QEMU's.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SocketChardev, type OpenChardev } from '../../core/chardev/index.js';
import { TELNET_INIT, TelnetFilter } from '../../core/chardev/telnet.js';
import { as, lab, spec, TestFrontend, waitFor } from './helpers.js';
import { describeRealGuest, poller, requirePrerequisites } from '../qemu/real-guest.js';

const opened: OpenChardev[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

/** Connect and collect what the server sends. */
async function client(port: number): Promise<{ s: net.Socket; got: () => Buffer }> {
  const chunks: Buffer[] = [];
  const s = net.createConnection({ host: '127.0.0.1', port });
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return { s, got: () => Buffer.concat(chunks) };
}

describe('H1 telnet=on (QEMU char-socket.c telnet handling)', () => {
  it('H1 sends QEMU initial negotiation, then carries data with IAC commands stripped', async () => {
    const { open } = lab();
    const c = as(
      await open(
        spec('t', {
          kind: 'socket',
          address: { type: 'tcp', host: '127.0.0.1', port: '0' },
          server: true,
          wait: false,
          nodelay: false,
          telnet: true,
        }),
      ),
      SocketChardev,
    );
    opened.push(c);
    const fe = new TestFrontend();
    c.attach(fe);
    const { s, got } = await client(Number(c.listeningOn!.type === 'tcp' && c.listeningOn!.port));
    await waitFor(() => got().length >= 12, 'the telnet negotiation');
    expect([...got()]).toEqual([...TELNET_INIT]);
    expect(c.describe()).toMatch(/^telnet:127\.0\.0\.1:\d+,server=on <-> 127\.0\.0\.1:\d+$/);

    // IAC DO ECHO (3 bytes), IAC IAC (a 0xff), IAC BREAK (2 bytes), then data.
    s.write(Buffer.from([0xff, 0xfd, 0x01, 0x61, 0xff, 0xff, 0x62, 0xff, 0xf3, 0x63]));
    await waitFor(() => fe.received === 4, 'four data bytes');
    expect([...Buffer.concat(fe.chunks)]).toEqual([0x61, 0xff, 0x62, 0x63]);
    // What the guest writes goes out as it is (QEMU does not double 0xff).
    c.write(Uint8Array.of(0xff, 0x0a));
    await waitFor(() => got().length === 14, 'the guest bytes');
    expect([...got().subarray(12)]).toEqual([0xff, 0x0a]);
    s.destroy();
  });

  it('H1 a two-byte command such as IAC NOP takes a third byte with it, as in QEMU', () => {
    // tcp_chr_process_IAC_bytes counts every command but IAC and BREAK as three bytes.
    const f = new TelnetFilter();
    expect([...f.filter(Uint8Array.of(0xff, 0xf1, 0x78, 0x79))]).toEqual([0x79]);
    // ... and the state carries across reads.
    expect([...f.filter(Uint8Array.of(0x41, 0xff))]).toEqual([0x41]);
    expect([...f.filter(Uint8Array.of(0xff, 0x42))]).toEqual([0xff, 0x42]);
    expect(f.removed).toBe(4);
  });
});

describeRealGuest('H1 telnet=on against a real QEMU 7.2', 'telnet vs QEMU', () => {
  it('H1 QEMU sends the same 12 bytes first', async () => {
    requirePrerequisites('the telnet comparison');
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise<void>((r) => free.close(() => r()));
    const qemu = spawn(
      'qemu-system-x86_64',
      ['-M', 'none', '-display', 'none', '-nodefaults', '-S', '-chardev',
        `socket,id=t,host=127.0.0.1,port=${port},server=on,wait=off,telnet=on`],
      { stdio: 'ignore' },
    ); // prettier-ignore
    try {
      const c = await poller(20_000, 100)(
        'QEMU listening',
        () => client(port).catch(() => null),
        (v) => v !== null,
      );
      if (c === null) throw new Error('QEMU never listened');
      await waitFor(() => c.got().length >= 12, "QEMU's negotiation", 10_000);
      expect([...c.got()]).toEqual([...TELNET_INIT]);
      c.s.destroy();
    } finally {
      qemu.kill('SIGKILL');
    }
  }, 60_000);
});
