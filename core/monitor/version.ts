/**
 * The QEMU the monitors and the guest agent speak as: 7.2, the version the
 * reference transcripts were recorded from (test/fixtures/qemu-7.2-samples,
 * micro 22). The package string names vmchan, so a client that prints it
 * knows it is not talking to a real QEMU.
 */
import { VERSION } from '../version.js';

export const QEMU_VERSION = { major: 7, minor: 2, micro: 22 } as const;

export const QEMU_VERSION_TEXT = `${QEMU_VERSION.major}.${QEMU_VERSION.minor}.${QEMU_VERSION.micro}`;

/** query-version's and the greeting's `package`. */
export const QEMU_PACKAGE = `vmchan ${VERSION}`;

/** The greeting's and query-version's `qemu` member, members in QAPI order (major, minor, micro). */
export function versionTriple(): { major: number; minor: number; micro: number } {
  return { major: QEMU_VERSION.major, minor: QEMU_VERSION.minor, micro: QEMU_VERSION.micro };
}
