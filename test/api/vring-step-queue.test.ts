/**
 * Issue 17: "Step this queue" moves the queue in view only; the other
 * queues wait (the engine stays paused for them) or keep running (the
 * engine holds only this queue's work, EngineState.hold), as the user
 * chooses. "Step any" keeps stepping whatever comes next.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineState, PortSnapshot } from '../../core/api/contract/contract.js';
import type { RingOp } from '../../core/api/contract/vring-contract.js';
import { rig, socketClient, until, type Rig } from './helpers.js';

let r: Rig | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

type Client = Awaited<ReturnType<typeof socketClient>>;

/** Two ports, each with a socket client as its host application. */
async function twoPorts(
  lab: Rig,
): Promise<{ a: PortSnapshot; b: PortSnapshot; ca: Client; cb: Client }> {
  await lab.must({ cmd: 'createDevice', device: { id: 'vser0' } });
  const plug = (name: string) =>
    lab.must<PortSnapshot>({
      cmd: 'hotplugPort',
      port: { driver: 'virtserialport', name, newChardev: { id: name, backend: { kind: 'unix' } } },
    });
  const a = await plug('a');
  const b = await plug('b');
  await until(
    async () => (await lab.topology()).ports.every((p) => p.guestName !== null) || undefined,
  );
  const path = async (id: string) =>
    (await lab.topology()).chardevs.find((c) => c.id === id)!.path!;
  const ca = await socketClient(await path('a'));
  const cb = await socketClient(await path('b'));
  await until(async () => (await lab.topology()).ports.every((p) => p.hostConnected) || undefined);
  return { a, b, ca, cb };
}

const tx = (p: PortSnapshot): number => 2 * p.nr + 3;
const ref = (p: PortSnapshot) => ({ device: 'vser0', nr: p.nr });

describe('Step this queue', () => {
  it('others wait: only the queue in view moves, the other port gets nothing until Run', async () => {
    r = await rig();
    const { a, b, ca, cb } = await twoPorts(r);
    await r.must({ cmd: 'pause' });
    await r.must({ cmd: 'writeGuest', port: ref(a), data: 'to a\n' });
    await r.must({ cmd: 'writeGuest', port: ref(b), data: 'to b\n' });
    const ops: RingOp[] = [];
    for (let i = 0; i < 50 && ca.received().length === 0; i++) {
      const s = await r.must<{ ops: RingOp[]; engine: EngineState }>({
        cmd: 'vringStep',
        device: 'vser0',
        queue: tx(a),
        scope: 'queue',
        others: 'wait',
      });
      expect(s.engine).toMatchObject({ mode: 'paused', hold: null });
      ops.push(...s.ops);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await until(() => ca.received().toString() === 'to a\n' || undefined);
    // The device never took b's chain: its queue's work waited.
    expect(ops.filter((o) => o.queue === tx(b) && o.op === 'device-pop')).toEqual([]);
    expect(ops.some((o) => o.queue === tx(a) && o.op === 'device-pop')).toBe(true);
    expect(cb.received().length).toBe(0);
    await r.must({ cmd: 'run' });
    await until(() => cb.received().toString() === 'to b\n' || undefined);
    ca.close();
    cb.close();
  });

  it('others run: the queue in view waits for each step while the other port flows', async () => {
    r = await rig();
    const { a, b, ca, cb } = await twoPorts(r);
    // The first step holds a's transmit queue and lets everything else run.
    const first = await r.must<{ engine: EngineState }>({
      cmd: 'vringStep',
      device: 'vser0',
      queue: tx(a),
      scope: 'queue',
      others: 'run',
    });
    expect(first.engine).toMatchObject({
      mode: 'running',
      hold: { device: 'vser0', queue: tx(a) },
    });
    await r.must({ cmd: 'writeGuest', port: ref(b), data: 'b flows\n' });
    await until(() => cb.received().toString() === 'b flows\n' || undefined);
    await r.must({ cmd: 'writeGuest', port: ref(a), data: 'a waits\n' });
    // b flows again while a's chain is still waiting for its step.
    await r.must({ cmd: 'writeGuest', port: ref(b), data: 'again\n' });
    await until(() => cb.received().toString() === 'b flows\nagain\n' || undefined);
    expect(ca.received().length).toBe(0);
    for (let i = 0; i < 20 && ca.received().length === 0; i++) {
      await r.must({
        cmd: 'vringStep',
        device: 'vser0',
        queue: tx(a),
        scope: 'queue',
        others: 'run',
      });
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await until(() => ca.received().toString() === 'a waits\n' || undefined);
    // Run ends the hold.
    expect(await r.must<EngineState>({ cmd: 'run' })).toMatchObject({
      mode: 'running',
      hold: null,
    });
    ca.close();
    cb.close();
  });

  it('Step any keeps stepping whatever comes next (paused, no hold)', async () => {
    r = await rig();
    const { a } = await twoPorts(r);
    const s = await r.must<{ engine: EngineState }>({
      cmd: 'vringStep',
      device: 'vser0',
      queue: tx(a),
    });
    expect(s.engine).toMatchObject({ mode: 'paused', hold: null });
  });
});
