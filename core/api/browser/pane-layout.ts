/**
 * The window's pane sizes: what the user dragged and collapsed, kept per
 * user (the renderer stores it in localStorage) and clamped to the window
 * it is shown in, so a layout saved on a big screen still fits a small one.
 * Pure: the renderer owns the storage and the pointer events.
 */
import { z } from 'zod';

/** Which bottom dock shows: both side by side, or one of them as a tab. */
export const DockMode = z.enum(['both', 'events', 'throughput']);
export type DockMode = z.infer<typeof DockMode>;

export const PaneLayout = z.object({
  /** Topology tree width, px. */
  tree: z.number().finite(),
  /** Inspector width, px. */
  inspector: z.number().finite(),
  /** Bottom dock height, px (when not collapsed). */
  dock: z.number().finite(),
  dockCollapsed: z.boolean(),
  dockMode: DockMode,
  treeCollapsed: z.boolean(),
  inspectorCollapsed: z.boolean(),
  /** Capture tab: the details pane's height, px (the list takes the rest). */
  captureDetail: z.number().finite(),
  /** Capture tab: the bytes pane's height, px. */
  captureBytes: z.number().finite(),
});
export type PaneLayout = z.infer<typeof PaneLayout>;

export const DEFAULT_LAYOUT: PaneLayout = {
  tree: 230,
  inspector: 300,
  dock: 180,
  dockCollapsed: false,
  dockMode: 'both',
  treeCollapsed: false,
  inspectorCollapsed: false,
  captureDetail: 96,
  captureBytes: 80,
};

/** The bounds of each size, in px; the window's size limits them further (fitLayout). */
export const PANE_BOUNDS = {
  tree: { min: 150, max: 480 },
  inspector: { min: 220, max: 560 },
  dock: { min: 90, max: 600 },
  captureDetail: { min: 48, max: 600 },
  captureBytes: { min: 48, max: 600 },
} as const;

/**
 * The center column never gets narrower than this (a hex dump line, 72 columns of
 * 11 px monospace, fits), nor the main row lower than this.
 */
export const MIN_CENTER_WIDTH = 540;
export const MIN_MAIN_HEIGHT = 260;

/** The docks never take more than this share of the window's height. */
export const MAX_DOCK_SHARE = 0.45;

export const LAYOUT_STORAGE_KEY = 'vmchan.layout.v1';

const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);

/** A stored layout read back: what parses is kept, anything else falls back to the default. */
export function parseLayout(stored: string | null): PaneLayout {
  if (stored === null) return { ...DEFAULT_LAYOUT };
  let raw: unknown;
  try {
    raw = JSON.parse(stored);
  } catch {
    return { ...DEFAULT_LAYOUT };
  }
  const partial = PaneLayout.partial().safeParse(raw);
  return partial.success
    ? { ...DEFAULT_LAYOUT, ...stripUndefined(partial.data) }
    : { ...DEFAULT_LAYOUT };
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * The sizes as they can be shown in a window of `width` x `height`: each in
 * its bounds, the side panes leaving the center MIN_CENTER_WIDTH, the dock
 * leaving the main row MIN_MAIN_HEIGHT and taking at most MAX_DOCK_SHARE of
 * the height, so a small window keeps its work area.
 */
export function fitLayout(l: PaneLayout, width: number, height: number): PaneLayout {
  let tree = clamp(l.tree, PANE_BOUNDS.tree.min, PANE_BOUNDS.tree.max);
  let inspector = clamp(l.inspector, PANE_BOUNDS.inspector.min, PANE_BOUNDS.inspector.max);
  const sides = (l.treeCollapsed ? 0 : tree) + (l.inspectorCollapsed ? 0 : inspector);
  const room = width - MIN_CENTER_WIDTH;
  if (sides > room && sides > 0) {
    // shrink both sides in proportion, never under their minimum
    const k = Math.max(room, 0) / sides;
    tree = Math.max(PANE_BOUNDS.tree.min, Math.floor(tree * k));
    inspector = Math.max(PANE_BOUNDS.inspector.min, Math.floor(inspector * k));
  }
  const dockMax = Math.max(
    PANE_BOUNDS.dock.min,
    Math.min(PANE_BOUNDS.dock.max, height - MIN_MAIN_HEIGHT, Math.floor(height * MAX_DOCK_SHARE)),
  );
  const dock = clamp(l.dock, PANE_BOUNDS.dock.min, dockMax);
  return {
    ...l,
    tree,
    inspector,
    dock,
    captureDetail: clamp(
      l.captureDetail,
      PANE_BOUNDS.captureDetail.min,
      PANE_BOUNDS.captureDetail.max,
    ),
    captureBytes: clamp(l.captureBytes, PANE_BOUNDS.captureBytes.min, PANE_BOUNDS.captureBytes.max),
  };
}

/** A size after a drag of `delta` px (a keyboard step is a drag of ±16 px). */
export function resized(l: PaneLayout, pane: keyof typeof PANE_BOUNDS, delta: number): PaneLayout {
  const b = PANE_BOUNDS[pane];
  return { ...l, [pane]: clamp(l[pane] + delta, b.min, b.max) };
}

/**
 * The choice after a drag of what is shown: the dragged pane takes its new size
 * (from the size the user saw), every other pane keeps what the user chose, not
 * the size a narrow window fitted it to (saving those would keep a window's
 * squeeze after it grows again).
 */
export function dragged(
  chosen: PaneLayout,
  shown: PaneLayout,
  pane: keyof typeof PANE_BOUNDS,
  delta: number,
): PaneLayout {
  return { ...chosen, [pane]: resized(shown, pane, delta)[pane] };
}
