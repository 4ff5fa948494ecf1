/**
 * The vring view behind the API (vring-service.ts): views that travel only
 * when they changed, step mode one ring operation at a time with the tables
 * moving as the spec says (S4 pop: last_avail_idx + 1; S9 push: used.idx + 1
 * and the used element holds the head), feature negotiation as it happened,
 * and malformed chains injected on purpose and refused with their rule.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ApiEvent, PortSnapshot } from '../../core/api/contract/contract.js';
import type {
  GetVringViewResult,
  InjectFaultResult,
  InjectableFault,
  RingOp,
  SplitRing,
  VringView,
} from '../../core/api/contract/vring-contract.js';
import { O_NONBLOCK, O_RDWR } from '../../core/serial/guest/files.js';
import { isErrno } from '../../core/serial/guest/errno.js';
import { rig, until, type Rig } from './helpers.js';

let r: Rig | null = null;
afterEach(async () => {
  await r?.close();
  r = null;
});

/** An empty lab with one device and one port whose host side is connected (the app's terminal). */
async function onePort(packed = false): Promise<{ r: Rig; port: PortSnapshot; tx: number }> {
  const rr = await rig();
  await rr.must({ cmd: 'createDevice', device: { id: 'vser0', ...(packed ? { packed } : {}) } });
  const port = await rr.must<PortSnapshot>({
    cmd: 'hotplugPort',
    port: {
      driver: 'virtserialport',
      name: 'lesson',
      newChardev: { id: 'l', backend: { kind: 'unix' } },
    },
  });
  await until(async () => (await rr.topology()).ports[0]!.guestName ?? undefined);
  await rr.must({ cmd: 'writeHost', port: { device: 'vser0', nr: port.nr }, data: 'x' });
  await until(async () => (await rr.topology()).ports[0]!.hostConnected || undefined);
  return { r: rr, port, tx: 2 * port.nr + 3 };
}

const view = async (rr: Rig, queue: number, since?: number): Promise<GetVringViewResult> =>
  rr.must<GetVringViewResult>({
    cmd: 'getVringView',
    device: 'vser0',
    queue,
    ...(since !== undefined ? { since } : {}),
  });

describe('the vring view', () => {
  it('records feature negotiation and status as they happened, from the probe at lab start', async () => {
    r = await rig({ lab: 'demo' });
    const v = (await view(r, 5)).view!;
    const steps = v.negotiation.map((e) => e.step);
    expect(steps.slice(0, 7)).toEqual([
      'reset',
      'ACKNOWLEDGE',
      'DRIVER',
      'offered',
      'accepted',
      'FEATURES_OK',
      'DRIVER_OK',
    ]);
    const offered = v.negotiation.find((e) => e.step === 'offered')!;
    expect(offered.features).toEqual(expect.arrayContaining(['VERSION_1', 'CONSOLE_F_MULTIPORT']));
    const ok = v.negotiation.find((e) => e.step === 'FEATURES_OK')!;
    expect(ok.rule).toBe('G4');
    expect(ok.status).toEqual(['ACKNOWLEDGE', 'DRIVER', 'FEATURES_OK']);
    expect(v.deviceState).toMatchObject({ state: 'running', fault: null });
    expect(v.deviceState.negotiated).toEqual(ok.features);
    // every port's pair and the control queues can be picked
    expect(v.queues.map((q) => [q.queue, q.role, q.direction])).toEqual([
      [0, 'rx port 0', 'host-to-guest'],
      [1, 'tx port 0', 'guest-to-host'],
      [2, 'control rx', 'host-to-guest'],
      [3, 'control tx', 'guest-to-host'],
      [4, 'rx port 1', 'host-to-guest'],
      [5, 'tx port 1', 'guest-to-host'],
      [6, 'rx port 2', 'host-to-guest'],
      [7, 'tx port 2', 'guest-to-host'],
      [8, 'rx port 3', 'host-to-guest'],
      [9, 'tx port 3', 'guest-to-host'],
    ]);
    expect(v.ring).toMatchObject({ format: 'split', size: 128 });
    expect(await r.run({ cmd: 'getVringView', device: 'vser0', queue: 200 })).toMatchObject({
      ok: false,
      error: { kind: 'NotFound' },
    });
  });

  it('sends a view only when the queue changed', async () => {
    const s = await onePort();
    r = s.r;
    await r.must({ cmd: 'pause' });
    const first = await view(r, s.tx);
    expect(first.changed).toBe(true);
    const again = await view(r, s.tx, first.version);
    expect(again).toEqual({ changed: false, version: first.version, view: null });
    // a guest write, stepped through: the version moves
    const files = r.service.session.lab.guest.files;
    await r.must({ cmd: 'run' });
    const fd = await files.open('/dev/vport0p1', O_RDWR | O_NONBLOCK);
    expect(isErrno(fd)).toBe(false);
    await r.must({ cmd: 'pause' });
    void files.write(fd as number, new TextEncoder().encode('hello'));
    await r.must({ cmd: 'vringStep', device: 'vser0', queue: s.tx, count: 3 });
    const after = await view(r, s.tx, first.version);
    expect(after.changed).toBe(true);
    expect(after.version).toBeGreaterThan(first.version);
  });

  it('steps one ring operation at a time, and the tables move as the spec says', async () => {
    const s = await onePort();
    r = s.r;
    const files = r.service.session.lab.guest.files;
    const fd = (await files.open('/dev/vport0p1', O_RDWR | O_NONBLOCK)) as number;
    await r.must({ cmd: 'pause' });
    void files.write(fd, new TextEncoder().encode('one descriptor at a time'));
    let before = (await view(r, s.tx)).view!.ring as SplitRing;
    let popped = false;
    let pushed = false;
    const all: RingOp[] = [];
    for (let i = 0; i < 40 && !(popped && pushed); i++) {
      const step = await r.must<{ ops: RingOp[]; view: VringView; ran: string[] }>({
        cmd: 'vringStep',
        device: 'vser0',
        queue: s.tx,
      });
      expect(step.ran.length).toBeGreaterThan(0);
      all.push(...step.ops);
      const after = step.view.ring as SplitRing;
      const mine = step.ops.filter((o) => o.queue === s.tx);
      const pops = mine.filter((o) => o.op === 'device-pop');
      const pushes = mine.filter((o) => o.op === 'device-push');
      if (pops.length > 0) {
        popped = true;
        // S4: the device consumed one avail entry per chain it popped
        expect(after.device!.lastAvailIdx).toBe(
          (before.device!.lastAvailIdx + pops.length) & 0xffff,
        );
        expect(pops[0]!.rule).toMatch(/^S/);
      }
      if (pushes.length > 0) {
        pushed = true;
        // S9: used.idx grows by one per chain, and the used element names the head
        expect(after.used.idx).toBe((before.used.idx + pushes.length) & 0xffff);
        const last = pushes[pushes.length - 1]!;
        expect(after.used.ring[(after.used.idx - 1) % after.size]!.id).toBe(last.head);
      }
      if (pops.length === 0 && pushes.length === 0) {
        expect(after.used.idx).toBe(before.used.idx);
        expect(after.device!.lastAvailIdx).toBe(before.device!.lastAvailIdx);
      }
      before = after;
    }
    expect(popped && pushed).toBe(true);
    expect(all.every((o) => o.step !== null && o.text.length > 0)).toBe(true);
    // the driver made it available first (S2/S8 family), every op names its rule
    expect(all.map((o) => o.op)).toContain('driver-add');
    for (const o of all) expect(o.rule).toMatch(/^[SPCMGD]\d+$/);
    // the step log in the view holds the same operations of this queue
    const v = (await view(r, s.tx)).view!;
    expect(v.log.filter((o) => o.step !== null).map((o) => o.seq)).toEqual(
      all.filter((o) => o.queue === s.tx).map((o) => o.seq),
    );
  });
});

