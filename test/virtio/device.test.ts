/**
 * The generic virtio device and its transport: negotiation (G1, G4), the
 * DRIVER_OK gate (G2), the first-fault rule (G3), queue notifications (M13)
 * and configuration bounds (M14). A tiny echo device stands in for a real
 * one; the console device is used where its queue layout matters.
 */
import { describe, expect, it } from 'vitest';
import { Emitter } from '../../core/base/emitter.js';
import type { EngineEvents } from '../../core/serial/events.js';
import { Scheduler } from '../../core/engine/scheduler.js';
import { SerialRegistry } from '../../core/serial/registry.js';
import { negotiate, setupQueue, type Negotiated } from '../../core/serial/guest/virtio-driver.js';
import { GuestAllocator } from '../../core/virtio/allocator.js';
import { scatter } from '../../core/virtio/chain.js';
import { VirtioDevice, type PostTask } from '../../core/virtio/device.js';
import type { Interrupt } from '../../core/virtio/device-transport.js';
import { isFault, VirtioFault } from '../../core/virtio/fault.js';
import { bit, checkDependencies, Feature, featureBits, has } from '../../core/virtio/features.js';
import { GuestMemory } from '../../core/virtio/memory.js';
import type { DriverQueue } from '../../core/virtio/queue.js';
import { Status } from '../../core/virtio/status.js';

/** Two queues; each chain popped from a queue is filled with 0xab and used. */
class EchoDevice extends VirtioDevice {
  constructor(
    memory: GuestMemory,
    post: PostTask,
    private readonly offer: bigint,
  ) {
    super({ deviceId: 0x42, name: 'echo0', memory, post });
  }
  protected offeredFeatures(): bigint {
    return this.offer;
  }
  protected queueCount(): number {
    return 2;
  }
  protected queueSizeMax(): number {
    return 8;
  }
  protected configSpace(): Uint8Array {
    return Uint8Array.of(1, 2, 3, 4);
  }
  protected processQueue(queue: number): boolean {
    const chain = this.pop(queue);
    if (chain === null) return false;
    const fill = new Uint8Array(chain.writableLength).fill(0xab);
    const n = scatter(this.memory, chain.writable, 0, fill);
    if (isFault(n)) return false;
    this.push(queue, chain, n);
    this.signalQueue(queue);
    return true;
  }
  /** For G3 tests: a device-detected error. */
  breakWith(problem: VirtioFault): void {
    this.fail(problem);
  }
}

const MODERN =
  bit(Feature.VERSION_1) | bit(Feature.RING_EVENT_IDX) | bit(Feature.RING_INDIRECT_DESC);

function rig(offer = MODERN | bit(Feature.RING_PACKED)) {
  const memory = GuestMemory.linear(1 << 20);
  const allocator = new GuestAllocator(memory);
  const scheduler = new Scheduler();
  const device = new EchoDevice(memory, scheduler.post, offer);
  const interrupts: Interrupt[] = [];
  device.setInterruptHandler((irq) => interrupts.push(irq));
  const setup = (wanted: bigint): { neg: Negotiated; q: DriverQueue<number> } => {
    const neg = negotiate(device, wanted);
    if (isFault(neg)) throw new Error(neg.toString());
    const q = setupQueue<number>(device, 0, neg, memory, allocator, null);
    if (isFault(q)) throw new Error(q.toString());
    return { neg, q };
  };
  const postBuffer = (q: DriverQueue<number>, token: number): void => {
    const addr = allocator.alloc(64) as number;
    q.add([], [{ addr, len: 64 }], token);
    if (q.kickPrepare() === true) device.notify(0);
  };
  return { memory, allocator, scheduler, device, interrupts, setup, postBuffer };
}

