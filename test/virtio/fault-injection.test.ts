/**
 * Faults on purpose (core/virtio/fault-injection.ts): each chain written into
 * a live ring is the next thing the device walks, and the device refuses it
 * with the rule it was written to break (M2, M3, M4, M5, M8), in both ring
 * formats; where a chain cannot be written, a named refusal says why.
 */
import { describe, expect, it } from 'vitest';
import { GuestAllocator } from '../../core/virtio/allocator.js';
import { isFault, type VirtioFault } from '../../core/virtio/fault.js';
import {
  INJECTABLE_RULE_IDS,
  InjectionRefused,
  injectChain,
  type InjectableRule,
} from '../../core/virtio/fault-injection.js';
import { GuestMemory } from '../../core/virtio/memory.js';
import {
  PackedDeviceQueue,
  PackedDriverQueue,
  layoutPackedQueue,
} from '../../core/virtio/packed-queue.js';
import { buffer, makeRig, must } from './split-helpers.js';

function packedRig() {
  const memory = GuestMemory.linear(1 << 20);
  const allocator = new GuestAllocator(memory);
  const ok = <T>(v: T | VirtioFault): T => {
    if (isFault(v)) throw new Error(v.toString());
    return v;
  };
  const layout = ok(layoutPackedQueue(memory, allocator, 8));
  const options = {
    index: 3,
    layout,
    features: { indirect: true, eventIdx: false, inOrder: false },
  };
  const device = ok(PackedDeviceQueue.create(options, memory));
  const driver = ok(PackedDriverQueue.create<number>(options, memory, allocator));
  return { memory, allocator, device, driver };
}

describe('faults on purpose, written where the device walks next', () => {
  it.each(INJECTABLE_RULE_IDS)(
    'split ring: an injected %s chain is refused with that rule',
    (rule) => {
      const rig = makeRig({ indirect: true });
      // a chain the guest still owns, which the injection must not touch
      must(rig.driver.add([buffer(rig, new Uint8Array([1, 2, 3]))], [], 7));
      must(rig.driver.kickPrepare());
      const owned = rig.device.pop();
      expect(owned).not.toBeNull();
      expect(isFault(owned)).toBe(false);
      const written = injectChain(rig.memory, rig.device.snapshot(), rule);
      if (isFault(written) || written instanceof InjectionRefused) throw new Error(written.message);
      expect(written.text).toMatch(/published in avail slot 1/);
      const popped = rig.device.pop();
      expect(isFault(popped)).toBe(true);
      expect((popped as VirtioFault).rule).toBe(rule);
    },
  );

  const packedRules = INJECTABLE_RULE_IDS.filter(
    (r): r is Exclude<InjectableRule, 'M3'> => r !== 'M3',
  );
  it.each(packedRules)('packed ring: an injected %s chain is refused with that rule', (rule) => {
    const rig = packedRig();
    const written = injectChain(rig.memory, rig.device.snapshot(), rule);
    if (isFault(written) || written instanceof InjectionRefused) throw new Error(written.message);
    expect(written.text).toMatch(/made available with AVAIL=1 USED=0/);
    const popped = rig.device.pop();
    expect(isFault(popped)).toBe(true);
    expect((popped as VirtioFault).rule).toBe(rule);
  });

  it('a loop (M3) cannot be written into a packed ring: a named refusal, nothing written', () => {
    const rig = packedRig();
    const written = injectChain(rig.memory, rig.device.snapshot(), 'M3');
    expect(written).toBeInstanceOf(InjectionRefused);
    expect(written).toMatchObject({ kind: 'NoLoopInPackedRing', domain: 'virtio' });
    expect(rig.device.pop()).toBeNull();
  });

  it('a split ring whose every descriptor is posted refuses, naming the queue', () => {
    const rig = makeRig({ size: 4 });
    for (let i = 0; i < 4; i++) must(rig.driver.add([], [buffer(rig, 16)], i));
    const written = injectChain(rig.memory, rig.device.snapshot(), 'M2');
    expect(written).toBeInstanceOf(InjectionRefused);
    expect(written).toMatchObject({ kind: 'NoFreeDescriptor' });
    expect((written as InjectionRefused).message).toContain(
      'every descriptor of queue 1 is in use',
    );
  });
});
