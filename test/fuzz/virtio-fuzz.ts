/**
 * The virtio core under random abuse: a driver sets up a device the proper
 * way, posts valid chains, and then the fuzzer scribbles over descriptors,
 * rings, indices, event-suppression structures and addresses, kicks queues
 * that may not exist and pokes the configuration space. What must hold,
 * whatever it does:
 * - nothing escapes as an exception (from the device, the rings or memory);
 * - nothing hangs (a bounded number of device tasks per kick);
 * - nothing is read or written outside guest memory (GuestMemory refuses it
 *   and the refusal comes back as an M8 fault);
 * - every failure ends in DEVICE_NEEDS_RESET with a rule id (G3), and the
 *   device then stops touching its rings.
 *
 * Shared by the vitest property (test/fuzz/virtio-fuzz.test.ts) and
 * `npm run fuzz -- --runs N`.
 */
import fc from 'fast-check';
import { GuestAllocator } from '../../core/virtio/allocator.js';
import { gather, scatter, type DescriptorChain } from '../../core/virtio/chain.js';
import { allocateRings, createDriverQueue } from '../../core/virtio/device-rings.js';
import { VirtioDevice, type PostTask } from '../../core/virtio/device.js';
import { fault, isFault, type VirtioFault } from '../../core/virtio/fault.js';
import { Feature, featureSet } from '../../core/virtio/features.js';
import { GuestMemory } from '../../core/virtio/memory.js';
import type { DriverQueue, QueueFormat, QueueLayout } from '../../core/virtio/queue.js';
import { Status } from '../../core/virtio/status.js';

const RX = 0; // device writes into the driver's buffers
const TX = 1; // device reads the driver's buffers
const QUEUE_SIZE_MAX = 16;
const MEMORY_SIZE = 0x40000;

/** A two-queue device that moves bytes the way the console's port queues do. */
class FuzzDevice extends VirtioDevice {
  popped = 0;
  poppedAfterFault = 0;
  private readonly scratch = new Uint8Array(256);

  constructor(
    memory: GuestMemory,
    post: PostTask,
    private readonly offer: bigint,
  ) {
    super({ deviceId: 3, name: 'fuzz0', memory, post });
  }

  protected offeredFeatures(): bigint {
    return this.offer;
  }
  protected queueCount(): number {
    return 2;
  }
  protected queueSizeMax(): number {
    return QUEUE_SIZE_MAX;
  }
  protected configSpace(): Uint8Array {
    return new Uint8Array(12);
  }

  protected processQueue(queue: number): boolean {
    const chain = this.pop(queue);
    if (chain === null) return false;
    this.popped++;
    if (this.fault !== null) this.poppedAfterFault++;
    const written = queue === RX ? this.fill(chain) : this.drain(chain);
    if (written === null) return false;
    if (!this.push(queue, chain, written)) return false;
    this.signalQueue(queue);
    return true;
  }

  private fill(chain: DescriptorChain): number | null {
    if (chain.readableLength > 0) return this.wrongDirection(RX, 'readable', chain);
    const n = scatter(
      this.memory,
      chain.writable,
      0,
      this.scratch.subarray(0, chain.writableLength),
    );
    if (isFault(n)) return this.failed(n, RX);
    return n;
  }

  private drain(chain: DescriptorChain): number | null {
    if (chain.writableLength > 0) return this.wrongDirection(TX, 'writable', chain);
    const n = gather(this.memory, chain.readable, 0, this.scratch);
    if (isFault(n)) return this.failed(n, TX);
    return 0;
  }

  private wrongDirection(queue: number, what: string, chain: DescriptorChain): null {
    this.fail(
      fault('WrongBufferDirection', 'M10', `${what} buffer in queue ${queue}`, {
        queue,
        index: chain.head,
      }),
    );
    return null;
  }

  private failed(f: VirtioFault, queue: number): null {
    this.fail(f.onQueue(queue));
    return null;
  }
}

