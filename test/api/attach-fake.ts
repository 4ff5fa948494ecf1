/**
 * A QEMU 7.2 as QMP shows it, for the attach-mode tests: the fake QMP
 * server (test/qemu/fake-qmp-server.ts) answering with the shapes recorded
 * in test/fixtures/qemu-7.2-samples (x-query-virtio-status, queue status),
 * with one device, a console, a named port and a port without an id.
 *
 * fakeQemuModel() is what discovery reads (test/qemu/attach-unit.test.ts
 * serves its handlers as they are); startFakeQemu() adds queue status and
 * working chardev-add / chardev-remove / device_add / device_del (which
 * sends DEVICE_DELETED, as QEMU does once the guest let go), for the
 * service tests.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { VirtQueueStatus } from '../../core/qemu/qmp-types.js';
import { FakeQmpServer, type FakeQmpOptions, type Handler } from '../qemu/fake-qmp-server.js';

const SAMPLES = fileURLToPath(new URL('../fixtures/qemu-7.2-samples/', import.meta.url));
// The recorded samples ship with the tests; a missing copy is a broken checkout, not a skip.
if (!fs.existsSync(SAMPLES)) throw new Error(`recorded QEMU samples missing at ${SAMPLES}`);
const sampleStatus = (
  JSON.parse(fs.readFileSync(`${SAMPLES}status.json`, 'utf8')) as { return: unknown }
).return;
export const sampleQueues: VirtQueueStatus[] = fs
  .readFileSync(`${SAMPLES}qstatus.jsonl`, 'utf8')
  .trim()
  .split('\n')
  .map((l) => (JSON.parse(l) as { return: VirtQueueStatus }).return);

export const VSER = '/machine/peripheral/vser0/virtio-backend';
const BUS = `${VSER}/vser0.0`;

export interface FakePort {
  path: string;
  type: 'virtserialport' | 'virtconsole';
  nr: number;
  name: string;
  chardev: string;
}

export interface FakeQemuModel {
  ports: FakePort[];
  chardevs: Map<string, { filename: string; open: boolean }>;
  /** Discovery and query-chardev, answered from `ports` and `chardevs` as they are now. */
  handlers: Record<string, Handler>;
}

export interface FakeQemu extends Omit<FakeQemuModel, 'handlers'> {
  server: FakeQmpServer;
  /** Hold DEVICE_DELETED back (a guest that does not let go). */
  holdDeletes: boolean;
}

const notFound = (path: string) => ({
  error: { class: 'DeviceNotFound', desc: `Device '${path}' not found` },
});
const generic = (desc: string) => ({ error: { class: 'GenericError', desc } });

/** One device, a console, a port, a port without id; the handlers discovery needs. */
export function fakeQemuModel(): FakeQemuModel {
  const ports: FakePort[] = [
    {
      path: '/machine/peripheral/con0',
      type: 'virtconsole',
      nr: 0,
      name: 'org.test.console.0',
      chardev: 'c0',
    },
    {
      path: '/machine/peripheral/port1',
      type: 'virtserialport',
      nr: 1,
      name: 'org.test.port.1',
      chardev: 'c1',
    },
    {
      path: '/machine/peripheral-anon/device[0]',
      type: 'virtserialport',
      nr: 2,
      name: 'anon.port',
      chardev: 'c2',
    },
  ];
  const chardevs = new Map<string, { filename: string; open: boolean }>([
    ['c0', { filename: 'disconnected:unix:/tmp/guest/con,server=on', open: true }],
    ['c1', { filename: 'disconnected:unix:/tmp/guest/p1,server=on', open: false }],
    ['c2', { filename: 'disconnected:unix:/tmp/guest/p2,server=on', open: false }],
    ['compat_monitor0', { filename: 'unix:/tmp/guest/qmp.sock,server=on', open: true }],
  ]);
  const handlers: Record<string, Handler> = {
    'x-query-virtio': () => ({ return: [{ name: 'virtio-serial', path: VSER }] }),
    'x-query-virtio-status': () => ({ return: sampleStatus }),
    'query-chardev': () => ({
      return: [...chardevs].map(([label, c]) => ({
        'frontend-open': c.open,
        filename: c.filename,
        label,
      })),
    }),
    'qom-list': (a) => {
      const path = String(a?.['path']);
      if (path === VSER)
        return {
          return: [
            { name: 'max_ports', type: 'uint32' },
            { name: 'vser0.0', type: 'child<virtio-serial-bus>' },
          ],
        };
      if (path === BUS) {
        return {
          return: [
            { name: 'type', type: 'string' },
            ...ports.map((p, i) => ({ name: `child[${i}]`, type: `link<${p.type}>` })),
            { name: 'hotplug-handler', type: 'link<hotplug-handler>' },
          ],
        };
      }
      // a port's own object, while it exists (device_del's watcher looks for it going away)
      if (ports.some((p) => p.path === path))
        return {
          return: [
            { name: 'type', type: 'string' },
            { name: 'nr', type: 'uint32' },
          ],
        };
      return notFound(path);
    },
    'qom-get': (a) => {
      const path = String(a?.['path']);
      const prop = String(a?.['property']);
      if (path === VSER && prop === 'max_ports') return { return: 8 };
      if (path === BUS) {
        const i = Number(/^child\[(\d+)\]$/.exec(prop)?.[1] ?? -1);
        return ports[i] ? { return: ports[i].path } : notFound(path);
      }
      const p = ports.find((x) => x.path === path);
      if (!p) return notFound(path);
      if (prop === 'nr') return { return: p.nr };
      if (prop === 'name') return { return: p.name };
      if (prop === 'chardev') return { return: p.chardev };
      return generic(`Property '${p.type}.${prop}' not found`);
    },
  };
  return { ports, chardevs, handlers };
}

