/**
 * The bridge to a screen, without a window: at most one batch out at a
 * time (the screen acks from requestAnimationFrame), bounded whatever the
 * traffic, everything that was folded counted.
 */
import { describe, expect, it } from 'vitest';
import { BatchBridge, mergeSamples } from '../../core/api/server/batcher.js';
import type {
  ApiEvent,
  Batch,
  ThroughputSample,
  TopologySnapshot,
} from '../../core/api/contract/contract.js';

const topology: TopologySnapshot = {
  lab: 'test',
  runtimeDir: null,
  engine: { mode: 'running', pending: 0, executed: 0, booted: true },
  capture: { on: false, path: null, records: 0, last: null },
  devices: [],
  ports: [],
  chardevs: [],
};

function event(seq: number, kind: ApiEvent['kind'] = 'drop'): ApiEvent {
  return {
    seq,
    time: seq,
    kind,
    device: 'vser0',
    nr: 1,
    port: 'test1',
    direction: null,
    bytes: 1,
    rule: null,
    text: `e${seq}`,
  };
}

function sample(t: number, toGuest: number): ThroughputSample {
  return {
    t,
    dt: 200,
    ports: [{ key: 'vser0:1', toGuest, toHost: 1, totalToGuest: t, totalToHost: t }],
  };
}

/** A bridge whose deferred work runs only when the test says so. */
function rig(
  options: { maxEvents?: number; maxSamples?: number; minTopologyIntervalMs?: number } = {},
) {
  const sent: Batch[] = [];
  const deferred: (() => void)[] = [];
  let snapshots = 0;
  let clock = 1000;
  const bridge = new BatchBridge({
    source: {
      topology: () => {
        snapshots++;
        return topology;
      },
      engine: () => topology.engine,
    },
    send: (b) => sent.push(b),
    defer: (run) => deferred.push(run),
    now: () => clock,
    minTopologyIntervalMs: 0,
    ...options,
  });
  const tick = (): void => {
    for (const run of deferred.splice(0)) run();
  };
  const advance = (ms: number): void => {
    clock += ms;
  };
  return { bridge, sent, tick, advance, snapshots: () => snapshots };
}