describe('faults on purpose', () => {
  const split: InjectableFault[] = ['M2', 'M3', 'M4', 'M5', 'M8'];
  it.each(split)(
    'split ring: an injected %s chain puts the device in NEEDS_RESET with its rule',
    async (kind) => {
      const s = await onePort();
      r = s.r;
      const injected = await r.must<InjectFaultResult>({
        cmd: 'injectFault',
        device: 'vser0',
        queue: s.tx,
        fault: kind,
      });
      expect(injected.text).toMatch(/kicked/);
      const event = await r.waitEvent((e: ApiEvent) => e.kind === 'needs-reset');
      expect(event.rule).toBe(kind);
      const v = (await view(r, s.tx)).view!;
      expect(v.deviceState.state).toBe('needs-reset');
      expect(v.deviceState.fault?.rule).toBe(kind);
      expect(v.deviceState.status).toContain('DEVICE_NEEDS_RESET');
      expect(v.negotiation.at(-1)).toMatchObject({ step: 'NEEDS_RESET', rule: kind });
      expect(v.log.at(-1)).toMatchObject({ op: 'fault', rule: kind });
      expect((await r.topology()).devices[0]).toMatchObject({ state: 'needs-reset' });
      // a second one is refused: the device already stopped
      expect(
        await r.run({ cmd: 'injectFault', device: 'vser0', queue: s.tx, fault: kind }),
      ).toMatchObject({ ok: false, error: { kind: 'Refused' } });
    },
  );

  const packed: InjectableFault[] = ['M2', 'M4', 'M5', 'M8'];
  it.each(packed)('packed ring: an injected %s chain is refused with its rule', async (kind) => {
    const s = await onePort(true);
    r = s.r;
    expect((await view(r, s.tx)).view!.ring?.format).toBe('packed');
    await r.must({ cmd: 'injectFault', device: 'vser0', queue: s.tx, fault: kind });
    const event = await r.waitEvent((e: ApiEvent) => e.kind === 'needs-reset');
    expect(event.rule).toBe(kind);
  });

  it('packed ring: a loop (M3) cannot be written and says why', async () => {
    const s = await onePort(true);
    r = s.r;
    const res = await r.run({ cmd: 'injectFault', device: 'vser0', queue: s.tx, fault: 'M3' });
    expect(res).toMatchObject({ ok: false, error: { kind: 'Refused' } });
  });

  it('in step mode the fault waits for the step that walks the chain', async () => {
    const s = await onePort();
    r = s.r;
    await r.must({ cmd: 'pause' });
    await r.must({ cmd: 'injectFault', device: 'vser0', queue: s.tx, fault: 'M2' });
    expect((await view(r, s.tx)).view!.deviceState.state).toBe('running');
    const step = await r.must<{ ops: RingOp[]; view: VringView }>({
      cmd: 'vringStep',
      device: 'vser0',
      queue: s.tx,
    });
    expect(step.ops.at(-1)).toMatchObject({ op: 'fault', rule: 'M2' });
    expect(step.view.deviceState).toMatchObject({ state: 'needs-reset', fault: { rule: 'M2' } });
  });
});
