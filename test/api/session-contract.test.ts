/**
 * One contract for every Session (core/api/server/session.ts): the same cases run
 * against the emulated lab and against an attached QEMU (the fake QMP
 * server answering with QEMU 7.2's recorded shapes: these commands need no
 * real guest), for every command both support: the topology with its
 * capabilities, chardev-add/remove, port hot-plug and unplug (D8) with
 * QEMU's words for a refusal, a capture (a hot-plug as event records on
 * its port, opened, listed and saved alike), the vring state, and a refusal for every
 * command whose capability the session lacks, typed and with its reason.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CaptureError } from '../../core/capture/error.js';
import { openCaptureSync } from '../../core/capture/pcapng-reader.js';
import type {
  ApiEvent,
  ChardevSnapshot,
  PortSnapshot,
  VringSnapshot,
} from '../../core/api/contract/contract.js';
import type { CaptureRows } from '../../core/api/contract/capture-contract.js';
import { CAPABILITIES } from '../../core/api/contract/capabilities.js';
import {
  COMMAND_CAPABILITY,
  SESSION_COMMANDS,
  type SessionCommandName,
} from '../../core/api/server/session.js';
import type { CommandInput } from '../../core/api/contract/contract.js';
import { startFakeQemu, type FakeQemu } from './attach-fake.js';
import { rig, until, type Rig } from './helpers.js';

interface Subject {
  r: Rig;
  /** The virtio-serial device the cases plug into. */
  device: string;
  /** A port number free on it. */
  freeNr: number;
  /** A port number taken on it. */
  takenNr: number;
  close(): Promise<void>;
}

const subjects: Record<'lab' | 'attached', () => Promise<Subject>> = {
  lab: async () => {
    const r = await rig({ lab: 'empty' });
    await r.must({ cmd: 'createDevice', device: { id: 'vser0', maxPorts: 8 } });
    await r.must({
      cmd: 'hotplugPort',
      port: { driver: 'virtserialport', device: 'vser0', nr: 1, name: 'org.test.port.1' },
    });
    return { r, device: 'vser0', freeNr: 3, takenNr: 1, close: () => r.close() };
  },
  attached: async () => {
    const fake: FakeQemu = await startFakeQemu();
    const r = await rig({
      attach: { pollIntervalMs: 0, greetingTimeoutMs: 500, unplugTimeoutMs: 2000 },
    });
    await r.must({ cmd: 'attach', address: fake.server.address });
    return {
      r,
      device: 'vser0',
      freeNr: 3,
      takenNr: 1,
      close: async () => {
        await r.close();
        await fake.server.close();
      },
    };
  },
};

/** A valid instance of each session command, for the refusal cases. */
function sample(name: SessionCommandName, device: string): CommandInput {
  const port = { device, nr: 1 };
  const all: { [K in SessionCommandName]: CommandInput } = {
    createDevice: { cmd: 'createDevice', device: {} },
    removeDevice: { cmd: 'removeDevice', device },
    createChardev: { cmd: 'createChardev', chardev: { id: 'x9', backend: { kind: 'null' } } },
    removeChardev: { cmd: 'removeChardev', id: 'x9' },
    hotplugPort: { cmd: 'hotplugPort', port: { driver: 'virtserialport', device } },
    unplugPort: { cmd: 'unplugPort', port },
    connectHost: { cmd: 'connectHost', port, chardev: 'x9' },
    disconnectHost: { cmd: 'disconnectHost', port },
    pause: { cmd: 'pause' },
    run: { cmd: 'run' },
    step: { cmd: 'step' },
    vringStep: { cmd: 'vringStep', device, queue: 0 },
    injectFault: { cmd: 'injectFault', device, queue: 0, fault: 'M2' },
    writeHost: { cmd: 'writeHost', port, data: 'x' },
    writeGuest: { cmd: 'writeGuest', port, data: 'x' },
    setWorkload: { cmd: 'setWorkload', on: false },
    exportConfig: { cmd: 'exportConfig', format: 'qemu' },
    getVring: { cmd: 'getVring', device, queue: 0 },
    getVringView: { cmd: 'getVringView', device, queue: 0 },
    tapChardev: { cmd: 'tapChardev', id: 'x9' },
    untapChardev: { cmd: 'untapChardev', id: 'x9' },
  };
  return all[name];
}

let current: Subject | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

