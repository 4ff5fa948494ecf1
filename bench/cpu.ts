/**
 * CPU time for the lab benches: the whole process (process.cpuUsage: every
 * thread, V8's GC and compiler helpers and libuv's included) and the main
 * thread alone (Linux's per-thread schedstat), so a figure shows whether the
 * work is in our JavaScript or around it; and the process's time in the
 * kernel (the system part of process.cpuUsage), the socket copies and
 * wake-ups a relay and the lab make alike, so what is left of the main
 * thread's time is JavaScript.
 */
import * as fs from 'node:fs';

export interface CpuSample {
  /** Seconds of CPU of the whole process. */
  process: number;
  /** Seconds of CPU of the main thread; NaN where /proc has no schedstat. */
  main: number;
  /** Of `process`, the seconds spent in the kernel (system calls, page faults). */
  kernel: number;
}

/** The main thread's on-CPU time in nanoseconds (first field of schedstat). */
function mainThreadNs(): number {
  try {
    const text = fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8');
    return Number(text.split(' ')[0]);
  } catch {
    return NaN;
  }
}

export function cpuNow(): CpuSample {
  const u = process.cpuUsage();
  return { process: (u.user + u.system) / 1e6, main: mainThreadNs() / 1e9, kernel: u.system / 1e6 };
}

export function cpuSince(start: CpuSample): CpuSample {
  const now = cpuNow();
  return {
    process: now.process - start.process,
    main: now.main - start.main,
    kernel: now.kernel - start.kernel,
  };
}

/** CPU seconds scaled to what moving `per` bytes would cost at the same rate. */
export function cpuPer(sample: CpuSample, bytes: number, per: number): CpuSample {
  return {
    process: (sample.process * per) / bytes,
    main: (sample.main * per) / bytes,
    kernel: (sample.kernel * per) / bytes,
  };
}
