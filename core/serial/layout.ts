/**
 * Where things are in a virtio console (C0): queue numbers per port and the
 * configuration space. Shared by the device and the guest driver.
 *
 * Queues: 0 rx(port 0), 1 tx(port 0), 2 control rx, 3 control tx, and for
 * port n >= 1 rx 2n+2, tx 2n+3. Without MULTIPORT only queues 0 and 1 exist.
 *
 * Configuration space (little endian): le16 cols @0, le16 rows @2,
 * le32 max_nr_ports @4, le32 emerg_wr @8 (the last only when EMERG_WRITE is
 * offered: QEMU shrinks the space to 8 bytes without it).
 */

export const VIRTIO_ID_CONSOLE = 3;

export const CONTROL_RX_QUEUE = 2;
export const CONTROL_TX_QUEUE = 3;

export const CONFIG_COLS = 0;
export const CONFIG_ROWS = 2;
export const CONFIG_MAX_NR_PORTS = 4;
export const CONFIG_EMERG_WR = 8;
export const CONFIG_SIZE_WITHOUT_EMERG = 8;
export const CONFIG_SIZE_WITH_EMERG = 12;

export function rxQueueOf(port: number): number {
  return port === 0 ? 0 : 2 * port + 2;
}

export function txQueueOf(port: number): number {
  return port === 0 ? 1 : 2 * port + 3;
}

/** Total queues: 2 without MULTIPORT, 2 * maxPorts + 2 with it. */
export function consoleQueueCount(maxPorts: number, multiport: boolean): number {
  return multiport ? 2 * maxPorts + 2 : 2;
}

export type QueueRole =
  | { role: 'rx'; port: number }
  | { role: 'tx'; port: number }
  | { role: 'control-rx' }
  | { role: 'control-tx' };

/** What queue `q` is for (the caller has checked that it exists). */
export function queueRole(queue: number): QueueRole {
  if (queue === 0) return { role: 'rx', port: 0 };
  if (queue === 1) return { role: 'tx', port: 0 };
  if (queue === CONTROL_RX_QUEUE) return { role: 'control-rx' };
  if (queue === CONTROL_TX_QUEUE) return { role: 'control-tx' };
  const port = (queue - 2) >> 1;
  return queue % 2 === 0 ? { role: 'rx', port } : { role: 'tx', port };
}
