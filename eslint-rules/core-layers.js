// The layers inside core/, as per-folder allow-lists (the way VS Code writes
// its layer rules): a module in core/<folder>/ may import its own folder and
// the folders listed for it, nothing else of core. The lists are acyclic, so
// the folders form layers; docs/ARCHITECTURE.md draws them. Changing a list
// is a design decision: put a concept in the lowest folder that needs it
// rather than let a low folder reach up.
//
// `.` is core/'s own top-level files (version.ts). core/api counts as three
// layers, one per sub-folder (contract, browser, server): who may import
// what follows who runs it (docs/ARCHITECTURE.md, "core/api").
import path from 'node:path';

/** @type {Readonly<Record<string, readonly string[]>>} */
export const CORE_LAYERS = {
  // leaves: the emitter, the error base, QemuError, the version
  '.': [],
  base: [],
  // guest memory, both ring formats, features, the virtio device base
  virtio: ['base'],
  // the virtio-serial device and the Linux-like guest; the engine's event types
  serial: ['base', 'virtio'],
  // QEMU's chardev backends on real OS resources, and their spec types
  chardev: ['base', 'serial', 'virtio'],
  // the scheduler and the Lab (memory, devices, guest)
  engine: ['base', 'serial', 'virtio'],
  // records, pcapng, filters, follow
  capture: ['.', 'base', 'engine', 'serial', 'virtio'],
  // guest programs and the names of the guest's ports
  workloads: ['base', 'engine', 'serial', 'virtio'],
  // the guest side of every port as a host unix socket
  guestdir: ['base', 'chardev', 'engine', 'serial', 'virtio', 'workloads'],
  // topology, QEMU command line, libvirt XML, the running Machine
  machine: ['base', 'chardev', 'engine', 'serial', 'virtio'],
  // QMP and HMP monitors over a Machine
  monitor: ['.', 'base', 'chardev', 'engine', 'machine', 'serial', 'virtio'],
  // attach to a real QEMU over QMP
  qemu: ['.', 'base', 'capture', 'chardev', 'serial', 'virtio'],
  // the guest agent
  qga: ['.', 'base', 'engine', 'monitor', 'serial', 'virtio'],
  // core/api is split by who uses it; each part is a layer of its own.
  // The contract both faces speak: zod schemas, error kinds, capabilities,
  // what a command reaches. The renderer loads it, so nothing Node-only.
  'api/contract': ['base', 'chardev', 'machine', 'virtio'],
  // What only the renderer runs (views, virtual scroll, teaching texts, the
  // client): the contract and the pure filter parser, never the server.
  'api/browser': ['api/contract', 'capture'],
  // The service, the sessions, the web server: the top.
  'api/server': [
    '.',
    'api/contract',
    'base',
    'capture',
    'chardev',
    'engine',
    'guestdir',
    'machine',
    'monitor',
    'qemu',
    'qga',
    'serial',
    'virtio',
    'workloads',
  ],
};

/** core/ folders whose sub-folders are layers of their own (core/api/contract, ...). */
const SPLIT_FOLDERS = new Set(['api']);

/**
 * The layer of core/ a path is in: its folder ('.' for core's own files),
 * or `api/<part>` inside core/api. A file directly in core/api/ is layer
 * `api`, which has no row: it must go into one of the parts. null outside core/.
 */
export function coreFolder(coreDir, file) {
  const rel = path.relative(coreDir, file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return null;
  const parts = rel.split(path.sep);
  if (parts.length === 1) return '.';
  if (SPLIT_FOLDERS.has(parts[0]) && parts.length > 2) return `${parts[0]}/${parts[1]}`;
  return parts[0];
}

/** @type {import('eslint').Rule.RuleModule} */
export const coreLayersRule = {
  meta: {
    type: 'problem',
    docs: { description: "core/'s folders import only the folders below them (CORE_LAYERS)" },
    schema: [],
    messages: {
      upward:
        'core/{{from}} may not import core/{{to}} (layers: eslint-rules/core-layers.js allows {{from}} -> {{allowed}}). Move the shared concept down to the lowest folder that needs it.',
      unknown:
        'core/{{from}} is not in the layer table: add it to CORE_LAYERS in eslint-rules/core-layers.js.',
      unsplit:
        'core/{{from}}/ holds no modules of its own: put this file in one of its parts ({{parts}}), by who uses it.',
    },
  },
  create(context) {
    const file = context.filename;
    const coreDir = path.join(context.cwd, 'core');
    const from = coreFolder(coreDir, file);
    if (from === null) return {};
    if (SPLIT_FOLDERS.has(from)) {
      const parts = Object.keys(CORE_LAYERS)
        .filter((l) => l.startsWith(`${from}/`))
        .join(', ');
      return {
        Program: (node) => context.report({ node, messageId: 'unsplit', data: { from, parts } }),
      };
    }
    const allowed = CORE_LAYERS[from];
    const check = (node, source) => {
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const to = coreFolder(coreDir, path.resolve(path.dirname(file), source));
      if (to === null || to === from) return;
      if (allowed === undefined) {
        context.report({ node, messageId: 'unknown', data: { from } });
      } else if (!allowed.includes(to)) {
        const list = allowed.length === 0 ? '(nothing)' : allowed.join(', ');
        context.report({ node, messageId: 'upward', data: { from, to, allowed: list } });
      }
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => check(node, node.source?.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) =>
        check(node, node.source.type === 'Literal' ? node.source.value : undefined),
    };
  },
};

export default { rules: { 'core-layers': coreLayersRule } };
