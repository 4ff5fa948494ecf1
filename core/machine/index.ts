/** The machine description: topology model, QEMU command line and libvirt XML, both ways. */
export * from './machine-error.js';
export * from './topology.js';
export { parseQemuArgs, parseQemuCommandLine, isQemuProgram } from './qemu-cmdline.js';
export {
  printQemuArgs,
  chardevArg,
  deviceArg,
  portArg,
  monitorArg,
  type PrintedCommandLine,
} from './qemu-print.js';
export { splitOpts, joinOpts, parseBool, type OptPair } from './qemu-options.js';
export { parseCompatChardev } from './qemu-compat.js';
export { splitShellWords, joinShellWords, quoteShellWord } from './shell-words.js';
export * from './libvirt-xml.js';
