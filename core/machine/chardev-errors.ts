/** QEMU 7.2's words for chardev hot-plug failures (chardev/char.c). */
import { QemuError } from '../base/qemu-error.js';

/** qmp_chardev_add's error_prepend: how QEMU words a chardev that failed to open. */
export function chardevAddFailure(id: string, failed: QemuError): QemuError {
  return new QemuError(`Failed to add chardev '${id}': ${failed.message}`);
}
