/**
 * What one chardev kind declares, in one record: its topology schema, how
 * QEMU's -chardev options become it and how it prints back, libvirt's
 * <source> both ways, chardev-add's backend both ways, how it opens on the
 * host, and the app's form for it. Every consumer (the command-line
 * parser, the printer, the libvirt reader and writer, the QMP monitor,
 * attach mode, the factory, the app) looks the kind up in the registry
 * (kinds/index.ts) instead of switching on a closed union, so a new
 * backend is one file in kinds/ plus one line in the registry.
 *
 * The record speaks in plain data: option values through `OptionReader`,
 * libvirt elements as attribute maps, wire data as records. The layers
 * above (core/machine, core/monitor, core/api) turn those into their own
 * error values and XML nodes, so chardev never imports them.
 */
import type { z } from 'zod';
import type { QemuError } from '../base/qemu-error.js';
import type { BackendEndpoint, BackendOptions } from './backend-endpoint.js';
import type { ChardevError } from './chardev-error.js';
import type { StdioStreams } from './stdio-backend.js';

/** A problem with a chardev's options, in QEMU's words; `key` names the option at fault. */
export class SpecProblem {
  constructor(
    readonly message: string,
    readonly key?: string,
  ) {}
}

export function isSpecProblem(value: unknown): value is SpecProblem {
  return value instanceof SpecProblem;
}

/** One -chardev's options after QemuOpts checked their types ("last one wins" applied). */
export interface OptionReader {
  get(key: string): string | undefined;
  has(key: string): boolean;
  bool(key: string, fallback: boolean): boolean;
  number(key: string): bigint | undefined;
  size(key: string): bigint | undefined;
}

/** What parsing a -chardev needs to know about the rest of the command line. */
export interface ParseContext {
  /** True once a stdio chardev exists (char-stdio.c allows one). */
  stdioInUse: boolean;
  /** -daemonize was given: stdio cannot be used. */
  daemonize: boolean;
}

/** A libvirt <channel>/<console>'s host side as plain data. */
export interface LibvirtSourceIn {
  /** The element's type attribute (unix, tcp, pty, dev, ...). */
  type: string;
  /** The attributes of each <source>, in order. */
  sources: ReadonlyArray<Readonly<Record<string, string>>>;
  /** <reconnect> (inside the first <source>, or the element), when present. */
  reconnect?: Readonly<Record<string, string>>;
  /** <protocol type=...>. */
  protocol?: string;
  /** What libvirt names the channel's default socket after (target name, or `channel N`). */
  defaultName: string;
  /** `channel 0`, for messages. */
  what: string;
}

export type LibvirtNoteKind = 'Implied' | 'NotExpressed';

export interface LibvirtRead<B> {
  backend: B;
  ignoredKeys?: Record<string, string>;
}

/** A <source> to write: attributes (undefined ones are left out) and an optional <reconnect>. */
export interface LibvirtSourceEl {
  attrs: Record<string, string | undefined>;
  reconnect?: Record<string, string>;
}

export interface LibvirtSourceOut {
  type: string;
  sources: LibvirtSourceEl[];
  protocol?: string;
}

/** QEMU's QAPI member tables, structurally the same as core/monitor/qapi.ts's. */
export type WireType =
  | 'str'
  | 'int'
  | 'uint16'
  | 'bool'
  | 'any'
  | { enum: readonly string[] }
  | { list: WireType }
  | { struct: WireMembers }
  | { union: Readonly<Record<string, WireMembers>> };
export type WireMembers = Readonly<Record<string, { type: WireType; optional?: boolean }>>;

/** chardev-add's visited backend data (strings, numbers, booleans, nested records). */
export type WireData = { readonly [key: string]: unknown };

/** chardev-add's backend in its {type, data} wire form. */
export interface WireBackend {
  type: string;
  data: Record<string, unknown>;
}

