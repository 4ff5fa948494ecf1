/**
 * The request checks every QMP-speaking server makes before it looks a
 * command up (qapi/qmp-dispatch.c qmp_dispatch_check_obj), and the error
 * reply shape. Shared by the QMP monitor and the guest agent, which use
 * the same dispatcher in QEMU.
 */
import { QemuError } from '../base/qemu-error.js';
import { QDict, qdictOrder, type QObject } from './qobject.js';

export function errorResponse(error: QemuError, id: QObject | undefined): QObject {
  return { error: { class: error.errorClass, desc: error.message }, id };
}

/** qmp_dispatch_check_obj: members walked in QEMU's dict order. */
export function checkRequest(
  request: QDict,
  allowOob: boolean,
): { command: string; oob: boolean } | QemuError {
  let execKey: string | null = null;
  for (const key of qdictOrder([...request.keys()])) {
    const value = request.get(key)!;
    if (key === 'execute' || (key === 'exec-oob' && allowOob)) {
      if (typeof value !== 'string')
        return new QemuError(`QMP input member '${key}' must be a string`);
      if (execKey !== null)
        return new QemuError(`QMP input member '${key}' clashes with '${execKey}'`);
      execKey = key;
    } else if (key === 'arguments') {
      if (!(value instanceof QDict))
        return new QemuError("QMP input member 'arguments' must be an object");
    } else if (key !== 'id') {
      return new QemuError(`QMP input member '${key}' is unexpected`);
    }
  }
  if (execKey === null) return new QemuError("QMP input lacks member 'execute'");
  return { command: request.get(execKey) as string, oob: execKey === 'exec-oob' };
}