/** fakeQemuModel() served, with queue status and hot-plug that changes the model. */
export async function startFakeQemu(options: FakeQmpOptions = {}): Promise<FakeQemu> {
  const { ports, chardevs, handlers: discovery } = fakeQemuModel();
  const fake = { ports, chardevs, holdDeletes: false } as FakeQemu;
  const handlers: Record<string, Handler> = {
    ...discovery,
    'x-query-virtio-queue-status': (a) => {
      const q = Number(a?.['queue']);
      const s = sampleQueues.find((x) => x['queue-index'] === q);
      return s ? { return: s } : generic('Invalid virtqueue number');
    },
    'x-query-virtio-queue-element': () => generic('no element (fake)'),
    'chardev-add': (a) => {
      const id = String(a?.['id']);
      if (chardevs.has(id)) return generic(`attempt to add duplicate property '${id}' to object`);
      const backend = a?.['backend'] as { type: string; data: Record<string, unknown> };
      const addr = backend.data['addr'] as { type: string; data: { path?: string } } | undefined;
      const filename =
        backend.type === 'socket' && addr?.type === 'unix'
          ? `disconnected:unix:${addr.data.path},server=on`
          : backend.type;
      chardevs.set(id, { filename, open: false });
      return { return: {} };
    },
    'chardev-remove': (a) => {
      const id = String(a?.['id']);
      if (!chardevs.has(id)) return generic(`Chardev '${id}' not found`);
      if (ports.some((p) => p.chardev === id)) return generic(`Chardev '${id}' is busy`);
      chardevs.delete(id);
      return { return: {} };
    },
    device_add: (a) => {
      const id = String(a?.['id']);
      const chardev = String(a?.['chardev'] ?? '');
      if (ports.some((p) => p.path.endsWith(`/${id}`)))
        return generic(`Duplicate device ID '${id}' for device`);
      if (chardev && !chardevs.has(chardev))
        return generic(`Property 'virtserialport.chardev' can't find value '${chardev}'`);
      const nr =
        a?.['nr'] !== undefined
          ? Number(a['nr'])
          : [1, 2, 3, 4, 5, 6, 7].find((n) => !ports.some((p) => p.nr === n))!;
      if (ports.some((p) => p.nr === nr))
        return generic(`virtio-serial-bus: A port already exists at id ${nr}`);
      ports.push({
        path: `/machine/peripheral/${id}`,
        type: String(a?.['driver']) as FakePort['type'],
        nr,
        name: String(a?.['name'] ?? ''),
        chardev,
      });
      return { return: {} };
    },
    device_del: (a) => {
      const id = String(a?.['id']);
      const p = ports.find((x) => x.path === id || x.path.endsWith(`/${id}`));
      if (!p) return notFound(id);
      if (!fake.holdDeletes) {
        setTimeout(() => {
          ports.splice(ports.indexOf(p), 1);
          fake.server.sendEvent('DEVICE_DELETED', { device: id, path: p.path });
        }, 20);
      }
      return { return: {} };
    },
  };
  fake.server = await FakeQmpServer.start({ ...options, handlers });
  return fake;
}
