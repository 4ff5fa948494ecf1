/**
 * A monitor's named descriptors (QEMU 7.2 monitor/misc.c: mon->fds, filled
 * by qmp_getfd, emptied by qmp_closefd and monitor_get_fd). They belong to
 * the monitor, not to a client session: they stay across reconnects (QEMU's
 * CHR_EVENT_CLOSED leaves mon->fds alone) and are closed when the monitor
 * itself goes (monitor_data_destroy), which here is QmpServer.close().
 */
import { closeDescriptors } from '../chardev/fd-passing.js';

export class MonitorFds {
  private readonly names = new Map<string, number>();

  /** qmp_getfd after its checks: the name gets `fd`; a descriptor it had is closed. */
  set(name: string, fd: number): void {
    const old = this.names.get(name);
    this.names.set(name, fd);
    if (old !== undefined) closeDescriptors([old]);
  }

  /** qmp_closefd: false when no such name. */
  close(name: string): boolean {
    const fd = this.names.get(name);
    if (fd === undefined) return false;
    this.names.delete(name);
    closeDescriptors([fd]);
    return true;
  }

  /** monitor_get_fd: the descriptor leaves the list and is the caller's; null when unknown. */
  take(name: string): number | null {
    const fd = this.names.get(name);
    if (fd === undefined) return null;
    this.names.delete(name);
    return fd;
  }

  /** The monitor is going: every descriptor it holds is closed. */
  closeAll(): void {
    closeDescriptors([...this.names.values()]);
    this.names.clear();
  }
}
