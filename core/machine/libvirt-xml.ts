/**
 * libvirt domain XML both ways. The reader takes a whole <domain>, a
 * <devices> fragment or bare <controller>/<channel>/<console> elements
 * (leniently: unclosed device elements are closed, with a note); the
 * writer gives a <devices> fragment and says what it could not express.
 */
export { topologyFromLibvirtXml } from './libvirt-read.js';
export { LIBVIRT_CHANNEL_DIR } from './libvirt-source.js';
export { topologyToLibvirtXml, type LibvirtXml } from './libvirt-write.js';
export { repairXml } from './xml-repair.js';
