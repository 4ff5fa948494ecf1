/**
 * The port files' system calls, as a Linux guest program sees them: open and
 * close (L3), read (L4), write (L5), poll (L6), SIGIO (L7), lseek (L8).
 */
import { describe, expect, it } from 'vitest';
import { isErrno } from '../../core/serial/guest/errno.js';
import {
  O_ASYNC,
  O_NONBLOCK,
  O_RDWR,
  POLLIN,
  POLLOUT,
  pollNames,
  SEEK_SET,
} from '../../core/serial/guest/files.js';
import { MAX_WRITE } from '../../core/serial/guest/port-files.js';
import {
  bootLab,
  caseStudy,
  controlTexts,
  must,
  pattern,
  readExactly,
  record,
  RINGS,
  text,
} from './helpers.js';

const TEST1 = '/dev/virtio-ports/test1';

async function opened(ring: 'split' | 'packed' = 'split', flags = O_RDWR) {
  const lab = await bootLab(caseStudy(ring));
  const fd = must(await lab.guest.files.open(TEST1, flags));
  return { lab, fd, files: lab.guest.files, host: lab.host('test1') };
}

describe('L3 open and close', () => {
  it('L3 a serial port opens once: a second open gets EBUSY until the first closes', async () => {
    const { lab, fd, files } = await opened();
    const second = await files.open('/dev/vport0p1');
    expect(isErrno(second) && second.code).toBe('EBUSY');
    expect(await files.close(fd)).toBe(0);
    expect(isErrno(await lab.guest.files.open(TEST1))).toBe(false);
  });

  it('L3 open sends PORT_OPEN 1 (and returns once the device has it), close sends PORT_OPEN 0', async () => {
    const lab = await bootLab(caseStudy());
    const toDevice = controlTexts(lab.events, 'to-device');
    const fd = must(await lab.guest.files.open(TEST1));
    expect(toDevice).toEqual(['PORT_OPEN id=1 value=1']);
    expect(lab.port('test1')!.port.guestConnected).toBe(true);
    await lab.guest.files.close(fd);
    expect(toDevice).toEqual(['PORT_OPEN id=1 value=1', 'PORT_OPEN id=1 value=0']);
    expect(lab.port('test1')!.port.guestConnected).toBe(false);
  });

  it('L3 a console port is not opened through its vport node (ENXIO); hvc is the way', async () => {
    const lab = await bootLab(caseStudy());
    for (const path of ['/dev/vport0p0', '/dev/virtio-ports/console.0']) {
      const r = await lab.guest.files.open(path);
      expect(isErrno(r) && r.code).toBe('ENXIO');
    }
    const a = must(await lab.guest.files.open('/dev/hvc0'));
    const b = must(await lab.guest.files.open('/dev/hvc0')); // a tty opens many times
    expect(a).not.toBe(b);
  });

  it('L3 close discards unread data, counted', async () => {
    const { lab, fd, files, host } = await opened();
    const drops = record(lab.events, 'drop');
    host.connect();
    host.write(pattern(5000));
    await lab.settle();
    await files.close(fd);
    expect(drops).toEqual([
      {
        device: 'vser0',
        nr: 1,
        side: 'guest',
        bytes: 5000,
        reason: 'closed-unread',
        direction: 'to-guest',
      },
    ]);
    const again = must(await files.open(TEST1));
    await files.setFlags(again, O_NONBLOCK);
    expect(await files.read(again, 100)).toHaveProperty('code', 'EAGAIN');
  });

  it('L3 a closed or unknown descriptor is EBADF; an unknown path ENOENT', async () => {
    const { fd, files } = await opened();
    await files.close(fd);
    expect(await files.read(fd, 1)).toHaveProperty('code', 'EBADF');
    expect(await files.close(fd)).toHaveProperty('code', 'EBADF');
    expect(await files.open('/dev/virtio-ports/nope')).toHaveProperty('code', 'ENOENT');
  });
});

