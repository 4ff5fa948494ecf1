/** Small text helpers of the capture view. */
import type { CaptureListRow } from '../../../core/api/contract/capture-contract.js';

/** Seconds since the first record, as Wireshark's time column: `12.345678`. */
export function formatRel(seconds: number): string {
  return seconds.toFixed(6);
}

export function directionLabel(d: CaptureListRow['direction']): string {
  return d === 'host-to-guest' ? 'H→G' : d === 'guest-to-host' ? 'G→H' : '';
}
