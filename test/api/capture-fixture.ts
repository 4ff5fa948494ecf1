/**
 * Capture files for the capture view's tests: `n` records written fast with
 * PcapngWriter (small payloads), two named ports and a control message and
 * an event every so often, so filters and follow stream have something to
 * find. Record i (0-based) is:
 *   i % 1000 === 999   an event (guest-open on test2)
 *   i % 1000 === 998   a control message (PORT_OPEN id=1 value=1, host to guest)
 *   otherwise          data on test1 (i even) or test2 (i odd), guest to host when i % 3 === 0,
 *                      payload `rec <i>\n` (test1) or `msg <i>\n` (test2)
 */
import { CaptureError } from '../../core/capture/error.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { PcapngWriter } from '../../core/capture/pcapng-writer.js';
import {
  controlRecord,
  dataRecord,
  encodeControl,
  eventRecord,
  type CaptureRecord,
} from '../../core/capture/record.js';

/** Every record of a capture file the app wrote, read back with the pcapng reader. */
export function readBack(file: string): CaptureRecord[] {
  const reader = openCaptureSync(file);
  if (reader instanceof CaptureError) throw new Error(reader.message);
  try {
    const out: CaptureRecord[] = [];
    for (let i = 0; i < reader.count; i++) {
      const rec = reader.record(i);
      if (rec instanceof CaptureError) throw new Error(rec.message);
      out.push(rec);
    }
    return out;
  } finally {
    reader.close();
  }
}

export const T0 = 1_700_000_000_000_000_000n;

export function kindOf(i: number): 'data' | 'control' | 'event' {
  const m = i % 1000;
  return m === 999 ? 'event' : m === 998 ? 'control' : 'data';
}

export function writeCapture(file: string, n: number): void {
  const w = PcapngWriter.create(file, { os: false, bufferBytes: 4 << 20 });
  if (w instanceof CaptureError) throw new Error(w.toString());
  for (const [port, name] of [
    [1, 'test1'],
    [2, 'test2'],
  ] as const) {
    w.addInterface({ device: 'vser0', deviceIndex: 0, port, kind: 'virtserialport', name });
  }
  const control = encodeControl({ id: 1, event: 6, value: 1 });
  const enc = new TextEncoder();
  const words = ['rec ', 'msg '].map((s) => enc.encode(s));
  const buf = new Uint8Array(32);
  for (let i = 0; i < n; i++) {
    const time = T0 + BigInt(i) * 1000n;
    const kind = kindOf(i);
    if (kind === 'event') {
      w.write(
        eventRecord({ time, device: 'vser0', port: 2, portName: 'test2', event: 'guest-open' }),
      );
    } else if (kind === 'control') {
      w.write(controlRecord({ time, device: 'vser0', direction: 'host-to-guest', bytes: control }));
    } else {
      const port = (i & 1) + 1;
      buf.set(words[port - 1]!, 0);
      const digits = String(i);
      let o = 4;
      for (let k = 0; k < digits.length; k++) buf[o++] = digits.charCodeAt(k);
      buf[o++] = 0x0a;
      w.write(
        dataRecord({
          time,
          device: 'vser0',
          port,
          portName: port === 1 ? 'test1' : 'test2',
          direction: i % 3 === 0 ? 'guest-to-host' : 'host-to-guest',
          bytes: buf.subarray(0, o),
        }),
      );
    }
  }
  const err = w.close();
  if (err) throw new Error(err.toString());
}

/** "hello" typed on test1: one byte per record, guest to host, with host echo records between. */
export function writeTyped(file: string): void {
  const w = PcapngWriter.create(file, { os: false });
  if (w instanceof CaptureError) throw new Error(w.toString());
  w.addInterface({
    device: 'vser0',
    deviceIndex: 0,
    port: 1,
    kind: 'virtserialport',
    name: 'test1',
  });
  const enc = new TextEncoder();
  let t = T0;
  for (const c of 'xx hello hello') {
    w.write(
      dataRecord({
        time: (t += 1000n),
        device: 'vser0',
        port: 1,
        portName: 'test1',
        direction: 'guest-to-host',
        bytes: enc.encode(c),
      }),
    );
    w.write(
      dataRecord({
        time: (t += 1000n),
        device: 'vser0',
        port: 1,
        portName: 'test1',
        direction: 'host-to-guest',
        bytes: enc.encode('.'),
      }),
    );
  }
  const err = w.close();
  if (err) throw new Error(err.toString());
}