describe('L4 read', () => {
  it('L4 returns 0 (EOF) at once when the host is disconnected and nothing is queued', async () => {
    const { files, fd } = await opened();
    const r = must(await files.read(fd, 100));
    expect(r.length).toBe(0);
  });

  it('L4 with O_NONBLOCK and no data: EAGAIN', async () => {
    const { files, host, lab } = await opened();
    host.connect();
    await lab.settle();
    const fd = must(await files.open('/dev/virtio-ports/test2', O_RDWR | O_NONBLOCK));
    lab.host('test2').connect();
    await lab.settle();
    expect(await files.read(fd, 10)).toHaveProperty('code', 'EAGAIN');
  });

  it('L4 blocks until data comes, then returns at most one buffer', async () => {
    const { files, fd, host, lab } = await opened();
    host.connect();
    await lab.settle();
    let done = false;
    const reading = files.read(fd, 100_000).then((r) => ((done = true), r));
    await lab.settle();
    expect(done).toBe(false);
    host.write(pattern(10_000));
    const r = must(await reading);
    expect(r.length).toBe(4096); // one page-sized buffer per read, as fill_readbuf
    expect(text(r)).toBe(text(pattern(10_000).subarray(0, 4096)));
  });

  it('L4 a read into the caller buffer fills it in place, still one buffer per read; a short buffer is EFAULT', async () => {
    const { files, fd, host, lab } = await opened();
    host.connect();
    host.write(pattern(6_000));
    await lab.settle();
    const into = new Uint8Array(8192).fill(0xee);
    expect(await files.read(fd, 8192, into.subarray(0, 100))).toHaveProperty('code', 'EFAULT');
    const first = must(await files.read(fd, 8192, into));
    expect(first.length).toBe(4096);
    expect(first.buffer).toBe(into.buffer);
    expect(first.byteOffset).toBe(0);
    const second = must(await files.read(fd, 4096, into.subarray(4096)));
    expect(second.length).toBe(6_000 - 4096);
    expect(second.byteOffset).toBe(4096);
    expect(text(into.subarray(0, 6_000))).toBe(text(pattern(6_000)));
    expect(into[6_000]).toBe(0xee); // nothing written past what was read
  });

  it('L4 blocks until the host disconnects, then returns 0; queued data is read first', async () => {
    const { files, fd, host, lab } = await opened();
    host.connect();
    await lab.settle();
    const reading = files.read(fd, 10);
    await lab.settle();
    host.disconnect();
    expect(must(await reading).length).toBe(0);
    host.connect();
    host.write('last words');
    await lab.settle();
    host.disconnect();
    await lab.settle();
    expect(text(must(await files.read(fd, 100)))).toBe('last words');
    expect(must(await files.read(fd, 100)).length).toBe(0);
  });

  it('L4 after hot-unplug: ENODEV', async () => {
    const t = caseStudy();
    t.devices![0]!.ports![1]!.id = 'p1';
    const lab = await bootLab(t);
    const fd = must(await lab.guest.files.open(TEST1));
    lab.deviceDel('p1');
    await lab.settle();
    expect(await lab.guest.files.read(fd, 1)).toHaveProperty('code', 'ENODEV');
    expect(await lab.guest.files.write(fd, 'x')).toHaveProperty('code', 'ENODEV'); // L5 too
  });
});

describe('L5 write', () => {
  it('L5 a zero-length write returns 0', async () => {
    const { files, fd } = await opened();
    expect(await files.write(fd, new Uint8Array(0))).toBe(0);
  });

  it('L5 one write puts at most 32 KiB in one buffer (a short write)', async () => {
    const { files, fd, host, lab } = await opened();
    const sink: Uint8Array[] = [];
    host.onData((b) => sink.push(b));
    host.connect();
    await lab.settle();
    expect(await files.write(fd, pattern(100_000))).toBe(MAX_WRITE);
    await lab.settle();
    expect(sink.reduce((n, b) => n + b.length, 0)).toBe(32 * 1024);
  });

  it('L5 blocks while the host is disconnected (EAGAIN with O_NONBLOCK)', async () => {
    const { files, fd, lab } = await opened();
    let done = false;
    void files.write(fd, 'waiting').then(() => (done = true));
    await lab.settle();
    expect(done).toBe(false);
    await files.setFlags(fd, O_NONBLOCK);
    expect(await files.write(fd, 'x')).toHaveProperty('code', 'EAGAIN');
  });

  for (const ring of RINGS) {
    it(`L5 a blocked write is released when the host connects (${ring})`, async () => {
      const { files, fd, host, lab } = await opened(ring);
      const writing = files.write(fd, 'hello, whoever comes');
      await lab.settle();
      host.connect();
      expect(await writing).toBe(20);
      await lab.settle();
      expect(host.readText()).toBe('hello, whoever comes');
    });
  }

  it('L5 blocks while the transmit queue is full (EAGAIN with O_NONBLOCK), continues as the host drains', async () => {
    const t = caseStudy();
    t.chardevs = [{ id: 'test1', capacity: 1 }];
    const lab = await bootLab(t);
    const files = lab.guest.files;
    const host = lab.host('test1');
    host.connect();
    const fd = must(await files.open(TEST1, O_RDWR | O_NONBLOCK));
    let writes = 0;
    while (!isErrno(await files.write(fd, 'z'))) writes++;
    // one descriptor per write: the first went into the host's 1-byte buffer,
    // the next one is held by the throttled port, 127 more fill the queue
    expect(writes).toBe(129);
    expect(await files.write(fd, 'z')).toHaveProperty('code', 'EAGAIN');
    await files.setFlags(fd, 0);
    let released = false;
    const blocked = files.write(fd, 'last').then(() => (released = true));
    await lab.settle();
    expect(released).toBe(false);
    const got: Uint8Array[] = [];
    while (!released) {
      got.push(host.read());
      await lab.settle();
    }
    await blocked;
    while (got.reduce((n, b) => n + b.length, 0) < 133) {
      got.push(host.read());
      await lab.settle();
    }
    expect(text(Buffer.concat(got))).toBe('z'.repeat(129) + 'last');
  });
});

