/**
 * The emulated lab's command table (session.ts): every session command run
 * on the engine. The lab can do everything but tap (its chardevs are its
 * own); the engine's own refusals come back in QEMU's words.
 */
import { topologyToLibvirtXml } from '../../machine/libvirt-xml.js';
import { printQemuArgs } from '../../machine/qemu-print.js';
import { queueRole } from '../../serial/layout.js';
import { chardevFromSpec } from './chardev-hosts.js';
import { isVmchanError } from '../../base/error.js';
import { failWith } from './api-error.js';
import { fail, ok } from '../contract/contract.js';
import type { LabSession } from './lab-session.js';
import { Refusal, type Answer, type CommandTable } from './session.js';
import type { VringService } from './vring-service.js';

export interface LabCommandContext {
  /** The vring view, step mode and injected faults of the service. */
  readonly vrings: VringService;
  /** Something the topology snapshot shows changed. */
  changed(): void;
  /** The engine's mode or queue changed. */
  engineChanged(): void;
}

export function decode(data: string, base64: boolean | undefined): Uint8Array {
  if (base64) return new Uint8Array(Buffer.from(data, 'base64'));
  return new TextEncoder().encode(data);
}

export function labCommands(s: LabSession, ctx: LabCommandContext): CommandTable {
  const noTap = (): Refusal => {
    const c = s.capabilities().tap;
    return new Refusal('tap', c.can ? 'no tap' : c.reason);
  };
  const changed = (answer: Answer): Answer => {
    ctx.changed();
    return answer;
  };
  return {
    createDevice: (c) => {
      const d = s.createDevice(c.device);
      ctx.vrings.watchDevices(); // its negotiation is recorded from the guest's probe on
      return isVmchanError(d) ? failWith(d) : changed(ok({ name: d.name, bus: d.bus }));
    },
    removeDevice: (c) => {
      const err = s.removeDevice(c.device);
      return err === null ? changed(ok({})) : failWith(err);
    },
    createChardev: async (c) => {
      const config = chardevFromSpec(c.chardev, s.runtimeDir);
      if (typeof config === 'string') return fail('InvalidRequest', `chardev.${config}`);
      const host = await s.createChardev(config);
      if (host !== null) return failWith(host);
      ctx.changed();
      return ok(s.chardevs().find((x) => x.id === c.chardev.id)!);
    },
    removeChardev: async (c) => {
      const err = await s.removeChardev(c.id);
      return err === null ? changed(ok({})) : failWith(err);
    },
    hotplugPort: async (c) => {
      const spec = c.port;
      let chardev = spec.chardev;
      if (spec.newChardev !== undefined) {
        if (chardev !== undefined && chardev !== spec.newChardev.id) {
          return fail('InvalidRequest', 'give either chardev or newChardev, not both');
        }
        const config = chardevFromSpec(spec.newChardev, s.runtimeDir);
        if (typeof config === 'string') return fail('InvalidRequest', `newChardev.${config}`);
        const host = await s.createChardev(config);
        if (host !== null) return failWith(host);
        chardev = spec.newChardev.id;
      }
      const port = s.plugPort({ ...spec, ...(chardev !== undefined ? { chardev } : {}) });
      if (isVmchanError(port)) {
        if (spec.newChardev !== undefined) await s.removeChardev(spec.newChardev.id);
        return failWith(port);
      }
      const device = s.lab.registry.devices.find((d) => d.port(port.nr) === port)!;
      return changed(ok(s.portSnapshot(device, port)));
    },
    unplugPort: (c) => {
      const err = s.unplugPort(c.port);
      return err === null ? changed(ok({})) : failWith(err);
    },
    connectHost: async (c) => {
      let chardev = c.chardev;
      if (c.newChardev !== undefined) {
        const config = chardevFromSpec(c.newChardev, s.runtimeDir);
        if (typeof config === 'string') return fail('InvalidRequest', `newChardev.${config}`);
        const host = await s.createChardev(config);
        if (host !== null) return failWith(host);
        chardev = c.newChardev.id;
      }
      if (chardev === undefined)
        return fail('InvalidRequest', 'connectHost needs chardev or newChardev');
      const port = s.replug(c.port, chardev);
      if (isVmchanError(port)) {
        if (c.newChardev !== undefined) await s.removeChardev(c.newChardev.id);
        return failWith(port);
      }
      return changed(ok(s.portSnapshot(s.device(c.port.device)!, port)));
    },
    disconnectHost: (c) => {
      const err = s.disconnectHost(c.port);
      if (err !== null) return failWith(err);
      const found = s.port(c.port);
      if (isVmchanError(found)) return failWith(found);
      return changed(ok(s.portSnapshot(found.device, found.port)));
    },
    pause: () => {
      s.lab.scheduler.setMode('step');
      ctx.engineChanged();
      return ok(s.engineState());
    },
    run: () => {
      s.lab.scheduler.setMode('free-run');
      ctx.engineChanged();
      return ok(s.engineState());
    },
    step: (c) => {
      const ran: string[] = [];
      const sch = s.lab.scheduler;
      if (sch.mode !== 'step') sch.setMode('step');
      for (let i = 0; i < (c.count ?? 1); i++) {
        const t = sch.step();
        if (t === null) break;
        ran.push(`#${t.seq} ${t.kind}: ${t.label}`);
      }
      ctx.engineChanged();
      ctx.changed();
      return ok({ ran: ran.slice(-200), engine: s.engineState() });
    },
    exportConfig: (c) => {
      const t = s.exportTopology();
      if (c.format === 'qemu') return ok({ text: printQemuArgs(t).shell, notes: [] });
      const x = topologyToLibvirtXml(t);
      return ok({
        text: x.xml,
        notes: x.notes.map((n) => ({ kind: n.kind, message: n.message })),
      });
    },
    getVring: (c) => {
      const device = s.device(c.device);
      if (device === undefined) return fail('NotFound', `Device '${c.device}' not found`);
      const snap = device.queueSnapshot(c.queue);
      if (snap === null)
        return fail('NotFound', `queue ${c.queue} of ${device.name} is not set up`);
      const role = queueRole(c.queue);
      return ok({
        device: device.name,
        queue: c.queue,
        role: 'port' in role ? `${role.role} port ${role.port}` : role.role.replace('-', ' '),
        format: snap.format,
        size: snap.size,
        snapshot: JSON.parse(JSON.stringify(snap)) as Record<string, unknown>,
      });
    },
    getVringView: (c) => ctx.vrings.view(c.device, c.queue, c.since),
    vringStep: (c) => {
      const r = ctx.vrings.step(c.device, c.queue, c.count ?? 1);
      ctx.engineChanged();
      ctx.changed();
      return r.ok ? ok({ ...r.value, engine: s.engineState() }) : r;
    },
    injectFault: (c) => changed(ctx.vrings.inject(c.device, c.queue, c.fault)),
    writeHost: async (c) => {
      const n = await s.writeHost(c.port, decode(c.data, c.base64));
      if (isVmchanError(n)) return failWith(n);
      return ok({ written: n });
    },
    writeGuest: async (c) => {
      const n = await s.writeGuest(c.port, decode(c.data, c.base64));
      if (isVmchanError(n)) return failWith(n);
      // Paused: the guest's write runs when the engine runs; the answer does not wait.
      if (typeof n === 'object') return ok({ written: 0, queued: n.queued });
      return ok({ written: n });
    },
    tapChardev: noTap(),
    untapChardev: noTap(),
    setWorkload: async (c) => {
      let name: string | undefined;
      if (c.port !== undefined) {
        const found = s.port(c.port);
        if (isVmchanError(found)) return failWith(found);
        name = found.port.name ?? undefined;
        if (name === undefined) return fail('NotFound', `port ${c.port.nr} has no demo workload`);
      }
      const r = await s.setWorkload(name, c.on, c.speed ?? 'paced');
      return typeof r === 'string' ? fail('Refused', r) : changed(ok({ running: r }));
    },
  };
}
