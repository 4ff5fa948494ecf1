/** The window's pane sizes: stored per user, read back safely, fitted to the window (core/api/browser/pane-layout.ts). */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LAYOUT,
  MIN_CENTER_WIDTH,
  MIN_MAIN_HEIGHT,
  MAX_DOCK_SHARE,
  PANE_BOUNDS,
  dragged,
  fitLayout,
  parseLayout,
  resized,
} from '../../core/api/browser/pane-layout.js';

describe('a stored layout', () => {
  it('round-trips through JSON', () => {
    const l = { ...DEFAULT_LAYOUT, tree: 300, dockCollapsed: true, dockMode: 'events' as const };
    expect(parseLayout(JSON.stringify(l))).toEqual(l);
  });

  it('falls back to the default when missing, not JSON, or of the wrong shape', () => {
    expect(parseLayout(null)).toEqual(DEFAULT_LAYOUT);
    expect(parseLayout('{not json')).toEqual(DEFAULT_LAYOUT);
    expect(parseLayout('{"tree":"wide"}')).toEqual(DEFAULT_LAYOUT);
  });

  it('keeps the fields an older version stored and defaults the new ones', () => {
    expect(parseLayout('{"tree":333}')).toEqual({ ...DEFAULT_LAYOUT, tree: 333 });
  });
});

describe('fitted to the window', () => {
  it('leaves the center its minimum width at 1024 px', () => {
    const l = fitLayout({ ...DEFAULT_LAYOUT, tree: 480, inspector: 560 }, 1024, 700);
    expect(l.tree + l.inspector).toBeLessThanOrEqual(1024 - MIN_CENTER_WIDTH);
    expect(l.tree).toBeGreaterThanOrEqual(PANE_BOUNDS.tree.min);
  });

  it('leaves the main row its minimum height', () => {
    const l = fitLayout({ ...DEFAULT_LAYOUT, dock: 600 }, 1024, 700);
    expect(l.dock).toBe(Math.min(700 - MIN_MAIN_HEIGHT, Math.floor(700 * MAX_DOCK_SHARE)));
    expect(fitLayout({ ...DEFAULT_LAYOUT, dock: 600 }, 1024, 420).dock).toBe(
      Math.max(
        PANE_BOUNDS.dock.min,
        Math.min(420 - MIN_MAIN_HEIGHT, Math.floor(420 * MAX_DOCK_SHARE)),
      ),
    );
  });

  it('a collapsed side gives its width to the center', () => {
    const l = fitLayout(
      { ...DEFAULT_LAYOUT, tree: 480, inspector: 560, treeCollapsed: true },
      1280,
      700,
    );
    // 560 fits next to the minimum center once the tree is collapsed
    expect(l.inspector).toBe(560);
    expect(
      fitLayout({ ...DEFAULT_LAYOUT, tree: 480, inspector: 560 }, 1280, 700).inspector,
    ).toBeLessThan(560);
  });

  it('a drag stops at the bounds', () => {
    expect(resized(DEFAULT_LAYOUT, 'tree', -1000).tree).toBe(PANE_BOUNDS.tree.min);
    expect(resized(DEFAULT_LAYOUT, 'dock', 1000).dock).toBe(PANE_BOUNDS.dock.max);
    expect(resized(DEFAULT_LAYOUT, 'inspector', 16).inspector).toBe(DEFAULT_LAYOUT.inspector + 16);
  });

  it('a drag in a narrow window keeps the other panes as chosen, not as squeezed', () => {
    const chosen = { ...DEFAULT_LAYOUT, tree: 400, inspector: 500 };
    const shown = fitLayout(chosen, 1024, 700);
    expect(shown.tree).toBeLessThan(400); // the window squeezed both sides
    const after = dragged(chosen, shown, 'dock', 40);
    expect(after.tree).toBe(400);
    expect(after.inspector).toBe(500);
    expect(after.dock).toBe(shown.dock + 40);
    // back in a wide window the sides are as the user left them
    expect(fitLayout(after, 1920, 1080).tree).toBe(400);
    // the dragged side starts from the size the user saw
    expect(dragged(chosen, shown, 'tree', 16).tree).toBe(shown.tree + 16);
  });
});
