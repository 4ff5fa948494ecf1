/**
 * The udp chardev's port check, pure so the kind record (parsed in the
 * browser too) and the backend share it.
 */
/** Why a port text is not usable, or null: `remote` ports cannot be 0, local ones can (any port). */
export function udpPortProblem(port: string, which: 'remote' | 'local'): string | null {
  if (!/^[0-9]+$/.test(port)) {
    return `chardev: udp: ${which} port '${port}' is not a number (service names are not supported)`;
  }
  const n = Number(port);
  if (n > 65535) return `chardev: udp: ${which} port ${port} is out of range (1 to 65535)`;
  if (n === 0 && which === 'remote') {
    return 'chardev: udp: remote port 0 names no destination (1 to 65535)';
  }
  return null;
}
