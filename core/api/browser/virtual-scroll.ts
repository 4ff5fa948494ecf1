/**
 * Scaled scrolling for lists far taller than a browser lets an element be
 * (Chromium and Firefox stop near 16.7 M pixels, 2^24; 10 M rows of 20 px
 * are 200 M). The scrollbar gets a spacer of at most `MAX_SCROLL_PX`, and a
 * scroll position maps linearly onto the list's virtual height, so the top
 * of the scrollbar is row 0 and its bottom shows the last row. Below the cap
 * the mapping is the identity (one pixel is one pixel, scrolling is smooth).
 *
 * The list keeps its own position (`top`, a fractional row index) as the
 * truth: wheel and keys move it by rows and then place the scrollbar, so a
 * step of one row is exact even where one scroll pixel spans several rows;
 * only a drag of the scrollbar (a scroll event the list did not cause) maps
 * the scroll position back to a row.
 *
 * Pure arithmetic, no DOM: the renderer and the unit tests share it.
 */

/** The tallest spacer made (well below the 2^24 px browsers cap layout at). */
export const MAX_SCROLL_PX = 8_000_000;

export interface ScrollGeometry {
  /** Rows in the list. */
  count: number;
  /** Height of one row, px. */
  rowHeight: number;
  /** Height of the visible area, px. */
  viewport: number;
  /** Cap of the spacer (default MAX_SCROLL_PX). */
  maxPx?: number;
}

/** Height of the list if every row were laid out. */
export function virtualHeight(g: ScrollGeometry): number {
  return Math.max(0, g.count) * g.rowHeight;
}

/** Height of the spacer that gives the scrollbar its range. */
export function spacerHeight(g: ScrollGeometry): number {
  return Math.min(virtualHeight(g), g.maxPx ?? MAX_SCROLL_PX);
}

/** Whether positions are scaled (the list is taller than the cap). */
export function isScaled(g: ScrollGeometry): boolean {
  return virtualHeight(g) > (g.maxPx ?? MAX_SCROLL_PX);
}

/** Largest scrollTop the spacer allows. */
export function maxScrollTop(g: ScrollGeometry): number {
  return Math.max(0, spacerHeight(g) - g.viewport);
}

/** Largest first visible row (fractional): the last row then sits at the bottom. */
export function maxTop(g: ScrollGeometry): number {
  return Math.max(0, virtualHeight(g) - g.viewport) / g.rowHeight;
}

export function clampTop(top: number, g: ScrollGeometry): number {
  if (!Number.isFinite(top)) return top > 0 ? maxTop(g) : 0;
  return Math.min(Math.max(0, top), maxTop(g));
}

/** The first visible row (fractional) for a scroll position. */
export function topAtScroll(scrollTop: number, g: ScrollGeometry): number {
  const ms = maxScrollTop(g);
  if (ms <= 0) return 0;
  const f = Math.min(Math.max(0, scrollTop), ms) / ms;
  return f * maxTop(g);
}

/** The scroll position that shows row `top` (fractional) first. */
export function scrollTopFor(top: number, g: ScrollGeometry): number {
  const mt = maxTop(g);
  if (mt <= 0) return 0;
  return (clampTop(top, g) / mt) * maxScrollTop(g);
}

/** Rows to lay out for a fractional top: first index, how many, and the layer's shift (px, <= 0). */
export function windowAt(
  top: number,
  g: ScrollGeometry,
): { first: number; count: number; offset: number } {
  const t = clampTop(top, g);
  const first = Math.floor(t);
  const offset = -(t - first) * g.rowHeight;
  const fit = Math.ceil(g.viewport / g.rowHeight) + 1;
  return { first, count: Math.max(0, Math.min(fit, g.count - first)), offset };
}

/** Rows that fit the viewport completely (a page for PageUp/PageDown). */
export function pageRows(g: ScrollGeometry): number {
  return Math.max(1, Math.floor(g.viewport / g.rowHeight));
}

/** The new top that brings row `index` into full view, or `top` unchanged when it is visible. */
export function revealTop(index: number, top: number, g: ScrollGeometry): number {
  const fit = g.viewport / g.rowHeight;
  if (index < top) return clampTop(index, g);
  if (index + 1 > top + fit) return clampTop(index + 1 - fit, g);
  return top;
}

/** Rows a wheel event moves: lines as rows, pixels as fractions of rows, pages as pages. */
export function wheelRows(
  deltaY: number,
  deltaMode: number,
  g: ScrollGeometry,
  linesPerNotch = 3,
): number {
  if (deltaMode === 1) return deltaY; // lines
  if (deltaMode === 2) return deltaY * pageRows(g); // pages
  // pixels: a notch of 100 px moves `linesPerNotch` rows, small touchpad moves proportionally
  return (deltaY / 100) * linesPerNotch;
}