describe('BatchBridge', () => {
  it('sends the whole picture first, then nothing until the screen acks', () => {
    const { bridge, sent, tick } = rig();
    tick();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.topology).toEqual(topology);
    for (let i = 1; i <= 50; i++) bridge.pushEvent(event(i));
    bridge.topologyChanged();
    tick();
    expect(sent).toHaveLength(1); // the first is still out
    expect(bridge.waiting).toBe(true);
    expect(bridge.ack(1)).toBe(true);
    tick();
    expect(sent).toHaveLength(2);
    expect(sent[1]!.events.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(sent[1]!.topology).not.toBeNull();
  });

  it('ignores acks that are not for the batch out (late, repeated, forged)', () => {
    const { bridge, sent, tick } = rig();
    tick();
    bridge.pushEvent(event(1));
    expect(bridge.ack(7)).toBe(false);
    expect(bridge.ack(0)).toBe(false);
    tick();
    expect(sent).toHaveLength(1);
    expect(bridge.ack(1)).toBe(true);
    expect(bridge.ack(1)).toBe(false); // twice
    tick();
    expect(sent).toHaveLength(2);
    expect(bridge.stats.staleAcks).toBe(3);
  });

  it('under a flood sends one batch per ack, each bounded, counting what it folded', () => {
    const { bridge, sent, tick } = rig({ maxEvents: 100 });
    tick();
    let seq = 0;
    // 10 "frames"; between two acks the engine produces 10,000 events
    for (let frame = 0; frame < 10; frame++) {
      for (let i = 0; i < 10_000; i++)
        bridge.pushEvent(event(++seq, i % 2 ? 'drop' : 'throttle-on'));
      for (let i = 0; i < 500; i++) bridge.topologyChanged();
      tick();
      expect(sent).toHaveLength(frame + 1); // nothing new before the ack
      bridge.ack(sent[sent.length - 1]!.seq);
      tick();
      expect(sent).toHaveLength(frame + 2);
      const b = sent[sent.length - 1]!;
      expect(b.events).toHaveLength(100);
      // the newest are kept, in order
      expect(b.events[99]!.seq).toBe(seq);
      expect(b.events[0]!.seq).toBe(seq - 99);
      expect(b.coalesced.events).toBe(9_900);
      expect(b.coalesced.byKind).toEqual({ drop: 4_950, 'throttle-on': 4_950 });
      expect(b.coalesced.topology).toBe(499);
      expect(b.topology).not.toBeNull();
    }
    expect(bridge.stats.eventsIn).toBe(100_000);
    expect(bridge.stats.eventsCoalesced).toBe(99_000);
    expect(bridge.pendingEvents).toBe(0);
  });

  it('takes one topology snapshot per batch, not one per change', () => {
    const { bridge, tick, snapshots, sent } = rig();
    tick();
    bridge.ack(1);
    for (let i = 0; i < 1000; i++) bridge.topologyChanged();
    tick();
    expect(sent).toHaveLength(2);
    expect(snapshots()).toBe(2);
  });

  it('sends at most one topology snapshot per interval; events do not wait for it', () => {
    const { bridge, sent, tick, advance } = rig({ minTopologyIntervalMs: 100 });
    tick();
    expect(sent[0]!.topology).not.toBeNull();
    bridge.ack(1);
    bridge.topologyChanged();
    tick();
    expect(sent).toHaveLength(1); // only a topology change, and too soon: nothing to send
    bridge.pushEvent(event(1));
    tick();
    expect(sent).toHaveLength(2);
    expect(sent[1]!.topology).toBeNull();
    expect(sent[1]!.events).toHaveLength(1);
    bridge.ack(2);
    advance(100);
    bridge.topologyChanged();
    tick();
    expect(sent).toHaveLength(3);
    expect(sent[2]!.topology).not.toBeNull();
    expect(sent[2]!.coalesced.topology).toBe(1);
  });

  it('merges throughput samples beyond the cap without losing bytes', () => {
    const { bridge, sent, tick } = rig({ maxSamples: 4 });
    tick();
    for (let i = 1; i <= 10; i++) bridge.pushSample(sample(i * 200, 100));
    bridge.ack(1);
    tick();
    const b = sent[1]!;
    expect(b.samples).toHaveLength(4);
    expect(b.coalesced.samples).toBe(6);
    const bytes = b.samples.reduce((n, s) => n + s.ports[0]!.toGuest, 0);
    const dt = b.samples.reduce((n, s) => n + s.dt, 0);
    expect(bytes).toBe(1000);
    expect(dt).toBe(2000);
    expect(b.samples[3]!.t).toBe(2000);
    expect(b.samples[3]!.ports[0]!.totalToGuest).toBe(2000);
  });

  it('sends nothing when nothing happened, and nothing after close', () => {
    const { bridge, sent, tick } = rig();
    tick();
    bridge.ack(1);
    tick();
    expect(sent).toHaveLength(1);
    bridge.close();
    bridge.pushEvent(event(1));
    bridge.topologyChanged();
    tick();
    expect(sent).toHaveLength(1);
  });

  it('gives up on a batch never acknowledged (lost) after 5 s, and resends the picture', () => {
    const { bridge, sent, tick, advance } = rig();
    tick();
    bridge.pushEvent(event(1));
    advance(4000);
    bridge.pushEvent(event(2));
    tick();
    expect(sent).toHaveLength(1);
    advance(1500);
    bridge.pushEvent(event(3));
    tick();
    expect(sent).toHaveLength(2);
    expect(sent[1]!.topology).not.toBeNull();
    expect(sent[1]!.events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(bridge.stats.lost).toBe(1);
    expect(bridge.ack(1)).toBe(false); // too late
  });

  it('merges two samples as one interval', () => {
    const m = mergeSamples(
      {
        t: 200,
        dt: 200,
        ports: [{ key: 'a', toGuest: 1, toHost: 2, totalToGuest: 1, totalToHost: 2 }],
      },
      {
        t: 400,
        dt: 200,
        ports: [
          { key: 'a', toGuest: 3, toHost: 4, totalToGuest: 4, totalToHost: 6 },
          { key: 'b', toGuest: 5, toHost: 0, totalToGuest: 5, totalToHost: 0 },
        ],
      },
    );
    expect(m).toEqual({
      t: 400,
      dt: 400,
      ports: [
        { key: 'a', toGuest: 4, toHost: 6, totalToGuest: 4, totalToHost: 6 },
        { key: 'b', toGuest: 5, toHost: 0, totalToGuest: 5, totalToHost: 0 },
      ],
    });
  });
});
