/**
 * Issue 12: a chardev kind is one record (core/chardev/kinds/<kind>.ts)
 * registered on one line (kinds/index.ts). This lists the registered kinds
 * against QEMU 7.2's own tables, so a kind that claims a name QEMU does not
 * have, an option -chardev would refuse, or a chardev-add branch QEMU does
 * not define fails here, and every QEMU backend name is read by exactly one
 * kind (the 'other' kind keeps the ones vmchan does not emulate).
 */
import { describe, expect, test } from 'vitest';
import { chardevKinds, kindForQemuName } from '../../core/chardev/kinds/index.js';
import { CHARDEV_BACKEND_NAMES, CHARDEV_OPTS } from '../../core/machine/qemu-tables.js';
import { CHARDEV_BACKEND_BRANCHES } from '../../core/monitor/chardev-spec.js';

/** QEMU 7.2's ChardevBackendKind (qapi/char.json), all configured in. */
const QEMU_WIRE_TYPES = [
  'file', 'serial', 'parallel', 'pipe', 'socket', 'udp', 'pty', 'null', 'mux', 'msmouse',
  'wctablet', 'braille', 'testdev', 'stdio', 'console', 'spicevmc', 'spiceport',
  'qemu-vdagent', 'dbus', 'vc', 'ringbuf', 'memory',
]; // prettier-ignore

describe('H1 the chardev kinds registry against QEMU 7.2', () => {
  test('the registered kinds, in registry order', () => {
    expect(chardevKinds().map((k) => [k.kind, [...k.qemu.names]])).toEqual([
      ['socket', ['socket']],
      ['pipe', ['pipe']],
      ['file', ['file']],
      ['pty', ['pty']],
      ['null', ['null']],
      ['ringbuf', ['ringbuf', 'memory']],
      ['udp', ['udp']],
      ['stdio', ['stdio']],
      ['serial', ['serial']],
      ['other', []],
    ]);
  });

  test("every -chardev backend name a kind claims is one of QEMU's, claimed once", () => {
    const claimed = chardevKinds().flatMap((k) => k.qemu.names);
    for (const name of claimed) expect(CHARDEV_BACKEND_NAMES.has(name), name).toBe(true);
    expect(new Set(claimed).size).toBe(claimed.length);
  });

  test("every QEMU backend name is read by one kind; the ones vmchan does not emulate by 'other'", () => {
    const emulated = new Set(chardevKinds().flatMap((k) => k.qemu.names));
    for (const name of CHARDEV_BACKEND_NAMES) {
      const kind = kindForQemuName(name).kind;
      if (emulated.has(name)) expect(kind, name).not.toBe('other');
      else expect(kind, name).toBe('other');
    }
  });

  test("every option a kind reads or refuses is a key QEMU's -chardev accepts", () => {
    for (const k of chardevKinds()) {
      for (const key of [...k.qemu.keys, ...Object.keys(k.qemu.refused ?? {})]) {
        expect(CHARDEV_OPTS.has(key), `${k.kind}: ${key}`).toBe(true);
      }
    }
  });

  test("chardev-add's backend branches are exactly QEMU's, each from one kind (mux refused)", () => {
    expect(Object.keys(CHARDEV_BACKEND_BRANCHES).sort()).toEqual([...QEMU_WIRE_TYPES].sort());
    const owners = chardevKinds().flatMap((k) => Object.keys(k.qmp.branches));
    expect(new Set(owners).size).toBe(owners.length);
  });

  test('every kind the app offers has a form choice, and every choice belongs to one kind', () => {
    const choices = chardevKinds().flatMap((k) => (k.app ?? []).map((c) => [c.value, k.kind]));
    expect(choices).toEqual([
      ['unix', 'socket'],
      ['tcp', 'socket'],
      ['file', 'file'],
      ['null', 'null'],
      ['ringbuf', 'ringbuf'],
    ]);
  });
});
