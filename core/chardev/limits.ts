/** A mux chardev serves at most this many frontends (MAX_MUX, include/chardev/char-mux.h). */
export const MAX_MUX_FRONTENDS = 4;
