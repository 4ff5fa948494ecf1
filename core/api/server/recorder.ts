/**
 * The app's capture file, cut from the session's live capture: the session
 * keeps one {@link LiveHub} on the Capture that has every port (what `vmchan
 * extcap` and Wireshark read), and the file is one more consumer of that
 * hub's encoding (core/capture/shared-file.ts), keeping the records the
 * app's switches select. A record is encoded once, whether it goes to the
 * file, to Wireshark, or both; the file gets the very bytes the live
 * clients get, out of the encoder's buffer.
 *
 * What is captured follows the app's switches: a global one (every port
 * without a switch of its own) and each port's own, given at start and
 * flipped while it runs (`setAll`, `setPort`). dumpcap's ring buffer and
 * stop conditions (`-b`, `-a`) come with the file.
 *
 * Directions are the channel's: `to-guest` data and control messages the
 * device sends are host-to-guest; what the guest sends is guest-to-host.
 * A drop carries the direction of the bytes lost.
 */
import type { DropReason } from '../../serial/events.js';
import { CaptureError } from '../../capture/error.js';
import type { LiveHub } from '../../capture/live-server.js';
import { PortSelection } from '../../capture/record.js';
import { SharedCaptureFile } from '../../capture/shared-file.js';
import type { CaptureSwitches, Recorder } from './session.js';

/** Drops of bytes that were on their way to the host; the rest were going to the guest. */
const TO_HOST_DROPS: ReadonlySet<DropReason> = new Set<DropReason>([
  'host-disconnected',
  'console-backpressure',
  'unplugged',
  'device-reset',
  'no-port',
  'emergency-no-console',
]);

/** Which way the bytes of a drop were going: the event's own direction, else the reason's. */
export function dropDirection(
  reason: DropReason,
  direction?: 'to-guest' | 'to-host',
): 'guest-to-host' | 'host-to-guest' {
  if (direction !== undefined) return direction === 'to-host' ? 'guest-to-host' : 'host-to-guest';
  return TO_HOST_DROPS.has(reason) ? 'guest-to-host' : 'host-to-guest';
}

export type { CaptureSwitches } from './session.js';

/**
 * Start writing `file` (truncated) from `hub`, whose source is the
 * session's every-port Capture: the records the switches select, from now
 * on. The error is one line about the file.
 */
export function recordFromHub(
  hub: LiveHub,
  file: string,
  switches: CaptureSwitches,
): Recorder | CaptureError {
  const source = hub.capture;
  if (source === undefined)
    return new CaptureError('IoError', 'this session has no live capture to record from');
  const selection = new PortSelection(source, switches.all ?? true);
  for (const p of switches.ports ?? []) selection.setPort(p.device, p.nr, p.on);
  let failure: CaptureError | null = null;
  const written = SharedCaptureFile.open(hub, file, switches.ring ?? {}, {
    keeps: (r) => selection.wants(r.device, r.port),
    onError: (err) => {
      failure = err;
    },
    ...(switches.onStop !== undefined ? { onStop: switches.onStop } : {}),
  });
  if (written instanceof CaptureError) return written;
  return {
    path: file,
    get records() {
      return written.records;
    },
    get bytes() {
      return written.currentSize;
    },
    setAll: (on) => selection.setAll(on),
    setPort: (device, nr, on) => selection.setPort(device, nr, on),
    stop: () => {
      const err = written.close();
      return failure ?? err ?? null;
    },
  };
}
