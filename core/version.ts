/** The product version, shown by `vmchan --version`, in pcapng section headers and in QMP greetings. */
export const VERSION = '0.1.0';
export const APP_NAME = 'vmchan';
