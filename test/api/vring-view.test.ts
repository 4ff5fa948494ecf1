/** The vring view's chain colouring: one chain, one colour, across the three tables. */
import { describe, expect, it } from 'vitest';
import type { SplitRing } from '../../core/api/contract/vring-contract.js';
import { chainColour, splitChains } from '../../core/api/browser/vring-view.js';

const desc = (index: number, flags = 0, next = 0) => ({
  index,
  addr: 0x1000 * index,
  len: 16,
  flags,
  flagNames: [],
  next,
});

describe('splitChains', () => {
  it('paints available, in-flight and used chains the same in every table', () => {
    const ring: SplitRing = {
      format: 'split',
      index: 5,
      size: 8,
      eventIdx: true,
      descAddr: 0,
      driverAddr: 0x100,
      deviceAddr: 0x200,
      descriptors: [
        desc(0, 1, 1),
        desc(1),
        desc(2),
        desc(3, 1, 4),
        desc(4),
        desc(5),
        desc(6),
        desc(7),
      ],
      // slot 0 was popped and used (head 2); slot 1 is in flight (head 3); slot 2 is available (head 0)
      avail: { flags: 0, idx: 3, ring: [2, 3, 0, 0, 0, 0, 0, 0], usedEvent: 0 },
      used: {
        flags: 0,
        idx: 1,
        ring: [{ id: 2, len: 5 }, ...Array(7).fill({ id: 0, len: 0 })],
        availEvent: 3,
      },
      device: { lastAvailIdx: 2, usedIdx: 1, signalledUsed: 1, inFlight: [3] },
      chainsInFlight: [{ head: 3, descriptors: [3, 4] }],
      unreadable: [],
    };
    const m = splitChains(ring);
    expect(m.chains.map((c) => [c.key, c.state, c.descriptors])).toEqual([
      [3, 'in-flight', [3, 4]],
      [0, 'available', [0, 1]],
      [2, 'used', [2]],
    ]);
    expect(m.byAvail.get(2)?.key).toBe(0);
    expect(m.byUsed.get(0)?.key).toBe(2);
    expect(m.byDesc.get(1)?.colour).toBe(chainColour(0));
    expect(m.byDesc.get(4)?.colour).toBe(chainColour(3));
    expect(m.byDesc.has(5)).toBe(false);
    // no chain colour is a direction colour's hue (blue 214, orange 36)
    for (let k = 0; k < 20; k++) expect(chainColour(k)).not.toMatch(/^hsl\((214|36) /);
  });
});