export interface FuzzCase {
  format: QueueFormat;
  indirect: boolean;
  eventIdx: boolean;
  sizes: [number, number];
  chains: { queue: number; segments: number[]; indirect: boolean }[];
  mutations: Mutation[];
  kicks: number[];
  config: { offset: number; width: 1 | 2 | 4; write: boolean }[];
}

type Mutation = {
  /** Which structure: 0 desc area, 1 driver area, 2 device area, 3 anywhere in memory. */
  area: 0 | 1 | 2 | 3;
  queue: number;
  offset: number;
  width: 1 | 2 | 4 | 8;
  value: number;
};

const sizeArb = fc.constantFrom(1, 2, 4, 8, 16);

export const fuzzCaseArb: fc.Arbitrary<FuzzCase> = fc.record({
  format: fc.constantFrom<QueueFormat>('split', 'packed'),
  indirect: fc.boolean(),
  eventIdx: fc.boolean(),
  sizes: fc.tuple(sizeArb, sizeArb),
  chains: fc.array(
    fc.record({
      queue: fc.constantFrom(RX, TX),
      segments: fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 4 }),
      indirect: fc.boolean(),
    }),
    { maxLength: 10 },
  ),
  mutations: fc.array(
    fc.record({
      area: fc.constantFrom<0 | 1 | 2 | 3>(0, 0, 1, 1, 2, 3),
      queue: fc.constantFrom(RX, TX),
      offset: fc.nat({ max: 300 }),
      width: fc.constantFrom<1 | 2 | 4 | 8>(1, 2, 2, 4, 8),
      value: fc.oneof(
        fc.nat({ max: 0xffff }),
        fc.constantFrom(0, 1, 2, 3, 4, 0x80, 0x8000, 0x8080, 0xffff, 0xffffffff, MEMORY_SIZE - 1),
        fc.nat(),
      ),
    }),
    { maxLength: 8 },
  ),
  // Mostly kicks of real queues, now and then one that does not exist (M13).
  kicks: fc.array(
    fc.oneof(
      { weight: 12, arbitrary: fc.constantFrom(RX, TX) },
      { weight: 1, arbitrary: fc.integer({ min: -2, max: 40 }) },
    ),
    { minLength: 1, maxLength: 4 },
  ),
  // Mostly in-range configuration accesses, now and then one past the end (M14).
  config: fc.array(
    fc.record({
      offset: fc.oneof(
        { weight: 8, arbitrary: fc.integer({ min: 0, max: 8 }) },
        { weight: 1, arbitrary: fc.integer({ min: -4, max: 20 }) },
      ),
      width: fc.constantFrom<1 | 2 | 4>(1, 2, 4),
      write: fc.boolean(),
    }),
    { maxLength: 2 },
  ),
});

export interface FuzzOutcome {
  fault: VirtioFault | null;
  status: number;
  tasks: number;
  popped: number;
}

const MAX_TASKS = 5000;

