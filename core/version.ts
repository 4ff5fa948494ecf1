/** The product version, shown by `vmchan --version`, in pcapng section headers and in QMP greetings. */
export const VERSION = '0.1.0';
export const APP_NAME = 'vmchan';

/**
 * The versions the engine was written against and checked with: QEMU's
 * virtio-serial device and chardevs as 7.2 has them (the recorded samples),
 * Linux's virtio_console as in 6.1 (Debian 12's kernel, the real test guest).
 */
export const REFERENCE = { qemu: '7.2', linux: '6.1' } as const;

/** Where the documentation is, in the package and online form. */
export const DOCS = {
  files: ['README.md', 'docs/ARCHITECTURE.md', 'docs/CONFORMANCE.md'],
  help: 'vmchan --help',
} as const;
