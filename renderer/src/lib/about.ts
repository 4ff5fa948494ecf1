/** What the About dialog says. */
export const VERSION_TEXT = 'vmchan: virtio-serial channels, inside out.';
