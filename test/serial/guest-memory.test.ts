/**
 * L12: a guest write that finds guest memory short waits for memory, as
 * Linux's GFP_KERNEL allocation in alloc_buf retries reclaim instead of
 * failing: EAGAIN with O_NONBLOCK (and poll shows no POLLOUT), a blocking
 * write sleeps until the device has used transmit buffers, never ENOMEM.
 */
import { describe, expect, it } from 'vitest';
import { isErrno } from '../../core/serial/guest/errno.js';
import { O_NONBLOCK, O_RDWR, POLLOUT } from '../../core/serial/guest/files.js';
import { MAX_WRITE } from '../../core/serial/guest/port-files.js';
import { isFault } from '../../core/virtio/fault.js';
import { bootLab, caseStudy, must, pattern, RINGS, sha1 } from './helpers.js';

const TEST1 = '/dev/virtio-ports/test1';

/** Allocate guest memory until only `leave` bytes of room remain (in 32 KiB pieces). */
function hog(lab: Awaited<ReturnType<typeof bootLab>>, leave: number): void {
  const addrs: number[] = [];
  for (;;) {
    const a = lab.allocator.alloc(64 * 1024, 16);
    if (isFault(a)) break;
    addrs.push(a);
  }
  let room = 0;
  while (room < leave && addrs.length > 0) {
    lab.allocator.release(addrs.pop()!);
    room += 64 * 1024;
  }
}

describe('L12 a write waits for guest memory', () => {
  for (const ring of RINGS) {
    it(`L12 EAGAIN without POLLOUT when memory is short, a blocking write resumes as the host drains (${ring})`, async () => {
      const t = caseStudy(ring);
      t.chardevs = [{ id: 'test1', capacity: 64 * 1024 }];
      const lab = await bootLab(t);
      const files = lab.guest.files;
      const host = lab.host('test1');
      host.connect();
      const fd = must(await files.open(TEST1, O_RDWR | O_NONBLOCK));
      hog(lab, 3 * 64 * 1024);
      const sent: Uint8Array[] = [];
      let result: Awaited<ReturnType<typeof files.write>>;
      for (let i = 0; ; i++) {
        const block = pattern(MAX_WRITE, i + 1);
        result = await files.write(fd, block);
        if (isErrno(result)) break;
        sent.push(block.subarray(0, result));
        expect(sent.length).toBeLessThan(64); // memory runs out long before the queue
      }
      // memory, not the queue: far fewer writes than descriptors
      expect(result).toHaveProperty('code', 'EAGAIN');
      expect(sent.length).toBeGreaterThan(0);
      expect(sent.length).toBeLessThan(16);
      expect(must(files.pollNow(fd)) & POLLOUT).toBe(0);

      // a blocking write sleeps until the host takes data and buffers come back
      await files.setFlags(fd, 0);
      const last = pattern(MAX_WRITE, 99);
      let done = false;
      const blocked = files.write(fd, last).then((n) => {
        done = true;
        return n;
      });
      await lab.settle();
      expect(done).toBe(false);
      const got: Uint8Array[] = [];
      const total = sent.reduce((n, b) => n + b.length, 0) + last.length;
      let gotBytes = 0;
      while (gotBytes < total) {
        const chunk = host.read();
        got.push(chunk);
        gotBytes += chunk.length;
        await lab.settle();
      }
      expect(await blocked).toBe(last.length);
      expect(sha1(Buffer.concat(got))).toBe(sha1(Buffer.concat([...sent, last])));
    });
  }
});