describe('virtio device: features (G1, G4)', () => {
  it('G1 feature bits have the numbers the spec gives', () => {
    expect(Feature.RING_INDIRECT_DESC).toBe(28);
    expect(Feature.RING_EVENT_IDX).toBe(29);
    expect(Feature.VERSION_1).toBe(32);
    expect(Feature.RING_PACKED).toBe(34);
    expect(Feature.IN_ORDER).toBe(35);
  });

  it('G1 the negotiated RING_PACKED decides the ring format of every queue', () => {
    for (const packed of [false, true]) {
      const r = rig();
      r.setup(MODERN | (packed ? bit(Feature.RING_PACKED) : 0n));
      expect(r.device.queueSnapshot(0)?.format).toBe(packed ? 'packed' : 'split');
    }
  });

  it('G1 the console device offers what QEMU 7.2 offers, RING_PACKED only when asked', () => {
    const memory = GuestMemory.linear(1 << 20);
    const reg = new SerialRegistry({
      memory,
      post: new Scheduler().post,
      events: new Emitter<EngineEvents>(),
      findChardev: () => undefined,
    });
    const plain = reg.addDevice({ id: 'a' });
    const packed = reg.addDevice({ id: 'b', packed: true });
    if (!(plain instanceof VirtioDevice) || !(packed instanceof VirtioDevice))
      throw new Error('setup');
    const bits = featureBits(plain.readDeviceFeatures());
    expect(bits).toEqual([1, 2, 24, 27, 28, 29, 32]);
    expect(has(packed.readDeviceFeatures(), Feature.RING_PACKED)).toBe(true);
  });

  it('G4 the device never offers a feature without the features it depends on', () => {
    for (const offer of [MODERN, MODERN | bit(Feature.RING_PACKED) | bit(Feature.IN_ORDER)]) {
      expect(checkDependencies(rig(offer).device.readDeviceFeatures())).toBe(null);
    }
  });

  it('G4 any valid subset of the offer is accepted (FEATURES_OK stays set)', () => {
    const optional = [Feature.RING_EVENT_IDX, Feature.RING_INDIRECT_DESC, Feature.RING_PACKED];
    for (let mask = 0; mask < 1 << optional.length; mask++) {
      let wanted = bit(Feature.VERSION_1);
      optional.forEach((b, i) => {
        if (mask & (1 << i)) wanted |= bit(b);
      });
      const { device } = rig();
      const neg = negotiate(device, wanted);
      expect(isFault(neg)).toBe(false);
      expect(device.readStatus() & Status.FEATURES_OK).toBe(Status.FEATURES_OK);
      expect(device.negotiatedFeatures).toBe(wanted);
    }
  });

  it('G4 an invalid set is refused: FEATURES_OK reads back clear and the reason is kept', () => {
    const cases: [string, bigint][] = [
      ['a feature that was not offered', MODERN | bit(Feature.IN_ORDER)],
      ['no VERSION_1 (legacy is not offered)', bit(Feature.RING_EVENT_IDX)],
      ['RING_PACKED without VERSION_1', bit(Feature.RING_PACKED)],
    ];
    for (const [, accepted] of cases) {
      const { device } = rig();
      device.writeStatus(Status.ACKNOWLEDGE | Status.DRIVER);
      device.writeDriverFeatures(accepted);
      device.writeStatus(Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
      expect(device.readStatus() & Status.FEATURES_OK).toBe(0);
      expect(device.featureRefusal?.rule).toBe('G4');
      expect(device.negotiatedFeatures).toBe(0n);
      expect(device.fault).toBe(null); // a refusal is not a device error
    }
  });

  it('G4 driver features written after FEATURES_OK change nothing', () => {
    const { device, setup } = rig();
    setup(MODERN);
    device.writeDriverFeatures(MODERN | bit(Feature.RING_PACKED));
    expect(device.readDriverFeatures()).toBe(MODERN);
    expect(device.negotiatedFeatures).toBe(MODERN);
  });

  it('G4 DRIVER_OK before feature negotiation completed is a driver error (NEEDS_RESET)', () => {
    const { device } = rig();
    device.writeStatus(Status.ACKNOWLEDGE | Status.DRIVER | Status.DRIVER_OK);
    expect(device.readStatus() & Status.DEVICE_NEEDS_RESET).toBeTruthy();
    expect(device.readStatus() & Status.DRIVER_OK).toBe(0);
    expect(device.fault?.kind).toBe('InvalidStatusTransition');
  });
});

describe('virtio device: the DRIVER_OK gate (G2)', () => {
  it('G2 a kick before DRIVER_OK consumes nothing and interrupts nobody; DRIVER_OK serves it', async () => {
    const { device, scheduler, interrupts, setup, postBuffer } = rig();
    const { q } = setup(MODERN);
    postBuffer(q, 1);
    await scheduler.settle();
    expect(device.queueStatus(0)?.lastAvailIdx).toBe(0);
    expect(q.getUsed()).toBe(null);
    expect(interrupts).toEqual([]);
    device.writeStatus(device.readStatus() | Status.DRIVER_OK);
    await scheduler.settle();
    const used = q.getUsed();
    expect(used).toEqual({ token: 1, len: 64 });
    expect(interrupts).toEqual([{ kind: 'queue', queue: 0 }]);
  });

  it('G2 no configuration-change interrupt before DRIVER_OK, one after', async () => {
    const memory = GuestMemory.linear(4 << 20);
    const scheduler = new Scheduler();
    const reg = new SerialRegistry({
      memory,
      post: scheduler.post,
      events: new Emitter<EngineEvents>(),
      findChardev: () => undefined,
    });
    const device = reg.addDevice({ id: 'vser0' });
    if (!(device instanceof VirtioDevice)) throw new Error('setup');
    const irqs: Interrupt[] = [];
    device.setInterruptHandler((i) => irqs.push(i));
    reg.addPort({ driver: 'virtserialport', bus: 'vser0.0' }, true);
    expect(irqs).toEqual([]);
    const neg = negotiate(device, device.readDeviceFeatures());
    if (isFault(neg)) throw new Error(neg.toString());
    device.writeStatus(device.readStatus() | Status.DRIVER_OK);
    reg.addPort({ driver: 'virtserialport', bus: 'vser0.0' }, true);
    expect(irqs).toEqual([{ kind: 'config' }]);
    expect(device.readConfigGeneration()).toBe(2);
  });
});

describe('virtio device: errors (G3, M13, M14)', () => {
  it('G3 the first fault sets NEEDS_RESET, interrupts with a config change, and stops the device', async () => {
    const { device, scheduler, interrupts, setup, postBuffer } = rig();
    const { q } = setup(MODERN);
    device.writeStatus(device.readStatus() | Status.DRIVER_OK);
    device.notify(7); // M13
    expect(device.readStatus() & Status.DEVICE_NEEDS_RESET).toBe(Status.DEVICE_NEEDS_RESET);
    expect(device.fault?.rule).toBe('M13');
    expect(interrupts).toEqual([{ kind: 'config' }]);
    expect(device.readIsr()).toBe(2);
    // stopped: a valid kick is not served
    postBuffer(q, 1);
    await scheduler.settle();
    expect(q.getUsed()).toBe(null);
    // the first fault stays the cause
    device.breakWith(new VirtioFault('NoBuffers', 'M12', 'later'));
    expect(device.fault?.rule).toBe('M13');
    expect(interrupts).toHaveLength(1);
  });

  it('G3 before DRIVER_OK the device goes NEEDS_RESET without interrupting', () => {
    const { device, interrupts, setup } = rig();
    setup(MODERN);
    device.notify(9);
    expect(device.readStatus() & Status.DEVICE_NEEDS_RESET).toBeTruthy();
    expect(interrupts).toEqual([]);
  });

  it('G3 the driver cannot clear NEEDS_RESET; writing status 0 resets and the device works again', async () => {
    const { device, scheduler, setup, postBuffer } = rig();
    setup(MODERN);
    device.writeStatus(device.readStatus() | Status.DRIVER_OK);
    device.notify(5);
    device.writeStatus(Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK);
    expect(device.readStatus() & Status.DEVICE_NEEDS_RESET).toBeTruthy();
    device.writeStatus(0);
    expect(device.readStatus()).toBe(0);
    expect(device.fault).toBe(null);
    const { q } = setup(MODERN);
    device.writeStatus(device.readStatus() | Status.DRIVER_OK);
    postBuffer(q, 3);
    await scheduler.settle();
    expect(q.getUsed()).toEqual({ token: 3, len: 64 });
  });

  it('M13 a notification for a queue the console does not have is a fault (queues follow MULTIPORT)', () => {
    const memory = GuestMemory.linear(4 << 20);
    const reg = new SerialRegistry({
      memory,
      post: new Scheduler().post,
      events: new Emitter<EngineEvents>(),
      findChardev: () => undefined,
    });
    for (const multiport of [true, false]) {
      const device = reg.addDevice({ maxPorts: 4 });
      if (!(device instanceof VirtioDevice)) throw new Error('setup');
      const wanted =
        device.readDeviceFeatures() & ~(multiport ? 0n : bit(Feature.CONSOLE_F_MULTIPORT));
      negotiate(device, wanted);
      expect(device.numQueues).toBe(multiport ? 10 : 2);
      device.notify(multiport ? 10 : 2);
      expect(device.fault?.rule).toBe('M13');
      expect(device.fault?.queue).toBe(multiport ? 10 : 2);
    }
  });

  it('M14 configuration space access out of range is a fault, in range reads little endian', () => {
    const { device } = rig();
    expect(device.readConfig(0, 4)).toBe(0x04030201);
    expect(device.readConfig(2, 2)).toBe(0x0403);
    for (const [offset, width] of [
      [4, 1],
      [2, 4],
      [-1, 1],
      [0.5, 1],
    ] as const) {
      const { device: d } = rig();
      const r = d.readConfig(offset, width);
      expect(isFault(r) && r.rule).toBe('M14');
      expect(d.readStatus() & Status.DEVICE_NEEDS_RESET).toBeTruthy();
    }
    const { device: d2 } = rig();
    expect(d2.writeConfig(3, 2, 0)?.rule).toBe('M14');
    const { device: d3 } = rig();
    expect(isFault(d3.readConfig(0, 3 as 4))).toBe(true);
  });

  it('M14 the console config space is 12 bytes with EMERG_WRITE and 8 without', () => {
    const memory = GuestMemory.linear(1 << 20);
    const reg = new SerialRegistry({
      memory,
      post: new Scheduler().post,
      events: new Emitter<EngineEvents>(),
      findChardev: () => undefined,
    });
    const withEmerg = reg.addDevice({ id: 'e1' });
    const without = reg.addDevice({ id: 'e2', emergencyWrite: false });
    if (!(withEmerg instanceof VirtioDevice) || !(without instanceof VirtioDevice)) {
      throw new Error('setup');
    }
    expect(withEmerg.readConfig(8, 4)).toBe(0);
    expect(withEmerg.fault).toBe(null);
    const r = without.readConfig(8, 4);
    expect(isFault(r) && r.rule).toBe('M14');
    expect(without.readConfig(4, 4)).toBe(31); // max_nr_ports is still readable
  });
});
