import { describe, expect, it } from 'vitest';
import type { ApiEvent } from '../../core/api/contract/contract.js';
import {
  DIRECTION_COLOURS,
  ThroughputHistory,
  appendBounded,
  insertByTime,
  connectHint,
  formatBytes,
  formatRate,
  matchesEvent,
  queuePair,
} from '../../core/api/browser/view.js';

describe('view helpers', () => {
  it('gives each direction its own colour', () => {
    expect(DIRECTION_COLOURS['host-to-guest']).not.toBe(DIRECTION_COLOURS['guest-to-host']);
  });

  it('formats sizes and rates', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(50 * 1024 * 1024)).toBe('50.0 MiB');
    expect(formatRate(0.2)).toBe('0 B/s');
    expect(formatRate(2048)).toBe('2.00 KiB/s');
  });

  it('knows where a port’s queues are (virtio console layout)', () => {
    expect(queuePair(0)).toEqual({ rx: 0, tx: 1 });
    expect(queuePair(1)).toEqual({ rx: 4, tx: 5 });
    expect(queuePair(3)).toEqual({ rx: 8, tx: 9 });
  });

  it('tells how to reach a host side', () => {
    expect(connectHint('/run/x/test1')).toBe('socat - UNIX-CONNECT:/run/x/test1');
    expect(connectHint('127.0.0.1:4555')).toBe('nc 127.0.0.1 4555');
    expect(connectHint(null)).toBeNull();
  });

  it('filters events by port, kind and text', () => {
    const e: ApiEvent = {
      seq: 1,
      time: 0,
      kind: 'host-open',
      device: 'vser0',
      nr: 2,
      port: 'test2',
      direction: null,
      bytes: null,
      rule: null,
      text: 'test2: host connected',
    };
    expect(matchesEvent(e, { port: null, kinds: new Set(), text: '' })).toBe(true);
    expect(
      matchesEvent(e, { port: 'vser0:2', kinds: new Set(['host-open']), text: 'CONNECTED' }),
    ).toBe(true);
    expect(matchesEvent(e, { port: 'vser0:1', kinds: new Set(), text: '' })).toBe(false);
    expect(matchesEvent(e, { port: null, kinds: new Set(['drop']), text: '' })).toBe(false);
    expect(appendBounded([1, 2, 3], [4, 5], 4)).toEqual([2, 3, 4, 5]);
  });

  it('the timeline keeps events in time order: a late one goes to its place, the newest are kept', () => {
    const ev = (seq: number, time: number) => ({ seq, time });
    const list = [ev(1, 100), ev(2, 200), ev(3, 300)];
    // in order: appended
    expect(insertByTime(list, [ev(4, 400)], 10).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    // a rate-limited VSERPORT_CHANGE stamped 250 that arrives after 300 and 400
    const late = insertByTime(list, [ev(4, 400), ev(5, 250)], 10);
    expect(late.map((e) => e.seq)).toEqual([1, 2, 5, 3, 4]);
    // equal times keep arrival order; older than all goes first; the bound drops the oldest
    expect(insertByTime(list, [ev(6, 200), ev(7, 50)], 4).map((e) => e.seq)).toEqual([1, 2, 6, 3]);
    expect(list.map((e) => e.seq)).toEqual([1, 2, 3]); // the input is not changed
  });

  it('keeps 60 s of rates per port and direction in ring buffers', () => {
    const h = new ThroughputHistory(5);
    for (let i = 1; i <= 8; i++) {
      h.add({
        t: i * 200,
        dt: 200,
        ports: [
          { key: 'a', toGuest: 100 * i, toHost: 10, totalToGuest: 0, totalToHost: 0 },
          { key: 'b', toGuest: 0, toHost: 20, totalToGuest: 0, totalToHost: 0 },
        ],
      });
    }
    expect(h.size).toBe(5);
    const pts = h.points('a', 'host-to-guest', 1600);
    expect(pts.map((p) => p.x)).toEqual([-0.8, -0.6, -0.4, -0.2, 0]);
    expect(pts.map((p) => p.y)).toEqual([2000, 2500, 3000, 3500, 4000]);
    expect(h.points('total', 'guest-to-host', 1600).map((p) => p.y)).toEqual([
      150, 150, 150, 150, 150,
    ]);
    expect(h.totalRate()).toEqual({ toGuest: 4000, toHost: 150 });
    // points() reuses the arrays it is given
    const reuse = h.points('a', 'guest-to-host', 1600, pts);
    expect(reuse).toBe(pts);
    h.retain(['b']);
    expect(h.keys()).toEqual(['b']);
  });
});
