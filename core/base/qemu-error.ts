/**
 * An error as QEMU's monitor reports it: `{"class": "GenericError", "desc": ...}`.
 * A value, never thrown: device_add and friends return it.
 */
export class QemuError {
  constructor(
    /** The text QEMU prints (desc), word for word. */
    readonly message: string,
    readonly errorClass: 'GenericError' | 'DeviceNotFound' | 'CommandNotFound' = 'GenericError',
  ) {}

  toString(): string {
    return this.message;
  }

  /** The QMP error object. */
  toJSON(): { class: string; desc: string } {
    return { class: this.errorClass, desc: this.message };
  }
}

export function isQemuError(value: unknown): value is QemuError {
  return value instanceof QemuError;
}