describe.each(['lab', 'attached'] as const)('the session contract: %s', (kind) => {
  const start = async (): Promise<Subject> => (current = await subjects[kind]());

  it('the topology names every capability; one it lacks carries the reason', async () => {
    const { r, device } = await start();
    const t = await r.topology();
    expect(Object.keys(t.capabilities ?? {}).sort()).toEqual([...CAPABILITIES].sort());
    for (const [name, c] of Object.entries(t.capabilities!)) {
      if (!c.can) expect(c.reason.length, name).toBeGreaterThan(10);
    }
    expect(t.capabilities!.hotplug).toEqual({ can: true });
    expect(t.devices.map((d) => d.name)).toContain(device);
    expect(t.attached != null).toBe(kind === 'attached');
  });

  it('a command whose capability the session lacks is refused as Unsupported, with that reason', async () => {
    const { r, device } = await start();
    const caps = (await r.topology()).capabilities!;
    const refused: string[] = [];
    for (const name of SESSION_COMMANDS) {
      const need = COMMAND_CAPABILITY[name];
      if (need === null) continue;
      const c = caps[need]!;
      if (c.can) continue;
      refused.push(name);
      expect(await r.run(sample(name, device)), name).toEqual({
        ok: false,
        error: { kind: 'Unsupported', message: c.reason },
      });
    }
    // the lab lacks only taps (its chardevs are its own); a real QEMU lacks step mode, writes, device hot-plug, ...
    if (kind === 'lab') expect(refused).toEqual(['tapChardev', 'untapChardev']);
    else expect(refused).toEqual(expect.arrayContaining(['step', 'writeGuest', 'createDevice']));
  });

  it('createChardev and removeChardev (chardev-add / chardev-remove)', async () => {
    const { r } = await start();
    const c = await r.must<ChardevSnapshot>({
      cmd: 'createChardev',
      chardev: { id: 'cc1', backend: { kind: 'unix', server: true } },
    });
    expect(c).toMatchObject({ id: 'cc1', usedBy: null });
    expect((await r.topology()).chardevs.some((x) => x.id === 'cc1')).toBe(true);
    await r.must({ cmd: 'removeChardev', id: 'cc1' });
    expect((await r.topology()).chardevs.some((x) => x.id === 'cc1')).toBe(false);
    const again = await r.run({ cmd: 'removeChardev', id: 'cc1' });
    expect(again.ok).toBe(false);
    if (!again.ok) expect(again.error.kind).toBe('NotFound');
  });

  it('hot-plug (D8): a port on a new chardev, an event at the time it happened, QEMU’s words for a taken number, unplug', async () => {
    const { r, device, freeNr, takenNr } = await start();
    const before = Date.now();
    const port = await r.must<PortSnapshot>({
      cmd: 'hotplugPort',
      port: {
        driver: 'virtserialport',
        device,
        id: 'cp1',
        nr: freeNr,
        name: 'org.vmchan.contract.1',
        newChardev: { id: 'cpc1', backend: { kind: 'unix', server: true } },
      },
    });
    expect(port).toMatchObject({
      key: `${device}:${freeNr}`,
      nr: freeNr,
      name: 'org.vmchan.contract.1',
      chardev: 'cpc1',
    });
    const added: ApiEvent = await r.waitEvent((e) => e.kind === 'port-added' && e.nr === freeNr);
    expect(added.time).toBeGreaterThanOrEqual(before - 1);
    expect(added.time).toBeLessThanOrEqual(Date.now() + 1);
    expect((await r.topology()).ports.some((p) => p.nr === freeNr)).toBe(true);

    await r.must({ cmd: 'createChardev', chardev: { id: 'cpc2', backend: { kind: 'null' } } });
    const dup = await r.run({
      cmd: 'hotplugPort',
      port: { driver: 'virtserialport', device, nr: takenNr, chardev: 'cpc2' },
    });
    expect(dup).toEqual({
      ok: false,
      error: {
        kind: 'Refused',
        message: `virtio-serial-bus: A port already exists at id ${takenNr}`,
      },
    });

    await r.must({ cmd: 'unplugPort', port: { device, nr: freeNr } });
    await until(async () => !(await r.topology()).ports.some((p) => p.nr === freeNr));
    const gone = await r.run({ cmd: 'unplugPort', port: { device, nr: freeNr } });
    expect(gone.ok).toBe(false);
    if (!gone.ok) expect(gone.error.kind).toBe('NotFound');
  });

  it('getVring and getVringView: the state of a queue the guest set up; an unknown device is NotFound', async () => {
    const { r, device } = await start();
    // the receive queue of port 1 (queue 4 with MULTIPORT), once the guest has set it up
    const v = await until(async () => {
      const a = await r.run({ cmd: 'getVring', device, queue: 4 });
      return a.ok ? (a.value as VringSnapshot) : undefined;
    });
    expect(v).toMatchObject({ device, queue: 4, role: 'rx port 1', format: 'split' });
    expect(v.size).toBeGreaterThan(0);
    const view = await r.must<{ changed: boolean; version: number; view: unknown }>({
      cmd: 'getVringView',
      device,
      queue: 4,
    });
    expect(view.changed).toBe(true);
    expect(view.view).toMatchObject({ device, queue: 4 });
    const missing = await r.run({ cmd: 'getVring', device: 'vser9', queue: 0 });
    expect(missing.ok).toBe(false);
    if (!missing.ok) expect(missing.error.kind).toBe('NotFound');
  });

  it('capture: start, a hot-plug recorded on its port (added, then removed, in time order), stop, open, the rows, save', async () => {
    const { r, device, freeNr } = await start();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmchan-contract-capture-'));
    try {
      const file = path.join(dir, 'contract.pcapng');
      await r.must({ cmd: 'startCapture', path: file });
      expect((await r.topology()).capture).toMatchObject({ on: true, path: file });
      await r.must({
        cmd: 'hotplugPort',
        port: {
          driver: 'virtserialport',
          device,
          nr: freeNr,
          name: 'org.vmchan.contract.cap',
          newChardev: { id: 'cpcap', backend: { kind: 'null' } },
        },
      });
      await r.must({ cmd: 'unplugPort', port: { device, nr: freeNr } });
      await until(async () => !(await r.topology()).ports.some((p) => p.nr === freeNr));
      await r.must({ cmd: 'stopCapture' });
      expect((await r.topology()).capture).toMatchObject({ on: false, last: file });

      // the same file format and reader for both: the app's list of the records
      const opened = await r.must<{ records: number }>({ cmd: 'openCapture', path: file });
      expect(opened.records).toBeGreaterThanOrEqual(2);
      const rows = await r.must<CaptureRows>({
        cmd: 'getCaptureRows',
        from: 0,
        count: 100,
        filter: 'kind == event',
      });
      const mine = rows.rows.filter((row) => row.port === 'org.vmchan.contract.cap');
      expect(mine.length).toBeGreaterThanOrEqual(2);
      expect(mine[0]!.summary).toMatch(/added/);
      expect(mine[mine.length - 1]!.summary).toMatch(/port removed/);
      const times = mine.map((row) => row.rel);
      expect(times).toEqual([...times].sort((a, b) => a - b));

      // saved, it reads back with every record
      const saved = path.join(dir, 'saved.pcapng');
      await r.must({ cmd: 'saveCapture', path: saved });
      const reader = openCaptureSync(saved);
      if (reader instanceof CaptureError) throw new Error(reader.toString());
      try {
        expect(reader.count).toBe(opened.records);
      } finally {
        reader.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('getTopology’s engine state and hello answer on both', async () => {
    const { r } = await start();
    const t = await r.topology();
    expect(t.engine.mode).toBe('running');
    const hello = await r.must<{ app: string }>({ cmd: 'hello' });
    expect(hello.app).toBe('vmchan');
  });
});

describe('the attached session’s command table', () => {
  it('refuses exactly the commands whose capability it lacks (the table and the capabilities agree)', async () => {
    const { ATTACHED_CAPABILITIES } = await import('../../core/api/server/attach-session.js');
    const { Refusal } = await import('../../core/api/server/session.js');
    current = await subjects.attached();
    const session = (current.r as unknown as { service: { attachedSession: { commands: object } } })
      .service.attachedSession;
    for (const name of SESSION_COMMANDS) {
      const entry = (session.commands as Record<string, unknown>)[name];
      const need = COMMAND_CAPABILITY[name];
      const can = need === null ? true : ATTACHED_CAPABILITIES[need].can;
      expect(entry instanceof Refusal, name).toBe(!can);
      if (entry instanceof Refusal) expect(entry.capability).toBe(need);
    }
  });
});
