/**
 * Issue 13 item 7: opening a FIFO as a capture (`openCapture`, `vmchan read
 * FIFO`) blocked the whole server on the main thread. Never block the event
 * loop on a path the user names: a FIFO, a device or a directory is refused
 * by name, for reading and for writing, while timers keep running.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureError } from '../../core/capture/error.js';
import { PcapngWriter } from '../../core/capture/pcapng-writer.js';
import { openCapture, openCaptureSync } from '../../core/capture/pcapng-reader.js';
import { rig } from '../api/helpers.js';

const ROOT = path.join(import.meta.dirname, '..', '..');
let dir: string;
let fifo: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-fifo-'));
  fifo = path.join(dir, 'capture.pcapng');
  const made = spawnSync('mkfifo', [fifo]);
  if (made.status !== 0) throw new Error('mkfifo failed: apt-get install coreutils');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('item 7: a FIFO is never opened as a capture', () => {
  it('openCapture and openCaptureSync refuse a FIFO, a device and a directory by name, at once', async () => {
    for (const [where, what] of [
      [fifo, 'a FIFO (named pipe)'],
      ['/dev/zero', 'a character device'],
      [dir, 'a directory'],
    ] as const) {
      // A blocking open would hang here (and the whole process with it).
      const value = await openCapture(where);
      expect(value).toBeInstanceOf(CaptureError);
      expect((value as CaptureError).toString()).toBe(
        `${where}: not a capture file: it is ${what}; vmchan reads captures from regular files`,
      );
      expect((value as CaptureError).kind).toBe('NotRegularFile');
      expect(openCaptureSync(where)).toMatchObject({ kind: 'NotRegularFile' });
    }
  });

  it('the writer refuses a FIFO instead of waiting for a reader', () => {
    const w = PcapngWriter.create(fifo);
    expect(w).toBeInstanceOf(CaptureError);
    expect((w as CaptureError).toString()).toBe(
      `${fifo}: cannot create capture file: it is a FIFO (named pipe); a capture is written to a regular file`,
    );
  });

  it('the API answers openCapture, startCapture and saveCapture on a FIFO with a refusal, and keeps serving', async () => {
    const r = await rig();
    try {
      expect(await r.run({ cmd: 'openCapture', path: fifo })).toEqual({
        ok: false,
        error: {
          kind: 'IoError',
          message:
            'not a capture file: it is a FIFO (named pipe); vmchan reads captures from regular files',
        },
      });
      expect(await r.run({ cmd: 'startCapture', path: fifo })).toEqual({
        ok: false,
        error: {
          kind: 'Refused',
          message: `${fifo}: cannot create capture file: it is a FIFO (named pipe); a capture is written to a regular file`,
        },
      });
      await r.must({ cmd: 'startCapture' });
      await r.must({ cmd: 'stopCapture' });
      expect(await r.run({ cmd: 'saveCapture', path: fifo })).toEqual({
        ok: false,
        error: {
          kind: 'Refused',
          message: `cannot save the capture to ${fifo}: it is a FIFO (named pipe)`,
        },
      });
      expect((await r.run({ cmd: 'hello' })).ok).toBe(true);
    } finally {
      await r.close();
    }
  });

  it('`vmchan read FIFO` says what it is and exits 1 without waiting for a writer', async () => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'vmchan.js'), 'read', fifo], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(err).toBe(
      `vmchan: ${fifo}: not a capture file: it is a FIFO (named pipe); vmchan reads captures from regular files\n`,
    );
    expect(code).toBe(1);
  });
});
