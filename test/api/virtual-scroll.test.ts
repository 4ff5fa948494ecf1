/** The scaled-scroll mapping of the capture list (core/api/browser/virtual-scroll.ts). */
import { describe, expect, it } from 'vitest';
import {
  MAX_SCROLL_PX,
  clampTop,
  isScaled,
  maxScrollTop,
  maxTop,
  pageRows,
  revealTop,
  scrollTopFor,
  spacerHeight,
  topAtScroll,
  wheelRows,
  windowAt,
  type ScrollGeometry,
} from '../../core/api/browser/virtual-scroll.js';

const small: ScrollGeometry = { count: 100, rowHeight: 20, viewport: 400 };
const huge: ScrollGeometry = { count: 10_000_000, rowHeight: 20, viewport: 600 };

describe('below the cap', () => {
  it('is the identity: one scroll pixel is one pixel', () => {
    expect(isScaled(small)).toBe(false);
    expect(spacerHeight(small)).toBe(2000);
    expect(maxScrollTop(small)).toBe(1600);
    expect(topAtScroll(0, small)).toBe(0);
    expect(topAtScroll(30, small)).toBeCloseTo(1.5);
    expect(topAtScroll(1600, small)).toBe(80);
    expect(scrollTopFor(1.5, small)).toBeCloseTo(30);
  });

  it('lays out the rows that show, shifted by the fraction', () => {
    expect(windowAt(1.5, small)).toEqual({ first: 1, count: 21, offset: -10 });
    // the end: the last row sits at the bottom
    const end = windowAt(maxTop(small), small);
    expect(end.first + end.count).toBe(100);
  });

  it('a list shorter than the viewport never scrolls', () => {
    const g = { count: 5, rowHeight: 20, viewport: 400 };
    expect(maxScrollTop(g)).toBe(0);
    expect(topAtScroll(100, g)).toBe(0);
    expect(scrollTopFor(3, g)).toBe(0);
    expect(windowAt(0, g)).toEqual({ first: 0, count: 5, offset: -0 });
  });
});

describe('10 million rows', () => {
  it('fit a spacer far below the 16.7 M px browsers allow', () => {
    expect(isScaled(huge)).toBe(true);
    expect(spacerHeight(huge)).toBe(MAX_SCROLL_PX);
    expect(MAX_SCROLL_PX).toBeLessThan(2 ** 24);
  });

  it('maps the scrollbar ends to the first and the last row', () => {
    expect(topAtScroll(0, huge)).toBe(0);
    const end = windowAt(topAtScroll(maxScrollTop(huge), huge), huge);
    expect(end.first + end.count).toBe(10_000_000);
    expect(topAtScroll(maxScrollTop(huge) / 2, huge)).toBeCloseTo(maxTop(huge) / 2, 3);
  });

  it('round-trips a row through the scroll position (within a scroll pixel)', () => {
    const perPixel = maxTop(huge) / maxScrollTop(huge);
    expect(perPixel).toBeGreaterThan(1); // one pixel spans rows: why wheel moves by rows
    for (const row of [0, 1, 12_345, 5_000_000, 9_999_000, maxTop(huge)]) {
      const st = scrollTopFor(row, huge);
      expect(st).toBeGreaterThanOrEqual(0);
      expect(st).toBeLessThanOrEqual(maxScrollTop(huge));
      expect(Math.abs(topAtScroll(Math.round(st), huge) - row)).toBeLessThanOrEqual(perPixel);
    }
  });

  it('clamps positions and reveals rows', () => {
    expect(clampTop(-5, huge)).toBe(0);
    expect(clampTop(Infinity, huge)).toBe(maxTop(huge));
    expect(clampTop(2e7, huge)).toBe(maxTop(huge));
    const fit = huge.viewport / huge.rowHeight;
    expect(revealTop(100, 0, huge)).toBe(100 + 1 - fit);
    expect(revealTop(10, 5, huge)).toBe(5);
    expect(revealTop(3, 5, huge)).toBe(3);
  });

  it('moves by rows for wheel and keys', () => {
    expect(pageRows(huge)).toBe(30);
    expect(wheelRows(3, 1, huge)).toBe(3);
    expect(wheelRows(100, 0, huge)).toBe(3);
    expect(wheelRows(-1, 2, huge)).toBe(-30);
  });
});
