/**
 * Serial benchmarks: bytes per second through one virtio-serial port of a
 * whole emulated machine (in-memory chardev, device, rings, Linux-like guest
 * driver and port file), each way, as a ratio to a plain Buffer copy of the
 * same bytes measured in the same run; and the cost of step mode per
 * operation next to free-run's cost per operation.
 */
import { Lab } from '../core/engine/lab.js';
import { isErrno } from '../core/serial/guest/errno.js';
import { isQemuError } from '../core/base/qemu-error.js';

type Report = (name: string, value: number, baseline: number, unit: string) => void;

const MiB = 1024 * 1024;
/** Bytes per timed round; rounds repeat for about TARGET_MS. */
const ROUND_BYTES = 4 * MiB;
const TARGET_MS = 800;

function pattern(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 131 + (i >> 9)) & 0xff;
  return out;
}

async function machine(mode: 'free-run' | 'step' = 'free-run') {
  const lab = Lab.create({
    mode,
    devices: [{ id: 'vser0', ports: [{ driver: 'virtserialport', name: 'bench', chardev: 'c' }] }],
  });
  if (isQemuError(lab)) throw new Error(lab.message);
  if (mode === 'step') lab.scheduler.setMode('free-run');
  await lab.boot();
  const fd = await lab.guest.files.open('/dev/virtio-ports/bench');
  if (isErrno(fd)) throw new Error(fd.toString());
  const host = lab.host('c');
  let received = 0;
  host.onData((b) => (received += b.length));
  host.connect();
  await lab.settle();
  return { lab, fd, host, received: () => received };
}

/** Bytes per second of a plain copy of `size` bytes (the baseline). */
function copyRate(size: number): number {
  const src = pattern(size);
  const dst = new Uint8Array(size);
  dst.set(src); // warm up
  let bytes = 0;
  const start = performance.now();
  while (performance.now() - start < 300) {
    dst.set(src);
    bytes += size;
  }
  return bytes / ((performance.now() - start) / 1000);
}

async function hostToGuest(): Promise<number> {
  const { lab, fd, host } = await machine();
  const data = pattern(ROUND_BYTES);
  let bytes = 0;
  const start = performance.now();
  while (performance.now() - start < TARGET_MS) {
    host.write(data);
    let got = 0;
    while (got < ROUND_BYTES) {
      const r = await lab.guest.files.read(fd, 65536);
      if (isErrno(r) || r.length === 0) throw new Error('read failed');
      got += r.length;
    }
    bytes += got;
  }
  return bytes / ((performance.now() - start) / 1000);
}

async function guestToHost(): Promise<number> {
  const { lab, fd, received } = await machine();
  const data = pattern(ROUND_BYTES);
  const start = performance.now();
  while (performance.now() - start < TARGET_MS) {
    const w = await lab.guest.files.writeAll(fd, data);
    if (isErrno(w)) throw new Error(w.toString());
    await lab.settle();
  }
  return received() / ((performance.now() - start) / 1000);
}

/** One workload (64 KiB each way), timed per task in free-run and per step in step mode. */
async function perOperation(mode: 'free-run' | 'step'): Promise<number> {
  const { lab, fd, host } = await machine(mode);
  lab.scheduler.setMode(mode);
  const data = pattern(64 * 1024);
  let tasks = 0;
  let elapsed = 0;
  while (elapsed < TARGET_MS) {
    const before = lab.scheduler.stats.executed;
    const start = performance.now();
    host.write(data);
    let done = false;
    const work = (async () => {
      let got = 0;
      while (got < data.length) {
        const r = await lab.guest.files.read(fd, 65536);
        if (isErrno(r)) throw new Error(r.toString());
        got += r.length;
      }
      await lab.guest.files.writeAll(fd, data);
      done = true;
    })();
    if (mode === 'step') {
      while (!done) {
        if (lab.scheduler.step() === null) await new Promise((r) => setImmediate(r));
        else await null; // let the guest program's continuation run, as a UI step would
      }
      while (lab.scheduler.step() !== null) await null;
    } else {
      await work;
      await lab.settle();
    }
    await work;
    elapsed += performance.now() - start;
    tasks += lab.scheduler.stats.executed - before;
  }
  return (elapsed * 1000) / tasks; // µs per operation
}

export async function benchSerial(report: Report): Promise<void> {
  const baseline = copyRate(ROUND_BYTES);
  report('serial: host -> guest through one port (bytes/s)', await hostToGuest(), baseline, 'B/s');
  report('serial: guest -> host through one port (bytes/s)', await guestToHost(), baseline, 'B/s');
  const freeRun = await perOperation('free-run');
  const stepped = await perOperation('step');
  report('serial: step mode, time per step vs free-run per task', stepped, freeRun, 'µs/op');
}
