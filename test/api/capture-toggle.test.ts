/**
 * Capture per port and for everything, at start or while running
 * (setPortCapture, setCaptureAll): on the demo lab, with its workloads
 * moving bytes on test1 and test2, the capture file (read back with the
 * pcapng reader) has test1's records while its switch is on and none while
 * it is off; switches set before the capture starts apply from its first
 * record; the port snapshot carries each port's switch.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { CaptureState, PortSnapshot } from '../../core/api/contract/contract.js';
import { nowNs } from '../../core/capture/record.js';
import { readBack } from './capture-fixture.js';
import { rig, until, type Rig } from './helpers.js';

let r: Rig | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

async function portOf(name: string): Promise<PortSnapshot> {
  const p = (await r!.topology()).ports.find((x) => x.name === name);
  if (p === undefined) throw new Error(`no port ${name}`);
  return p;
}

/** Wait until the port moved more bytes (either way) than it had. */
async function traffic(name: string): Promise<void> {
  const moved = (p: PortSnapshot): number => p.toGuest + p.toHost;
  const before = moved(await portOf(name));
  await until(async () => moved(await portOf(name)) > before || undefined, 10_000);
}

describe('capture switches', () => {
  it('turns one port off and on again while the capture runs', async () => {
    r = await rig({ lab: 'demo' });
    const test1 = await portOf('test1');
    expect(test1.capture).toEqual({ own: null, on: true });
    const ref = { device: test1.device, nr: test1.nr };
    const started = await r.must<CaptureState>({ cmd: 'startCapture' });
    expect(started.all).toBe(true);
    await traffic('test1');

    const off = await r.must({ cmd: 'setPortCapture', port: ref, on: false });
    expect(off).toEqual({ device: ref.device, nr: ref.nr, capture: { own: false, on: false } });
    const offAt = nowNs();
    expect((await portOf('test1')).capture).toEqual({ own: false, on: false });
    expect((await portOf('test2')).capture).toEqual({ own: null, on: true });
    await traffic('test1');
    await traffic('test1');
    const onAt = nowNs();
    const back = await r.must({ cmd: 'setPortCapture', port: ref, on: null });
    expect(back).toMatchObject({ capture: { own: null, on: true } });
    await traffic('test1');
    await traffic('test1');
    const stopped = await r.must<CaptureState>({ cmd: 'stopCapture' });

    const records = readBack(stopped.last!);
    const ofTest1 = records.filter((x) => x.device === ref.device && x.port === ref.nr);
    const ofTest2 = records.filter((x) => x.portName === 'test2');
    expect(ofTest1.some((x) => x.time < offAt)).toBe(true);
    expect(ofTest1.filter((x) => x.time > offAt && x.time < onAt)).toEqual([]);
    expect(ofTest1.some((x) => x.time > onAt)).toBe(true);
    // the rest went on being captured meanwhile
    expect(ofTest2.some((x) => x.time > offAt && x.time < onAt)).toBe(true);
  }, 30_000);

  it('starts with only the ports switched on when the global switch is off', async () => {
    r = await rig({ lab: 'demo' });
    const test2 = await portOf('test2');
    const ref = { device: test2.device, nr: test2.nr };
    expect(await r.must<CaptureState>({ cmd: 'setCaptureAll', on: false })).toMatchObject({
      on: false,
      all: false,
    });
    expect((await portOf('test1')).capture).toEqual({ own: null, on: false });
    await r.must({ cmd: 'setPortCapture', port: ref, on: true });
    expect((await portOf('test2')).capture).toEqual({ own: true, on: true });
    await r.must({ cmd: 'startCapture' });
    await traffic('test2');
    await traffic('test1');
    await traffic('test2');
    const stopped = await r.must<CaptureState>({ cmd: 'stopCapture' });

    const records = readBack(stopped.last!);
    const ports = new Set(records.filter((x) => x.port !== undefined).map((x) => x.portName));
    expect([...ports]).toEqual(['test2']);
    expect(records.some((x) => x.kind === 'data' && x.portName === 'test2')).toBe(true);
  }, 30_000);

  it('refuses a port that is not there', async () => {
    r = await rig({ lab: 'demo' });
    const a = await r.run({ cmd: 'setPortCapture', port: { device: 'vser0', nr: 29 }, on: true });
    expect(a).toMatchObject({ ok: false, error: { kind: 'NotFound' } });
  });
});
