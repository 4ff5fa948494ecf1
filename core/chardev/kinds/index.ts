/**
 * The registry of chardev kinds: one line per kind. Everything that reads,
 * writes or opens a chardev looks its kind up here (see kind.ts), so adding
 * a backend is one new file in this folder plus one line below
 * (docs/ARCHITECTURE.md, "Adding a chardev kind").
 */
import { z } from 'zod';
import type { ChardevKindRecord, FormChoice, WireMembers } from '../kind.js';
import { fileKind } from './file.js';
import { nullKind } from './null.js';
import { otherKind } from './other.js';
import { pipeKind } from './pipe.js';
import { ptyKind } from './pty.js';
import { ringbufKind } from './ringbuf.js';
import { serialKind } from './serial.js';
import { socketKind } from './socket.js';
import { stdioKind } from './stdio.js';
import { udpKind } from './udp.js';

export const CHARDEV_KINDS = [
  socketKind,
  pipeKind,
  fileKind,
  ptyKind,
  nullKind,
  ringbufKind,
  udpKind,
  stdioKind,
  serialKind,
  otherKind,
] as const;

/** The topology's backend: one of the registered kinds' backends. */
export type ChardevBackend = z.output<(typeof CHARDEV_KINDS)[number]['schema']>;
export type ChardevKind = ChardevBackend['kind'];

type Discriminable = Parameters<typeof z.discriminatedUnion>[1];

/** The topology's backend schema: the union of every registered kind's schema. */
export const ChardevBackendSchema: z.ZodType<ChardevBackend> = z.discriminatedUnion(
  'kind',
  CHARDEV_KINDS.map((k) => k.schema) as unknown as Discriminable,
) as unknown as z.ZodType<ChardevBackend>;

/** A record seen through the union (its methods take any backend: callers pass one of its kind). */
export type AnyChardevKind = ChardevKindRecord<ChardevBackend>;

const all = CHARDEV_KINDS as readonly unknown[] as readonly AnyChardevKind[];
const byKind = new Map(all.map((k) => [k.kind, k]));

/** The record of a backend's kind. */
export function kindOf(backend: ChardevBackend): AnyChardevKind {
  return byKind.get(backend.kind) as AnyChardevKind;
}

/** Every registered kind, in registry order. */
export function chardevKinds(): readonly AnyChardevKind[] {
  return all;
}

/** The kind that reads -chardev backend=NAME; the 'other' kind for any name none claims. */
export function kindForQemuName(name: string): AnyChardevKind {
  return all.find((k) => k.qemu.names.includes(name)) ?? (otherKind as unknown as AnyChardevKind);
}

/** The kind that reads a libvirt source type, if any. */
export function kindForLibvirtType(type: string): AnyChardevKind | undefined {
  return all.find((k) => k.libvirt.types.includes(type));
}

/** The kind that reads chardev-add's backend type, if any. */
export function kindForWireType(type: string): AnyChardevKind | undefined {
  return all.find((k) => Object.hasOwn(k.qmp.branches, type));
}

/** chardev-add's backend branches of every kind (QEMU 7.2's ChardevBackend, less mux). */
export function wireBranches(): Record<string, WireMembers> {
  return Object.assign({}, ...all.map((k) => k.qmp.branches)) as Record<string, WireMembers>;
}

/** The app's choices ("UNIX socket", "ring buffer", ...) with the kind each belongs to. */
export function formChoices(): Array<{ kind: AnyChardevKind; choice: FormChoice<ChardevBackend> }> {
  return all.flatMap((kind) => (kind.app ?? []).map((choice) => ({ kind, choice })));
}
