/**
 * Bounding-box checks shared by the end-to-end suites (issue 17's
 * acceptance): a box shown, inside the viewport, apart from the others;
 * failures name the boxes at fault.
 */
import type { Locator } from 'playwright-core';

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The two viewports issue 17 asks for. */
export const VIEWPORTS = [
  { width: 1440, height: 900 },
  { width: 1024, height: 700 },
] as const;

/** The locator's box; an error naming `what` when it is not shown. */
export async function box(l: Locator, what: string): Promise<Box> {
  const b = await l.boundingBox();
  if (b === null) throw new Error(`${what}: not shown`);
  return b;
}

/** Inside a vw x vh viewport (half a pixel of rounding allowed). */
export function inside(b: Box, vw: number, vh: number): boolean {
  return b.x >= -0.5 && b.y >= -0.5 && b.x + b.width <= vw + 0.5 && b.y + b.height <= vh + 0.5;
}

/** The two boxes share more than half a pixel each way. */
export function overlap(a: Box, b: Box): boolean {
  return (
    a.x < b.x + b.width - 0.5 &&
    b.x < a.x + a.width - 0.5 &&
    a.y < b.y + b.height - 0.5 &&
    b.y < a.y + a.height - 0.5
  );
}

/** Every pair of boxes apart, every box inside the viewport; a message naming the culprits. */
export function checkBoxes(named: [string, Box][], vw: number, vh: number): string[] {
  const bad: string[] = [];
  for (const [n, b] of named)
    if (!inside(b, vw, vh)) bad.push(`${n} outside ${vw}x${vh}: ${JSON.stringify(b)}`);
  for (let i = 0; i < named.length; i++)
    for (let j = i + 1; j < named.length; j++)
      if (overlap(named[i]![1], named[j]![1])) bad.push(`${named[i]![0]} overlaps ${named[j]![0]}`);
  return bad;
}