/** Run one case; throws (an assertion failure for the property) when an invariant breaks. */
export function runFuzzCase(c: FuzzCase): FuzzOutcome {
  const memory = GuestMemory.linear(MEMORY_SIZE);
  const allocator = new GuestAllocator(memory);
  const tasks: (() => void)[] = [];
  const post: PostTask = (_kind, _label, run) => {
    tasks.push(run);
  };
  const offer = featureSet(
    Feature.VERSION_1,
    ...(c.format === 'packed' ? [Feature.RING_PACKED] : []),
    ...(c.indirect ? [Feature.RING_INDIRECT_DESC] : []),
    ...(c.eventIdx ? [Feature.RING_EVENT_IDX] : []),
  );
  const device = new FuzzDevice(memory, post, offer);
  device.setInterruptHandler(() => {});

  // The proper setup sequence of a driver (virtio 1.x, 3.1.1).
  device.writeStatus(Status.ACKNOWLEDGE);
  device.writeStatus(Status.ACKNOWLEDGE | Status.DRIVER);
  device.writeDriverFeatures(offer);
  device.writeStatus(Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
  if (!(device.readStatus() & Status.FEATURES_OK)) throw new Error('FEATURES_OK refused');
  const layouts: QueueLayout[] = [];
  const drivers: DriverQueue<number>[] = [];
  for (const q of [RX, TX]) {
    const layout = allocateRings(c.format, c.sizes[q]!, memory, allocator);
    if (isFault(layout)) throw new Error(layout.toString());
    layouts.push(layout);
    const configured = device.configureQueue(q, { ...layout });
    if (configured) throw new Error(configured.toString());
    const enabled = device.enableQueue(q);
    if (enabled) throw new Error(enabled.toString());
    const driver = createDriverQueue<number>(
      {
        index: q,
        layout,
        features: { indirect: c.indirect, eventIdx: c.eventIdx, inOrder: false },
      },
      memory,
      allocator,
    );
    if (isFault(driver)) throw new Error(driver.toString());
    drivers.push(driver);
  }
  device.writeStatus(Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK);

  // Valid chains first, so the mutations have real structure to damage.
  let token = 0;
  for (const chain of c.chains) {
    const segs = [];
    for (const len of chain.segments) {
      const addr = allocator.alloc(len, 8);
      if (isFault(addr)) break;
      segs.push({ addr, len });
    }
    const driver = drivers[chain.queue]!;
    const added =
      chain.queue === RX
        ? driver.add([], segs, token++, chain.indirect)
        : driver.add(segs, [], token++, chain.indirect);
    if (!isFault(added)) driver.kickPrepare();
  }

  for (const m of c.mutations) {
    const layout = layouts[m.queue]!;
    const base =
      m.area === 0
        ? layout.descAddr
        : m.area === 1
          ? layout.driverAddr
          : m.area === 2
            ? layout.deviceAddr
            : 0;
    const span = m.area === 3 ? MEMORY_SIZE : m.area === 0 ? 16 * layout.size : 6 + 8 * layout.size;
    const addr = base + (m.offset % Math.max(1, span));
    // A mutation that would itself fall outside memory is simply refused by it.
    if (m.width === 1) memory.write8(addr, m.value & 0xff);
    else if (m.width === 2) memory.write16(addr, m.value & 0xffff);
    else if (m.width === 4) memory.write32(addr, m.value);
    else memory.write64(addr, m.value);
  }

  for (const cfg of c.config) {
    if (cfg.write) device.writeConfig(cfg.offset, cfg.width, 0);
    else device.readConfig(cfg.offset, cfg.width);
  }

  let ran = 0;
  const drain = (): void => {
    while (tasks.length > 0) {
      if (++ran > MAX_TASKS) throw new Error(`device did not settle within ${MAX_TASKS} tasks`);
      tasks.shift()!();
    }
  };
  for (const q of c.kicks) {
    device.notify(q);
    drain();
  }

  const problem = device.fault;
  const status = device.readStatus();
  if (problem !== null) {
    if (!(status & Status.DEVICE_NEEDS_RESET)) {
      throw new Error(`fault ${problem.toString()} without DEVICE_NEEDS_RESET`);
    }
    if (!/^[A-Z]\d+$/.test(problem.rule))
      throw new Error(`fault without a rule id: ${problem.kind}`);
    // A device in NEEDS_RESET stops: further kicks pop nothing.
    const before = device.popped;
    device.notify(RX);
    device.notify(TX);
    drain();
    if (device.popped !== before || device.poppedAfterFault !== 0) {
      throw new Error('device kept popping after NEEDS_RESET');
    }
  } else if (status & Status.DEVICE_NEEDS_RESET) {
    throw new Error('DEVICE_NEEDS_RESET without a recorded fault');
  }
  return { fault: problem, status, tasks: ran, popped: device.popped };
}

/** Run `runs` random cases; returns counts by outcome (fault kind or 'ok'). */
export function runFuzz(runs: number, seed?: number): Map<string, number> {
  const outcomes = new Map<string, number>();
  fc.assert(
    fc.property(fuzzCaseArb, (c) => {
      const out = runFuzzCase(c);
      const key = out.fault ? `${out.fault.rule} ${out.fault.kind}` : 'ok';
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }),
    { numRuns: runs, ...(seed === undefined ? {} : { seed }) },
  );
  return outcomes;
}
