/**
 * Rigs for the serial tests: a Lab from a topology (the Linux-like guest
 * included), and a RawDriver that drives a virtio-serial device by hand, for
 * the malformed input a real driver never sends.
 */
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { Emitter } from '../../core/base/emitter.js';
import type { EngineEvents } from '../../core/serial/events.js';
import { Lab, type Topology } from '../../core/engine/lab.js';
import { Scheduler } from '../../core/engine/scheduler.js';
import {
  BAD_PORT_ID,
  controlMessage,
  decodeControl,
  encodeControl,
  type ControlMessage,
} from '../../core/serial/control.js';
import type { VirtioSerialDevice } from '../../core/serial/device.js';
import { MemoryEndpoint } from '../../core/serial/memory-endpoint.js';
import { isErrno, type Errno } from '../../core/serial/guest/errno.js';
import type { GuestFiles } from '../../core/serial/guest/files.js';
import { negotiate, setupQueue, type Negotiated } from '../../core/serial/guest/virtio-driver.js';
import type { QemuError } from '../../core/base/qemu-error.js';
import { isQemuError } from '../../core/base/qemu-error.js';
import {
  SerialRegistry,
  type PortAddArgs,
  type SerialDeviceConfig,
} from '../../core/serial/registry.js';
import { GuestAllocator } from '../../core/virtio/allocator.js';
import type { Interrupt } from '../../core/virtio/device-transport.js';
import { isFault, VirtioFault } from '../../core/virtio/fault.js';
import { GuestMemory } from '../../core/virtio/memory.js';
import type { DriverQueue } from '../../core/virtio/queue.js';
import { Status } from '../../core/virtio/status.js';

export const RINGS = ['split', 'packed'] as const;

/** The case study's topology: one device, console.0, test1 and test2 on unix-socket-like chardevs. */
export function caseStudy(ring: 'split' | 'packed' = 'split'): Topology {
  return {
    ring,
    devices: [
      {
        id: 'vser0',
        ports: [
          { driver: 'virtconsole', name: 'console.0', chardev: 'test0' },
          { driver: 'virtserialport', name: 'test1', chardev: 'test1' },
          { driver: 'virtserialport', name: 'test2', chardev: 'test2' },
        ],
      },
    ],
  };
}

/** Unwrap a result that must not be an error value. */
export function must<T>(value: T | Errno | QemuError | VirtioFault): T {
  if (isErrno(value) || isQemuError(value) || value instanceof VirtioFault) {
    throw new Error(`unexpected error value: ${value.toString()}`);
  }
  return value;
}

export function makeLab(topology: Topology): Lab {
  return must(Lab.create(topology));
}

export async function bootLab(topology: Topology): Promise<Lab> {
  const lab = makeLab(topology);
  const problem = await lab.boot();
  expect(problem).toBe(null);
  return lab;
}

/** Everything of one event type from now on. */
export function record<K extends keyof EngineEvents>(
  events: Emitter<EngineEvents>,
  type: K,
): EngineEvents[K][] {
  const out: EngineEvents[K][] = [];
  events.on(type, (e) => out.push(e));
  return out;
}

/** Control message texts in one direction, e.g. `PORT_OPEN id=1 value=1`. */
export function controlTexts(
  events: Emitter<EngineEvents>,
  direction: 'to-guest' | 'to-device',
): string[] {
  const out: string[] = [];
  events.on('control', (e) => {
    if (e.direction === direction) out.push(e.text);
  });
  return out;
}

export function text(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('utf8');
}

