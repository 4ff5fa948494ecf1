/**
 * chardev-add's `backend` argument (QEMU 7.2's ChardevBackend in its
 * {type, data} wire form) turned into the topology's Chardev, with QEMU's
 * checks in QEMU's order (qapi visitor, qmp_chardev_validate_socket,
 * the backend's open) and its texts. What vmchan does not emulate is
 * refused in vmchan's own words rather than silently dropped.
 *
 * Defaults differ from the command line, as in QEMU: a QMP socket is a
 * server unless `server: false`, and does not wait unless `wait: true`.
 */
import { kindForWireType, wireBranches } from '../chardev/kinds/index.js';
import type { Chardev } from '../machine/topology.js';
import { QemuError } from '../base/qemu-error.js';
import { visitMembers, type QapiMembers, type QapiValue } from './qapi.js';
import type { QDict } from './qobject.js';

/**
 * ChardevBackend's branches in QEMU 7.2 (all configured in): each kind's
 * own (core/chardev/kinds/), plus mux, QEMU's wrapper, which chardev-add
 * takes and vmchan refuses below.
 */
export const CHARDEV_BACKEND_BRANCHES: Readonly<Record<string, QapiMembers>> = {
  ...wireBranches(),
  mux: {
    logfile: { type: 'str', optional: true },
    logappend: { type: 'bool', optional: true },
    chardev: { type: 'str' },
  },
};

export const CHARDEV_ADD_ARGS: QapiMembers = {
  id: { type: 'str' },
  backend: { type: { union: CHARDEV_BACKEND_BRANCHES } },
};

type Data = { [key: string]: QapiValue };

/** chardev-add {id, backend} to a Chardev, or QEMU's (or vmchan's) refusal. */
export function chardevFromQmp(args: QDict): Chardev | QemuError {
  const v = visitMembers(args, CHARDEV_ADD_ARGS);
  if (v instanceof QemuError) return v;
  const backend = v.backend as Data;
  const type = backend.type as string;
  const data = backend.data as Data;
  const kind = kindForWireType(type);
  if (kind === undefined)
    return new QemuError('vmchan does not emulate mux chardevs added at run time');
  const made = kind.qmp.read(type, data);
  if (made instanceof QemuError) return made;
  const chardev: Chardev = {
    id: v.id as string,
    backend: made,
    mux: false,
    logappend: data.logappend === true,
  };
  if (typeof data.logfile === 'string') chardev.logfile = data.logfile;
  return chardev;
}
