/**
 * The table from the engine's named errors to the API's error kinds
 * (core/api/server/api-error.ts): the kind decides, never the words.
 */
import { describe, expect, it } from 'vitest';
import { apiErrorKind, failWith, notFound, refused } from '../../core/api/server/api-error.js';
import { QemuError } from '../../core/base/qemu-error.js';
import { CaptureError } from '../../core/capture/error.js';
import { ChardevError } from '../../core/chardev/chardev-error.js';
import { MachineError } from '../../core/machine/machine-error.js';
import { fault } from '../../core/virtio/fault.js';

describe('API error kinds by table', () => {
  it('QEMU errors: DeviceNotFound is NotFound, a GenericError is Refused whatever it says', () => {
    expect(apiErrorKind(new QemuError("Device 'x' not found", 'DeviceNotFound'))).toBe('NotFound');
    // "not found" in the words of a GenericError does not make it NotFound
    expect(apiErrorKind(new QemuError("Property 'x.y' not found"))).toBe('Refused');
    expect(apiErrorKind(new QemuError('no such command', 'CommandNotFound'))).toBe('Unsupported');
  });

  it("the session's own refusals carry their kind", () => {
    expect(failWith(notFound('vser0 has no port 3'))).toEqual({
      ok: false,
      error: { kind: 'NotFound', message: 'vser0 has no port 3' },
    });
    expect(failWith(refused("nobody is connected to chardev 'out'"))).toEqual({
      ok: false,
      error: { kind: 'Refused', message: "nobody is connected to chardev 'out'" },
    });
  });

  it('other domains: by kind where it matters, else the domain default', () => {
    expect(apiErrorKind(new ChardevError('NotFound', "chardev 'c' not found"))).toBe('NotFound');
    expect(apiErrorKind(new ChardevError('Busy', 'busy'))).toBe('Refused');
    expect(apiErrorKind(new CaptureError('RecordOutOfRange', 'no record 9'))).toBe('NotFound');
    expect(apiErrorKind(new CaptureError('NotPcapng', 'not a pcapng file'))).toBe('ParseError');
    expect(apiErrorKind(new CaptureError('IoError', 'EACCES'))).toBe('IoError');
    expect(apiErrorKind(new MachineError('InvalidOption', 'bad'))).toBe('ParseError');
    expect(apiErrorKind(fault('InvalidDescriptorIndex', 'M2', 'head 9 >= 8'))).toBe('Refused');
  });

  it('every error keeps kind, message and its details in JSON', () => {
    const e = new CaptureError('TruncatedBlock', 'block runs past the end', { offset: 64 });
    expect(e.toJSON()).toMatchObject({ kind: 'TruncatedBlock', offset: 64 });
    expect(new QemuError('x', 'DeviceNotFound').toJSON()).toEqual({
      class: 'DeviceNotFound',
      desc: 'x',
    });
  });
});
