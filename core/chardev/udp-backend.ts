/**
 * udp: datagrams to a remote host:port, from localaddr:localport.
 *
 * As QEMU's char-udp.c: every write() is sent as one datagram (split at
 * 65507 bytes, the largest a UDP/IPv4 datagram holds), every datagram
 * received is one chunk for the guest, and the chardev is never opened
 * (be_opened = false): a virtserialport on it never sees the host connect,
 * so the guest's output reaches it only from ports that write regardless
 * (consoles), exactly as under QEMU. Host -> guest flows all the same.
 *
 * UDP has no flow control: received datagrams wait in the bounded queue,
 * and one that finds it full is dropped and counted ('overflow'), where
 * QEMU leaves it in the kernel until that drops it. Sends in flight are
 * bounded by a small high-water mark (backpressure); a send the OS refuses
 * (port unreachable) is counted as 'send-failed'. With no localaddr the
 * socket binds to loopback when the remote is loopback and to the
 * unspecified address otherwise; QEMU lets the kernel choose. QEMU reads
 * into a 4096-byte buffer and truncates larger datagrams; vmchan does not.
 */
import { udpPortProblem } from './udp-port.js';
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import net from 'node:net';
import type { UdpBackend } from './kinds/udp.js';
import { BackendEndpoint, type BackendOptions } from './backend-endpoint.js';
import { chardevError, describeSystemError, type ChardevError } from './chardev-error.js';

export type UdpSpec = UdpBackend;

const MAX_DATAGRAM = 65507;
const SEND_HIGH_WATER = 64 * 1024;

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

export class UdpChardev extends BackendEndpoint {
  readonly kind = 'udp' as const;
  private readonly socket: dgram.Socket;
  private inFlight = 0;
  /** Where datagrams come from (the bound local address). */
  readonly local: { address: string; port: number };
  readonly remote: { address: string; port: number };

  private constructor(
    options: BackendOptions,
    socket: dgram.Socket,
    local: { address: string; port: number },
    remote: { address: string; port: number },
  ) {
    super(options);
    this.socket = socket;
    this.local = local;
    this.remote = remote;
    socket.on('message', (msg) => {
      if (this.inboundFull()) this.countDrop('overflow', msg.length, 'to-guest');
      else this.hostBytes(msg);
    });
    this.watchErrors(socket, 'udp socket error');
    this.channelOpen();
  }

  static async open(spec: UdpSpec, options: BackendOptions): Promise<UdpChardev | ChardevError> {
    const id = options.id;
    // Checked here too: an unchecked port makes dgram throw from inside a callback,
    // which would end the process (issue 13 item 5).
    const problem =
      udpPortProblem(spec.port, 'remote') ?? udpPortProblem(spec.localport ?? '0', 'local');
    if (problem !== null) return chardevError('Unsupported', problem, id);
    const remotePort = Number(spec.port);
    const localPort = Number(spec.localport ?? '0');
    let remoteAddress: string;
    try {
      const host = spec.host === '' ? 'localhost' : spec.host;
      remoteAddress = net.isIP(host) !== 0 ? host : (await dns.lookup(host)).address;
    } catch (error) {
      return chardevError(
        'ConnectFailed',
        `address resolution failed for ${spec.host}:${spec.port}: ${describeSystemError(error)}`,
        id,
      );
    }
    const v6 = net.isIPv6(remoteAddress);
    const localAddress =
      spec.localaddr !== undefined && spec.localaddr !== ''
        ? spec.localaddr
        : isLoopback(remoteAddress)
          ? remoteAddress
          : undefined;
    const socket = dgram.createSocket(v6 ? 'udp6' : 'udp4');
    const failed = await new Promise<Error | null>((resolve) => {
      socket.once('error', resolve);
      socket.bind({ port: localPort, address: localAddress }, () => {
        try {
          socket.connect(remotePort, remoteAddress, () => {
            socket.off('error', resolve);
            resolve(null);
          });
        } catch (error) {
          resolve(error as Error);
        }
      });
    });
    if (failed !== null) {
      socket.close();
      return chardevError(
        'ConnectFailed',
        `Failed to set up udp socket: ${describeSystemError(failed)}`,
        id,
      );
    }
    const bound = socket.address();
    return new UdpChardev(
      options,
      socket,
      { address: bound.address, port: bound.port },
      { address: remoteAddress, port: remotePort },
    );
  }

  describe(): string {
    return 'udp';
  }

  override get queuedToHost(): number {
    return this.inFlight;
  }

  protected transmit(bytes: Uint8Array): number {
    const room = SEND_HIGH_WATER - this.inFlight;
    if (room <= 0) return 0;
    const n = Math.min(bytes.length, room, MAX_DATAGRAM);
    const datagram = Buffer.from(bytes.subarray(0, n)); // copies: the caller's view may change
    this.inFlight += n;
    this.socket.send(datagram, (error) => {
      this.inFlight -= n;
      if (error !== null && error !== undefined) this.sendFailed(n);
      this.writable();
    });
    return n;
  }

  protected override canTransmit(): boolean {
    return this.inFlight < SEND_HIGH_WATER;
  }

  protected teardown(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
