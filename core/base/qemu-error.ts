/**
 * An error as QEMU's monitor reports it: `{"class": "GenericError", "desc": ...}`.
 * A value, never thrown: device_add and friends return it. Its kind is
 * QEMU's error class; its message the text QEMU prints (desc), word for word.
 */
import { VmchanError } from './error.js';

export type QemuErrorClass = 'GenericError' | 'DeviceNotFound' | 'CommandNotFound';

export class QemuError extends VmchanError<QemuErrorClass> {
  readonly domain = 'qemu';

  constructor(message: string, errorClass: QemuErrorClass = 'GenericError') {
    super(errorClass, message);
  }

  get errorClass(): QemuErrorClass {
    return this.kind;
  }

  /** The QMP error object. */
  override toJSON(): { class: string; desc: string } {
    return { class: this.kind, desc: this.message };
  }
}

export function isQemuError(value: unknown): value is QemuError {
  return value instanceof QemuError;
}