export function sha1(...parts: Uint8Array[]): string {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** read(2) until `n` bytes came (or EOF / an error). */
export async function readExactly(files: GuestFiles, fd: number, n: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  while (got < n) {
    const r = must(await files.read(fd, n - got));
    if (r.length === 0) break;
    chunks.push(r);
    got += r.length;
  }
  return Buffer.concat(chunks);
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function pattern(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

// -------------------------------------------------------------- RawDriver

export interface RawDriverOptions {
  device?: SerialDeviceConfig;
  /** In-memory chardevs for the ports (`connected`: a host peer is there from the start). */
  chardevs?: { id: string; connected?: boolean; capacity?: number }[];
  ports?: Omit<PortAddArgs, 'bus'>[];
  /** Features to accept (default: everything offered). */
  accept?: (offered: bigint) => bigint;
  /** Set DRIVER_OK at once (default true). */
  driverOk?: boolean;
}

/**
 * Drives a virtio-serial device by hand: negotiation, queues on demand, raw
 * buffers in and out. Nothing checks what it sends.
 */
export class RawDriver {
  readonly interrupts: Interrupt[] = [];
  private readonly queues = new Map<number, DriverQueue<number>>();
  private nextToken = 1;
  readonly endpoints = new Map<string, MemoryEndpoint>();
  readonly buffers = new Map<number, { addr: number; len: number }>();
  neg!: Negotiated;

  constructor(
    readonly device: VirtioSerialDevice,
    readonly memory: GuestMemory,
    readonly allocator: GuestAllocator,
    readonly scheduler: Scheduler | null,
    readonly events: Emitter<EngineEvents>,
    readonly registry: SerialRegistry | null,
  ) {
    device.setInterruptHandler((irq) => this.interrupts.push(irq));
  }

  /** A device of its own, on its own scheduler. */
  static create(options: RawDriverOptions = {}): RawDriver {
    const memory = GuestMemory.linear(16 << 20);
    const allocator = new GuestAllocator(memory);
    const scheduler = new Scheduler();
    const events = new Emitter<EngineEvents>();
    const endpoints = new Map<string, MemoryEndpoint>();
    for (const c of options.chardevs ?? []) {
      endpoints.set(c.id, new MemoryEndpoint({ ...c, post: scheduler.post }));
    }
    const registry = new SerialRegistry({
      memory,
      post: scheduler.post,
      events,
      findChardev: (id) => endpoints.get(id),
    });
    const device = must(registry.addDevice({ id: 'vser0', ...options.device }));
    for (const p of options.ports ?? []) must(registry.addPort({ ...p, bus: device.bus }));
    const raw = new RawDriver(device, memory, allocator, scheduler, events, registry);
    for (const [id, e] of endpoints) raw.endpoints.set(id, e);
    raw.negotiate(options.accept?.(device.readDeviceFeatures()) ?? device.readDeviceFeatures());
    if (options.driverOk ?? true) raw.driverOk();
    return raw;
  }

  /** Drive a device of a Lab (which the Lab's guest has not probed), sharing its memory. */
  static attach(device: VirtioSerialDevice, lab: Lab): RawDriver {
    const raw = new RawDriver(
      device,
      lab.memory,
      lab.allocator,
      lab.scheduler,
      lab.events,
      lab.registry,
    );
    raw.negotiate(device.readDeviceFeatures());
    raw.driverOk();
    return raw;
  }

  negotiate(wanted: bigint): void {
    this.neg = must(negotiate(this.device, wanted));
  }

  driverOk(): void {
    this.device.writeStatus(this.device.readStatus() | Status.DRIVER_OK);
  }

  get status(): number {
    return this.device.readStatus();
  }

  queue(index: number): DriverQueue<number> {
    let q = this.queues.get(index);
    if (q === undefined) {
      q = must(setupQueue<number>(this.device, index, this.neg, this.memory, this.allocator, null));
      this.queues.set(index, q);
    }
    return q;
  }

  /** Set up queues before DRIVER_OK (the normal order). */
  setup(...indices: number[]): void {
    for (const i of indices) this.queue(i);
  }

  /** Add a chain: readable buffers with content, then writable buffers of the given sizes. */
  add(index: number, readable: Uint8Array[], writable: number[], kick = true): number {
    const q = this.queue(index);
    const token = this.nextToken++;
    const rd = readable.map((bytes) => {
      const addr = must(this.allocator.alloc(Math.max(1, bytes.length)));
      this.memory.writeBytes(addr, bytes);
      return { addr, len: bytes.length };
    });
    const wr = writable.map((len) => ({ addr: must(this.allocator.alloc(Math.max(1, len))), len }));
    if (wr.length > 0) this.buffers.set(token, wr[0]!);
    must(q.add(rd, wr, token));
    if (kick) this.kick(index);
    return token;
  }

  kick(index: number): void {
    const r = this.queue(index).kickPrepare();
    if (r === true) this.device.notify(index);
  }

  /** Post `count` control receive buffers of `size` bytes. */
  postControlRx(count = 8, size = 4096): void {
    for (let i = 0; i < count; i++) this.add(2, [], [size]);
  }

  sendControl(msg: ControlMessage | Uint8Array): void {
    this.add(3, [msg instanceof Uint8Array ? msg : encodeControl(msg)], []);
  }

  sendEvent(id: number, event: number, value: number): void {
    this.sendControl(controlMessage(id, event, value));
  }

  deviceReady(): void {
    this.sendEvent(BAD_PORT_ID, 0, 1);
  }

  /** All used buffers of a queue so far, with their bytes (first writable buffer). */
  used(index: number): { token: number; len: number; bytes: Uint8Array }[] {
    const q = this.queue(index);
    const out: { token: number; len: number; bytes: Uint8Array }[] = [];
    for (;;) {
      const u = q.getUsed();
      if (isFault(u)) throw new Error(u.toString());
      if (u === null) return out;
      const buf = this.buffers.get(u.token);
      const bytes = buf
        ? must(this.memory.readBytes(buf.addr, Math.min(u.len, buf.len)))
        : new Uint8Array(0);
      out.push({ token: u.token, len: u.len, bytes });
    }
  }

  /** Control messages the device delivered so far, decoded. */
  controlReceived(): ControlMessage[] {
    return this.used(2).map((u) => {
      const m = decodeControl(u.bytes);
      if (isFault(m)) throw new Error(m.toString());
      return m;
    });
  }

  async settle(): Promise<void> {
    if (this.scheduler) await this.scheduler.settle();
  }

  get needsReset(): boolean {
    return (this.device.readStatus() & Status.DEVICE_NEEDS_RESET) !== 0;
  }
}
