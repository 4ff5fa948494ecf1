/**
 * The guest's ports as the outside world names them: the file name a port
 * gets in a guest directory (`--guest-dir`), the node a guest program opens,
 * and the names a person may use for it on the command line.
 *
 * | port                     | file in the guest dir | guest node opened |
 * |--------------------------|-----------------------|-------------------|
 * | virtserialport name=test1| test1                 | /dev/vport0p1     |
 * | virtserialport, no name  | vport0p2              | /dev/vport0p2     |
 * | virtconsole name=console.0| console.0            | /dev/hvc0         |
 * | virtconsole, no name     | hvc1                  | /dev/hvc1         |
 *
 * A console is opened through its hvc tty: Linux refuses open() on a
 * console's vport node (ENXIO, L3). A name that cannot be a file name
 * (empty, `.`, `..`, or with a `/`; udev makes no link for those either)
 * falls back to the node name.
 *
 * A port is listed once the guest has finished setting it up: its node
 * exists, a console has its hvc, and a named port has received its name
 * (PORT_NAME), so a file never appears under one name and then another.
 */
import type { Lab } from '../engine/lab.js';
import type { PortKind } from '../serial/events.js';

export interface GuestPortEntry {
  /** The file name in a guest directory. */
  fileName: string;
  /** The node a guest program opens: /dev/vportDpN, or /dev/hvcK for a console. */
  guestPath: string;
  /** vportDpN. */
  devName: string;
  /** hvcK for a console, else null. */
  hvc: string | null;
  name: string | null;
  /** qdev id, if the port has one. */
  id: string | null;
  kind: PortKind;
  /** The engine's device name (qdev id, else bus) and the port number. */
  device: string;
  nr: number;
}

function usableFileName(name: string | null): name is string {
  return name !== null && name !== '' && name !== '.' && name !== '..' && !name.includes('/');
}

/** Every port the guest has set up, in device and plug order. */
export function guestPorts(lab: Lab): GuestPortEntry[] {
  const out: GuestPortEntry[] = [];
  const taken = new Set<string>();
  for (const device of lab.registry.devices) {
    const driver = lab.guest.driverFor(device);
    if (driver === undefined) continue;
    for (const port of device.ports) {
      const gp = driver.portList.find((p) => p.id === port.nr);
      if (gp === undefined || gp.unplugged) continue;
      if (port.kind === 'virtconsole' && gp.console === null) continue;
      // Without MULTIPORT there is no control queue and so no PORT_NAME.
      if (port.name !== null && driver.multiport && gp.name !== port.name) continue;
      const hvc = gp.console !== null ? `hvc${gp.console.hvc}` : null;
      const fallback = hvc ?? gp.devName;
      let fileName = usableFileName(port.name) ? port.name : fallback;
      if (taken.has(fileName)) fileName = fallback;
      taken.add(fileName);
      out.push({
        fileName,
        guestPath: hvc !== null ? `/dev/${hvc}` : `/dev/${gp.devName}`,
        devName: gp.devName,
        hvc,
        name: port.name,
        id: port.id,
        kind: port.kind,
        device: device.name,
        nr: port.nr,
      });
    }
  }
  return out;
}

/**
 * A port by any of its names: the guest-dir file name, the port name, the
 * qdev id, the vport node (`vport0p1`) or the hvc tty (`hvc0`).
 */
export function findGuestPort(lab: Lab, ref: string): GuestPortEntry | undefined {
  const all = guestPorts(lab);
  return (
    all.find((e) => e.fileName === ref) ??
    all.find((e) => e.name === ref || e.id === ref || e.devName === ref || e.hvc === ref)
  );
}