/** Where the app's form puts its values for a kind: one per field, by name. */
export type FormValues = Readonly<Record<string, string | number | boolean | undefined>>;

export interface FormField {
  name: string;
  label: string;
  type: 'text' | 'number' | 'bool';
  default: string | number | boolean;
  placeholder?: string;
  /** A hint shown on hover. */
  title?: string;
  /** A bool field only editable while this other bool field is on. */
  enabledBy?: string;
  /** number: the range; text: the length (text is at most 4096 long whatever this says). */
  min?: number;
  max?: number;
}

/** One choice in the app's "type" list (a socket kind offers two: unix and tcp). */
export interface FormChoice<B> {
  value: string;
  label: string;
  fields: readonly FormField[];
  /**
   * The form's values (already checked against the fields' types) as a
   * backend; `at` resolves a path against the lab's runtime directory
   * (an empty path: a fresh one named after `id`).
   */
  build(values: FormValues, id: string, at: (p: string, fallback: string) => string): B;
}

export interface OpenContext {
  /** stdin/stdout for a stdio chardev; default: the process's own. */
  stdio?: StdioStreams;
}

/** The whole declaration of one chardev kind. `B` is its topology backend. */
export interface ChardevKindRecord<B extends { kind: string }> {
  kind: B['kind'];
  /** The topology's schema for this backend (plain data, JSON). */
  schema: z.ZodObject;
  qemu: {
    /** -chardev backend= names this kind reads (aliases such as tty are resolved before). */
    names: readonly string[];
    /** Options this kind reads; QEMU's other valid keys are kept as written (QEMU ignores them). */
    keys: readonly string[];
    /**
     * Options QEMU implements for this backend and vmchan does not: refused
     * as "vmchan does not emulate <what>" when on (a bool) or given (a string).
     */
    refused?: Readonly<Record<string, string>>;
    parse(opts: OptionReader, ctx: ParseContext, driver: string): B | SpecProblem;
    /** The backend= name to print. */
    name(b: B): string;
    /** The options after backend= and id=, in QEMU's order. */
    print(b: B): Array<[string, string]>;
  };
  libvirt: {
    /** Source types this kind reads. */
    types: readonly string[];
    read(
      src: LibvirtSourceIn,
      note: (kind: LibvirtNoteKind, message: string) => void,
    ): LibvirtRead<B> | SpecProblem | { skip: string };
    /** `ignored` is the chardev's ignoredKeys: delete the ones the source expresses. */
    write(
      b: B,
      ignored: Record<string, string>,
      lost: (message: string) => void,
    ): LibvirtSourceOut | { skip: string };
  };
  qmp: {
    /** chardev-add's backend branches this kind reads, with their members (QEMU 7.2). */
    branches: Readonly<Record<string, WireMembers>>;
    read(type: string, data: WireData): B | QemuError;
    /** The chardev-add backend for a real QEMU (attach mode). */
    write(b: B): WireBackend | { unsupported: string };
  };
  /** Relative paths resolved (sockets, FIFOs, files); kinds without paths leave this out. */
  paths?(b: B, at: (p: string) => string): B;
  open(b: B, options: BackendOptions, ctx: OpenContext): Promise<BackendEndpoint | ChardevError>;
  /** The app's "add chardev" choices; kinds the app does not offer leave this out. */
  app?: readonly FormChoice<B>[];
}

type KindSchema = z.ZodObject<{ kind: z.ZodLiteral<string> }>;

/** Declare a kind: the backend type is the schema's output, the record keeps the schema's own type. */
export function defineKind<S extends KindSchema>(
  schema: S,
  record: NoInfer<Omit<ChardevKindRecord<z.output<S>>, 'schema' | 'kind'>>,
): Omit<ChardevKindRecord<z.output<S>>, 'schema'> & { schema: S } {
  return { ...record, schema, kind: schema.shape.kind.value as z.output<S>['kind'] };
}
