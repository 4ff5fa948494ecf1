/** Per-port event history (core/api/browser/event-history.ts): a quiet port's open/close survives a busy port. */
import { describe, expect, it } from 'vitest';
import type { ApiEvent, EventKind } from '../../core/api/contract/contract.js';
import { appendBounded } from '../../core/api/browser/view.js';
import { PER_PORT, PortHistory } from '../../core/api/browser/event-history.js';

let seq = 0;
const ev = (kind: EventKind, nr: number): ApiEvent => ({
  seq: ++seq,
  time: seq,
  kind,
  device: 'vser0',
  nr,
  port: `p${nr}`,
  direction: null,
  bytes: null,
  rule: null,
  text: `${kind} p${nr}`,
});

describe('per-port event history', () => {
  it('keeps a quiet port’s open/close after a busy port’s 2,000 events, in time order', () => {
    const h = new PortHistory();
    let recent: ApiEvent[] = [];
    const push = (e: ApiEvent[]) => {
      h.add(e);
      recent = appendBounded(recent, e, 2000);
    };
    push([ev('guest-open', 1), ev('host-open', 1)]);
    for (let i = 0; i < 2000; i++) push([ev(i % 2 ? 'control' : 'drop', 2)]);
    expect(recent.some((e) => e.nr === 1)).toBe(false); // pushed out of the window's list
    const all = h.merged(recent);
    const quiet = all.filter((e) => e.nr === 1).map((e) => e.kind);
    expect(quiet).toEqual(['guest-open', 'host-open']);
    expect(all.every((e, i) => i === 0 || all[i - 1]!.seq < e.seq)).toBe(true);
    expect(h.merged(recent, 'vser0:1').filter((e) => e.nr === 1)).toHaveLength(2);
    expect(h.merged(recent, 'vser0:2').filter((e) => e.nr === 1)).toHaveLength(0);
  });

  it('bounds each port’s history', () => {
    const h = new PortHistory();
    for (let i = 0; i < PER_PORT + 50; i++) h.add([ev('guest-open', 3)]);
    expect(h.merged([]).length).toBe(PER_PORT);
  });
});