describe('L6 poll', () => {
  for (const ring of RINGS) {
    it(`L6 the full sequence: absent IN|HUP, connect OUT, data IN|OUT, close with data IN|HUP, drained IN|HUP, reconnect OUT (${ring})`, async () => {
      // behaviours.md lists the HUP states as "HUP"; its own rule (and
      // Linux's will_read_block) also sets IN whenever the host is gone,
      // because a read would not block: it returns EOF. Linux wins.
      const { files, fd, host, lab } = await opened(ring);
      const now = (): string => pollNames(must(files.pollNow(fd)));
      expect(now()).toBe('IN|HUP');
      host.connect();
      await lab.settle();
      expect(now()).toBe('OUT');
      host.write('data');
      await lab.settle();
      expect(now()).toBe('IN|OUT');
      host.disconnect();
      await lab.settle();
      expect(now()).toBe('IN|HUP');
      expect(text(must(await files.read(fd, 100)))).toBe('data');
      expect(now()).toBe('IN|HUP');
      host.connect();
      await lab.settle();
      expect(now()).toBe('OUT');
    });
  }

  it('L6 a waiting poll wakes when its event comes', async () => {
    const { files, fd, host, lab } = await opened();
    host.connect();
    await lab.settle();
    const waiting = files.poll(fd, POLLIN);
    await lab.settle();
    host.write('x');
    expect(pollNames(must(await waiting))).toBe('IN|OUT');
    expect(pollNames(must(await files.poll(fd, POLLOUT)))).toBe('IN|OUT');
  });
});

describe('L7 SIGIO', () => {
  it('L7 goes to owners that asked with O_ASYNC: data, host connect, host disconnect', async () => {
    const { files, fd, host, lab } = await opened();
    const got: string[] = [];
    files.setOwner(fd, () => got.push('SIGIO'));
    host.connect();
    await lab.settle();
    expect(got).toEqual([]); // no O_ASYNC yet
    await files.setFlags(fd, O_ASYNC);
    host.disconnect();
    await lab.settle();
    expect(got).toHaveLength(1);
    host.connect();
    await lab.settle();
    expect(got).toHaveLength(2);
    host.write('ping');
    await lab.settle();
    expect(got).toHaveLength(3);
    await files.setFlags(fd, 0);
    host.write('pong');
    await lab.settle();
    expect(got).toHaveLength(3);
  });

  it('L7 O_ASYNC given to open() has no effect (as in Linux); fcntl turns it on', async () => {
    const lab = await bootLab(caseStudy());
    const fd = must(await lab.guest.files.open(TEST1, O_RDWR | O_ASYNC));
    const got: number[] = [];
    lab.guest.files.setOwner(fd, (s) => got.push(s.fd));
    lab.host('test1').connect();
    await lab.settle();
    expect(got).toEqual([]);
  });
});

describe('L8 lseek', () => {
  it('L8 lseek on a port fails with ESPIPE (vport and hvc), a sysfs file seeks', async () => {
    const { files, fd } = await opened();
    expect(await files.lseek(fd, 0, SEEK_SET)).toHaveProperty('code', 'ESPIPE');
    const hvc = must(await files.open('/dev/hvc0'));
    expect(await files.lseek(hvc, 0, SEEK_SET)).toHaveProperty('code', 'ESPIPE');
    const name = must(await files.open('/sys/class/virtio-ports/vport0p1/name'));
    expect(text(must(await files.read(name, 3)))).toBe('tes');
    expect(await files.lseek(name, 1, SEEK_SET)).toBe(1);
    expect(text(must(await files.read(name, 100)))).toBe('est1\n');
  });

  it('L4 L5 reads and writes of 1 MiB both ways keep every byte in order', async () => {
    const { files, fd, host, lab } = await opened();
    const sink: Uint8Array[] = [];
    host.onData((b) => sink.push(b));
    host.connect();
    const data = pattern(1 << 20, 99);
    host.write(data);
    expect(Buffer.compare(await readExactly(files, fd, data.length), data)).toBe(0);
    expect(await files.writeAll(fd, data)).toBe(data.length);
    await lab.settle();
    expect(Buffer.compare(Buffer.concat(sink), data)).toBe(0);
  });
});
