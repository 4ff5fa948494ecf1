/**
 * The pane sizes of this window, remembered per user in localStorage
 * (core/api/browser/pane-layout.ts parses and fits them) and fitted to the window
 * as it is resized.
 */
import {
  LAYOUT_STORAGE_KEY,
  dragged,
  fitLayout,
  parseLayout,
  type PANE_BOUNDS,
  type PaneLayout,
} from '../../../core/api/browser/pane-layout.js';

function readStored(): string | null {
  try {
    return globalThis.localStorage?.getItem(LAYOUT_STORAGE_KEY) ?? null;
  } catch {
    return null; // storage refused (a locked-down profile): the default layout
  }
}

export class LayoutStore {
  /** What the user chose (saved as is). */
  chosen = $state<PaneLayout>(parseLayout(readStored()));
  width = $state(globalThis.innerWidth ?? 1440);
  height = $state(globalThis.innerHeight ?? 900);
  /** What is shown: the choice fitted to the window. */
  readonly shown = $derived(fitLayout(this.chosen, this.width, this.height));

  constructor() {
    globalThis.addEventListener?.('resize', () => {
      this.width = globalThis.innerWidth;
      this.height = globalThis.innerHeight;
    });
  }

  /** A toggle or a chosen size: the rest stays as chosen, not as fitted to this window. */
  set(patch: Partial<PaneLayout>): void {
    this.chosen = { ...this.chosen, ...patch };
    this.save();
  }

  /** A splitter drag: from the size shown, by `delta` px. */
  drag(pane: keyof typeof PANE_BOUNDS, delta: number): void {
    this.chosen = dragged(this.chosen, this.shown, pane, delta);
    this.save();
  }

  private save(): void {
    try {
      globalThis.localStorage?.setItem(LAYOUT_STORAGE_KEY, JSON.stringify(this.chosen));
    } catch {
      // storage full or refused: the layout lasts this session
    }
  }
}
